//! What several subcommands share: finding the data, building the model,
//! evaluating it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use nabla_core::{no_grad, Tensor};
use nabla_data::{check_input_shape, DataLoader, ImageDataset, ImageSet, Mnist, Transform};
use nabla_nn::loss::{cross_entropy_with, CrossEntropyOptions, Reduction};
use nabla_nn::Module;

use crate::modelfile::{build, load_spec, FileModel};

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

/// Loss summed over the set, correct predictions, and the confusion matrix
/// (`[true][predicted]`), in eval mode without gradients.
pub struct Evaluation {
    pub loss: f32,
    pub correct: usize,
    pub total: usize,
    pub confusion: Vec<Vec<usize>>,
}

pub fn evaluate(model: &dyn Module, data: ImageDataset, batch: usize) -> Result<Evaluation> {
    let classes = data.set.classes;
    let total = data.set.len();
    let loader = DataLoader::new(data, batch.max(1))
        .shuffle(false)
        .to(model.device());
    model.eval();
    let mut ev = Evaluation {
        loss: 0.0,
        correct: 0,
        total,
        confusion: vec![vec![0; classes]; classes],
    };
    // one hand-over to the thread pool for the whole pass, not one per op
    no_grad(|| nabla_core::in_pool(|| evaluate_batches(model, &loader, &mut ev)))?;
    model.train();
    Ok(ev)
}

fn evaluate_batches(
    model: &dyn Module,
    loader: &DataLoader<ImageDataset>,
    ev: &mut Evaluation,
) -> Result<()> {
    let sum = CrossEntropyOptions {
        reduction: Reduction::Sum,
        ..Default::default()
    };
    for b in loader.epoch(0) {
        let b = b.map_err(|e| anyhow!("{e}"))?;
        let out = model.forward(&b.inputs)?;
        ev.loss += cross_entropy_with(&out, &b.targets, &sum)?.item()?;
        let pred = out.argmax(1, false)?.to_vec();
        for (p, t) in pred.iter().zip(b.targets.to_vec()) {
            ev.confusion[t as usize][*p as usize] += 1;
            ev.correct += (*p == t) as usize;
        }
    }
    Ok(())
}

/// PyTorch's test line.
pub fn test_line(ev: &Evaluation) -> String {
    format!(
        "Test set: Average loss: {:.4}, Accuracy: {}/{} ({:.0}%)",
        ev.loss / ev.total as f32,
        ev.correct,
        ev.total,
        100.0 * ev.correct as f32 / ev.total as f32
    )
}

/// Softmax probabilities of a batch of logits.
pub fn probabilities(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(logits.softmax(1)?.to_vec2()?)
}
