//! End-to-end tests that run the `nabla` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

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

#[test]
fn predicts_image_files_of_any_size() {
    let out = tmp("predict");
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--optimizer",
        "adam",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // a test digit, drawn dark on light at twice the size, as a user's scan would be
    let m = nabla_data::Mnist::load(nabla_data::Mnist::shipped_dir()).unwrap();
    let (idx, label) = (1500, m.test.labels[1500]);
    let px = &m.test.images[idx * 784..(idx + 1) * 784];
    let img = image::GrayImage::from_fn(56, 56, |x, y| {
        image::Luma([255 - px[(y as usize / 2) * 28 + x as usize / 2]])
    });
    let png = out.join("digit.png");
    img.save(&png).unwrap();
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "--image",
        png.to_str().unwrap(),
        "--top-k",
        "2",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let top = stdout
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(top, label.to_string(), "{stdout}");
    // the digits cut to their ink, filling a large transparent canvas, as a
    // paint program saves them: predicted as the model predicts the
    // originals (stretched to 28×28 instead, most were read as other digits)
    let mut agree = 0;
    for idx in 0..10 {
        let px = &m.test.images[idx * 784..(idx + 1) * 784];
        let ink = |x: usize, y: usize| px[y * 28 + x] > 50;
        let (xs, ys): (Vec<usize>, Vec<usize>) = (0..784)
            .filter(|i| ink(i % 28, i / 28))
            .map(|i| (i % 28, i / 28))
            .unzip();
        let (x0, x1, y0, y1) = (
            *xs.iter().min().unwrap(),
            *xs.iter().max().unwrap(),
            *ys.iter().min().unwrap(),
            *ys.iter().max().unwrap(),
        );
        let img = image::RgbaImage::from_fn(
            (x1 - x0 + 1) as u32 * 10,
            (y1 - y0 + 1) as u32 * 10,
            |x, y| {
                let v = px[(y0 + y as usize / 10) * 28 + x0 + x as usize / 10];
                image::Rgba([0, 0, 0, v]) // black ink, its alpha the stroke
            },
        );
        let file = out.join(format!("canvas{idx}.png"));
        img.save(&file).unwrap();
        let top = |args: &[&str]| {
            let o = run(args);
            assert!(o.status.success(), "{}", text(&o).1);
            let s = text(&o).0;
            s.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let run_dir = out.to_str().unwrap();
        let as_drawn = top(&["predict", run_dir, "--image", file.to_str().unwrap()]);
        let original = top(&["predict", run_dir, "--index", &idx.to_string()]);
        agree += (as_drawn == original) as usize;
    }
    assert!(
        agree >= 8,
        "{agree} of 10 drawn digits read as their originals"
    );
    // a blank picture is predicted, with a warning
    let blank = out.join("blank.png");
    image::GrayImage::from_pixel(40, 40, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "--image",
        blank.to_str().unwrap(),
    ]);
    assert!(o.status.success() && text(&o).1.contains("warning: ") && text(&o).1.contains("blank"));
    let o = run(&["predict", out.to_str().unwrap(), "--image", "/no/such.png"]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn explain_writes_heatmap_sheets() {
    let out = tmp("explain");
    let o = run(&[
        "train",
        "--model",
        "lenet",
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    for (method, extra) in [
        ("saliency", vec!["--grid", "12"]),
        ("grad-cam", vec!["--index", "5", "--layer", "conv2"]),
        ("integrated-gradients", vec!["--index", "7"]),
    ] {
        let png = out.join(format!("{method}.png"));
        let mut args = vec![
            "explain",
            out.to_str().unwrap(),
            "--method",
            method,
            "-o",
            png.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{method}: {}", text(&o).1);
        let img = image::open(&png).unwrap();
        assert!(
            img.width() >= 112 && img.height() >= 112,
            "{method}: {}x{}",
            img.width(),
            img.height()
        );
    }
    let o = run(&[
        "explain",
        out.to_str().unwrap(),
        "--method",
        "grad-cam",
        "--index",
        "1",
        "--layer",
        "fc1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("Grad-CAM needs feature maps"),
        "{}",
        text(&o).1
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// Debian's Chromium (what `.ci/run` installs), or the browser named by NABLA_CHROMIUM.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("NABLA_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .expect(
            "the report test renders report.html in headless Chromium: install it \
             (apt-get install chromium; .ci/run does) or point NABLA_CHROMIUM at a browser",
        )
}

#[test]
fn plots_and_a_report_that_renders_in_headless_chromium() {
    let out = tmp("report");
    let o = run(&[
        "train",
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    // 125 steps an epoch at batch 64, a row every 10th: 13 an epoch
    assert_eq!(steps.lines().count(), 1 + 2 * 13, "{steps}");
    for kind in [
        "curves",
        "filters",
        "feature-maps",
        "confusion",
        "misclassified",
    ] {
        let png = out.join(format!("{kind}.png"));
        let o = run(&[
            "plot",
            out.to_str().unwrap(),
            "--kind",
            kind,
            "-o",
            png.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{kind}: {}", text(&o).1);
        let img = image::open(&png).unwrap().to_rgb8();
        let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(
            img.width() >= 100 && img.height() >= 100 && distinct.len() > 4,
            "{kind}: {}x{}, {} colours",
            img.width(),
            img.height(),
            distinct.len()
        );
    }
    let o = run(&[
        "plot",
        out.to_str().unwrap(),
        "--kind",
        "filters",
        "--layer",
        "fc1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("fc1"), "{}", text(&o).1);

    let o = run(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for part in [
        "Configuration",
        "Model",
        "conv1",
        "Training",
        "Confusion matrix",
        "Saliency",
        "Filters of conv1",
    ] {
        assert!(html.contains(part), "the report lacks {part:?}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let images = html.matches("<img src=\"data:image/png;base64,").count();
    assert_eq!(images, 6);

    // Render a copy with a probe script that records script and resource
    // errors and, after load, each image's decoded size.
    let probe = r#"<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.tagName) || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0 || i.naturalHeight === 0).length;
  const p = document.createElement('pre');
  p.id = 'probe';
  p.textContent = `images=${imgs.length} broken=${broken} errors=${window.__errors.length}`;
  document.body.appendChild(p);
});
</script>"#;
    let probed = out.join("probed.html");
    std::fs::write(
        &probed,
        html.replacen("<head>", &format!("<head>{probe}"), 1),
    )
    .unwrap();
    let profile = out.join("chromium-profile");
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "chromium failed: {}", text(&o).1);
    assert!(
        dom.contains("images=6 broken=0 errors=0"),
        "probe: {:?}",
        dom.split("id=\"probe\">")
            .nth(1)
            .map(|s| &s[..s.len().min(80)])
    );
    std::fs::remove_dir_all(&out).unwrap();
}
