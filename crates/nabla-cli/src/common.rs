//! What several subcommands share: finding the data, building the model,
//! evaluating it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Result};
use nabla_core::{no_grad, Tensor};
use nabla_data::{check_input_shape, DataLoader, ImageDataset, ImageSet, Mnist, Transform};
use nabla_nn::Module;
use nabla_train::{cross_entropy_loss, Evaluation};

use nabla_nn::modelfile::{build, load_spec, FileModel};

/// A usage error: a flag's value that clap could not check alone. The
/// command exits with 2 for it, as for clap's own.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Usage(msg.into()).into()
}

/// The most threads a run may ask for: four for each core (beyond that
/// they only wait on each other, and each costs a stack).
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a thread count from `source` (a flag or NABLA_NUM_THREADS).
pub fn check_threads(n: usize, source: &str) -> Result<()> {
    if n == 0 || n > max_threads() {
        return Err(usage(format!(
            "{source} {n}: must be between 1 and {} on this machine (4 for each of its cores)",
            max_threads()
        )));
    }
    Ok(())
}

/// Normalization constants per data set (those of the reference program for MNIST).
pub fn mean_std(dataset: &str) -> (f32, f32) {
    match dataset {
        "fashion-mnist" => (0.2860, 0.3530),
        _ => (0.1307, 0.3081),
    }
}

/// Loads the named data set from `data` (or its default place), downloading first if asked.
pub fn load_data(dataset: &str, data: Option<&Path>, download: bool) -> Result<Mnist> {
    if download {
        let root = data
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("data/downloads"));
        let dir = nabla_data::download::download_dataset(
            dataset,
            &root,
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .map_err(|e| anyhow!("{e}"))?;
        return Mnist::load(dir).map_err(|e| anyhow!("{e}"));
    }
    Mnist::locate(dataset, data).map_err(|e| anyhow!("{e}"))
}

/// The data set as normalized examples.
pub fn dataset(set: ImageSet, name: &str) -> ImageDataset {
    augmented_dataset(set, name, Vec::new())
}

/// The data set through `augment` (per-image transforms), then normalized.
pub fn augmented_dataset(set: ImageSet, name: &str, mut augment: Vec<Transform>) -> ImageDataset {
    let (mean, std) = mean_std(name);
    augment.push(Transform::Normalize { mean, std });
    ImageDataset::new(set, augment)
}

/// Builds the model and checks it fits the data's examples.
pub fn model_for(
    model: &str,
    dropout: Option<f32>,
    data: &ImageDataset,
    data_name: &str,
) -> Result<FileModel> {
    let (spec, source) = load_spec(model)?;
    let m = build(&spec, &source, dropout)?;
    check_input_shape(data, &m.input, data_name).map_err(|e| anyhow!("{e} (model {model})"))?;
    let classes = data.set.classes;
    if m.output_shape() != [classes] {
        return Err(anyhow!(
            "{source}: the model outputs {:?} per example, the data has {classes} classes",
            m.output_shape()
        ));
    }
    Ok(m)
}

/// The model's summed loss, correct predictions and confusion matrix on
/// a data set (in eval mode, without gradients).
pub fn evaluate(model: &dyn Module, data: ImageDataset, batch: usize) -> Result<Evaluation> {
    if data.set.is_empty() {
        return Err(anyhow!("the test set is empty: nothing to evaluate"));
    }
    let loader = DataLoader::new(data, batch.max(1))
        .shuffle(false)
        .to(model.device());
    Ok(nabla_train::evaluate(
        model,
        &loader,
        &cross_entropy_loss(),
    )?)
}

/// Softmax probabilities of a batch of logits.
pub fn probabilities(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(logits.softmax(1)?.to_vec2()?)
}

/// Accuracy (correct predictions) and seconds of the forward passes over
/// the test images, in batches, the data already in memory.
pub fn accuracy_and_time(
    model: &dyn Module,
    x: &Tensor,
    labels: &[f32],
    batch: usize,
) -> Result<(usize, f64)> {
    let n = x.shape()[0];
    let start = Instant::now();
    let mut correct = 0;
    for i0 in (0..n).step_by(batch) {
        let len = batch.min(n - i0);
        let logits = no_grad(|| model.forward(&x.narrow(0, i0, len)?))?;
        let predicted = logits.argmax(-1, false)?.to_vec();
        correct += predicted
            .iter()
            .zip(&labels[i0..i0 + len])
            .filter(|(p, y)| p == y)
            .count();
    }
    Ok((correct, start.elapsed().as_secs_f64()))
}
