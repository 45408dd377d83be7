//! Every port of a PyTorch example (`examples/pytorch/`) runs a few steps:
//! the file is compiled into this test and its `run` called as the
//! example's `main` would, with the original's `--dry-run` (one step).

#[path = "../examples/pytorch/mnist.rs"]
mod mnist;

#[path = "../examples/pytorch/regression.rs"]
mod regression;

#[test]
fn mnist_runs_a_step_and_tests() {
    let args: Vec<String> = ["--epochs", "1", "--dry-run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let args = mnist::Args::parse(&args).unwrap();
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
        assert!(mnist::Args::parse(&bad).is_err(), "{bad:?}");
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
