//! PyTorch's `vae` example (github.com/pytorch/examples, `vae/main.py`),
//! ported line by line: a variational auto-encoder (Kingma & Welling) on
//! the digits, 784 → 400 → (μ, log σ²) of 20 → 400 → 784, trained with
//! Adam (lr 1e-3) on binary cross-entropy plus the KL divergence, batch
//! 128, 10 epochs; after each epoch it writes `reconstruction_E.png`
//! (8 test digits above their reconstructions) and `sample_E.png` (64
//! digits decoded from N(0, I)) into `--out` (default `results/`). Its data
//! is the 7,996 + 2,004 shipped digits.
//!
//!     cargo run --release --example pytorch_vae -- --epochs 10

use std::path::PathBuf;

use nabla::data::{DataLoader, Dataset, ImageDataset, Mnist};
use nabla::nn::loss::{bce_loss, Reduction};
use nabla::nn::{prefixed, Linear, Module, Parameters};
use nabla::optim::{Adam, Optimizer};
use nabla::plot::batch_grid;
use nabla::{in_pool, manual_seed, no_grad, Device, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `class VAE(nn.Module)`.
pub struct Vae {
    fc1: Linear,
    fc21: Linear,
    fc22: Linear,
    fc3: Linear,
    fc4: Linear,
}

impl Default for Vae {
    fn default() -> Self {
        Vae::new()
    }
}

impl Vae {
    pub fn new() -> Vae {
        Vae {
            fc1: Linear::new(784, 400),
            fc21: Linear::new(400, 20),
            fc22: Linear::new(400, 20),
            fc3: Linear::new(20, 400),
            fc4: Linear::new(400, 784),
        }
    }

    fn encode(&self, x: &Tensor) -> nabla::Result<(Tensor, Tensor)> {
        let h1 = self.fc1.forward(x)?.relu()?;
        Ok((self.fc21.forward(&h1)?, self.fc22.forward(&h1)?))
    }

    fn reparameterize(&self, mu: &Tensor, logvar: &Tensor) -> nabla::Result<Tensor> {
        let std = logvar.mul_scalar(0.5)?.exp()?;
        let eps = Tensor::randn(std.shape()).to(std.device())?;
        mu.add(&eps.mul(&std)?)
    }

    fn decode(&self, z: &Tensor) -> nabla::Result<Tensor> {
        let h3 = self.fc3.forward(z)?.relu()?;
        self.fc4.forward(&h3)?.sigmoid()
    }

    /// The reconstruction, μ and log σ², as the original's `forward`.
    pub fn forward(&self, x: &Tensor) -> nabla::Result<(Tensor, Tensor, Tensor)> {
        let (mu, logvar) = self.encode(&x.reshape([-1, 784])?)?;
        let z = self.reparameterize(&mu, &logvar)?;
        Ok((self.decode(&z)?, mu, logvar))
    }
}

impl Parameters for Vae {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("fc1", self.fc1.named_parameters());
        p.extend(prefixed("fc21", self.fc21.named_parameters()));
        p.extend(prefixed("fc22", self.fc22.named_parameters()));
        p.extend(prefixed("fc3", self.fc3.named_parameters()));
        p.extend(prefixed("fc4", self.fc4.named_parameters()));
        p
    }
}

/// Reconstruction + KL divergence losses summed over all elements and
/// batch: `BCE(recon, x) − ½·Σ(1 + log σ² − μ² − σ²)`.
fn loss_function(
    recon_x: &Tensor,
    x: &Tensor,
    mu: &Tensor,
    logvar: &Tensor,
) -> nabla::Result<Tensor> {
    let bce = bce_loss(recon_x, &x.reshape([-1, 784])?, Reduction::Sum)?;
    let kld = logvar
        .add_scalar(1.0)?
        .sub(&mu.powf(2.0)?)?
        .sub(&logvar.exp()?)?
        .sum_all()?
        .mul_scalar(-0.5)?;
    bce.add(&kld)
}

/// The original's flags, with its defaults.
pub struct Args {
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub log_interval: usize,
    pub out: PathBuf,
    /// Stop each epoch after this many batches (for tests; not a flag of
    /// the original).
    pub max_batches: Option<usize>,
}

impl Args {
    /// `--batch-size 128 --epochs 10 --seed 1 --log-interval 10 --out results`.
    pub fn parse(args: &[String]) -> AnyResult<Args> {
        let mut a = Args {
            batch_size: 128,
            epochs: 10,
            seed: 1,
            log_interval: 10,
            out: "results".into(),
            max_batches: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--batch-size" => a.batch_size = value.parse().map_err(|e| bad(&e))?,
                "--epochs" => a.epochs = value.parse().map_err(|e| bad(&e))?,
                "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
                "--log-interval" => a.log_interval = value.parse().map_err(|e| bad(&e))?,
                "--out" => a.out = value.into(),
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        if a.batch_size == 0 || a.log_interval == 0 {
            return Err("--batch-size and --log-interval must be positive".into());
        }
        Ok(a)
    }
}

/// Images `[n, 784]` (or `[n, 1, 28, 28]`) as a PNG grid of `cols` columns.
fn save_image(images: &Tensor, path: PathBuf, cols: usize) -> AnyResult<()> {
    let n = images.shape()[0];
    batch_grid(&images.reshape([n, 1, 28, 28])?, cols, 2)?.save_png(&path)?;
    Ok(())
}

fn train(
    args: &Args,
    model: &Vae,
    loader: &DataLoader<ImageDataset>,
    optimizer: &mut Adam,
    epoch: usize,
) -> AnyResult<f32> {
    let n = loader.dataset().len();
    let mut train_loss = 0f32;
    for (batch_idx, batch) in loader.epoch(epoch).enumerate() {
        if args.max_batches.is_some_and(|m| batch_idx >= m) {
            break;
        }
        let data = batch?.inputs;
        let loss = in_pool(|| -> nabla::Result<f32> {
            optimizer.zero_grad();
            let (recon_batch, mu, logvar) = model.forward(&data)?;
            let loss = loss_function(&recon_batch, &data, &mu, &logvar)?;
            loss.backward()?;
            optimizer.step()?;
            loss.item()
        })?;
        train_loss += loss;
        if batch_idx % args.log_interval == 0 {
            let len = data.shape()[0];
            println!(
                "Train Epoch: {epoch} [{}/{n} ({:.0}%)]\tLoss: {:.6}",
                batch_idx * len,
                100.0 * batch_idx as f32 / loader.len() as f32,
                loss / len as f32
            );
        }
    }
    let average = train_loss / n as f32;
    println!("====> Epoch: {epoch} Average loss: {average:.4}");
    Ok(average)
}

fn test(
    args: &Args,
    model: &Vae,
    loader: &DataLoader<ImageDataset>,
    epoch: usize,
) -> AnyResult<f32> {
    let mut test_loss = 0f32;
    no_grad(|| -> AnyResult<()> {
        for (i, batch) in loader.epoch(0).enumerate() {
            let data = batch?.inputs;
            let (recon_batch, mu, logvar) = model.forward(&data)?;
            test_loss += loss_function(&recon_batch, &data, &mu, &logvar)?.item()?;
            if i == 0 {
                let n = data.shape()[0].min(8);
                let comparison = Tensor::cat(
                    &[
                        data.narrow(0, 0, n)?.reshape([n, 784])?,
                        recon_batch.narrow(0, 0, n)?,
                    ],
                    0,
                )?;
                save_image(
                    &comparison,
                    args.out.join(format!("reconstruction_{epoch}.png")),
                    n,
                )?;
            }
        }
        Ok(())
    })?;
    test_loss /= loader.dataset().len() as f32;
    println!("====> Test set loss: {test_loss:.4}");
    Ok(test_loss)
}

/// `if __name__ == "__main__"`: returns the last epoch's average training
/// loss and test loss.
pub fn run(args: &Args) -> AnyResult<(f32, f32)> {
    manual_seed(args.seed);
    let device = Device::best_available();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let data = Mnist::shipped()?;
    // transforms.ToTensor(): pixels in [0, 1], no normalization
    let train_loader = DataLoader::new(ImageDataset::new(data.train, vec![]), args.batch_size)
        .seed(args.seed)
        .to(device);
    let test_loader = DataLoader::new(ImageDataset::new(data.test, vec![]), args.batch_size)
        .shuffle(false)
        .to(device);
    let model = Vae::new();
    model.to(device)?;
    let mut optimizer = Adam::new(model.parameters(), 1e-3);
    let mut last = (f32::NAN, f32::NAN);
    for epoch in 1..=args.epochs {
        let start = std::time::Instant::now();
        let train_loss = train(args, &model, &train_loader, &mut optimizer, epoch)?;
        let seconds = start.elapsed().as_secs_f64();
        let test_loss = test(args, &model, &test_loader, epoch)?;
        println!("epoch {epoch}: {seconds:.2} s training");
        no_grad(|| -> AnyResult<()> {
            let sample = model.decode(&Tensor::randn([64, 20]).to(device)?)?;
            save_image(&sample, args.out.join(format!("sample_{epoch}.png")), 8)
        })?;
        last = (train_loss, test_loss);
    }
    Ok(last)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = Args::parse(&args).and_then(|a| run(&a)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
