//! [`GradientSync`]: what data-parallel training asks of the training loop.
//!
//! The [`Trainer`](crate::Trainer) knows nothing of MPI: a synchronizer
//! (nabla-distributed's `DistributedDataParallel`) is handed to it with
//! [`Trainer::sync_with`](crate::Trainer::sync_with) and the loop calls it
//! at four places:
//!
//! 1. before the first step, [`start`](GradientSync::start): every rank's
//!    model is made equal to rank 0's and the ranks' settings compared;
//! 2. around each backward pass, [`begin_backward`](GradientSync::begin_backward),
//!    [`grad_ready`](GradientSync::grad_ready) for each parameter as soon as
//!    its gradient is complete (the averaging of a layer overlaps the
//!    backward pass of the layers before it) and
//!    [`end_backward`](GradientSync::end_backward), after which every rank
//!    holds the same averaged gradients and knows whether any rank was
//!    asked to stop;
//! 3. at the end of an epoch, [`sum`](GradientSync::sum) adds up the
//!    epoch's training loss and the validation counts over the ranks, so
//!    the metrics are those of the whole data.

use nabla_core::Tensor;
use nabla_nn::Parameters;

use crate::error::Result;

/// Gradient averaging over the processes of a data-parallel run.
pub trait GradientSync: Send {
    /// This process's rank (0 is the one that prints and writes).
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world_size(&self) -> usize;
    /// Before the first step: every rank's parameters and buffers set to
    /// rank 0's; an error when the ranks do not run the same model.
    fn start(&mut self, model: &dyn Parameters) -> Result<()>;
    /// Before each backward pass; `reduce` is false on the batches whose
    /// gradients are only accumulated (no optimizer step follows them:
    /// PyTorch's `no_sync`), so only a step's last backward communicates.
    /// `stop`: this rank wants the run to stop after this step (an
    /// interruption).
    fn begin_backward(&mut self, reduce: bool, stop: bool) -> Result<()>;
    /// `param`'s gradient is complete for this backward pass.
    fn grad_ready(&mut self, param: &Tensor) -> Result<()>;
    /// After the backward pass: the gradients averaged over the ranks, in
    /// place. The answer is whether any rank asked to stop, so that all
    /// stop after the same step.
    fn end_backward(&mut self) -> Result<bool>;
    /// `values` summed over the ranks, in place, the same on every rank.
    fn sum(&mut self, values: &mut [f64]) -> Result<()>;
}
