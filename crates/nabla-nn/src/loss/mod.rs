//! Loss functions, as PyTorch's `torch.nn.functional` ones. Each takes a
//! [`Reduction`]: `Mean` (the default in PyTorch), `Sum` or `None`
//! (one loss per element or sample).

mod bce;
mod cross_entropy;
mod regression;
mod soft_targets;

pub use bce::{bce_loss, bce_with_logits};
pub use cross_entropy::{
    cross_entropy, cross_entropy_with, nll_loss, CrossEntropyOptions, IGNORE_INDEX,
};
pub use regression::{huber_loss, l1_loss, mse_loss};

use nabla_core::{Error, Result, Tensor};

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
    None,
}

pub(crate) fn reduce(t: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => t.mean_all(),
        Reduction::Sum => t.sum_all(),
        Reduction::None => Ok(t),
    }
}

pub(crate) fn same_shape(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if input.shape() != target.shape() {
        return Err(Error::Shape {
            op,
            msg: format!(
                "input {:?} and target {:?} must have the same shape",
                input.shape(),
                target.shape()
            ),
        });
    }
    Ok(())
}
