//! Evaluation: a model's summed loss over a data set and, for
//! classification, its correct predictions and confusion matrix; and what
//! the [`Trainer`](crate::Trainer) is fed with ([`BatchSource`]).

use nabla_core::{no_grad, Tensor};
use nabla_data::{Batch, DataLoader, Dataset};
use nabla_nn::loss::{cross_entropy_with, CrossEntropyOptions, Reduction};
use nabla_nn::Module;

use crate::error::Result;

/// Batches, epoch by epoch: what the trainer trains and evaluates on.
/// [`DataLoader`] is one, [`RandomWindows`](crate::windows::RandomWindows)
/// of a text another; a source of its own implements these four methods.
pub trait BatchSource: Send + Sync {
    /// The batches of `epoch` (1-based for training; evaluation asks for 0).
    fn batches(&self, epoch: usize) -> Box<dyn Iterator<Item = Result<Batch>> + '_>;
    /// The batches of `epoch` from the `first`-th on, as a resumed run
    /// asks for them. The default makes and drops the first ones; a source
    /// whose batches draw random numbers must skip them without drawing.
    fn batches_from(
        &self,
        epoch: usize,
        first: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(self.batches(epoch).skip(first))
    }
    /// Batches in an epoch.
    fn num_batches(&self) -> usize;
    /// Examples in an epoch.
    fn num_examples(&self) -> usize;
    /// Examples in a full batch.
    fn batch_size(&self) -> usize;
}

impl<D: Dataset + 'static> BatchSource for DataLoader<D> {
    fn batches(&self, epoch: usize) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        self.batches_from(epoch, 0)
    }
    fn batches_from(
        &self,
        epoch: usize,
        first: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(self.epoch_from(epoch, first).map(|b| b.map_err(Into::into)))
    }
    fn num_batches(&self) -> usize {
        self.len()
    }
    fn num_examples(&self) -> usize {
        DataLoader::num_examples(self)
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// A loss: `(model output, targets, reduction) -> loss`. Training asks for
/// the mean, evaluation for the sum over the batch.
pub type LossFn =
    Box<dyn Fn(&Tensor, &Tensor, Reduction) -> nabla_core::Result<Tensor> + Send + Sync>;

/// Cross-entropy over class logits (`[N, C]`, or `[N, C, d…]`), the default loss.
pub fn cross_entropy_loss() -> LossFn {
    Box::new(|out, targets, reduction| {
        cross_entropy_with(
            out,
            targets,
            &CrossEntropyOptions {
                reduction,
                ..Default::default()
            },
        )
    })
}

/// Cross-entropy over the last dimension of the output, every other one
/// flattened into rows: a language model's logits `[B, T, V]` against its
/// next tokens `[B·T]` (the mean or sum over the tokens).
pub fn token_cross_entropy_loss() -> LossFn {
    Box::new(|out, targets, reduction| {
        let classes = out.shape().last().copied().unwrap_or(1);
        cross_entropy_with(
            &out.reshape([out.numel() / classes.max(1), classes])?,
            targets,
            &CrossEntropyOptions {
                reduction,
                ..Default::default()
            },
        )
    })
}

/// What an evaluation pass measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss summed over the examples (f32, as PyTorch's example sums it).
    pub loss: f32,
    /// Examples seen.
    pub total: usize,
    /// Correct predictions and `confusion[true][predicted]`, when the
    /// targets are class indices of the output's last dimension.
    pub correct: usize,
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// The mean loss per example.
    pub fn mean_loss(&self) -> f32 {
        self.loss / self.total as f32
    }
    /// The fraction of correct predictions (NaN when the targets are not classes).
    pub fn accuracy(&self) -> f32 {
        if self.confusion.is_empty() {
            return f32::NAN;
        }
        self.correct as f32 / self.total as f32
    }
    /// PyTorch's MNIST example's test line.
    pub fn test_line(&self) -> String {
        format!(
            "Test set: Average loss: {:.4}, Accuracy: {}/{} ({:.0}%)",
            self.mean_loss(),
            self.correct,
            self.total,
            100.0 * self.correct as f32 / self.total as f32
        )
    }
}

/// Evaluates `model` on every batch of `data` (in eval mode, without
/// gradients, the model put back in training mode after).
pub fn evaluate(model: &dyn Module, data: &dyn BatchSource, loss: &LossFn) -> Result<Evaluation> {
    model.eval();
    let mut ev = Evaluation {
        loss: 0.0,
        total: 0,
        correct: 0,
        confusion: Vec::new(),
    };
    // one hand-over to the thread pool for the whole pass, not one per op
    let result = no_grad(|| nabla_core::in_pool(|| evaluate_batches(model, data, loss, &mut ev)));
    model.train();
    result?;
    Ok(ev)
}

fn evaluate_batches(
    model: &dyn Module,
    data: &dyn BatchSource,
    loss: &LossFn,
    ev: &mut Evaluation,
) -> Result<()> {
    for b in data.batches(0) {
        let b = b?.to(model.device())?;
        let out = model.forward(&b.inputs)?;
        ev.loss += loss(&out, &b.targets, Reduction::Sum)?.item()?;
        let classes = out.shape().last().copied().unwrap_or(0);
        // class indices, one per row of the output (per example, or per
        // position of a sequence): the loss is summed over them
        let class_indices = classes > 0 && b.targets.numel() * classes == out.numel();
        ev.total += match class_indices {
            true => b.targets.numel(),
            false => b.targets.shape().first().copied().unwrap_or(1),
        };
        if class_indices {
            if ev.confusion.is_empty() {
                ev.confusion = vec![vec![0; classes]; classes];
            }
            let pred = out
                .reshape([b.targets.numel(), classes])?
                .argmax(1, false)?
                .to_vec();
            for (p, t) in pred.iter().zip(b.targets.to_vec()) {
                // (an ignored target, such as -100, counts nowhere)
                if t >= 0.0 && (t as usize) < classes {
                    let (p, t) = (*p as usize, t as usize);
                    ev.confusion[t][p] += 1;
                    ev.correct += (p == t) as usize;
                }
            }
        }
    }
    Ok(())
}

/// The model's outputs for every batch of `data`, joined along the first
/// dimension (eval mode, no gradients).
pub fn predict(model: &dyn Module, data: &dyn BatchSource) -> Result<Tensor> {
    model.eval();
    let result = no_grad(|| {
        nabla_core::in_pool(|| -> Result<Tensor> {
            let mut outs = Vec::new();
            for b in data.batches(0) {
                outs.push(model.forward(&b?.inputs.to(model.device())?)?);
            }
            Ok(Tensor::cat(&outs, 0)?)
        })
    });
    model.train();
    result
}
