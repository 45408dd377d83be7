//! PyTorch's `mnist_hogwild` example (github.com/pytorch/examples,
//! `mnist_hogwild/main.py` and `train.py`), ported line by line: Hogwild!
//! training, several workers updating one shared model without waiting
//! for each other. The original forks processes over a model in shared
//! memory; here the workers are threads over the same parameter tensors
//! (each update takes the parameter's lock for its one pass, so no
//! worker ever sees half an update). Each worker has its own SGD (lr
//! 0.01, momentum 0.5) and its own shuffled order of the data; then the
//! shared model is tested. Net: conv 1→10 5×5, max-pool, ReLU, conv 10→20
//! 5×5, Dropout2d, max-pool, ReLU, 320 → 50, dropout, 50 → 10,
//! log-softmax. Its data is the 7,996 + 2,004 shipped digits.
//!
//!     cargo run --release --example pytorch_mnist_hogwild -- --num-processes 2 --epochs 1

use nabla::data::{DataLoader, Dataset, ImageDataset, Mnist};
use nabla::nn::loss::{nll_loss, Reduction};
use nabla::nn::{prefixed, Conv2d, Dropout, Dropout2d, Linear};
use nabla::optim::{Optimizer, Sgd};
use nabla::prelude::*;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;
/// A worker's result, sent back across its thread.
type WorkerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `class Net(nn.Module)`.
pub struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    conv2_drop: Dropout2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    pub fn new() -> Net {
        Net {
            conv1: Conv2d::new(1, 10, 5),
            conv2: Conv2d::new(10, 20, 5),
            conv2_drop: Dropout2d::new(0.5),
            fc1: Linear::new(320, 50),
            fc2: Linear::new(50, 10),
            dropout: Dropout::new(0.5),
        }
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
        self.conv2_drop.set_training(on);
        self.dropout.set_training(on);
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> nabla::Result<Tensor> {
        let x = self.conv1.forward(x)?.max_pool2d(2)?.relu()?;
        let x = self
            .conv2_drop
            .forward(&self.conv2.forward(&x)?)?
            .max_pool2d(2)?
            .relu()?;
        let x = x.reshape([-1, 320])?;
        let x = self.fc1.forward(&x)?.relu()?;
        let x = self.dropout.forward(&x)?;
        self.fc2.forward(&x)?.log_softmax(1)
    }
}

/// The original's flags, with its defaults.
pub struct Args {
    pub batch_size: usize,
    pub test_batch_size: usize,
    pub epochs: usize,
    pub lr: f32,
    pub momentum: f32,
    pub seed: u64,
    pub log_interval: usize,
    pub num_processes: usize,
    pub dry_run: bool,
}

impl Args {
    /// `--batch-size 64 --test-batch-size 1000 --epochs 10 --lr 0.01
    /// --momentum 0.5 --seed 1 --log-interval 10 --num-processes 2
    /// [--dry-run]`.
    pub fn parse(args: &[String]) -> AnyResult<Args> {
        let mut a = Args {
            batch_size: 64,
            test_batch_size: 1000,
            epochs: 10,
            lr: 0.01,
            momentum: 0.5,
            seed: 1,
            log_interval: 10,
            num_processes: 2,
            dry_run: false,
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
                "--momentum" => a.momentum = value.parse().map_err(|e| bad(&e))?,
                "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
                "--log-interval" => a.log_interval = value.parse().map_err(|e| bad(&e))?,
                "--num-processes" => a.num_processes = value.parse().map_err(|e| bad(&e))?,
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        if a.batch_size == 0
            || a.test_batch_size == 0
            || a.log_interval == 0
            || a.num_processes == 0
        {
            return Err("--batch-size, --test-batch-size, --log-interval and --num-processes must be positive".into());
        }
        Ok(a)
    }
}

/// `train.py`'s `train(rank, args, model, device, dataset, dataloader_kwargs)`:
/// one worker's epochs over its own shuffled order of the data.
fn train(rank: usize, args: &Args, model: &Net, data: ImageDataset) -> WorkerResult {
    // each worker its own order (the original seeds each process seed + rank)
    let train_loader = DataLoader::new(data, args.batch_size).seed(args.seed + rank as u64);
    let mut optimizer = Sgd::new(model.parameters(), args.lr).momentum(args.momentum);
    for epoch in 1..=args.epochs {
        let n = train_loader.dataset().len();
        for (batch_idx, batch) in train_loader.epoch(epoch).enumerate() {
            let batch = batch?;
            optimizer.zero_grad();
            let output = model.forward(&batch.inputs)?;
            let loss = nll_loss(&output, &batch.targets, None, Reduction::Mean)?;
            loss.backward()?;
            optimizer.step()?;
            if batch_idx % args.log_interval == 0 {
                println!(
                    "worker {rank}\tTrain Epoch: {epoch} [{}/{n} ({:.0}%)]\tLoss: {:.6}",
                    batch_idx * batch.inputs.shape()[0],
                    100.0 * batch_idx as f32 / train_loader.len() as f32,
                    loss.item()?
                );
                if args.dry_run {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// `train.py`'s `test(args, model, device, dataset, dataloader_kwargs)`.
fn test(args: &Args, model: &Net, data: ImageDataset) -> AnyResult<(f32, usize)> {
    let test_loader = DataLoader::new(data, args.test_batch_size).shuffle(false);
    model.eval();
    let (mut test_loss, mut correct) = (0f32, 0f32);
    no_grad(|| -> AnyResult<()> {
        for batch in test_loader.epoch(0) {
            let batch = batch?;
            let output = model.forward(&batch.inputs)?;
            test_loss += nll_loss(&output, &batch.targets, None, Reduction::Sum)?.item()?;
            correct += output
                .argmax(1, false)?
                .eq(&batch.targets)?
                .sum_all()?
                .item()?;
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

/// `main.py`: the workers train the one model at once, then it is tested.
pub fn run(args: &Args) -> AnyResult<(f32, usize)> {
    manual_seed(args.seed);
    let data = Mnist::shipped()?;
    let model = Net::new();
    model.train();
    let start = std::time::Instant::now();
    std::thread::scope(|s| -> AnyResult<()> {
        let workers: Vec<_> = (0..args.num_processes)
            .map(|rank| {
                let (model, set) = (&model, data.train.clone());
                s.spawn(move || train(rank, args, model, ImageDataset::mnist_normalized(set)))
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| "a worker panicked")?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    println!("{:.2} s training", start.elapsed().as_secs_f64());
    // once training is complete, we can test the model
    test(args, &model, ImageDataset::mnist_normalized(data.test))
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = Args::parse(&args).and_then(|a| run(&a)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
