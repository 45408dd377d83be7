//! Adam and AdamW, PyTorch's formulas (t = step count, from 1):
//!
//! ```text
//! g = ∇ (negated if maximize)
//! Adam:  g = g + weight_decay·p          AdamW: p = p·(1 − lr·weight_decay)
//! m = m + (1 − β1)·(g − m)
//! v = β2·v + (1 − β2)·g²
//! v̂ = max(v̂, v) if amsgrad, else v
//! p = p − (lr / (1 − β1ᵗ)) · m / (√v̂ / √(1 − β2ᵗ) + eps)
//! ```
//! Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (Adam)
//! or 1e-2 (AdamW).

use nabla_core::{Error, Result, Tensor};

use super::{check_non_negative, OptimCore, Optimizer};
use nabla_core::backend::UpdateRule;

pub struct Adam {
    core: OptimCore,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    pub amsgrad: bool,
    pub maximize: bool,
    /// Decoupled weight decay (AdamW).
    decoupled: bool,
}

/// AdamW is Adam with decoupled weight decay.
pub type AdamW = Adam;

impl Adam {
    /// `torch.optim.Adam(params, lr)`.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Adam {
        Adam {
            core: OptimCore::new(params, lr),
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled: false,
        }
    }
    /// `torch.optim.AdamW(params, lr)` (weight decay 1e-2).
    pub fn adamw(params: Vec<Tensor>, lr: f32) -> Adam {
        Adam {
            weight_decay: 1e-2,
            decoupled: true,
            ..Adam::new(params, lr)
        }
    }
    pub fn betas(mut self, b1: f32, b2: f32) -> Self {
        self.betas = (b1, b2);
        self
    }
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    pub fn amsgrad(mut self, on: bool) -> Self {
        self.amsgrad = on;
        self
    }
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Optimizer for Adam {
    fn check(&self) -> Result<()> {
        let op = if self.decoupled { "AdamW" } else { "Adam" };
        check_non_negative(
            op,
            &[
                ("learning rate", self.core.lr),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
            ],
        )?;
        for (index, beta) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::Arg {
                    op,
                    msg: format!("invalid beta at index {index}: {beta} (must be in [0, 1))"),
                });
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        self.check()?;
        let (lr, (b1, b2), eps, wd) = (self.core.lr, self.betas, self.eps, self.weight_decay);
        let (decoupled, amsgrad) = (self.decoupled, self.amsgrad);
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(grad) = p.grad() else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            let t = slots.step[i] as i32;
            // Scalars in f64 as Python computes them, used as f32.
            let bc1 = 1.0 - (b1 as f64).powi(t);
            let bc2_sqrt = (1.0 - (b2 as f64).powi(t)).sqrt() as f32;
            let step_size = (lr as f64 / bc1) as f32;
            let names: &[&str] = match amsgrad {
                true => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
                false => &["exp_avg", "exp_avg_sq"],
            };
            let (state, _) = slots.get(i, names, p, 0.0);
            let rule = UpdateRule::Adam {
                lr,
                step_size,
                bc2_sqrt,
                beta1: b1,
                beta2: b2,
                eps,
                weight_decay: wd,
                decoupled,
            };
            p.apply_update(&rule, &grad, &state, self.maximize)?;
        }
        Ok(())
    }

    fn momentum(&self) -> Option<f32> {
        Some(self.betas.0)
    }

    fn set_momentum(&mut self, momentum: f32) -> bool {
        self.betas.0 = momentum;
        true
    }

    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
}
