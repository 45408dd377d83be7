//! Trains a two-layer perceptron (784-128-10) on the shipped MNIST digits
//! with nothing but tensors and autograd: the forward pass, cross-entropy,
//! `backward()` and a hand-written SGD step. Prints the loss falling.
//!
//!     cargo run --release --example mnist_mlp [-- EPOCHS]

use nabla::data::Mnist;
use nabla::{manual_seed, no_grad, Generator, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// PyTorch's default init for a Linear layer: U(±1/√fan_in) for weight and bias.
fn linear_params(fan_in: usize, fan_out: usize) -> (Tensor, Tensor) {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let w = Tensor::uniform([fan_out, fan_in], -bound, bound).requires_grad_(true);
    let b = Tensor::uniform([fan_out], -bound, bound).requires_grad_(true);
    (w, b)
}

fn forward(x: &Tensor, p: &[Tensor]) -> nabla::Result<Tensor> {
    let h = x.matmul(&p[0].t()?)?.add(&p[1])?.relu()?;
    h.matmul(&p[2].t()?)?.add(&p[3])
}

/// Mean cross-entropy of logits against class indices.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> nabla::Result<Tensor> {
    logits
        .log_softmax(1)?
        .gather(1, &labels.unsqueeze(1)?)?
        .mean_all()?
        .neg()
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() -> AnyResult<()> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    run(epochs, None).map(|_| ())
}

/// Trains for `epochs` (each at most `max_batches` batches); returns the
/// last epoch's test accuracy.
pub fn run(epochs: usize, max_batches: Option<usize>) -> AnyResult<f32> {
    manual_seed(1);
    let data = Mnist::shipped()?;
    let (train_x, train_y) = data.train.to_tensors(0.1307, 0.3081)?;
    let (test_x, test_y) = data.test.to_tensors(0.1307, 0.3081)?;
    let (train_x, test_x) = (train_x.reshape([-1, 784])?, test_x.reshape([-1, 784])?);
    let (w1, b1) = linear_params(784, 128);
    let (w2, b2) = linear_params(128, 10);
    let params = [w1, b1, w2, b2];
    let (lr, batch) = (0.1f32, 64);
    let mut gen = Generator::new(1);
    println!(
        "training a 784-128-10 MLP on {} shipped MNIST digits, {} test",
        data.train.len(),
        data.test.len()
    );
    let mut accuracy = 0.0;
    for epoch in 1..=epochs {
        let mut order: Vec<f32> = (0..data.train.len()).map(|i| i as f32).collect();
        gen.shuffle(&mut order);
        let (mut total, mut batches) = (0.0, 0);
        for chunk in order.chunks(batch).take(max_batches.unwrap_or(usize::MAX)) {
            let idx = Tensor::from_slice(chunk, [chunk.len()])?;
            let loss = cross_entropy(
                &forward(&train_x.index_select(0, &idx)?, &params)?,
                &train_y.index_select(0, &idx)?,
            )?;
            loss.backward()?;
            no_grad(|| -> nabla::Result<()> {
                for p in &params {
                    let g = p.grad().expect("every parameter gets a gradient").to_vec();
                    p.update_data(|w| w.iter_mut().zip(&g).for_each(|(w, g)| *w -= lr * g))?;
                    p.zero_grad();
                }
                Ok(())
            })?;
            total += loss.item()?;
            batches += 1;
        }
        let (test_loss, correct) = no_grad(|| -> nabla::Result<(f32, f32)> {
            let logits = forward(&test_x, &params)?;
            let correct = logits.argmax(1, false)?.eq(&test_y)?.sum_all()?.item()?;
            Ok((cross_entropy(&logits, &test_y)?.item()?, correct))
        })?;
        println!(
            "epoch {epoch}: train loss {:.4}, test loss {test_loss:.4}, accuracy {correct}/{} ({:.1}%)",
            total / batches as f32,
            data.test.len(),
            100.0 * correct / data.test.len() as f32
        );
        accuracy = correct / data.test.len() as f32;
    }
    Ok(accuracy)
}
