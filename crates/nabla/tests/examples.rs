//! Every example of `examples/` (the PyTorch ports have their own test
//! file) runs briefly, so none rots.

#[path = "../examples/lenet_mnist.rs"]
mod lenet_mnist;

#[path = "../examples/mnist_mlp.rs"]
mod mnist_mlp;

#[path = "../examples/char_lm.rs"]
mod char_lm;

#[path = "../examples/smaller_models.rs"]
mod smaller_models;

#[test]
fn smaller_models_prunes_distills_and_quantizes() {
    let rows = smaller_models::run(1, Some(80)).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    assert_eq!(names, ["LeNet", "pruned", "pruned int8"]);
    assert!(
        rows[1].parameters * 3 < rows[0].parameters,
        "half the channels: a quarter of the weights"
    );
    assert!(rows[2].bytes * 2 < rows[1].bytes, "int8 Linear layers");
    assert_eq!(
        rows[2].parameters, rows[1].parameters,
        "the same values, in int8"
    );
    let accuracy: Vec<f32> = rows.iter().map(|r| r.accuracy).collect();
    assert!(accuracy.iter().all(|&a| a > 0.3), "{accuracy:?}");
    assert!(
        (accuracy[2] - accuracy[1]).abs() < 0.03,
        "int8 keeps the accuracy: {accuracy:?}"
    );
}

#[test]
fn lenet_mnist_trains_through_the_trainer_and_writes_its_run() {
    let dir = std::env::temp_dir().join(format!("nabla-example-lenet-{}", std::process::id()));
    let test = lenet_mnist::run(1, Some(5), Some(dir.to_str().unwrap())).unwrap();
    assert_eq!(test.total, 2004);
    assert!(test.mean_loss().is_finite());
    let metrics = nabla::train::History::read(&dir).unwrap();
    assert!(
        metrics.epochs.is_empty(),
        "stopped after 5 steps, within epoch 1"
    );
    assert!(dir.join("checkpoints/last.safetensors").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mnist_mlp_learns_in_a_few_batches() {
    let accuracy = mnist_mlp::run(1, Some(40)).unwrap();
    assert!(accuracy > 0.5, "accuracy {accuracy}");
}

#[test]
fn char_lm_trains_samples_and_saves() {
    let dir = std::env::temp_dir().join(format!("nabla-example-charlm-{}", std::process::id()));
    let args = [
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--seq-len",
        "16",
        "--batch-size",
        "256",
        "--length",
        "20",
        "--out",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(dir.to_str().unwrap().to_string());
    char_lm::run(&char_lm::options(args.clone()).unwrap()).unwrap();
    assert!(dir.join("model.safetensors").is_file() && dir.join("vocab.txt").is_file());
    args.extend(["--sample".to_string(), dir.to_str().unwrap().to_string()]);
    char_lm::run(&char_lm::options(args).unwrap()).unwrap();
    assert!(char_lm::options(["--bogus".to_string()]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
