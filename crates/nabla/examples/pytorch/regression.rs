//! PyTorch's `regression` example (github.com/pytorch/examples,
//! `regression/main.py`), ported line by line: fit a polynomial of degree 4
//! with one linear layer on features `[x, x², x³, x⁴]`, smooth-L1 loss,
//! plain gradient steps of 0.1 written by hand, batches of 32 fresh random
//! points until the loss is below 1e-3. The original draws without a seed;
//! this port seeds the generator (`--seed`, 1 by default) so runs repeat.
//!
//!     cargo run --release --example pytorch_regression

use nabla::nn::loss::{huber_loss, Reduction};
use nabla::nn::{Linear, Module, Parameters};
use nabla::{manual_seed, no_grad, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

const POLY_DEGREE: usize = 4;

/// `make_features(x)`: a matrix with columns `[x, x², x³, x⁴]`.
fn make_features(x: &Tensor) -> nabla::Result<Tensor> {
    let x = x.unsqueeze(1)?;
    let powers = (1..=POLY_DEGREE)
        .map(|i| x.powf(i as f32))
        .collect::<nabla::Result<Vec<_>>>()?;
    Tensor::cat(&powers, 1)
}

/// The target function `f(x) = x·W_target + b_target`.
struct Target {
    w: Tensor,
    b: f32,
}

impl Target {
    fn f(&self, x: &Tensor) -> nabla::Result<Tensor> {
        x.matmul(&self.w)?.add_scalar(self.b)
    }
}

/// `poly_desc(W, b)`: `y = +1.23 x^1 -0.45 x^2 … +6.78`.
fn poly_desc(w: &[f32], b: f32) -> String {
    let mut result = "y = ".to_string();
    for (i, w) in w.iter().enumerate() {
        result += &format!("{w:+.2} x^{} ", i + 1);
    }
    result + &format!("{b:+.2}")
}

/// `get_batch(batch_size=32)`.
fn get_batch(target: &Target, batch_size: usize) -> nabla::Result<(Tensor, Tensor)> {
    let random = Tensor::randn([batch_size]);
    let x = make_features(&random)?;
    let y = target.f(&x)?;
    Ok((x, y))
}

/// The whole program: returns the last loss and the number of batches.
pub fn run(seed: u64) -> AnyResult<(f32, usize)> {
    manual_seed(seed);
    let w_target = Tensor::randn([POLY_DEGREE, 1]).mul_scalar(5.0)?;
    let b_target = Tensor::randn([1]).mul_scalar(5.0)?;
    let target = Target {
        w: w_target.clone(),
        b: b_target.item()?,
    };
    // Define model
    let fc = Linear::new(POLY_DEGREE, 1);
    let mut batch_idx = 0;
    let loss = loop {
        batch_idx += 1;
        // Get data
        let (batch_x, batch_y) = get_batch(&target, 32)?;
        // Reset gradients
        fc.zero_grad();
        // Forward pass (smooth_l1_loss with β 1 is the Huber loss with δ 1)
        let output = huber_loss(&fc.forward(&batch_x)?, &batch_y, 1.0, Reduction::Mean)?;
        let loss = output.item()?;
        // Backward pass
        output.backward()?;
        // Apply gradients
        no_grad(|| -> nabla::Result<()> {
            for param in fc.parameters() {
                let grad = param.grad().expect("every parameter has a gradient");
                param.copy_from(&param.add(&grad.mul_scalar(-0.1)?)?)?;
            }
            Ok(())
        })?;
        // Stop criterion
        if loss < 1e-3 {
            break loss;
        }
    };
    println!("Loss: {loss:.6} after {batch_idx} batches");
    println!(
        "==> Learned function:\t{}",
        poly_desc(
            &fc.weight.to_vec(),
            fc.bias.as_ref().map_or(Ok(0.0), |b| b.item())?
        )
    );
    println!(
        "==> Actual function:\t{}",
        poly_desc(&w_target.to_vec(), target.b)
    );
    Ok((loss, batch_idx))
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    let mut args = std::env::args().skip(1);
    let seed = match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(1),
        (Some("--seed"), Some(s)) => s.parse().map_err(|e| format!("--seed {s}: {e}")),
        (Some(other), _) => Err(format!("unknown flag {other} (the one flag is --seed N)")),
    };
    if let Err(e) = seed.map_err(Into::into).and_then(run) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
