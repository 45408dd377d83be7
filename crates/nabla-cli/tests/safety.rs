//! What a run promises (the README's "Safety"), tested as a hostile user
//! would: runs that are never lost or mixed, a crash at any instant that
//! resumes to the uninterrupted result, a full disk, honest resumption,
//! and no panic on a closed pipe, a full device or a bad environment.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

const MLP: [&str; 7] = [
    "train",
    "--model",
    "mlp",
    "--seed",
    "5",
    "--log-interval",
    "1",
];

fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    nabla()
        .args(MLP)
        .args(extra)
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap()
}

/// metrics.csv without the time columns (seconds, train and test seconds).
fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

/// Temporary files left anywhere in a run directory.
fn temporaries(run: &Path) -> Vec<PathBuf> {
    [run.to_path_buf(), run.join("checkpoints")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

#[test]
fn a_run_directory_holds_one_run() {
    let out = tmp("owned");
    assert!(train(&out, &["--epochs", "1", "--max-steps", "5"])
        .status
        .success());
    let before = std::fs::read(out.join("metrics.csv")).unwrap();
    let weights_before = std::fs::read(out.join("model.safetensors")).unwrap();
    let o = train(&out, &["--epochs", "1", "--max-steps", "3"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("already holds a run"), "{stderr}");
    assert_eq!(std::fs::read(out.join("metrics.csv")).unwrap(), before);
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        weights_before
    );
    // --overwrite replaces it whole: no old checkpoint stays behind
    let o = train(&out, &["--epochs", "1", "--max-steps", "3", "--overwrite"]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(!out.join("checkpoints/best.safetensors").exists());
    assert!(!std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("overwrite"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn two_writers_cannot_share_a_directory() {
    let out = tmp("writers");
    let mut first = nabla()
        .args(MLP)
        .args(["--epochs", "3", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    lines.next(); // "training …": the run holds its directory
    let o = train(&out, &["--epochs", "1", "--overwrite"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("in use by another training"), "{stderr}");
    for _ in lines {}
    assert!(first.wait().unwrap().success());
    assert_eq!(metrics(&out).len(), 4, "the first run's three epochs alone");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Killed (SIGKILL) at seeded random instants, over and over, and resumed
/// each time: the run ends with the uninterrupted run's weights and
/// metrics, and no temporary file. An instant is a random number of the
/// run's output lines (one a step) and then a random fraction of a step,
/// so kills land in steps, evaluations and checkpoint writes alike.
#[test]
fn killed_at_any_instant_it_resumes_to_the_whole_run() {
    let whole = tmp("kill-whole");
    assert!(train(&whole, &["--epochs", "3"]).status.success());
    let out = tmp("killed");
    let mut seed = 0x9e37_79b9_u64;
    let mut random = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let (mut kills, mut fresh) = (0, true);
    for _ in 0..20 {
        let mut cmd = nabla();
        if fresh {
            cmd.args(MLP).args([
                "--epochs",
                "3",
                "--overwrite",
                "--out",
                out.to_str().unwrap(),
            ]);
        } else {
            cmd.args(["train", "--resume", out.to_str().unwrap()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        if kills < 6 {
            let at = 1 + random(60) as usize;
            if lines.by_ref().take(at).count() == at {
                std::thread::sleep(std::time::Duration::from_micros(random(3000)));
                child.kill().unwrap();
                kills += 1;
            }
        }
        for _ in lines {}
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            break;
        }
        // killed before its first checkpoint: start it again
        fresh = !out.join("checkpoints/last.safetensors").is_file();
        assert!(
            o.status.code().is_none() || fresh,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(out.join("model.safetensors").is_file(), "the run finished");
    assert_eq!(kills, 6);
    assert_eq!(
        weights(&out.join("model.safetensors")),
        weights(&whole.join("model.safetensors"))
    );
    assert_eq!(metrics(&out), metrics(&whole));
    assert_eq!(
        std::fs::read_to_string(out.join("steps.csv")).unwrap(),
        std::fs::read_to_string(whole.join("steps.csv")).unwrap()
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&whole).unwrap();
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A full disk while writing a checkpoint: one line, no temporary file
/// left, the epoch not committed; with space again the run resumes to
/// the uninterrupted result.
#[test]
fn a_full_disk_leaves_the_last_whole_epoch() {
    let whole = tmp("disk-whole");
    assert!(train(&whole, &["--epochs", "3"]).status.success());
    let checkpoint = std::fs::metadata(whole.join("checkpoints/last.safetensors"))
        .unwrap()
        .len();
    // room for the first epoch's two checkpoints, not for a third during the second
    let size = checkpoint * 5 / 2 + 64 * 1024;
    let dir = tmp("disk");
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&dir)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root): {mounted:?}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let _mount = Mount(dir.clone());
    let out = dir.join("run");
    let o = train(&out, &["--epochs", "3"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
    // more room, and the run continues from its last whole epoch
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(grown.success());
    let o = run(&["train", "--resume", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(
        weights(&out.join("model.safetensors")),
        weights(&whole.join("model.safetensors"))
    );
    assert_eq!(metrics(&out), metrics(&whole));
    std::fs::remove_dir_all(&whole).unwrap();
}

#[test]
fn resuming_extends_a_run_and_refuses_other_changes() {
    let (out, whole) = (tmp("extend"), tmp("extend-whole"));
    assert!(train(&out, &["--epochs", "1"]).status.success());
    let o = run(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--lr",
        "0.5",
        "--model",
        "lenet",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--lr, --model differ from the run's settings"),
        "{stderr}"
    );
    // the same value as the run's is no change
    let o = run(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--model",
        "mlp",
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(train(&whole, &["--epochs", "2"]).status.success());
    assert_eq!(
        weights(&out.join("model.safetensors")),
        weights(&whole.join("model.safetensors"))
    );
    assert_eq!(metrics(&out), metrics(&whole));
    assert!(std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("epochs = 2"));
    // a --max-steps run resumed takes no extra step
    let steps = tmp("extend-steps");
    assert!(train(&steps, &["--epochs", "1", "--max-steps", "7"])
        .status
        .success());
    let o = run(&["train", "--resume", steps.to_str().unwrap()]);
    assert!(
        text(&o).0.contains("stopped after 7 steps"),
        "{}",
        text(&o).0
    );
    for d in [out, whole, steps] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A run trained from a model file named by a relative path carries the
/// file: moved elsewhere, with the file gone, it still evaluates, resumes
/// and explains.
#[test]
fn a_run_directory_is_self_contained() {
    let work = tmp("movable");
    std::fs::create_dir_all(&work).unwrap();
    let model = format!("{}/../../models/mlp.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(model, work.join("my-model.toml")).unwrap();
    let o = nabla()
        .current_dir(&work)
        .args([
            "train",
            "--model",
            "my-model.toml",
            "--epochs",
            "1",
            "--max-steps",
            "4",
        ])
        .args(["--out", "run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let moved = tmp("moved");
    std::fs::rename(work.join("run"), &moved).unwrap();
    std::fs::remove_dir_all(&work).unwrap();
    let o = run(&["eval", moved.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).0.contains("Test set:"),
        "{}",
        text(&o).1
    );
    let o = run(&[
        "train",
        "--resume",
        moved.to_str().unwrap(),
        "--max-steps",
        "6",
    ]);
    assert!(
        o.status.success() && text(&o).0.contains("stopped after 6 steps"),
        "{}",
        text(&o).1
    );
    let o = run(&[
        "explain",
        moved.to_str().unwrap(),
        "--index",
        "0",
        "--target",
        "99",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--target 99: the model has 10 classes"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&moved).unwrap();
}

#[test]
fn a_closed_pipe_or_a_full_device_does_not_lose_the_run() {
    let out = tmp("pipe");
    let mut child = nabla()
        .args(MLP)
        .args(["--epochs", "2", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // as `nabla train | head -2`
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next();
    lines.next();
    drop(lines);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(metrics(&out).len(), 3);
    let full = std::fs::File::create("/dev/full").unwrap();
    let o = nabla()
        .args(MLP)
        .args([
            "--epochs",
            "1",
            "--overwrite",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(full)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(out.join("model.safetensors").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_numbers_and_environments_are_usage_errors() {
    let out = tmp("usage");
    // the variable, its value and what the message must say
    let threads = |v| Some(("NABLA_NUM_THREADS", v));
    for (args, env, message) in [
        (&["--threads", "0"][..], None, "--threads"),
        (
            &["--threads", "100000"],
            None,
            "--threads 100000: must be between 1 and",
        ),
        (
            &[],
            threads("abc"),
            "NABLA_NUM_THREADS=\"abc\": expected a whole number",
        ),
        (
            &[],
            threads("0"),
            "NABLA_NUM_THREADS 0: must be between 1 and",
        ),
        (
            &[],
            Some(("NABLA_ISA", "sse9")),
            "NABLA_ISA=\"sse9\": expected avx512, avx2 or scalar",
        ),
        (&["--lr", "-1"], None, "\"-1\" is not a positive number"),
        (
            &["--dataset", "cifar"],
            None,
            "--dataset must be mnist or fashion-mnist",
        ),
        (&["--betas", "abc"], None, "--betas must be two numbers"),
    ] {
        let mut cmd = nabla();
        if let Some((var, v)) = env {
            cmd.env(var, v);
        }
        let o = cmd
            .arg("train")
            .args(args)
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{args:?}: left a run directory");
    }
}

#[test]
fn empty_data_and_broken_model_files_are_named() {
    let dir = tmp("empty-data");
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["train", "t10k"] {
        nabla_data::idx::write_idx(
            dir.join(format!("{p}-images-idx3-ubyte")),
            &[0, 28, 28],
            &[],
        )
        .unwrap();
        nabla_data::idx::write_idx(dir.join(format!("{p}-labels-idx1-ubyte")), &[0], &[]).unwrap();
    }
    let out = dir.join("run");
    let o = run(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the training data is empty"), "{stderr}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "input = [1, 28, 28]\n[[layers]\nkind = \"flatten\"\n").unwrap();
    let o = run(&["summary", bad.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("line 2"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
