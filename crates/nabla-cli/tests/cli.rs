//! End-to-end tests that run the `nabla` binary.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, interrupt_after, nabla, run, text, tmp, weights};

#[test]
fn default_training_for_one_epoch_reaches_the_documented_accuracy() {
    let out = tmp("default");
    let o = run(&["train", "--epochs", "1", "--out", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Test set: Average loss: "))
        .expect("test line");
    let correct: usize = line
        .split("Accuracy: ")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // README: 28% (567/2004) after one epoch at the reference settings
    assert!(correct >= 400, "{line}");
    for f in [
        "config.toml",
        "metrics.csv",
        "model.safetensors",
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        metrics.starts_with(
            "epoch,step,train_loss,test_loss,accuracy,lr,seconds,train_seconds,test_seconds\n1,125,"
        ),
        "{metrics}"
    );
    let o = run(&["eval", out.to_str().unwrap()]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains(line) && stdout.contains("confusion matrix"),
        "{stdout}"
    );
    let ckpt = out.join("checkpoints/last.safetensors");
    let o = run(&["summary", ckpt.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).0.contains("61,706"),
        "{}",
        text(&o).1
    );
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "--index",
        "0",
        "--index",
        "2003",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success() && stdout.contains("test example 2003 (label 9)"),
        "{stdout}{stderr}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_reference_network_as_written_is_refused() {
    let o = run(&["train", "--model", "lenet-as-written"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("layer fc1 (linear): expects 400 input features but would receive 1600 = 16×10×10 per example"), "{stderr}");
    assert!(stderr.contains("a pooling layer is missing"), "{stderr}");
}

#[test]
fn bad_flags_and_paths_give_one_line_and_the_right_code() {
    let o = run(&["train", "--optimizer", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["train", "--data", "/no/such/folder"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: /no/such/folder: data folder not found"),
        "{stderr}"
    );
    let o = run(&["train", "--device", "cuda"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("cuda:0 is not available"), "{stderr}");
    let o = run(&["train", "--lr=-1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["train", "--epochs", "0"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a usage error found after parsing"
    );
    assert_eq!(
        text(&o).1,
        "error: --epochs, --batch-size and --test-batch-size must be positive\n"
    );
    let o = run(&["summary", "no-such-model"]);
    assert_eq!(o.status.code(), Some(1));
    // counts of zero are usage errors, before any run directory is read
    for args in [
        &["predict", "no-such-run", "--index", "0", "--top-k", "0"][..],
        &["explain", "no-such-run", "--grid", "0"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o).1.contains("is not a whole number of at least 1"),
            "{args:?}"
        );
    }
    // augmentation specs and fractions are checked before anything runs
    for (args, says) in [
        (
            &["train", "--augment", "zoom:3"][..],
            "unknown item \"zoom:3\"",
        ),
        (&["train", "--augment", "crop"], "crop needs a value"),
        (
            &["train", "--augment", "mixup,cutmix"],
            "one batch mix at most",
        ),
        (
            &["train", "--train-fraction", "0"],
            "is not a fraction in (0, 1]",
        ),
        (
            &["train", "--train-fraction", "1.5"],
            "is not a fraction in (0, 1]",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).1.contains(says), "{args:?}: {}", text(&o).1);
    }
}

#[test]
fn early_stopping_counts_the_epochs_that_do_not_improve() {
    // with --min-delta 100 only the first epoch improves (on no loss at
    // all): patience P stops after P epochs without improvement, and
    // patience 0 at the first one
    for (patience, epochs_run) in [("0", 2), ("2", 3)] {
        let out = tmp(&format!("early-{patience}"));
        let o = nabla()
            .args([
                "train",
                "--model",
                "mlp",
                "--epochs",
                "6",
                "--min-delta",
                "100",
            ])
            .args(["--early-stop", patience, "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        let not_improved = epochs_run - 1;
        assert!(
            stdout.contains(&format!(
                "early stop: the test loss has not improved for {not_improved} epochs"
            )),
            "{stdout}"
        );
        let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(metrics.lines().count(), 1 + epochs_run, "{metrics}");
        assert!(out.join("checkpoints/best.safetensors").exists());
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn out_of_range_settings_are_refused_before_the_run_starts() {
    let out = tmp("refused");
    for (flags, message) in [
        (&["--momentum=-0.5"][..], "SGD: invalid momentum: -0.5"),
        (&["--weight-decay=nan"], "SGD: invalid weight_decay: NaN"),
        (
            &["--optimizer", "adam", "--betas", "0.9,1.5"],
            "Adam: invalid beta at index 1: 1.5",
        ),
        (
            &["--optimizer", "rmsprop", "--alpha=-1"],
            "RMSprop: invalid alpha: -1",
        ),
        (
            &["--dropout", "1.5"],
            "--dropout must be in [0, 1), got 1.5",
        ),
        (&["--max-steps", "0"], "--max-steps must be positive"),
        (
            &["--clip-grad-norm", "0"],
            "--clip-grad-norm must be a positive number",
        ),
        (&["--l1=-0.1"], "--l1 must be a number >= 0"),
        (&["--min-delta", "nan"], "--min-delta must be a number >= 0"),
    ] {
        let o = nabla()
            .arg("train")
            .args(flags)
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {message}")),
            "{flags:?}: {stderr}"
        );
        assert!(!out.exists(), "{flags:?}: left a run directory");
    }
}

#[test]
fn interrupt_and_resume_equal_an_uninterrupted_run_bit_for_bit() {
    let (a, b) = interrupted_and_whole("plain", &[]);
    // a truncated checkpoint is a clear error
    let last = b.join("checkpoints/last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&["train", "--resume", b.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("corrupt or truncated checkpoint"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

/// `--precision bf16` is in the config, resumes bit for bit, may not be
/// changed on resume, trains other weights than f32 does, and `nabla eval`
/// of the run evaluates at it (the figures of its last epoch).
#[test]
fn bf16_runs_resume_bit_for_bit_and_differ_from_f32() {
    let (a, b) = interrupted_and_whole("bf16", &["--precision", "bf16"]);
    let cfg = std::fs::read_to_string(b.join("config.toml")).unwrap();
    assert!(cfg.contains("precision = \"bf16\""), "{cfg}");
    let o = run(&[
        "train",
        "--resume",
        b.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--precision differ"), "{stderr}");
    let short = |precision: &str| {
        let out = tmp(&format!("short-{precision}"));
        let o = run(&[
            "train",
            "--model",
            "mlp",
            "--max-steps",
            "5",
            "--seed",
            "3",
            "--precision",
            precision,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
        let w = weights(&out.join("model.safetensors"));
        std::fs::remove_dir_all(&out).unwrap();
        w
    };
    assert_ne!(short("f32"), short("bf16"));
    // `nabla eval` of the run computes at its precision: the run's figures
    let o = run(&["eval", a.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("(products in bf16, as the run trained)"),
        "{stdout}"
    );
    let metrics = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    let accuracy: f64 = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    let correct = (accuracy * 2004.0).round() as usize;
    assert!(
        stdout.contains(&format!("Accuracy: {correct}/2004")),
        "{accuracy}: {stdout}"
    );
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

/// Augmentation (every per-image transform, and a batch mix) and a
/// fraction of the data resume bit for bit too, and are in the config.
#[test]
fn augmented_runs_resume_bit_for_bit() {
    let spec = "crop:2,rotate:10,flip:0.1,erase,elastic,cutmix";
    let (a, b) =
        interrupted_and_whole("augmented", &["--augment", spec, "--train-fraction", "0.5"]);
    let cfg = std::fs::read_to_string(b.join("config.toml")).unwrap();
    assert!(
        cfg.contains(spec) && cfg.contains("train_fraction = 0.5"),
        "{cfg}"
    );
    // and the picture of what the model saw
    let png = a.join("augmentations.png");
    let o = run(&[
        "plot",
        a.to_str().unwrap(),
        "--kind",
        "augmentations",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(png.is_file());
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

/// Trains with `extra` flags twice, once whole and once interrupted by
/// SIGINT then resumed, checks the final weights are the same bit for bit,
/// and returns the two run directories.
fn interrupted_and_whole(name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (a, b) = (
        tmp(&format!("whole-{name}")),
        tmp(&format!("interrupted-{name}")),
    );
    // six epochs: the signal, sent in epoch 1, always lands before the end
    let mut common = vec![
        "train",
        "--model",
        "mlp",
        "--epochs",
        "6",
        "--seed",
        "3",
        "--log-interval",
        "1",
    ];
    common.extend_from_slice(extra);
    let o = nabla()
        .args(&common)
        .args(["--out", a.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);

    // interrupt once training is under way (the exact step does not matter)
    interrupt_after(&common, &b, "Train Epoch: 1 [320/");
    assert!(b.join("checkpoints/last.safetensors").is_file());

    let o = run(&["train", "--resume", b.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("resuming"), "{stdout}");
    assert_eq!(
        weights(&a.join("model.safetensors")),
        weights(&b.join("model.safetensors"))
    );
    (a, b)
}

#[test]
fn init_weights_from_pytorch_and_one_step_give_pytorchs_weights() {
    let out = tmp("init");
    let o = run(&[
        "train",
        "--init-weights",
        &fixture("lenet_state_dict.safetensors"),
        "--max-steps",
        "1",
        "--no-shuffle",
        // set before the run enters the pool (a debug assertion otherwise)
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let ours = weights(&out.join("model.safetensors"));
    let want: std::collections::HashMap<_, _> =
        weights(Path::new(&fixture("lenet_cli_one_step.safetensors")))
            .into_iter()
            .collect();
    assert_eq!(ours.len(), want.len());
    for (name, v) in ours {
        let w = &want[&name];
        let worst = v
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: max abs diff {worst}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn summary_shows_the_scale() {
    let o = run(&["summary", "lenet"]);
    let (stdout, _) = text(&o);
    assert!(o.status.success());
    assert!(
        stdout.contains("61,706") && stdout.contains("416,520"),
        "{stdout}"
    );
}

#[test]
fn diverging_training_stops_with_a_hint() {
    let out = tmp("diverge");
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--lr",
        "1e12",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("training diverged at epoch 1")
            && stderr.contains("no checkpoint was written before it")
            && stderr.contains("--lr"),
        "{stderr}"
    );
    // the losses that led to it are on disk, the last one not a number
    let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    let last = steps.lines().last().unwrap();
    assert!(
        steps.lines().count() >= 2 && last.contains("NaN"),
        "{steps}"
    );
    assert!(
        std::fs::read_dir(out.join("checkpoints")).unwrap().count() == 0,
        "no checkpoint, and no temporary file"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[cfg(not(feature = "distributed"))]
#[test]
fn distributed_without_mpi_says_how_to_build_it() {
    let o = run(&["train", "--distributed", "--max-steps", "1"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("built without MPI"), "{err}");
    assert!(err.contains("--features distributed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
