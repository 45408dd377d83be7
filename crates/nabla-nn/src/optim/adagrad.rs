//! Adagrad, PyTorch's formula (t = step count, from 1):
//!
//! ```text
//! g = ∇ (negated if maximize) + weight_decay·p
//! clr = lr / (1 + (t − 1)·lr_decay)
//! s = s + g²
//! p = p − clr · g / (√s + eps)
//! ```
//! Defaults: lr 1e-2, lr_decay 0, eps 1e-10, initial accumulator 0.

use nabla_core::{Result, Tensor};

use super::{check_non_negative, OptimCore, Optimizer};
use nabla_core::backend::UpdateRule;

pub struct Adagrad {
    core: OptimCore,
    pub lr_decay: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub initial_accumulator_value: f32,
    pub maximize: bool,
}

impl Adagrad {
    pub fn new(params: Vec<Tensor>, lr: f32) -> Adagrad {
        Adagrad {
            core: OptimCore::new(params, lr),
            lr_decay: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            maximize: false,
        }
    }
    pub fn lr_decay(mut self, d: f32) -> Self {
        self.lr_decay = d;
        self
    }
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    pub fn initial_accumulator_value(mut self, v: f32) -> Self {
        self.initial_accumulator_value = v;
        self
    }
    pub fn eps(mut self, e: f32) -> Self {
        self.eps = e;
        self
    }
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Optimizer for Adagrad {
    fn check(&self) -> Result<()> {
        check_non_negative(
            "Adagrad",
            &[
                ("learning rate", self.core.lr),
                ("lr_decay", self.lr_decay),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
                ("initial_accumulator_value", self.initial_accumulator_value),
            ],
        )
    }

    fn step(&mut self) -> Result<()> {
        self.check()?;
        let (lr, decay, eps, wd, init) = (
            self.core.lr,
            self.lr_decay,
            self.eps,
            self.weight_decay,
            self.initial_accumulator_value,
        );
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(grad) = p.grad() else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            let clr = (lr as f64 / (1.0 + (slots.step[i] - 1) as f64 * decay as f64)) as f32;
            let (state, _) = slots.get(i, &["sum"], p, init);
            let rule = UpdateRule::Adagrad {
                lr: clr,
                eps,
                weight_decay: wd,
            };
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
