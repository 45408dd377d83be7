//! End-to-end tests of the Transformer models through the `nabla` binary:
//! the character GPT (training, generation, both tokenizers, resuming) and
//! the Vision Transformer (training, attention maps).

mod common;

use std::path::PathBuf;

use common::{fixture, interrupt_after, nabla, run, text, tmp, weights};

/// A GPT small enough to train in a test: one layer, two heads, 32 wide,
/// a context of 32 characters, batches of 8.
const TINY_GPT: [&str; 10] = [
    "--layers",
    "1",
    "--heads",
    "2",
    "--width",
    "32",
    "--context",
    "32",
    "--batch-size",
    "8",
];

/// A tiny gpt-char run on the shipped text learns (the validation loss
/// falls well below a uniform guess), and `nabla generate` continues a
/// prompt: greedily the same with and without the KV cache while the
/// context fits. Bad settings and prompts are one-line errors.
#[test]
fn gpt_char_trains_and_generates() {
    let out = tmp("gpt");
    let dir = out.to_str().unwrap();
    // a small model, for both tokenizers
    let model = TINY_GPT;
    let mut small = model.to_vec();
    small.extend([
        "--steps-per-epoch",
        "40",
        "--epochs",
        "2",
        "--lr",
        "0.003",
        "--warmup-steps",
        "5",
    ]);
    let mut args = vec!["train", "--model", "gpt-char", "--out", dir];
    args.extend(&small);
    let o = run(&args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("bits per character"), "{stdout}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{metrics}");
    let val: f64 = rows[1].split(',').nth(3).unwrap().parse().unwrap();
    let vocab = std::fs::read_to_string(out.join("vocab.txt"))
        .unwrap()
        .chars()
        .count();
    assert!(
        val < 0.8 * (vocab as f64).ln(),
        "validation loss {val} (vocabulary {vocab})"
    );
    let gen = |extra: &[&str]| {
        let mut a = vec![
            "generate",
            dir,
            "--prompt",
            "The ",
            "--max-new-tokens",
            "20",
            "--temperature",
            "0",
        ];
        a.extend(extra);
        let o = run(&a);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        assert!(stderr.contains("tokens/s"), "{stderr}");
        stdout
    };
    let cached = gen(&[]);
    assert!(
        cached.starts_with("The ") && cached.trim_end_matches('\n').chars().count() >= 24,
        "{cached:?}"
    );
    assert_eq!(cached, gen(&["--no-cache"]));
    // its report: the curves, the settings a language model reads, a sample
    let o = run(&["report", dir]);
    assert!(o.status.success(), "{}", text(&o).1);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("A sample") && html.contains("warmup_steps"));
    assert!(!html.contains("momentum") && html.contains("<img"));
    // what is refused: the image classifiers' commands say what the run is
    for cmd in ["eval", "quantize", "prune"] {
        let o = run(&[cmd, dir]);
        let (_, e) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {e}");
        assert!(
            e.contains("a gpt-char run (a language model)"),
            "{cmd}: {e}"
        );
    }
    let bad_prompt = run(&["generate", dir, "--prompt", "☃"]);
    let (_, e) = text(&bad_prompt);
    assert_eq!(bad_prompt.status.code(), Some(1));
    assert!(e.contains("--prompt") && e.lines().count() == 1, "{e}");
    let not_lm = run(&["generate", "/nonexistent-run"]);
    assert_eq!(not_lm.status.code(), Some(1));
    // byte-level BPE: the merges saved beside the weights, generation decodes them
    let bpe = tmp("gpt-bpe");
    let bdir = bpe.to_str().unwrap();
    let mut a = vec![
        "train",
        "--model",
        "gpt-char",
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "300",
        "--out",
        bdir,
        "--max-steps",
        "20",
        "--steps-per-epoch",
        "20",
        "--data",
        "../../data/text/devils-dictionary.txt", // relative to the tests' folder
    ];
    a.extend(model);
    let o = run(&a);
    assert!(o.status.success(), "{}", text(&o).1);
    let merges = std::fs::read_to_string(bpe.join("tokenizer.txt")).unwrap();
    assert_eq!(merges.lines().count(), 300 - 256);
    let o = run(&[
        "generate",
        bdir,
        "--prompt",
        "WAR, n.",
        "--max-new-tokens",
        "10",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success() && stdout.starts_with("WAR, n."),
        "{stderr}"
    );
    // the run keeps its text's path absolute, and a resumption naming the
    // same relative path is the same run
    let text_path = "../../data/text/devils-dictionary.txt";
    let o = run(&[
        "train",
        "--resume",
        bdir,
        "--data",
        text_path,
        "--max-steps",
        "25",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("resuming"));
    for (flag, value) in [
        ("--positions", "spiral"),
        ("--width", "30"),
        ("--tokenizer", "words"),
        ("--vocab-size", "100"),
    ] {
        let mut a = vec![
            "train",
            "--model",
            "gpt-char",
            "--out",
            dir,
            "--max-steps",
            "1",
            flag,
            value,
        ];
        if flag == "--vocab-size" {
            a.extend(["--tokenizer", "bpe"]);
        }
        let o = run(&a);
        let (_, e) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{flag}: {e}");
        assert!(e.contains(flag), "{flag}: {e}");
    }
    // flags the model would ignore are usage errors, both ways
    for (model, flags) in [
        ("gpt-char", ["--optimizer", "sgd", "--momentum", "0.5"]),
        ("lenet", ["--context", "8", "--grad-accum", "2"]),
    ] {
        let mut a = vec!["train", "--model", model, "--out", dir, "--max-steps", "1"];
        a.extend(flags);
        let o = run(&a);
        let (_, e) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{model}: {e}");
        assert!(
            e.contains(&format!("{}, {}", flags[0], flags[2])) && e.lines().count() == 1,
            "{model}: {e}"
        );
    }
    let o = run(&[
        "train",
        "--model",
        "gpt-char",
        "--out",
        dir,
        "--max-steps",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    // a language model trains on the CPU: other devices are refused, not ignored
    let o = run(&[
        "train",
        "--model",
        "gpt-char",
        "--out",
        dir,
        "--device",
        "reference",
    ]);
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("--device reference") && e.contains("CPU only"),
        "{e}"
    );
}

/// The zoo's Vision Transformer learns the shipped digits: one epoch of
/// AdamW lands far above chance (70% in a full run; 50% asked here).
#[test]
fn vit_learns_the_shipped_digits_in_one_epoch() {
    let out = tmp("vit");
    let o = run(&[
        "train",
        "--model",
        "vit",
        "--epochs",
        "1",
        "--optimizer",
        "adamw",
        "--lr",
        "0.001",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Test set"))
        .expect("test line");
    let pct: f32 = line
        .split('(')
        .nth(1)
        .unwrap()
        .trim_end_matches("%)")
        .parse()
        .unwrap();
    assert!(pct > 50.0, "{line}");
    // attention rollout of its test digits
    let png = out.join("attention.png");
    let o = run(&[
        "explain",
        out.to_str().unwrap(),
        "--grid",
        "4",
        "--method",
        "attention",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    // a model without an encoder is told so
    let lenet = run(&[
        "explain",
        "--model",
        "lenet",
        &fixture("lenet_state_dict.safetensors"),
        "--index",
        "0",
        "--method",
        "attention",
    ]);
    let (_, e) = text(&lenet);
    assert_eq!(lenet.status.code(), Some(1), "{e}");
    assert!(e.contains("no Transformer encoder"), "{e}");
}

/// A gpt-char run interrupted (SIGINT) and resumed ends with the weights
/// of an uninterrupted run, bit for bit: the checkpoint holds the weights,
/// both parameter groups' moments, the step, the schedule and the
/// generator of the windows and the dropout masks (gradients accumulated
/// over two batches a step).
#[test]
fn gpt_char_resumes_bit_for_bit() {
    let (a, b) = (tmp("gpt-whole"), tmp("gpt-interrupted"));
    let mut common = vec!["train", "--model", "gpt-char"];
    common.extend(TINY_GPT);
    common.extend([
        "--epochs",
        "3",
        "--steps-per-epoch",
        "60",
        "--log-interval",
        "1",
        "--seed",
        "4",
        "--grad-accum",
        "2",
        "--dropout",
        "0.1",
    ]);
    let o = nabla()
        .args(&common)
        .args(["--out", a.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    interrupt_after(&common, &b, "step    10/");
    assert!(b.join("checkpoints/last.safetensors").is_file());
    let o = run(&["train", "--resume", b.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("resuming"), "{stdout}");
    assert_eq!(
        weights(&a.join("model.safetensors")),
        weights(&b.join("model.safetensors"))
    );
    let metrics = |d: &PathBuf| {
        let m = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        // every column but the three of seconds
        m.lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&a), metrics(&b));
}
