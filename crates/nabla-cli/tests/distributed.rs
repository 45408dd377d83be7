//! `mpirun -np 2 nabla train --distributed`: the same steps as one process
//! of twice the batch, ranks identical after every step, and a job that
//! ends cleanly when a rank dies, hangs or disagrees.
//!
//! Needs a nabla built with MPI: `cargo test -p nabla-cli --features
//! distributed --test distributed` (as `.ci/run` does, with Open MPI).
#![cfg(feature = "distributed")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{nabla, text, tmp, weights};

/// `mpirun -np N nabla ARGS`: Open MPI as root needs its consent variables;
/// one thread a rank, as the two cores here allow.
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("NABLA_NUM_THREADS", "1")
        .args(["--oversubscribe", "-x", "NABLA_NUM_THREADS"])
        .args(["-x", "NABLA_DIST_VERIFY", "-x", "NABLA_DIST_TIMEOUT"])
        .args(["-np", &n.to_string(), env!("CARGO_BIN_EXE_nabla")])
        .args(args);
    c
}

/// The largest difference between two weights files, relative to each
/// tensor's largest value.
fn worst_relative_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let scale = va.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let diff = va
            .iter()
            .zip(vb)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        worst = worst.max(diff / scale);
    }
    worst
}

fn ok(o: &Output, what: &str) {
    let (out, err) = text(o);
    assert!(o.status.success(), "{what}: {out}\n{err}");
}

#[test]
fn two_ranks_of_32_take_the_steps_of_one_process_of_64() {
    for optimizer in ["sgd", "adam"] {
        let (one, two) = (
            tmp(&format!("one-{optimizer}")),
            tmp(&format!("two-{optimizer}")),
        );
        let common = [
            "--optimizer",
            optimizer,
            "--max-steps",
            "25",
            "--lr",
            "0.001",
        ];
        let o = nabla()
            .args([
                "train",
                "--batch-size",
                "64",
                "--out",
                one.to_str().unwrap(),
            ])
            .args(common)
            .output()
            .unwrap();
        ok(&o, "one process");
        // NABLA_DIST_VERIFY: the ranks compare their parameters after every
        // step, and the run fails at the first difference
        let o = mpirun(2, &["train", "--distributed", "--batch-size", "32"])
            .args(["--out", two.to_str().unwrap()])
            .args(common)
            .env("NABLA_DIST_VERIFY", "1")
            .output()
            .unwrap();
        ok(&o, "two ranks");
        let (out, _) = text(&o);
        assert!(
            out.contains("2 ranks × batch 32 = 64 examples a step"),
            "{out}"
        );
        assert_eq!(
            out.matches("training lenet").count(),
            1,
            "rank 0 alone speaks: {out}"
        );
        // The same examples a step, summed in another order (each rank's
        // kernels over 32 rows, then the two means averaged): equal to
        // rounding, not bit for bit. SGD carries the rounding as it is
        // (1.5e-7 here); Adam divides each step by √v, so a gradient near
        // zero, whose rounding is large next to it, still moves its weight
        // by up to lr: 4.5e-6 here. (Both runs are deterministic: the same
        // figures every time on a machine.)
        let worst = worst_relative_difference(
            &one.join("model.safetensors"),
            &two.join("model.safetensors"),
        );
        let tolerance = if optimizer == "sgd" { 1e-6 } else { 2e-5 };
        assert!(
            worst < tolerance,
            "{optimizer}: weights differ by {worst:e} (relative)"
        );
        assert!(!two.join("model.safetensors").with_extension("tmp").exists());
    }
}

#[test]
fn an_epoch_of_two_ranks_reports_the_whole_test_set() {
    let (one, two) = (tmp("epoch-one"), tmp("epoch-two"));
    let args = ["train", "--epochs", "1", "--train-fraction", "0.25"];
    ok(
        &nabla()
            .args(args)
            .args(["--batch-size", "64", "--out", one.to_str().unwrap()])
            .output()
            .unwrap(),
        "one process",
    );
    ok(
        &mpirun(2, &args)
            .args([
                "--distributed",
                "--batch-size",
                "32",
                "--out",
                two.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
        "two ranks",
    );
    // each rank evaluated half the test set: the sums cover all of it, and
    // the epoch's training loss is the mean over both ranks' batches
    let row = |d: &Path| -> Vec<f64> {
        let m = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        let last = m.lines().last().unwrap().to_string();
        last.split(',')
            .take(5)
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let (a, b) = (row(&one), row(&two));
    assert_eq!((a[0], a[1]), (b[0], b[1]), "epoch and step");
    for (k, what) in [(2, "train loss"), (3, "test loss"), (4, "accuracy")] {
        assert!((a[k] - b[k]).abs() < 1e-5, "{what}: {} vs {}", a[k], b[k]);
    }
}

#[test]
fn ranks_with_different_settings_stop_at_the_start() {
    let out = tmp("mismatch");
    let bin = env!("CARGO_BIN_EXE_nabla");
    let args = [
        "train",
        "--distributed",
        "--max-steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    // Open MPI's MPMD form: rank 1 runs with another seed
    let o = mpirun(1, &args)
        .args([":", "-np", "1", bin])
        .args(args)
        .args(["--seed", "7"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("the ranks differ: rank 1 of 2 has another settings than rank 0"),
        "{err}"
    );
    assert!(!out.join("checkpoints/last.safetensors").exists());
}

/// The pids of the ranks of the run writing to `out`.
fn ranks_of(out: &Path) -> Vec<u32> {
    let mark = out.to_str().unwrap();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains(mark) && cmd.contains("--distributed") && !cmd.starts_with("mpirun")
        })
        .collect();
    pids.sort();
    pids
}

/// Starts a long two-rank run and waits until its first checkpoint is
/// written.
fn long_run(out: &Path, timeout: &str) -> Child {
    let child = mpirun(2, &["train", "--distributed", "--epochs", "1000"])
        .args(["--train-fraction", "0.1", "--out", out.to_str().unwrap()])
        .env("NABLA_DIST_TIMEOUT", timeout)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("checkpoints/last.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Waits for the job's end, at most `limit`; its stderr.
fn ends_within(mut child: Child, limit: Duration) -> String {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the job still runs after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!child.wait().unwrap().success());
    err
}

/// The run's last checkpoint still loads: `nabla eval` of the run works.
fn checkpoint_intact(out: &Path) {
    ok(
        &nabla()
            .args(["eval", out.to_str().unwrap()])
            .output()
            .unwrap(),
        "eval",
    );
}

fn signal(pid: u32, sig: &str) {
    Command::new("sh")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .status()
        .unwrap();
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_stays_intact() {
    let out = tmp("killed");
    let child = long_run(&out, "300");
    let ranks = ranks_of(&out);
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    signal(ranks[1], "KILL");
    let err = ends_within(child, Duration::from_secs(30));
    assert!(err.contains("exited on signal 9"), "{err}");
    assert!(ranks_of(&out).is_empty(), "no rank left running");
    checkpoint_intact(&out);
}

#[test]
fn a_hung_rank_ends_the_job_after_the_timeout() {
    let out = tmp("hung");
    // (5 s: long enough that a rank slowed by the other tests running
    // beside this one is not taken for a hung one before the STOP)
    let child = long_run(&out, "5");
    let ranks = ranks_of(&out);
    signal(ranks[1], "STOP"); // alive, but never answers
    let err = ends_within(child, Duration::from_secs(30));
    for r in &ranks {
        signal(*r, "KILL"); // (the stopped one, should MPI have left it)
    }
    assert!(
        err.contains("no answer from rank 1 for 5 s"),
        "the waiting rank names the silent one: {err}"
    );
    checkpoint_intact(&out);
}

#[test]
fn an_interrupted_run_resumes_on_another_number_of_ranks() {
    let out = tmp("resize");
    let child = long_run(&out, "300");
    let ranks = ranks_of(&out);
    // a Ctrl-C reaches every rank; they agree on the step to stop after
    for r in &ranks {
        signal(*r, "INT");
    }
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(err.contains("interrupted at epoch"), "{err}");
    checkpoint_intact(&out);
    let epoch: usize = err
        .split("interrupted at epoch ")
        .nth(1)
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .expect("the epoch it stopped in");
    // the rest of that epoch on one process
    let o = nabla()
        .args(["train", "--resume", out.to_str().unwrap()])
        .args(["--epochs", &epoch.to_string()])
        .output()
        .unwrap();
    ok(&o, "resumed on one process");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    assert!(last.starts_with(&format!("{epoch},")), "{metrics}");
}

/// Takes the two namespace "hosts" of `tools/two_hosts.sh` down when dropped.
struct TwoHosts(&'static str);

impl Drop for TwoHosts {
    fn drop(&mut self) {
        let _ = Command::new(self.0).arg("down").status();
    }
}

#[test]
fn two_hosts_over_tcp_reach_the_weights_of_one_process() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/two_hosts.sh");
    let dir = tmp("two-hosts");
    let up = Command::new(script).arg("up").arg(&dir).output().unwrap();
    if !up.status.success() {
        // (network namespaces need root and a kernel that offers them)
        eprintln!(
            "skipped: no network namespaces here: {}",
            String::from_utf8_lossy(&up.stderr).trim()
        );
        return;
    }
    let _down = TwoHosts(script);
    let flags = Command::new(script)
        .arg("flags")
        .arg(&dir)
        .output()
        .unwrap();
    let flags = String::from_utf8(flags.stdout).unwrap();
    let (one, two) = (tmp("hosts-one"), tmp("hosts-two"));
    let steps = ["--max-steps", "25", "--no-shuffle"];
    ok(
        &nabla()
            .args([
                "train",
                "--batch-size",
                "64",
                "--out",
                one.to_str().unwrap(),
            ])
            .args(steps)
            .output()
            .unwrap(),
        "one process",
    );
    // rank 0 in namespace nabla-h1, rank 1 in nabla-h2, talking over TCP
    let o = Command::new("mpirun")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(flags.split_whitespace())
        .args([
            "-np",
            "2",
            env!("CARGO_BIN_EXE_nabla"),
            "train",
            "--distributed",
        ])
        .args([
            "--threads",
            "1",
            "--batch-size",
            "32",
            "--out",
            two.to_str().unwrap(),
        ])
        .args(steps)
        .output()
        .unwrap();
    ok(&o, "two hosts");
    let worst = worst_relative_difference(
        &one.join("model.safetensors"),
        &two.join("model.safetensors"),
    );
    assert!(worst < 1e-6, "weights differ by {worst:e} (relative)");
}
