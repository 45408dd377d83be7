//! Stochastic gradient descent, PyTorch's formula:
//!
//! ```text
//! g = ∇ (negated if maximize) + weight_decay·p
//! b = g                          on the first step (momentum > 0)
//! b = momentum·b + (1 − dampening)·g   afterwards
//! g = g + momentum·b  if nesterov, else g = b
//! p = p − lr·g
//! ```

use nabla_core::{Error, Result, Tensor};

use super::{check_non_negative, OptimCore, Optimizer};
use nabla_core::backend::UpdateRule;

pub struct Sgd {
    core: OptimCore,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Sgd {
    /// `torch.optim.SGD(params, lr)`; set the other fields (or use the
    /// builder methods) for momentum and the rest.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Sgd {
        Sgd {
            core: OptimCore::new(params, lr),
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    pub fn dampening(mut self, d: f32) -> Self {
        self.dampening = d;
        self
    }
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Optimizer for Sgd {
    fn check(&self) -> Result<()> {
        check_non_negative(
            "SGD",
            &[
                ("learning rate", self.core.lr),
                ("momentum", self.momentum),
                ("dampening", self.dampening),
                ("weight_decay", self.weight_decay),
            ],
        )?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Arg {
                op: "SGD",
                msg: "Nesterov momentum requires a momentum and zero dampening".into(),
            });
        }
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        self.check()?;
        let (lr, mu, damp, wd) = (
            self.core.lr,
            self.momentum,
            self.dampening,
            self.weight_decay,
        );
        let nesterov = self.nesterov;
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(grad) = p.grad() else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            let (state, fresh) = match mu != 0.0 {
                true => slots.get(i, &["momentum_buffer"], p, 0.0),
                false => (vec![], false),
            };
            let rule = UpdateRule::Sgd {
                lr,
                momentum: mu,
                dampening: damp,
                weight_decay: wd,
                nesterov,
                first_step: fresh,
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
