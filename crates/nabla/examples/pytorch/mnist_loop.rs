//! What PyTorch's `mnist` and `mnist_rnn` examples share, as their
//! `main.py` files repeat it: the flags, the training and test loops
//! (NLL loss, `Train Epoch` and `Test set` lines), Adadelta and StepLR.
//! Each example passes its network and its default learning rate.

use nabla::data::{DataLoader, Dataset, ImageDataset, Mnist};
use nabla::in_pool;
use nabla::nn::loss::{nll_loss, Reduction};
use nabla::optim::{Adadelta, LrScheduler, Optimizer, Schedule};
use nabla::prelude::*;

pub type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The original's command-line flags, with its defaults.
pub struct Args {
    pub batch_size: usize,
    pub test_batch_size: usize,
    pub epochs: usize,
    pub lr: f32,
    pub gamma: f32,
    pub seed: u64,
    pub log_interval: usize,
    pub dry_run: bool,
    pub data: Option<String>,
}

impl Args {
    /// `--batch-size 64 --test-batch-size 1000 --epochs 14 --lr LR
    /// --gamma 0.7 --seed 1 --log-interval 10 [--dry-run] [--data DIR]`,
    /// with the example's default `lr`.
    pub fn parse(args: &[String], lr: f32) -> AnyResult<Args> {
        let mut a = Args {
            batch_size: 64,
            test_batch_size: 1000,
            epochs: 14,
            lr,
            gamma: 0.7,
            seed: 1,
            log_interval: 10,
            dry_run: false,
            data: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--dry-run" {
                a.dry_run = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--batch-size" => a.batch_size = value.parse().map_err(|e| bad(&e))?,
                "--test-batch-size" => a.test_batch_size = value.parse().map_err(|e| bad(&e))?,
                "--epochs" => a.epochs = value.parse().map_err(|e| bad(&e))?,
                "--lr" => a.lr = value.parse().map_err(|e| bad(&e))?,
                "--gamma" => a.gamma = value.parse().map_err(|e| bad(&e))?,
                "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
                "--log-interval" => a.log_interval = value.parse().map_err(|e| bad(&e))?,
                "--data" => a.data = Some(value.clone()),
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        if a.batch_size == 0 || a.test_batch_size == 0 || a.log_interval == 0 {
            return Err(
                "--batch-size, --test-batch-size and --log-interval must be positive".into(),
            );
        }
        Ok(a)
    }
}

/// `def train(args, model, device, train_loader, optimizer, epoch)`.
fn train(
    args: &Args,
    model: &dyn Module,
    train_loader: &DataLoader<ImageDataset>,
    optimizer: &mut Adadelta,
    epoch: usize,
) -> AnyResult<()> {
    model.train();
    let n = train_loader.dataset().len();
    for (batch_idx, batch) in train_loader.epoch(epoch).enumerate() {
        let batch = batch?;
        let (data, target) = (&batch.inputs, &batch.targets);
        let loss = in_pool(|| -> nabla::Result<Tensor> {
            optimizer.zero_grad();
            let output = model.forward(data)?;
            let loss = nll_loss(&output, target, None, Reduction::Mean)?;
            loss.backward()?;
            optimizer.step()?;
            Ok(loss)
        })?;
        if batch_idx % args.log_interval == 0 {
            println!(
                "Train Epoch: {epoch} [{}/{n} ({:.0}%)]\tLoss: {:.6}",
                batch_idx * data.shape()[0],
                100.0 * batch_idx as f32 / train_loader.len() as f32,
                loss.item()?
            );
            if args.dry_run {
                break;
            }
        }
    }
    Ok(())
}

/// `def test(model, device, test_loader)`: the average loss and the
/// number right.
fn test(model: &dyn Module, test_loader: &DataLoader<ImageDataset>) -> AnyResult<(f32, usize)> {
    model.eval();
    let (mut test_loss, mut correct) = (0f32, 0f32);
    no_grad(|| -> AnyResult<()> {
        for batch in test_loader.epoch(0) {
            let batch = batch?;
            let output = model.forward(&batch.inputs)?;
            test_loss += nll_loss(&output, &batch.targets, None, Reduction::Sum)?.item()?;
            let pred = output.argmax(1, false)?;
            correct += pred.eq(&batch.targets)?.sum_all()?.item()?;
        }
        Ok(())
    })?;
    let n = test_loader.dataset().len();
    test_loss /= n as f32;
    println!(
        "\nTest set: Average loss: {test_loss:.4}, Accuracy: {correct}/{n} ({:.0}%)\n",
        100.0 * correct / n as f32
    );
    Ok((test_loss, correct as usize))
}

/// `def main()` with the network `net` makes (after seeding): returns
/// the last epoch's test loss and accuracy.
pub fn run<M: Module>(args: &Args, net: impl FnOnce() -> M) -> AnyResult<(f32, usize)> {
    manual_seed(args.seed);
    let device = Device::best_available();
    let data = Mnist::locate("mnist", args.data.as_deref().map(std::path::Path::new))?;
    // transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))
    let train_loader = DataLoader::new(ImageDataset::mnist_normalized(data.train), args.batch_size)
        .seed(args.seed)
        .to(device);
    let test_loader = DataLoader::new(
        ImageDataset::mnist_normalized(data.test),
        args.test_batch_size,
    )
    .shuffle(false)
    .to(device);
    let model = net();
    model.to(device)?;
    let mut optimizer = Adadelta::new(model.parameters(), args.lr);
    let mut scheduler = LrScheduler::new(
        Schedule::Step {
            step_size: 1,
            gamma: args.gamma,
        },
        &mut optimizer,
    );
    let mut last = (f32::NAN, 0);
    for epoch in 1..=args.epochs {
        let start = std::time::Instant::now();
        train(args, &model, &train_loader, &mut optimizer, epoch)?;
        let seconds = start.elapsed().as_secs_f64();
        last = test(&model, &test_loader)?;
        println!("epoch {epoch}: {seconds:.2} s training");
        scheduler.step(&mut optimizer);
    }
    Ok(last)
}

/// The programs' `main`: the command line's flags, errors on stderr.
pub fn main_with<M: Module>(lr: f32, net: impl FnOnce() -> M) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = Args::parse(&args, lr).and_then(|a| run(&a, net)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
