//! PyTorch's `mnist` example (github.com/pytorch/examples, `mnist/main.py`),
//! ported line by line: the same network, optimizer, schedule,
//! hyper-parameters, flags and printed lines. Its data is the 7,996 real
//! MNIST digits shipped in `data/mnist` (the original downloads the 60,000;
//! `--data DIR` takes a folder with the four MNIST files).
//!
//!     cargo run --release --example pytorch_mnist -- --epochs 14
//!
//! `Net`: conv 1→32 3×3, ReLU, conv 32→64 3×3, ReLU, max-pool 2, dropout
//! 0.25, flatten (9,216), linear 128, ReLU, dropout 0.5, linear 10,
//! log-softmax; NLL loss, Adadelta (lr 1.0), StepLR (step 1, γ 0.7).

#[path = "mnist_loop.rs"]
mod mnist_loop;

use mnist_loop::{AnyResult, Args};
use nabla::nn::prefixed;
use nabla::nn::{Conv2d, Dropout, Linear};
use nabla::prelude::*;

/// `class Net(nn.Module)`.
pub struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    dropout1: Dropout,
    dropout2: Dropout,
    fc1: Linear,
    fc2: Linear,
}

impl Net {
    pub fn new() -> Net {
        Net {
            conv1: Conv2d::new(1, 32, 3),
            conv2: Conv2d::new(32, 64, 3),
            dropout1: Dropout::new(0.25),
            dropout2: Dropout::new(0.5),
            fc1: Linear::new(9216, 128),
            fc2: Linear::new(128, 10),
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Parameters for Net {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("conv1", self.conv1.named_parameters());
        p.extend(prefixed("conv2", self.conv2.named_parameters()));
        p.extend(prefixed("fc1", self.fc1.named_parameters()));
        p.extend(prefixed("fc2", self.fc2.named_parameters()));
        p
    }

    fn set_training(&self, on: bool) {
        self.dropout1.set_training(on);
        self.dropout2.set_training(on);
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> nabla::Result<Tensor> {
        let x = self.conv1.forward(x)?.relu()?;
        let x = self.conv2.forward(&x)?.relu()?;
        let x = x.max_pool2d(2)?;
        let x = self.dropout1.forward(&x)?;
        let x = x.flatten(1, -1)?;
        let x = self.fc1.forward(&x)?.relu()?;
        let x = self.dropout2.forward(&x)?;
        let x = self.fc2.forward(&x)?;
        x.log_softmax(1)
    }
}

/// The flags, with this example's default learning rate (1.0).
pub fn parse(args: &[String]) -> AnyResult<Args> {
    Args::parse(args, 1.0)
}

/// `def main()`: returns the last epoch's test loss and accuracy.
pub fn run(args: &Args) -> AnyResult<(f32, usize)> {
    mnist_loop::run(args, Net::new)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    mnist_loop::main_with(1.0, Net::new);
}
