//! PyTorch's `mnist_rnn` example (github.com/pytorch/examples,
//! `mnist_rnn/main.py`), ported line by line: each digit read as a
//! sequence of 28 rows by an LSTM (28 → 64, batch first), its last output
//! through BatchNorm1d, channel dropout, 64 → 32 → 10 and log-softmax;
//! NLL loss, Adadelta (lr 0.1), StepLR (step 1, γ 0.7), batch 64, 14
//! epochs. Its data is the 7,996 + 2,004 shipped digits (`--data DIR` for
//! the full set).
//!
//!     cargo run --release --example pytorch_mnist_rnn -- --epochs 14

#[path = "mnist_loop.rs"]
mod mnist_loop;

use mnist_loop::{AnyResult, Args};
use nabla::nn::rnn::RnnConfig;
use nabla::nn::{prefixed, BatchNorm1d, Dropout2d, Linear, Recurrent};
use nabla::prelude::*;

/// `class Net(nn.Module)`.
pub struct Net {
    rnn: Recurrent,
    batchnorm: BatchNorm1d,
    dropout1: Dropout2d,
    dropout2: Dropout2d,
    fc1: Linear,
    fc2: Linear,
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    pub fn new() -> Net {
        let mut cfg = RnnConfig::new(28, 64);
        cfg.batch_first = true;
        Net {
            rnn: Recurrent::lstm(cfg),
            batchnorm: BatchNorm1d::new_1d(64),
            dropout1: Dropout2d::new(0.25),
            dropout2: Dropout2d::new(0.5),
            fc1: Linear::new(64, 32),
            fc2: Linear::new(32, 10),
        }
    }
}

impl Parameters for Net {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("rnn", self.rnn.named_parameters());
        p.extend(prefixed("batchnorm", self.batchnorm.named_parameters()));
        p.extend(prefixed("fc1", self.fc1.named_parameters()));
        p.extend(prefixed("fc2", self.fc2.named_parameters()));
        p
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        prefixed("batchnorm", self.batchnorm.named_buffers())
    }

    fn set_training(&self, on: bool) {
        for m in [
            &self.rnn as &dyn Module,
            &self.batchnorm,
            &self.dropout1,
            &self.dropout2,
        ] {
            m.set_training(on);
        }
    }
}

impl Module for Net {
    fn forward(&self, input: &Tensor) -> nabla::Result<Tensor> {
        // [batch, 1, 28, 28] as [batch, 28, 28]: 28 rows of 28 pixels
        let input = input.reshape([-1, 28, 28])?;
        let output = self.rnn.run(&input, None, None, None)?.output;
        // the last step's output
        let n = output.shape()[0];
        let output = output.narrow(1, 27, 1)?.reshape([n, 64])?;
        let output = self.batchnorm.forward(&output)?;
        let output = self.dropout1.forward(&output)?;
        let output = self.fc1.forward(&output)?.relu()?;
        let output = self.dropout2.forward(&output)?;
        self.fc2.forward(&output)?.log_softmax(1)
    }
}

/// The flags, with this example's default learning rate (0.1).
pub fn parse(args: &[String]) -> AnyResult<Args> {
    Args::parse(args, 0.1)
}

/// `def main()`: returns the last epoch's test loss and accuracy.
pub fn run(args: &Args) -> AnyResult<(f32, usize)> {
    mnist_loop::run(args, Net::new)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    mnist_loop::main_with(0.1, Net::new);
}
