//! RMSprop, PyTorch's formula:
//!
//! ```text
//! g = ∇ (negated if maximize) + weight_decay·p
//! s = α·s + (1 − α)·g²
//! centered: a = a + (1 − α)·(g − a);  d = √(s − a²) + eps,  else d = √s + eps
//! momentum > 0: b = μ·b + g/d;  p = p − lr·b,   else p = p − lr·g/d
//! ```
//! Defaults: lr 1e-2, alpha 0.99, eps 1e-8.

use nabla_core::{Result, Tensor};

use super::{check_non_negative, OptimCore, Optimizer};
use nabla_core::backend::UpdateRule;

pub struct RMSprop {
    core: OptimCore,
    pub alpha: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub momentum: f32,
    pub centered: bool,
    pub maximize: bool,
}

impl RMSprop {
    pub fn new(params: Vec<Tensor>, lr: f32) -> RMSprop {
        RMSprop {
            core: OptimCore::new(params, lr),
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
    pub fn alpha(mut self, a: f32) -> Self {
        self.alpha = a;
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
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    pub fn centered(mut self, on: bool) -> Self {
        self.centered = on;
        self
    }
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Optimizer for RMSprop {
    fn check(&self) -> Result<()> {
        check_non_negative(
            "RMSprop",
            &[
                ("learning rate", self.core.lr),
                ("alpha", self.alpha),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
                ("momentum", self.momentum),
            ],
        )
    }

    fn step(&mut self) -> Result<()> {
        self.check()?;
        let (lr, alpha, eps, wd, mu) = (
            self.core.lr,
            self.alpha,
            self.eps,
            self.weight_decay,
            self.momentum,
        );
        let centered = self.centered;
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(grad) = p.grad() else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            // PyTorch keeps grad_avg only when centered, momentum_buffer
            // only with momentum: checkpoints hold what it holds
            let mut names = vec!["square_avg"];
            if centered {
                names.push("grad_avg");
            }
            if mu > 0.0 {
                names.push("momentum_buffer");
            }
            let (state, _) = slots.get(i, &names, p, 0.0);
            let rule = UpdateRule::RmsProp {
                lr,
                alpha,
                eps,
                weight_decay: wd,
                momentum: mu,
                centered,
            };
            p.apply_update(&rule, &grad, &state, self.maximize)?;
        }
        Ok(())
    }

    fn momentum(&self) -> Option<f32> {
        Some(self.momentum)
    }

    fn set_momentum(&mut self, momentum: f32) -> bool {
        self.momentum = momentum;
        true
    }

    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
}
