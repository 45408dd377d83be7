//! PyTorch's DCGAN at 28×28 (github.com/pytorch/examples,
//! `cpp/dcgan/dcgan.cpp`, the C++ frontend's MNIST version of `dcgan`),
//! ported line by line: a generator of transposed convolutions (noise of
//! 100 → 256×4×4 → 128×7×7 → 64×14×14 → 1×28×28, batch norm, ReLU, tanh)
//! against a discriminator of strided convolutions (LeakyReLU 0.2, batch
//! norm, sigmoid), binary cross-entropy with real labels smoothed into
//! [0.8, 1), Adam (lr 2e-4, betas 0.5, 0.5) for both, batch 64, 30
//! epochs. Every 200 batches (and at the end) it writes 10 generated
//! digits as `dcgan-sample-N.png` into `--out` (the original saves a
//! tensor file). Its data is the 7,996 shipped digits scaled to [−1, 1].
//!
//!     cargo run --release --example pytorch_dcgan -- --epochs 30

use std::path::PathBuf;

use nabla::data::Transform;
use nabla::data::{DataLoader, ImageDataset, Mnist};
use nabla::nn::loss::{bce_loss, Reduction};
use nabla::nn::{
    prefixed, BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU, Module, Parameters, Sequential,
    Sigmoid,
};
use nabla::optim::{Adam, Optimizer};
use nabla::plot::batch_grid;
use nabla::{manual_seed, Conv2dParams, ConvTranspose2dParams, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

const K_NOISE_SIZE: usize = 100;
const K_CHECKPOINT_EVERY: usize = 200;
const K_NUMBER_OF_SAMPLES_PER_CHECKPOINT: usize = 10;
const K_LOG_INTERVAL: usize = 10;

/// `DCGANGeneratorImpl`.
pub struct DcganGenerator {
    conv1: ConvTranspose2d,
    batch_norm1: BatchNorm2d,
    conv2: ConvTranspose2d,
    batch_norm2: BatchNorm2d,
    conv3: ConvTranspose2d,
    batch_norm3: BatchNorm2d,
    conv4: ConvTranspose2d,
}

impl DcganGenerator {
    pub fn new(k_noise_size: usize) -> DcganGenerator {
        let t = ConvTranspose2dParams::default;
        DcganGenerator {
            conv1: ConvTranspose2d::with(k_noise_size, 256, 4, t(), false),
            batch_norm1: BatchNorm2d::new_2d(256),
            conv2: ConvTranspose2d::with(256, 128, 3, t().stride(2).padding(1), false),
            batch_norm2: BatchNorm2d::new_2d(128),
            conv3: ConvTranspose2d::with(128, 64, 4, t().stride(2).padding(1), false),
            batch_norm3: BatchNorm2d::new_2d(64),
            conv4: ConvTranspose2d::with(64, 1, 4, t().stride(2).padding(1), false),
        }
    }
}

impl Parameters for DcganGenerator {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("conv1", self.conv1.named_parameters());
        p.extend(prefixed("batch_norm1", self.batch_norm1.named_parameters()));
        p.extend(prefixed("conv2", self.conv2.named_parameters()));
        p.extend(prefixed("batch_norm2", self.batch_norm2.named_parameters()));
        p.extend(prefixed("conv3", self.conv3.named_parameters()));
        p.extend(prefixed("batch_norm3", self.batch_norm3.named_parameters()));
        p.extend(prefixed("conv4", self.conv4.named_parameters()));
        p
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut b = prefixed("batch_norm1", self.batch_norm1.named_buffers());
        b.extend(prefixed("batch_norm2", self.batch_norm2.named_buffers()));
        b.extend(prefixed("batch_norm3", self.batch_norm3.named_buffers()));
        b
    }

    fn set_training(&self, on: bool) {
        for bn in [&self.batch_norm1, &self.batch_norm2, &self.batch_norm3] {
            bn.set_training(on);
        }
    }
}

impl Module for DcganGenerator {
    fn forward(&self, x: &Tensor) -> nabla::Result<Tensor> {
        let x = self.batch_norm1.forward(&self.conv1.forward(x)?)?.relu()?;
        let x = self.batch_norm2.forward(&self.conv2.forward(&x)?)?.relu()?;
        let x = self.batch_norm3.forward(&self.conv3.forward(&x)?)?.relu()?;
        self.conv4.forward(&x)?.tanh()
    }
}

/// The discriminator: 28 → 14 → 7 → 3 → 1.
fn discriminator() -> Sequential {
    let c = |s: usize, p: usize| Conv2dParams::default().stride(s).padding(p);
    Sequential::new()
        // Layer 1
        .add(Conv2d::with(1, 64, 4, c(2, 1), false))
        .add(LeakyReLU(0.2))
        // Layer 2
        .add(Conv2d::with(64, 128, 4, c(2, 1), false))
        .add(BatchNorm2d::new_2d(128))
        .add(LeakyReLU(0.2))
        // Layer 3
        .add(Conv2d::with(128, 256, 4, c(2, 1), false))
        .add(BatchNorm2d::new_2d(256))
        .add(LeakyReLU(0.2))
        // Layer 4
        .add(Conv2d::with(256, 1, 3, c(1, 0), false))
        .add(Sigmoid)
}

/// Generated digits `[n, 1, 28, 28]` in [−1, 1] as one PNG row.
fn save_samples(samples: &Tensor, path: PathBuf) -> AnyResult<()> {
    batch_grid(samples, samples.shape()[0], 2)?.save_png(&path)?;
    Ok(())
}

/// The flags: `--epochs 30 --out DIR (.)`, and for tests a cap on the
/// batches of an epoch.
pub struct Args {
    pub epochs: usize,
    pub out: PathBuf,
    pub max_batches: Option<usize>,
}

impl Args {
    pub fn parse(args: &[String]) -> AnyResult<Args> {
        let mut a = Args {
            epochs: 30,
            out: ".".into(),
            max_batches: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--epochs" => {
                    a.epochs = value
                        .parse()
                        .map_err(|e| format!("--epochs {value}: {e}"))?
                }
                "--out" => a.out = value.into(),
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        Ok(a)
    }
}

/// `main()`: returns the last logged discriminator and generator losses.
pub fn run(args: &Args) -> AnyResult<(f32, f32)> {
    manual_seed(1);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let generator = DcganGenerator::new(K_NOISE_SIZE);
    let discriminator = discriminator();
    // Normalize(0.5, 0.5): pixels in [−1, 1]
    let data = Mnist::shipped()?;
    let dataset = ImageDataset::new(
        data.train,
        vec![Transform::Normalize {
            mean: 0.5,
            std: 0.5,
        }],
    );
    let data_loader = DataLoader::new(dataset, 64).seed(1);
    let batches_per_epoch = data_loader.len();
    let mut generator_optimizer = Adam::new(generator.parameters(), 2e-4).betas(0.5, 0.5);
    let mut discriminator_optimizer = Adam::new(discriminator.parameters(), 2e-4).betas(0.5, 0.5);
    let mut checkpoint_counter = 1;
    let mut last = (f32::NAN, f32::NAN);
    for epoch in 1..=args.epochs {
        let start = std::time::Instant::now();
        for (batch_index, batch) in data_loader.epoch(epoch).enumerate() {
            if args.max_batches.is_some_and(|m| batch_index >= m) {
                break;
            }
            let real_images = batch?.inputs;
            let n = real_images.shape()[0];
            // Train discriminator with real images.
            discriminator.zero_grad();
            let real_labels = Tensor::uniform([n], 0.8, 1.0);
            let real_output = discriminator.forward(&real_images)?.reshape([n])?;
            let d_loss_real = bce_loss(&real_output, &real_labels, Reduction::Mean)?;
            d_loss_real.backward()?;
            // Train discriminator with fake images.
            let noise = Tensor::randn([n, K_NOISE_SIZE, 1, 1]);
            let fake_images = generator.forward(&noise)?;
            let fake_labels = Tensor::zeros([n]);
            let fake_output = discriminator.forward(&fake_images.detach())?.reshape([n])?;
            let d_loss_fake = bce_loss(&fake_output, &fake_labels, Reduction::Mean)?;
            d_loss_fake.backward()?;
            let d_loss = d_loss_real.add(&d_loss_fake)?;
            discriminator_optimizer.step()?;
            // Train generator.
            generator.zero_grad();
            let fake_labels = Tensor::ones([n]);
            let fake_output = discriminator.forward(&fake_images)?.reshape([n])?;
            let g_loss = bce_loss(&fake_output, &fake_labels, Reduction::Mean)?;
            g_loss.backward()?;
            generator_optimizer.step()?;
            let batch_index = batch_index + 1;
            if batch_index % K_LOG_INTERVAL == 0 || args.max_batches == Some(batch_index) {
                last = (d_loss.item()?, g_loss.item()?);
                println!(
                    "[{epoch:2}/{:2}][{batch_index:3}/{batches_per_epoch:3}] D_loss: {:.4} | G_loss: {:.4}",
                    args.epochs, last.0, last.1
                );
            }
            if batch_index % K_CHECKPOINT_EVERY == 0 {
                let samples = generator.forward(&Tensor::randn([
                    K_NUMBER_OF_SAMPLES_PER_CHECKPOINT,
                    K_NOISE_SIZE,
                    1,
                    1,
                ]))?;
                save_samples(
                    &samples,
                    args.out
                        .join(format!("dcgan-sample-{checkpoint_counter}.png")),
                )?;
                println!("\n-> checkpoint {checkpoint_counter}");
                checkpoint_counter += 1;
            }
        }
        println!(
            "epoch {epoch}: {:.2} s training",
            start.elapsed().as_secs_f64()
        );
    }
    let samples = generator.forward(&Tensor::randn([
        K_NUMBER_OF_SAMPLES_PER_CHECKPOINT,
        K_NOISE_SIZE,
        1,
        1,
    ]))?;
    save_samples(&samples, args.out.join("dcgan-sample-final.png"))?;
    println!("Training complete!");
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
