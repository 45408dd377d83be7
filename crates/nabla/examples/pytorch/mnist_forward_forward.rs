//! PyTorch's `mnist_forward_forward` example (github.com/pytorch/examples,
//! `mnist_forward_forward/main.py`), ported line by line: Hinton's
//! Forward-Forward algorithm. Each layer (784 → 500 → 500, ReLU on the
//! length-normalized input) learns on its own, with no backward pass
//! through the network: its "goodness" (the mean square of its output)
//! should be above a threshold for real digits with their label written
//! into the first 10 pixels, and below it for digits with a wrong label.
//! A digit is classified by the label with the most goodness summed over
//! the layers. Full batch, Adam (lr 0.03) per layer, `--epochs` steps per
//! layer (1,000 in the original). Its data is the 7,996 + 2,004 shipped
//! digits (the original takes 50,000 and 10,000).
//!
//!     cargo run --release --example pytorch_mnist_forward_forward -- --epochs 1000

use nabla::data::{DataLoader, ImageDataset, Mnist};
use nabla::in_pool;
use nabla::nn::{Linear, Module, Parameters};
use nabla::optim::{Adam, Optimizer};
use nabla::prelude::*;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The flags, with the original's defaults.
pub struct Args {
    pub epochs: usize,
    pub lr: f32,
    pub seed: u64,
    pub threshold: f32,
    pub log_interval: usize,
}

impl Args {
    /// `--epochs 1000 --lr 0.03 --seed 1 --threshold 2 --log-interval 10`.
    pub fn parse(args: &[String]) -> AnyResult<Args> {
        let mut a = Args {
            epochs: 1000,
            lr: 0.03,
            seed: 1,
            threshold: 2.0,
            log_interval: 10,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--epochs" => a.epochs = value.parse().map_err(|e| bad(&e))?,
                "--lr" => a.lr = value.parse().map_err(|e| bad(&e))?,
                "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
                "--threshold" => a.threshold = value.parse().map_err(|e| bad(&e))?,
                "--log-interval" => a.log_interval = value.parse().map_err(|e| bad(&e))?,
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        if a.log_interval == 0 {
            return Err("--log-interval must be positive".into());
        }
        Ok(a)
    }
}

/// `overlay_y_on_x(x, y)`: the first 10 pixels of each row zeroed and the
/// label's pixel set to the batch's largest value.
fn overlay_y_on_x(x: &Tensor, y: &[usize]) -> nabla::Result<Tensor> {
    let (n, d) = x.dims2()?;
    let max = x.max_all()?.item()?;
    let (mut keep, mut mark) = (vec![1f32; n * d], vec![0f32; n * d]);
    for (i, &label) in y.iter().enumerate() {
        keep[i * d..i * d + 10].fill(0.0);
        mark[i * d + label] = max;
    }
    x.mul(&Tensor::from_vec(keep, [n, d])?)?
        .add(&Tensor::from_vec(mark, [n, d])?)
}

/// `class Layer(nn.Linear)`: a linear layer with its own optimizer.
struct Layer {
    linear: Linear,
    opt: Adam,
    threshold: f32,
    num_epochs: usize,
    log_interval: usize,
}

impl Layer {
    fn new(in_features: usize, out_features: usize, args: &Args) -> Layer {
        let linear = Linear::new(in_features, out_features);
        let opt = Adam::new(linear.parameters(), args.lr);
        Layer {
            linear,
            opt,
            threshold: args.threshold,
            num_epochs: args.epochs,
            log_interval: args.log_interval,
        }
    }

    /// ReLU of the product with each row scaled to length 1 (so the
    /// previous layer's goodness cannot leak into this one's).
    fn forward(&self, x: &Tensor) -> nabla::Result<Tensor> {
        let norm = x.mul(x)?.sum(&[1], true)?.sqrt()?.add_scalar(1e-4)?;
        self.linear.forward(&x.div(&norm)?)?.relu()
    }

    /// `Layer.train(x_pos, x_neg)`: the layer's own steps; returns what it
    /// hands the next layer.
    fn train(&mut self, x_pos: &Tensor, x_neg: &Tensor) -> nabla::Result<(Tensor, Tensor)> {
        for i in 0..self.num_epochs {
            let loss = in_pool(|| -> nabla::Result<Tensor> {
                let g_pos = self.forward(x_pos)?.powf(2.0)?.mean(&[1], false)?;
                let g_neg = self.forward(x_neg)?.powf(2.0)?.mean(&[1], false)?;
                // softplus of (threshold − g_pos) and (g_neg − threshold)
                let margins = Tensor::cat(
                    &[
                        g_pos.neg()?.add_scalar(self.threshold)?,
                        g_neg.add_scalar(-self.threshold)?,
                    ],
                    0,
                )?;
                let loss = margins.exp()?.add_scalar(1.0)?.log()?.mean_all()?;
                self.opt.zero_grad();
                loss.backward()?;
                self.opt.step()?;
                Ok(loss)
            })?;
            if i % self.log_interval == 0 {
                println!("Loss:  {}", loss.item()?);
            }
        }
        Ok((self.forward(x_pos)?.detach(), self.forward(x_neg)?.detach()))
    }
}

/// `class Net(torch.nn.Module)`.
struct Net {
    layers: Vec<Layer>,
}

impl Net {
    fn new(dims: &[usize], args: &Args) -> Net {
        Net {
            layers: dims
                .windows(2)
                .map(|d| Layer::new(d[0], d[1], args))
                .collect(),
        }
    }

    /// The label whose overlay gives the most goodness, summed over layers.
    fn predict(&self, x: &Tensor) -> nabla::Result<Tensor> {
        no_grad(|| {
            let n = x.shape()[0];
            let mut goodness_per_label = Vec::with_capacity(10);
            for label in 0..10 {
                let mut h = overlay_y_on_x(x, &vec![label; n])?;
                let mut goodness = Tensor::zeros([n]);
                for layer in &self.layers {
                    h = layer.forward(&h)?;
                    goodness = goodness.add(&h.powf(2.0)?.mean(&[1], false)?)?;
                }
                goodness_per_label.push(goodness.unsqueeze(1)?);
            }
            Tensor::cat(&goodness_per_label, 1)?.argmax(1, false)
        })
    }

    fn train(&mut self, x_pos: &Tensor, x_neg: &Tensor) -> nabla::Result<()> {
        let (mut h_pos, mut h_neg) = (x_pos.clone(), x_neg.clone());
        for (i, layer) in self.layers.iter_mut().enumerate() {
            println!("training layer {i} ...");
            let start = std::time::Instant::now();
            (h_pos, h_neg) = layer.train(&h_pos, &h_neg)?;
            println!("layer {i}: {:.2} s training", start.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// The whole set as one batch of flattened, normalized digits and labels.
fn full_batch(set: nabla::data::ImageSet) -> AnyResult<(Tensor, Vec<usize>)> {
    let n = set.len();
    let loader = DataLoader::new(ImageDataset::mnist_normalized(set), n).shuffle(false);
    let batch = loader.epoch(0).next().ok_or("an empty data set")??;
    let labels = batch.targets.to_vec().iter().map(|&v| v as usize).collect();
    Ok((batch.inputs.reshape([n, 784])?, labels))
}

/// The error rate of `net` on `x`, `y`.
fn error(net: &Net, x: &Tensor, y: &[usize]) -> nabla::Result<f32> {
    let pred = net.predict(x)?.to_vec();
    let right = pred
        .iter()
        .zip(y)
        .filter(|(p, &t)| **p as usize == t)
        .count();
    Ok(1.0 - right as f32 / y.len() as f32)
}

/// `if __name__ == "__main__"`: returns the train and test errors.
pub fn run(args: &Args) -> AnyResult<(f32, f32)> {
    manual_seed(args.seed);
    let data = Mnist::shipped()?;
    let (x, y) = full_batch(data.train)?;
    let mut net = Net::new(&[784, 500, 500], args);
    let x_pos = overlay_y_on_x(&x, &y)?;
    // each digit with the label of another, drawn by a random permutation
    let mut rnd: Vec<usize> = (0..y.len()).collect();
    nabla::Generator::new(args.seed).shuffle(&mut rnd);
    let wrong: Vec<usize> = rnd.iter().map(|&i| y[i]).collect();
    let x_neg = overlay_y_on_x(&x, &wrong)?;
    net.train(&x_pos, &x_neg)?;
    let train_error = error(&net, &x, &y)?;
    println!("train error: {train_error}");
    let (x_te, y_te) = full_batch(data.test)?;
    let test_error = error(&net, &x_te, &y_te)?;
    println!("test error: {test_error}");
    Ok((train_error, test_error))
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = Args::parse(&args).and_then(|a| run(&a)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
