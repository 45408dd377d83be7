//! Adadelta (Zeiler 2012), PyTorch's formula:
//!
//! ```text
//! g = ∇ (negated if maximize) + weight_decay·p
//! v = ρ·v + (1 − ρ)·g²                      square_avg
//! Δ = √(u + eps) / √(v + eps) · g
//! u = ρ·u + (1 − ρ)·Δ²                      acc_delta
//! p = p − lr·Δ
//! ```
//! Defaults: lr 1.0, ρ 0.9, eps 1e-6 (the optimizer of PyTorch's MNIST
//! example, with lr 1.0 and a StepLR of γ 0.7).

use nabla_core::backend::UpdateRule;
use nabla_core::{Error, Result, Tensor};

use super::{check_non_negative, OptimCore, Optimizer};

pub struct Adadelta {
    core: OptimCore,
    pub rho: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub maximize: bool,
}

impl Adadelta {
    /// `torch.optim.Adadelta(params, lr)`.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Adadelta {
        Adadelta {
            core: OptimCore::new(params, lr),
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }
    pub fn eps(mut self, e: f32) -> Self {
        self.eps = e;
        self
    }
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Optimizer for Adadelta {
    fn check(&self) -> Result<()> {
        check_non_negative(
            "Adadelta",
            &[
                ("learning rate", self.core.lr),
                ("epsilon value", self.eps),
                ("weight_decay value", self.weight_decay),
            ],
        )?;
        if !(0.0..=1.0).contains(&self.rho) {
            return Err(Error::Arg {
                op: "Adadelta",
                msg: format!("invalid rho value: {} (must be in [0, 1])", self.rho),
            });
        }
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        self.check()?;
        let rule = UpdateRule::Adadelta {
            lr: self.core.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
        };
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(grad) = p.grad() else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            let (state, _) = slots.get(i, &["square_avg", "acc_delta"], p, 0.0);
            p.apply_update(&rule, &grad, &state, self.maximize)?;
        }
        Ok(())
    }

    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
}
