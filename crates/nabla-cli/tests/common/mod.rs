//! What the end-to-end tests of the `nabla` binary share: running it,
//! its output, fresh run directories, fixtures, weights, interruptions.
#![allow(dead_code)] // (each test file uses its own share)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn nabla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nabla"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NABLA_NUM_THREADS", "2");
    c
}

pub fn run(args: &[&str]) -> Output {
    nabla().args(args).output().expect("nabla runs")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn fixture(name: &str) -> String {
    format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    nabla_nn::state_dict::load_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec()))
        .collect()
}

/// Runs `nabla ARGS --out OUT`, sends it SIGINT once a line of its output
/// starts with `line`, and checks that it stops with 130 (its checkpoint
/// written).
pub fn interrupt_after(args: &[&str], out: &Path, line: &str) {
    let mut child = nabla()
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l.unwrap().starts_with(line) {
            break;
        }
    }
    // the shell's built-in kill: no procps needed
    Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    for _ in lines {}
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit with 130");
}
