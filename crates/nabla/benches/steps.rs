//! Training steps without a data loader, on fixed random data, run on the
//! pool as `nabla train` runs them:
//!
//! - `mlp_step`: the MLP 784-256-128-10 at batch 64 with SGD (momentum 0.9);
//!   what it costs beyond its matrix products (`cargo bench -p nabla-core
//!   --bench kernels mlp_products`) is the framework's overhead;
//! - `mlp_phases`: the same step timed in its phases (forward, loss,
//!   backward, optimizer), best of 20 means over 100 steps;
//! - `lstm_step`: the row-by-row LSTM (`LSTM(28, 128)` over 28 rows, then
//!   `Linear(128, 10)`) at batch 64 with Adam; beyond the recurrent op
//!   itself (`kernels lstm_64`) it pays for the layer around it, the loss
//!   and the optimizer.
//!
//!     NABLA_NUM_THREADS=2 cargo bench -p nabla --bench steps [mlp_step|mlp_phases|lstm]
//!
//! Prints the best and the median microseconds per step over 20 rounds.

use std::time::Instant;

use nabla::nn::rnn::{LastHidden, Recurrent, RnnConfig};
use nabla::nn::{Linear, Module, Parameters, ReLU, Sequential};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::prelude::cross_entropy;
use nabla::{in_pool, manual_seed, num_threads, Tensor};

/// Best and median microseconds per call of `step`, over 20 rounds of
/// `per_round` calls after one round of warm-up.
fn time_steps(name: &str, per_round: usize, mut step: impl FnMut() + Send) {
    let mut rounds = in_pool(|| {
        (0..21)
            .map(|_| {
                let t = Instant::now();
                (0..per_round).for_each(|_| step());
                t.elapsed().as_secs_f64() / per_round as f64 * 1e6
            })
            .skip(1) // warm-up
            .collect::<Vec<f64>>()
    });
    rounds.sort_by(f64::total_cmp);
    println!(
        "{name} {} threads: best {:.1} us, median {:.1} us",
        num_threads(),
        rounds[0],
        rounds[rounds.len() / 2]
    );
}

/// One optimizer step on `model`'s cross-entropy over `(x, y)`.
fn train_step(model: &dyn Module, opt: &mut dyn Optimizer, x: &Tensor, y: &Tensor) {
    opt.zero_grad();
    let loss = cross_entropy(&model.forward(x).unwrap(), y).unwrap();
    loss.backward().unwrap();
    opt.step().unwrap();
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    manual_seed(0);
    let y = Tensor::from_vec((0..64).map(|i| (i % 10) as f32).collect(), [64]).unwrap();
    let mlp = || {
        Sequential::new()
            .add(Linear::new(784, 256))
            .add(ReLU)
            .add(Linear::new(256, 128))
            .add(ReLU)
            .add(Linear::new(128, 10))
    };
    if wanted("mlp_step") || filter.is_empty() || wanted("mlp") && !wanted("mlp_phases") {
        let model = mlp();
        let mut opt = Sgd::new(model.parameters(), 0.01).momentum(0.9);
        let x = Tensor::randn([64, 784]);
        time_steps("mlp_step", 50, || train_step(&model, &mut opt, &x, &y));
    }
    if wanted("mlp_phases") {
        // the same step cut into its phases: what each costs beyond its
        // products (kernels mlp_products) is where the framework spends
        let model = mlp();
        let mut opt = Sgd::new(model.parameters(), 0.01).momentum(0.9);
        let x = Tensor::randn([64, 784]);
        let mut best = [f64::MAX; 4];
        in_pool(|| {
            for _round in 0..20 {
                let mut sum = [0f64; 4];
                for _ in 0..100 {
                    let t0 = Instant::now();
                    opt.zero_grad();
                    let out = model.forward(&x).unwrap();
                    let t1 = Instant::now();
                    let loss = cross_entropy(&out, &y).unwrap();
                    let t2 = Instant::now();
                    loss.backward().unwrap();
                    let t3 = Instant::now();
                    opt.step().unwrap();
                    let t4 = Instant::now();
                    for (s, (a, b)) in sum.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)])
                    {
                        *s += (b - a).as_secs_f64() * 1e6 / 100.0;
                    }
                }
                best.iter_mut().zip(sum).for_each(|(b, s)| *b = b.min(s));
            }
        });
        let [forward, loss, backward, step] = best;
        println!(
            "mlp_phases {} threads: forward {forward:.1} us, loss {loss:.1} us, backward {backward:.1} us, optimizer {step:.1} us",
            num_threads()
        );
    }
    if wanted("lstm") {
        let model = Sequential::new()
            .add(LastHidden(Recurrent::lstm(RnnConfig::new(28, 128))))
            .add(Linear::new(128, 10));
        let mut opt = Adam::new(model.parameters(), 0.002);
        let x = Tensor::randn([64, 28, 28]);
        time_steps("lstm_step", 10, || train_step(&model, &mut opt, &x, &y));
    }
}
