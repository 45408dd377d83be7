//! Making a model smaller, in Rust: the zoo's LeNet trained on the shipped
//! digits, then half its channels and neurons pruned away (structured
//! pruning), the small model fine-tuned with the big one as its teacher
//! (distillation), and its Linear layers quantized to int8. Prints each
//! model's parameters, bytes, test accuracy and forward time.
//!
//!     cargo run --release --example smaller_models [-- EPOCHS]
//!
//! `nabla prune` and `nabla quantize` do the same from the command line.

use std::time::Instant;

use nabla::data::{DataLoader, ImageDataset, Mnist};
use nabla::nn::modelfile::prune::prune_structured;
use nabla::nn::modelfile::{build, load_spec, model_text, parse_spec};
use nabla::nn::quantized::state_bytes;
use nabla::nn::state_dict::{load_state_dict, state_dict};
use nabla::optim::Sgd;
use nabla::prelude::*;
use nabla::train::Distillation;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// What the example prints for one model.
pub struct Row {
    pub name: &'static str,
    pub parameters: usize,
    pub bytes: usize,
    pub accuracy: f32,
    pub seconds: f64,
}

/// A model's row: accuracy and forward time over the test images.
fn measure(
    name: &'static str,
    model: &dyn Module,
    test: &DataLoader<ImageDataset>,
) -> AnyResult<Row> {
    model.eval();
    let start = Instant::now();
    let ev = no_grad(|| nabla::train::evaluate(model, test, &nabla::train::cross_entropy_loss()))?;
    Ok(Row {
        name,
        // weights and biases, trainable or not (an int8 layer's are not)
        parameters: state_dict(model)
            .iter()
            .map(|(_, t)| t.numel())
            .sum::<usize>()
            + model
                .named_quantized()
                .iter()
                .map(|(_, q)| q.data.len())
                .sum::<usize>(),
        bytes: state_bytes(model),
        accuracy: ev.correct as f32 / ev.total as f32,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Trains for `epochs` (each at most `max_steps` steps), prunes, distills
/// and quantizes; returns the rows of the original, pruned and int8 models.
pub fn run(epochs: usize, max_steps: Option<usize>) -> AnyResult<Vec<Row>> {
    manual_seed(1);
    let mnist = Mnist::locate("mnist", None)?; // the shipped digits
    let train = DataLoader::new(ImageDataset::mnist_normalized(mnist.train), 64);
    let test = DataLoader::new(ImageDataset::mnist_normalized(mnist.test), 500).shuffle(false);

    // the big model: the zoo's LeNet, a model file (structured pruning rewrites it)
    let (spec, source) = load_spec("lenet")?;
    let big = build(&spec, &source, None)?;
    let sgd = Sgd::new(big.parameters(), 0.01).momentum(0.9);
    let mut trainer = Trainer::new(&big, sgd).epochs(epochs).max_steps(max_steps);
    trainer.fit(&train, None)?;
    let mut rows = vec![measure("LeNet", &big, &test)?];

    // half of every layer's channels and neurons, those of smallest L1 norm
    let (text, _) = model_text("lenet")?;
    let pruned = prune_structured(&spec, &text, &source, &state_dict(&big), 0.5)?;
    let small = build(
        &parse_spec(&pruned.toml, "pruned lenet")?,
        "pruned lenet",
        None,
    )?;
    load_state_dict(&small, &pruned.state)?;

    // fine-tuned with the big model's softened predictions besides the labels
    let sgd = Sgd::new(small.parameters(), 0.01).momentum(0.9);
    let mut trainer = Trainer::new(&small, sgd)
        .epochs(epochs)
        .max_steps(max_steps)
        .distill(Distillation::new(&big, 4.0, 0.5)?);
    trainer.fit(&train, None)?;
    rows.push(measure("pruned", &small, &test)?);

    // its Linear layers in int8 (the convolutions stay f32)
    let int8 = small.into_quantized(false)?;
    rows.push(measure("pruned int8", &int8, &test)?);
    Ok(rows)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() -> AnyResult<()> {
    let epochs = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let rows = run(epochs, None)?;
    println!(
        "\n{:<12} {:>11} {:>9} {:>9} {:>10}",
        "model", "parameters", "bytes", "accuracy", "forward"
    );
    for r in rows {
        println!(
            "{:<12} {:>11} {:>9} {:>8.2}% {:>8.3} s",
            r.name,
            r.parameters,
            r.bytes,
            100.0 * r.accuracy,
            r.seconds
        );
    }
    Ok(())
}
