//! The reference program: the LeNet-style CNN of PyTorch's MNIST example
//! (`nabla::nn::zoo::LeNet`), trained with SGD (lr 0.001, momentum 0.9)
//! and cross-entropy, batch 64, 10 epochs, on the GPU if there is one,
//! testing after each epoch with PyTorch's line
//! `Test set: Average loss: 0.0012, Accuracy: 9856/10000 (99%)`. Inputs are
//! normalized with mean 0.1307 and std 0.3081; test batches hold 100.
//!
//!     cargo run --release --example lenet_mnist [-- EPOCHS [RUN_DIR]]
//!
//! It trains on the 7,996 real MNIST digits shipped with nabla and tests on
//! the other 2,004, through a `DataLoader` and the `Trainer`; with a
//! RUN_DIR the run is written there (metrics, checkpoints, weights), as
//! `nabla train` writes it, and `nabla report RUN_DIR` draws it.

use nabla::data::{DataLoader, ImageDataset, Mnist};
use nabla::nn::zoo::LeNet;
use nabla::optim::Sgd;
use nabla::prelude::*;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Trains for `epochs` (at most `max_steps` optimizer steps); returns the
/// last test pass.
pub fn run(
    epochs: usize,
    max_steps: Option<usize>,
    run_dir: Option<&str>,
) -> AnyResult<nabla::train::Evaluation> {
    manual_seed(1);
    let device = Device::best_available();
    let mnist = Mnist::locate("mnist", None)?; // the shipped digits
    let train = DataLoader::new(ImageDataset::mnist_normalized(mnist.train), 64).to(device);
    let test = DataLoader::new(ImageDataset::mnist_normalized(mnist.test), 100)
        .shuffle(false)
        .to(device);
    let model = LeNet::new();
    model.to(device)?;
    println!("LeNet: {} parameters, on {device}", model.num_parameters());

    let sgd = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    let mut trainer = Trainer::new(&model, sgd)
        .epochs(epochs)
        .max_steps(max_steps);
    if let Some(dir) = run_dir {
        trainer = trainer.run_dir(RunDir::create(dir, false)?);
    }
    trainer.fit(&train, Some(&test))?;
    Ok(trainer.evaluate(&test)?)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() -> AnyResult<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let run_dir = args.next();
    let test = run(epochs, None, run_dir.as_deref())?;
    println!("{}", test.test_line());
    Ok(())
}
