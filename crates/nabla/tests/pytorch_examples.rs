//! Every port of a PyTorch example (`examples/pytorch/`) runs a few steps:
//! the file is compiled into this test and its `run` called as the
//! example's `main` would, with the original's `--dry-run` (one step).

// mnist.rs and mnist_rnn.rs each include mnist_loop.rs, as each example
// program does on its own
#![allow(clippy::duplicate_mod)]

#[path = "../examples/pytorch/dcgan.rs"]
mod dcgan;

#[path = "../examples/pytorch/mnist.rs"]
mod mnist;

#[path = "../examples/pytorch/mnist_forward_forward.rs"]
mod mnist_forward_forward;

#[path = "../examples/pytorch/mnist_hogwild.rs"]
mod mnist_hogwild;

#[path = "../examples/pytorch/mnist_rnn.rs"]
mod mnist_rnn;

#[path = "../examples/pytorch/regression.rs"]
mod regression;

#[path = "../examples/pytorch/time_sequence_prediction.rs"]
mod time_sequence_prediction;

#[path = "../examples/pytorch/vae.rs"]
mod vae;

#[test]
fn mnist_runs_a_step_and_tests() {
    let args: Vec<String> = ["--epochs", "1", "--dry-run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let args = mnist::parse(&args).unwrap();
    assert_eq!(
        (args.batch_size, args.test_batch_size, args.lr, args.gamma),
        (64, 1000, 1.0, 0.7)
    );
    let (loss, correct) = mnist::run(&args).unwrap();
    assert!(loss.is_finite() && loss > 0.0, "test loss {loss}");
    assert!(correct <= 2004);
    // the flags refuse what the original's argparse refuses
    for bad in [&["--epochs", "x"][..], &["--bogus", "1"], &["--batch-size"]] {
        let bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
        assert!(mnist::parse(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn regression_fits_its_polynomial() {
    // the whole program: it stops once a batch's loss is below 1e-3
    let (loss, batches) = regression::run(1).unwrap();
    assert!(
        loss < 1e-3 && batches > 1,
        "loss {loss} after {batches} batches"
    );
}

#[test]
fn vae_trains_and_writes_its_pictures() {
    let out = std::env::temp_dir().join(format!("nabla-vae-test-{}", std::process::id()));
    let args: Vec<String> = ["--epochs", "2", "--out", out.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut args = vae::Args::parse(&args).unwrap();
    assert_eq!((args.batch_size, args.log_interval), (128, 10));
    args.max_batches = Some(8);
    let (train, test) = vae::run(&args).unwrap();
    // the loss per digit starts near 784·ln 2 ≈ 543 and falls fast
    assert!(
        train.is_finite() && test < 400.0,
        "train {train}, test {test}"
    );
    for name in [
        "reconstruction_1.png",
        "sample_1.png",
        "reconstruction_2.png",
        "sample_2.png",
    ] {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
    }
    std::fs::remove_dir_all(&out).unwrap();
    assert!(vae::Args::parse(&["--epochs".to_string()]).is_err());
}

#[test]
fn mnist_rnn_runs_a_step_and_tests() {
    let args: Vec<String> = ["--epochs", "1", "--dry-run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let args = mnist_rnn::parse(&args).unwrap();
    assert_eq!((args.batch_size, args.lr), (64, 0.1));
    let (loss, correct) = mnist_rnn::run(&args).unwrap();
    assert!(
        loss.is_finite() && loss > 0.0 && correct <= 2004,
        "test loss {loss}"
    );
}

#[test]
fn time_sequence_prediction_takes_an_lbfgs_step_and_predicts() {
    let out = std::env::temp_dir().join(format!("nabla-tsp-test-{}", std::process::id()));
    let args: Vec<String> = ["--steps", "1", "--out", out.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut args = time_sequence_prediction::Args::parse(&args).unwrap();
    (args.train_waves, args.max_iter) = (4, 3);
    let test_loss = time_sequence_prediction::run(&args).unwrap();
    // a sine wave's mean square is ½; one short step already does better
    assert!(
        test_loss.is_finite() && test_loss < 0.5,
        "test loss {test_loss}"
    );
    assert_eq!(
        &std::fs::read(out.join("predict0.png")).unwrap()[1..4],
        b"PNG"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn mnist_forward_forward_trains_its_layers_and_predicts() {
    let args: Vec<String> = ["--epochs", "2", "--log-interval", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let args = mnist_forward_forward::Args::parse(&args).unwrap();
    assert_eq!((args.lr, args.threshold, args.seed), (0.03, 2.0, 1));
    let (train, test) = mnist_forward_forward::run(&args).unwrap();
    assert!(
        (0.0..=1.0).contains(&train) && (0.0..=1.0).contains(&test),
        "{train} {test}"
    );
    assert!(mnist_forward_forward::Args::parse(&["--log-interval".into(), "0".into()]).is_err());
}

#[test]
fn mnist_hogwild_workers_share_one_model() {
    let args: Vec<String> = ["--epochs", "1", "--dry-run", "--num-processes", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let args = mnist_hogwild::Args::parse(&args).unwrap();
    assert_eq!((args.lr, args.momentum, args.num_processes), (0.01, 0.5, 3));
    let (loss, correct) = mnist_hogwild::run(&args).unwrap();
    assert!(loss.is_finite() && correct <= 2004, "test loss {loss}");
    assert!(mnist_hogwild::Args::parse(&["--num-processes".into(), "0".into()]).is_err());
}

#[test]
fn dcgan_trains_both_nets_and_draws_digits() {
    let out = std::env::temp_dir().join(format!("nabla-dcgan-test-{}", std::process::id()));
    let args: Vec<String> = ["--epochs", "1", "--out", out.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut args = dcgan::Args::parse(&args).unwrap();
    args.max_batches = Some(2);
    let (d_loss, g_loss) = dcgan::run(&args).unwrap();
    assert!(
        d_loss.is_finite() && g_loss.is_finite() && d_loss > 0.0 && g_loss > 0.0,
        "{d_loss} {g_loss}"
    );
    assert_eq!(
        &std::fs::read(out.join("dcgan-sample-final.png")).unwrap()[1..4],
        b"PNG"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[path = "../examples/pytorch/word_language_model.rs"]
mod word_language_model;

/// The word language model, an LSTM and a Transformer, one step each and
/// the evaluations; the flags refuse what they should.
#[test]
fn word_language_model_runs_a_step_of_each_kind() {
    for extra in [
        &["--model", "LSTM"][..],
        &["--model", "Transformer", "--lr", "5"],
        &["--model", "GRU", "--tied"],
    ] {
        let mut args: Vec<String> = ["--epochs", "1", "--dry-run"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let a = word_language_model::parse(&args).unwrap();
        let loss = word_language_model::run(&a).unwrap();
        // a uniform guess over the 16,705 words is ln 16,705 = 9.7
        assert!(
            loss.is_finite() && loss > 0.0 && loss < 10.5,
            "{extra:?}: {loss}"
        );
    }
    for bad in [
        &["--model", "CNN"][..],
        &["--bptt", "0"],
        &["--nhid", "x"],
        &["--bogus", "1"],
    ] {
        let bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
        assert!(word_language_model::parse(&bad).is_err(), "{bad:?}");
    }
}
