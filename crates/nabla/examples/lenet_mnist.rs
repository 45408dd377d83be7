//! The reference program, ported line by line from the classic PyTorch
//! MNIST example: the LeNet-style CNN (`nabla::nn::zoo::LeNet`), trained
//! with SGD (lr 0.001, momentum 0.9) and cross-entropy, batch 64, test
//! batch 100, inputs normalized with mean 0.1307 and std 0.3081, 10 epochs,
//! testing after each epoch with PyTorch's line
//! `Test set: Average loss: 0.0012, Accuracy: 9856/10000 (99%)`.
//!
//!     cargo run --release --example lenet_mnist [-- EPOCHS]
//!
//! It trains on the 7,996 real MNIST digits shipped in `data/mnist` and
//! tests on the other 2,004.

use nabla::data::Mnist;
use nabla::nn::loss::{cross_entropy, cross_entropy_with, CrossEntropyOptions, Reduction};
use nabla::nn::zoo::LeNet;
use nabla::optim::{Optimizer, Sgd};
use nabla::prelude::*;
use nabla::{in_pool, Generator};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Shuffled (train) or ordered (test) batches of `(images, labels)`.
fn batches(
    x: &Tensor,
    y: &Tensor,
    size: usize,
    shuffle: Option<&mut Generator>,
) -> nabla::Result<Vec<(Tensor, Tensor)>> {
    let n = y.numel();
    let mut order: Vec<f32> = (0..n).map(|i| i as f32).collect();
    if let Some(g) = shuffle {
        g.shuffle(&mut order);
    }
    order
        .chunks(size)
        .map(|c| {
            let idx = Tensor::from_slice(c, [c.len()])?;
            Ok((x.index_select(0, &idx)?, y.index_select(0, &idx)?))
        })
        .collect()
}

fn train(
    model: &LeNet,
    batches: &[(Tensor, Tensor)],
    optimizer: &mut Sgd,
    epoch: usize,
    n: usize,
) -> AnyResult<()> {
    model.train();
    for (batch_idx, (data, target)) in batches.iter().enumerate() {
        // the step runs on nabla's thread pool: one hand-over, not one per op
        let loss = in_pool(|| -> nabla::Result<Tensor> {
            optimizer.zero_grad();
            let output = model.forward(data)?;
            let loss = cross_entropy(&output, target)?;
            loss.backward()?;
            optimizer.step()?;
            Ok(loss)
        })?;
        if batch_idx % 40 == 0 {
            let seen = batch_idx * data.shape()[0];
            println!(
                "Train Epoch: {epoch} [{seen}/{n} ({:.0}%)]\tLoss: {:.6}",
                100.0 * batch_idx as f32 / batches.len() as f32,
                loss.item()?
            );
        }
    }
    Ok(())
}

fn test(model: &LeNet, batches: &[(Tensor, Tensor)], n: usize) -> AnyResult<()> {
    model.eval();
    let (mut test_loss, mut correct) = (0.0, 0.0);
    no_grad(|| -> nabla::Result<()> {
        let sum = CrossEntropyOptions {
            reduction: Reduction::Sum,
            ..Default::default()
        };
        for (data, target) in batches {
            let output = model.forward(data)?;
            test_loss += cross_entropy_with(&output, target, &sum)?.item()?;
            let pred = output.argmax(1, false)?;
            correct += pred.eq(target)?.sum_all()?.item()?;
        }
        Ok(())
    })?;
    test_loss /= n as f32;
    println!(
        "\nTest set: Average loss: {test_loss:.4}, Accuracy: {correct}/{n} ({:.0}%)\n",
        100.0 * correct / n as f32
    );
    Ok(())
}

fn main() -> AnyResult<()> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    manual_seed(1);
    let device = Device::best_available();
    let data = Mnist::load(Mnist::shipped_dir())?;
    let (train_x, train_y) = data.train.to_tensors(0.1307, 0.3081)?;
    let (test_x, test_y) = data.test.to_tensors(0.1307, 0.3081)?;
    let (train_x, test_x) = (train_x.to(device)?, test_x.to(device)?);
    let test_batches = batches(&test_x, &test_y, 100, None)?;
    let model = LeNet::new();
    model.to(device)?;
    println!("LeNet: {} parameters, on {device}", model.num_parameters());
    let mut optimizer = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    let mut shuffle = Generator::new(1);
    for epoch in 1..=epochs {
        let start = std::time::Instant::now();
        let train_batches = batches(&train_x, &train_y, 64, Some(&mut shuffle))?;
        train(
            &model,
            &train_batches,
            &mut optimizer,
            epoch,
            data.train.len(),
        )?;
        println!(
            "epoch {epoch}: {:.2} s training",
            start.elapsed().as_secs_f32()
        );
        test(&model, &test_batches, data.test.len())?;
    }
    Ok(())
}
