//! The reference program, written with tensors and autograd only: the
//! LeNet-style CNN (conv 5×5 pad 2 → ReLU → max-pool 2 → conv 5×5 → ReLU →
//! max-pool 2 → 400 → 120 → 84 → 10) trained on the shipped MNIST digits
//! with SGD (lr 0.001, momentum 0.9), batch 64, testing after each epoch
//! and printing PyTorch's line:
//! `Test set: Average loss: 0.0012, Accuracy: 9856/10000 (99%)`.
//!
//!     cargo run --release --example lenet_mnist [-- EPOCHS]

use nabla::data::Mnist;
use nabla::{manual_seed, no_grad, Conv2dParams, Generator, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A parameter with its momentum buffer (SGD with momentum, PyTorch's form:
/// `v = μ·v + g; w = w − lr·v`).
struct Param {
    value: Tensor,
    velocity: Vec<f32>,
}

impl Param {
    /// PyTorch's default init: U(±1/√fan_in) (kaiming_uniform with a=√5
    /// reduces to this bound for weights; biases use the same bound).
    fn new(shape: &[usize], fan_in: usize) -> Param {
        let bound = 1.0 / (fan_in as f32).sqrt();
        let value = Tensor::uniform(shape, -bound, bound).requires_grad_(true);
        Param {
            velocity: vec![0.0; value.numel()],
            value,
        }
    }

    fn step(&mut self, lr: f32, momentum: f32) -> nabla::Result<()> {
        let Some(g) = self.value.grad() else {
            return Ok(());
        };
        let g = g.to_vec();
        let v = &mut self.velocity;
        self.value.update_data(|w| {
            for i in 0..w.len() {
                v[i] = momentum * v[i] + g[i];
                w[i] -= lr * v[i];
            }
        })?;
        self.value.zero_grad();
        Ok(())
    }
}

struct LeNet {
    p: Vec<Param>,
}

impl LeNet {
    fn new() -> LeNet {
        let p = vec![
            Param::new(&[6, 1, 5, 5], 25),
            Param::new(&[6], 25),
            Param::new(&[16, 6, 5, 5], 150),
            Param::new(&[16], 150),
            Param::new(&[120, 400], 400),
            Param::new(&[120], 400),
            Param::new(&[84, 120], 120),
            Param::new(&[84], 120),
            Param::new(&[10, 84], 84),
            Param::new(&[10], 84),
        ];
        LeNet { p }
    }

    fn forward(&self, x: &Tensor) -> nabla::Result<Tensor> {
        let w = |i: usize| &self.p[i].value;
        let x = x
            .conv2d(w(0), Some(w(1)), Conv2dParams::default().padding(2))?
            .relu()?
            .max_pool2d(2)?;
        let x = x
            .conv2d(w(2), Some(w(3)), Conv2dParams::default())?
            .relu()?
            .max_pool2d(2)?;
        let x = x.reshape([-1, 400])?;
        let x = x.matmul(&w(4).t()?)?.add(w(5))?.relu()?;
        let x = x.matmul(&w(6).t()?)?.add(w(7))?.relu()?;
        x.matmul(&w(8).t()?)?.add(w(9))
    }
}

/// Cross-entropy of logits against class indices, summed or averaged.
fn cross_entropy(logits: &Tensor, labels: &Tensor, sum: bool) -> nabla::Result<Tensor> {
    let picked = logits.log_softmax(1)?.gather(1, &labels.unsqueeze(1)?)?;
    if sum {
        picked.sum_all()?.neg()
    } else {
        picked.mean_all()?.neg()
    }
}

fn main() -> AnyResult<()> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    manual_seed(1);
    let data = Mnist::load(Mnist::shipped_dir())?;
    let (train_x, train_y) = data.train.to_tensors(0.1307, 0.3081)?;
    let (test_x, test_y) = data.test.to_tensors(0.1307, 0.3081)?;
    let mut model = LeNet::new();
    let (lr, momentum, batch, test_batch) = (0.001, 0.9, 64, 100);
    let mut gen = Generator::new(1);
    let n = data.train.len();
    for epoch in 1..=epochs {
        let start = std::time::Instant::now();
        let mut order: Vec<f32> = (0..n).map(|i| i as f32).collect();
        gen.shuffle(&mut order);
        for (step, chunk) in order.chunks(batch).enumerate() {
            let idx = Tensor::from_slice(chunk, [chunk.len()])?;
            let logits = model.forward(&train_x.index_select(0, &idx)?)?;
            let loss = cross_entropy(&logits, &train_y.index_select(0, &idx)?, false)?;
            loss.backward()?;
            for p in &mut model.p {
                p.step(lr, momentum)?;
            }
            if step % 40 == 0 {
                println!(
                    "Train Epoch: {epoch} [{}/{n}]\tLoss: {:.6}",
                    step * batch,
                    loss.item()?
                );
            }
        }
        let train_secs = start.elapsed().as_secs_f32();
        let (mut test_loss, mut correct) = (0.0, 0.0);
        no_grad(|| -> nabla::Result<()> {
            for s in (0..data.test.len()).step_by(test_batch) {
                let len = test_batch.min(data.test.len() - s);
                let (x, y) = (test_x.narrow(0, s, len)?, test_y.narrow(0, s, len)?);
                let logits = model.forward(&x)?;
                test_loss += cross_entropy(&logits, &y, true)?.item()?;
                correct += logits.argmax(1, false)?.eq(&y)?.sum_all()?.item()?;
            }
            Ok(())
        })?;
        let total = data.test.len() as f32;
        println!(
            "\nTest set: Average loss: {:.4}, Accuracy: {correct}/{total} ({:.0}%)  [epoch {epoch}: {train_secs:.2} s training]\n",
            test_loss / total,
            100.0 * correct / total
        );
    }
    Ok(())
}
