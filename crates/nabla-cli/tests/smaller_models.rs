//! Smaller models from the command line: `nabla quantize` and the commands
//! that take its int8 model (`--int8`), and distillation (`--teacher`).

mod common;

use common::{run, text, tmp};

/// The accuracy (percent) on a `quantize` table row starting with `model`.
fn accuracy(stdout: &str, model: &str) -> f64 {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{model} ")) && l.contains('%'))
        .unwrap_or_else(|| panic!("no {model} row in {stdout}"));
    let cell = row.split_whitespace().find(|c| c.ends_with('%')).unwrap();
    cell.trim_end_matches('%').parse().unwrap()
}

/// The correct count of a `Test set: … Accuracy: C/N` line.
fn correct(stdout: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with("Test set")).unwrap();
    let after = line.split("Accuracy: ").nth(1).unwrap();
    after.split('/').next().unwrap().parse().unwrap()
}

/// An MLP trained for an epoch on the shipped digits, quantized: the
/// int8 file is about 4× smaller, as accurate within a point, and eval,
/// predict, summary and explain all take it; the f32 model stays.
#[test]
fn an_mlp_quantizes_and_every_command_takes_the_result() {
    let out = tmp("quantize-mlp");
    let dir = out.to_str().unwrap();
    let o = run(&["train", "--model", "mlp", "--epochs", "1", "--out", dir]);
    assert!(o.status.success(), "{}", text(&o).1);
    let (f32_eval, _) = text(&run(&["eval", dir]));

    // before quantizing there is no int8 model to take
    let o = run(&["eval", dir, "--int8"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("nabla quantize"), "{stderr}");

    let o = run(&["quantize", dir, "--per-channel"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("fc1, fc2, fc3"), "{stdout}");
    let (f32_acc, int8_acc) = (accuracy(&stdout, "f32"), accuracy(&stdout, "int8"));
    assert!(
        f32_acc > 50.0 && (f32_acc - int8_acc).abs() <= 1.0,
        "{stdout}"
    );
    let int8 = out.join("model.int8.safetensors");
    let f32_size = std::fs::metadata(out.join("model.safetensors"))
        .unwrap()
        .len();
    let int8_size = std::fs::metadata(&int8).unwrap().len();
    assert!(int8_size * 7 / 2 < f32_size, "{int8_size} vs {f32_size}");

    let o = run(&["eval", dir, "--int8"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let (f, q) = (correct(&f32_eval), correct(&stdout));
    assert!(f.abs_diff(q) <= 20, "f32 {f} vs int8 {q} of 2004");
    // the f32 model is untouched
    assert_eq!(correct(&text(&run(&["eval", dir])).0), f);

    let o = run(&["predict", dir, "--int8", "--index", "3"]);
    assert!(
        o.status.success() && text(&o).0.contains("test example 3"),
        "{}",
        text(&o).1
    );

    let o = run(&["summary", dir, "--int8"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let fc1 = stdout.lines().find(|l| l.starts_with("fc1 ")).unwrap();
    // 784·256 int8 values, 256 scales and 256 biases
    assert!(
        fc1.contains("linear int8") && fc1.contains("202,752"),
        "{stdout}"
    );
    // summarizing the file itself says the same
    let o = run(&["summary", int8.to_str().unwrap()]);
    assert!(text(&o).0.contains("202,752"), "{}", text(&o).1);

    let png = out.join("explain.png");
    let o = run(&[
        "explain",
        dir,
        "--int8",
        "--index",
        "0",
        "-o",
        png.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert!(o.status.success() && png.is_file(), "{stderr}");
    assert!(stderr.contains("read back as f32"), "{stderr}");

    // 16-bit weights: half the file, the same predictions within a
    // rounding, PyTorch's BF16 dtype; a file in a run evaluates alone
    let o = run(&["quantize", dir, "--to", "bf16"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        (accuracy(&stdout, "bf16") - f32_acc).abs() <= 1.0,
        "{stdout}"
    );
    let bf16 = out.join("model.bf16.safetensors");
    let bytes = std::fs::read(&bf16).unwrap();
    let header = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        header.tensor("fc1.weight").unwrap().dtype(),
        safetensors::Dtype::BF16
    );
    assert!(bytes.len() as u64 * 19 / 10 < f32_size);
    let o = run(&["eval", bf16.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).0.contains("Test set"),
        "{}",
        text(&o).1
    );
    let o = run(&["summary", bf16.to_str().unwrap()]);
    let (stdout, _) = text(&o);
    let fc1 = stdout.lines().find(|l| l.starts_with("fc1 ")).unwrap();
    // 200,960 values of 2 bytes
    assert!(
        fc1.contains("linear bf16") && fc1.contains("401,920"),
        "{stdout}"
    );
    let o = run(&["quantize", dir, "--to", "f16", "--per-channel"]);
    assert_eq!(o.status.code(), Some(2));
    // an output that cannot be written: one line, its cause said once
    let o = run(&["quantize", dir, "-o", "/nonexistent/dir/q.safetensors"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");

    // quantizing twice from the int8 file is refused; a broken file is one line
    let o = run(&["quantize", int8.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let bytes = std::fs::read(&int8).unwrap();
    std::fs::write(&int8, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&["eval", dir, "--int8"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("model.int8.safetensors"), "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// LeNet's fully connected layers quantize, its convolutions stay f32
/// unless calibrated (then conv2 is static int8); a run without weights
/// and a path that is no run are refused.
#[test]
fn lenet_quantizes_its_linear_layers_and_bad_runs_are_refused() {
    let out = tmp("quantize-lenet");
    let dir = out.to_str().unwrap();
    let o = run(&["train", "--max-steps", "40", "--out", dir]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(&[
        "quantize",
        dir,
        "-o",
        out.join("q.safetensors").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("int8 (a scale per layer): fc1, fc2, fc3"),
        "{stdout}"
    );
    let o = run(&[
        "eval",
        out.join("q.safetensors").to_str().unwrap(),
        "--model",
        "lenet",
    ]);
    assert!(
        o.status.success() && text(&o).0.contains("Test set"),
        "{}",
        text(&o).1
    );
    let o = run(&["summary", out.join("q.safetensors").to_str().unwrap()]);
    let (stdout, _) = text(&o);
    let conv1 = stdout.lines().find(|l| l.starts_with("conv1 ")).unwrap();
    assert!(!conv1.contains("int8"), "{stdout}");

    // --calibrate: conv2 (150 taps) static int8 too, conv1 (25) stays f32;
    // the file loads into eval and summary with its input parameters
    let o = run(&["quantize", dir, "--calibrate", "3"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(
            "int8 (a scale per layer; convolutions' inputs calibrated on 3 batches of 64): \
             conv2, fc1, fc2, fc3 (conv1 f32"
        ),
        "{stdout}"
    );
    let (f32_acc, int8_acc) = (accuracy(&stdout, "f32"), accuracy(&stdout, "int8"));
    assert!((f32_acc - int8_acc).abs() <= 1.0, "{stdout}");
    let o = run(&["eval", dir, "--int8"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let printed = 100.0 * correct(&stdout) as f64 / 2004.0;
    assert!((printed - int8_acc).abs() < 0.01, "{printed} vs {int8_acc}");
    let o = run(&["summary", dir, "--int8"]);
    let (stdout, _) = text(&o);
    let conv2 = stdout.lines().find(|l| l.starts_with("conv2 ")).unwrap();
    assert!(conv2.contains("conv2d int8"), "{stdout}");
    // its int8 filters read back, and saliency through the f32 read-back
    let (filters, saliency) = (out.join("filters.png"), out.join("saliency.png"));
    for (args, png) in [
        (
            &[
                "plot", dir, "--int8", "--kind", "filters", "--layer", "conv2",
            ][..],
            &filters,
        ),
        (&["explain", dir, "--int8", "--index", "0"][..], &saliency),
    ] {
        let o = run(&[args, &["-o", png.to_str().unwrap()]].concat());
        assert!(
            o.status.success() && png.is_file(),
            "{args:?}: {}",
            text(&o).1
        );
    }
    for bad in [
        &["quantize", dir, "--calibrate", "0"][..],
        &["quantize", dir, "--calibrate", "2", "--to", "bf16"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o).1);
    }

    let o = run(&["quantize", out.join("nope").to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("not a run directory"), "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Distillation from the command line: a student trained with `--teacher`
/// keeps the teacher in its config (absolute), resumes to the weights of
/// an uninterrupted run, and the distillation flags are checked.
#[test]
fn a_student_learns_from_a_teacher_run() {
    let out = tmp("distill");
    let (teacher, student, longer) = (out.join("teacher"), out.join("student"), out.join("longer"));
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--out",
        teacher.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let distill = |dir: &std::path::Path, epochs: &str| {
        let t = teacher.to_str().unwrap();
        let args = [
            "train",
            "--model",
            "mlp",
            "--train-fraction",
            "0.1",
            "--epochs",
            epochs,
        ];
        let mut args: Vec<&str> = args.to_vec();
        args.extend([
            "--teacher",
            t,
            "--temperature",
            "3",
            "--distill-alpha",
            "0.8",
        ]);
        args.extend(["--out", dir.to_str().unwrap()]);
        run(&args)
    };
    let o = distill(&student, "1");
    assert!(o.status.success(), "{}", text(&o).1);
    let config = std::fs::read_to_string(student.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!("teacher = {:?}", teacher.to_str().unwrap())),
        "{config}"
    );
    assert!(config.contains("distill_alpha = 0.8"), "{config}");
    // one epoch more by resuming = two epochs at once, bit for bit
    let o = run(&[
        "train",
        "--resume",
        student.to_str().unwrap(),
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = distill(&longer, "2");
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(
        common::weights(&student.join("model.safetensors")),
        common::weights(&longer.join("model.safetensors"))
    );
    // and the teacher made a difference
    let plain = out.join("plain");
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--train-fraction",
        "0.1",
        "--epochs",
        "1",
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let one_epoch_student = out.join("one");
    assert!(distill(&one_epoch_student, "1").status.success());
    assert_ne!(
        common::weights(&plain.join("model.safetensors")),
        common::weights(&one_epoch_student.join("model.safetensors"))
    );

    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--temperature",
        "3",
        "--max-steps",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert!(text(&o).1.contains("need --teacher"), "{}", text(&o).1);
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--teacher",
        teacher.to_str().unwrap(),
        "--distill-alpha",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--teacher",
        out.join("none").to_str().unwrap(),
        "--out",
        out.join("x").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--teacher") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let o = run(&[
        "train",
        "--model",
        "gpt-char",
        "--teacher",
        teacher.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&out).unwrap();
}

/// The share of zeros in each weight matrix of a weights file.
fn zero_shares(path: &std::path::Path) -> Vec<(String, f64)> {
    common::weights(path)
        .into_iter()
        .filter(|(n, v)| n.ends_with(".weight") && v.len() > 100)
        .map(|(n, v)| {
            (
                n,
                v.iter().filter(|x| **x == 0.0).count() as f64 / v.len() as f64,
            )
        })
        .collect()
}

/// Structured pruning makes a smaller LeNet that trains on and evaluates
/// as a run of its own; magnitude pruning keeps its zeros through
/// fine-tuning; what cannot be pruned is refused.
#[test]
fn lenet_prunes_into_a_smaller_run() {
    let out = tmp("prune");
    let run_dir = out.join("lenet");
    let o = run(&[
        "train",
        "--max-steps",
        "60",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);

    let small = out.join("small");
    let o = run(&[
        "prune",
        run_dir.to_str().unwrap(),
        "--structured",
        "--out",
        small.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("conv1 3/6, conv2 8/16, fc1 60/120, fc2 42/84"),
        "{stdout}"
    );
    assert!(stdout.contains("as fast as the original's"), "{stdout}");
    for f in [
        "pruned.toml",
        "pruned.safetensors",
        "model.safetensors",
        "model.toml",
    ] {
        assert!(small.join(f).is_file(), "{f}");
    }
    let o = run(&["summary", small.to_str().unwrap()]);
    let (stdout, _) = text(&o);
    let conv1 = stdout.lines().find(|l| l.starts_with("conv1 ")).unwrap();
    assert!(conv1.contains("[3, 28, 28]"), "{stdout}");
    let o = run(&["eval", small.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).0.contains("Test set"),
        "{}",
        text(&o).1
    );
    // the same directory again is refused, before anything is written
    let o = run(&[
        "prune",
        run_dir.to_str().unwrap(),
        "--structured",
        "--out",
        small.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));

    let sparse = out.join("sparse");
    let o = run(&[
        "prune",
        run_dir.to_str().unwrap(),
        "--amount",
        "0.7",
        "--per-layer",
        "--out",
        sparse.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let before = zero_shares(&sparse.join("pruned.safetensors"));
    let after = zero_shares(&sparse.join("model.safetensors"));
    assert_eq!(before.len(), 5, "{before:?}");
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        assert!(
            (b - 0.7).abs() < 0.01 && a >= b,
            "{name}: {b} pruned, {a} after fine-tuning"
        );
    }
    let config = std::fs::read_to_string(sparse.join("config.toml")).unwrap();
    assert!(config.contains("keep_zeros = true"), "{config}");

    let o = run(&["prune", run_dir.to_str().unwrap(), "--amount", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["prune", out.join("nope").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let lstm = out.join("lstm");
    let o = run(&[
        "train",
        "--model",
        "lstm-rows",
        "--max-steps",
        "2",
        "--out",
        lstm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // an LSTM's recurrent layer quantizes with its classifier
    let o = run(&["quantize", lstm.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success() && stdout.starts_with("int8 (a scale per layer): lstm, fc"),
        "{stdout}{stderr}"
    );
    let o = run(&["summary", lstm.to_str().unwrap(), "--int8"]);
    let (stdout, _) = text(&o);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("lstm ") && l.contains("lstm int8")),
        "{stdout}"
    );
    let o = run(&["eval", lstm.to_str().unwrap(), "--int8"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(&[
        "prune",
        lstm.to_str().unwrap(),
        "--structured",
        "--out",
        out.join("x").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("layer lstm (lstm)") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(
        !out.join("x").exists(),
        "a refused pruning leaves no directory"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
