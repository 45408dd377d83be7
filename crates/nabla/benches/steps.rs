//! Training steps without a data loader: the MLP 784-256-128-10 at batch
//! 64 with SGD (momentum 0.9), on fixed random data, run on the pool as
//! `nabla train` runs them. What a step costs beyond its matrix products
//! (`cargo bench -p nabla-core --bench kernels mlp_products`) is the
//! framework's overhead.
//!
//!     NABLA_NUM_THREADS=2 cargo bench -p nabla --bench steps
//!
//! Prints the best and the median microseconds per step over 20 rounds of
//! 50 steps.

use std::time::Instant;

use nabla::nn::{Linear, Module, ReLU, Sequential};
use nabla::optim::{Optimizer, Sgd};
use nabla::prelude::cross_entropy;
use nabla::{in_pool, manual_seed, num_threads, Tensor};

fn main() {
    manual_seed(0);
    let model = Sequential::new()
        .add(Linear::new(784, 256))
        .add(ReLU)
        .add(Linear::new(256, 128))
        .add(ReLU)
        .add(Linear::new(128, 10));
    let mut opt = Sgd::new(model.parameters(), 0.01).momentum(0.9);
    let x = Tensor::randn([64, 784]);
    let y = Tensor::from_vec((0..64).map(|i| (i % 10) as f32).collect(), [64]).unwrap();
    let mut rounds = in_pool(|| {
        (0..21)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..50 {
                    opt.zero_grad();
                    let loss = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
                    loss.backward().unwrap();
                    opt.step().unwrap();
                }
                t.elapsed().as_secs_f64() / 50.0 * 1e6
            })
            .skip(1) // warm-up
            .collect::<Vec<f64>>()
    });
    rounds.sort_by(f64::total_cmp);
    println!(
        "mlp_step {} threads: best {:.1} us, median {:.1} us",
        num_threads(),
        rounds[0],
        rounds[rounds.len() / 2]
    );
}
