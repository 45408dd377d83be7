//! Optimizer updates, in place: `w ← rule(w, g, state)` for one parameter,
//! run by its device's backend in one pass over the values, the gradient
//! and the state buffers. No graph is recorded (the update is not part of
//! the model's function). nabla-nn's optimizers derive each step's
//! [`UpdateRule`] from their hyperparameters; the formulas are there.

use crate::backend::UpdateRule;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Applies `rule` to this parameter with gradient `grad` (negated
    /// first when `maximize`) and the rule's `state` buffers (tensors of
    /// the parameter's size on its device, updated in place too).
    pub fn apply_update(
        &self,
        rule: &UpdateRule,
        grad: &Tensor,
        state: &[Tensor],
        maximize: bool,
    ) -> Result<()> {
        let op = "optimizer step";
        if grad.numel() != self.numel() {
            return Err(Error::shape(
                op,
                format!(
                    "gradient of shape {:?} for a parameter of shape {:?}",
                    grad.shape(),
                    self.shape()
                ),
            ));
        }
        if !self.is_contiguous()
            || state
                .iter()
                .any(|s| !s.is_contiguous() || s.numel() != self.numel())
        {
            return Err(Error::arg(
                op,
                "parameters and state buffers must be contiguous and of one size",
            ));
        }
        for t in state.iter().chain([grad]) {
            super::same_device(op, self, t)?;
        }
        self.expect_f32(op)?;
        for s in state {
            s.expect_f32(op)?;
        }
        let be = self.backend();
        // a gradient that is the parameter's own storage is read before
        // the write: copied first (one lock cannot be held twice)
        let grad = match grad.shares_storage(self) {
            true => Tensor::from_storage(grad.with_view(op, |v| be.contiguous(v))?, grad.shape()),
            false => grad.clone(),
        };
        let mut guards: Vec<_> = state.iter().map(|s| s.storage_mut()).collect();
        let mut buffers: Vec<&mut crate::storage::Storage> =
            guards.iter_mut().map(|g| &mut **g).collect();
        let at = self.layout().offset()..self.layout().offset() + self.numel();
        grad.with_view(op, |g| {
            be.update(rule, &mut self.storage_mut(), at, g, &mut buffers, maximize)
        })?;
        Ok(())
    }
}
