//! Optimizers with PyTorch's update formulas and defaults, and gradient
//! clipping.
//!
//! Every optimizer holds the parameter tensors (handles to the model's
//! storage), reads their `.grad` in [`Optimizer::step`] and writes the new
//! values in place. Full-batch, mini-batch and stochastic gradient descent
//! are the same optimizer fed batches of the whole set, of B samples, or of
//! one sample: only the data loader's batch size differs.

mod adadelta;
mod adagrad;
mod adam;
mod clip;
mod groups;
mod lbfgs;
mod rmsprop;
mod sgd;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::{Adam, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use groups::ParamGroups;
pub use lbfgs::{Lbfgs, LineSearch};
pub use rmsprop::RMSprop;
pub use sgd::Sgd;

use nabla_core::{Error, Result, Tensor};

/// What every optimizer holds: the parameters, the learning rate and the
/// per-parameter state.
#[derive(Clone, Debug)]
pub struct OptimCore {
    pub(crate) params: Vec<Tensor>,
    pub(crate) lr: f32,
    pub(crate) slots: Slots,
}

impl OptimCore {
    pub(crate) fn new(params: Vec<Tensor>, lr: f32) -> OptimCore {
        let n = params.len();
        OptimCore {
            params,
            lr,
            slots: Slots::new(n),
        }
    }
}

pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient; an error, before
    /// anything changes, when a hyperparameter is out of range
    /// ([`check`](Self::check)).
    fn step(&mut self) -> Result<()>;
    /// PyTorch's checks of the hyperparameters, which its constructors
    /// make: a learning rate, eps, weight decay or momentum below zero (or
    /// NaN), a β outside [0, 1), … Every `step` makes them first, so a
    /// field set after construction is checked too.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    fn core(&self) -> &OptimCore;
    fn core_mut(&mut self) -> &mut OptimCore;

    /// The parameters being optimized.
    fn params(&self) -> &[Tensor] {
        &self.core().params
    }
    fn lr(&self) -> f32 {
        self.core().lr
    }
    fn set_lr(&mut self, lr: f32) {
        self.core_mut().lr = lr;
    }
    /// The momentum (SGD, RMSprop) or β1 (Adam); None for an optimizer
    /// without one.
    fn momentum(&self) -> Option<f32> {
        None
    }
    /// Sets the momentum (SGD, RMSprop) or β1 (Adam), as a OneCycle
    /// schedule cycles it; returns false, changing nothing, for an
    /// optimizer without one.
    fn set_momentum(&mut self, momentum: f32) -> bool {
        let _ = momentum;
        false
    }
    /// Internal state as named tensors, for checkpoints: step counts and
    /// moment buffers (`state.{param index}.{buffer}`), and the learning
    /// rate and momentum as they stand (`lr`, `momentum`), which schedules
    /// change.
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.core().slots.to_tensors(&self.core().params);
        state.push(("lr".into(), Tensor::scalar(self.lr())));
        if let Some(m) = self.momentum() {
            state.push(("momentum".into(), Tensor::scalar(m)));
        }
        state
    }
    /// Restores what [`state`](Self::state) returned (a state without a
    /// learning rate or momentum keeps the current ones).
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let (hyper, slots): (Vec<_>, Vec<_>) = state
            .iter()
            .cloned()
            .partition(|(k, _)| k == "lr" || k == "momentum");
        let core = self.core_mut();
        core.slots.load(&core.params, &slots)?;
        for (k, t) in hyper {
            let v = t.item()?;
            match k.as_str() {
                "lr" => self.set_lr(v),
                _ => {
                    self.set_momentum(v);
                }
            }
        }
        Ok(())
    }
    /// Forgets all gradients (`optimizer.zero_grad()`).
    fn zero_grad(&self) {
        self.params().iter().for_each(|p| p.zero_grad());
    }
}

/// A boxed optimizer is one: an optimizer chosen at run time goes where
/// any optimizer does.
impl Optimizer for Box<dyn Optimizer> {
    fn step(&mut self) -> Result<()> {
        (**self).step()
    }
    fn check(&self) -> Result<()> {
        (**self).check()
    }
    fn core(&self) -> &OptimCore {
        (**self).core()
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        (**self).core_mut()
    }
    fn params(&self) -> &[Tensor] {
        (**self).params()
    }
    fn lr(&self) -> f32 {
        (**self).lr()
    }
    fn set_lr(&mut self, lr: f32) {
        (**self).set_lr(lr)
    }
    fn momentum(&self) -> Option<f32> {
        (**self).momentum()
    }
    fn set_momentum(&mut self, momentum: f32) -> bool {
        (**self).set_momentum(momentum)
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        (**self).state()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        (**self).load_state(state)
    }
    fn zero_grad(&self) {
        (**self).zero_grad()
    }
}

/// The error for the first of `values` (name, value) that is not a finite
/// number ≥ 0, as PyTorch's optimizers refuse them (a NaN included).
pub(crate) fn check_non_negative(op: &'static str, values: &[(&str, f32)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(*v >= 0.0 && v.is_finite())) {
        Some((name, v)) => Err(Error::Arg {
            op,
            msg: format!("invalid {name}: {v} (must be a finite number >= 0)"),
        }),
        None => Ok(()),
    }
}

/// Per-parameter buffers of an optimizer, by name, allocated on first use
/// where the parameter lives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    pub step: Vec<u64>,
    pub buffers: Vec<Vec<(&'static str, Tensor)>>,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            step: vec![0; n],
            buffers: vec![vec![]; n],
        }
    }

    /// Buffers `names` of parameter `p` (the `i`-th), created filled with
    /// `init` on its device on first use; `fresh` says whether they were
    /// just created.
    pub fn get(
        &mut self,
        i: usize,
        names: &[&'static str],
        p: &Tensor,
        init: f32,
    ) -> (Vec<Tensor>, bool) {
        let bufs = &mut self.buffers[i];
        let mut fresh = false;
        for &name in names {
            if !bufs.iter().any(|(b, _)| *b == name) {
                bufs.push((name, Tensor::full_on(p.shape(), init, p.device())));
                fresh = true;
            }
        }
        let found = names
            .iter()
            .map(|name| {
                let (_, t) = bufs
                    .iter()
                    .find(|(b, _)| b == name)
                    .expect("every name was inserted above");
                t.clone()
            })
            .collect();
        (found, fresh)
    }

    pub fn to_tensors(&self, params: &[Tensor]) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (i, p) in params.iter().enumerate() {
            out.push((
                format!("state.{i}.step"),
                Tensor::scalar(self.step[i] as f32),
            ));
            for (name, t) in &self.buffers[i] {
                // a copy on the host: the checkpoint must not change with later steps
                let t = Tensor::from_vec(t.to_vec(), p.shape())
                    .expect("buffer has the parameter's size");
                out.push((format!("state.{i}.{name}"), t));
            }
        }
        out
    }

    pub fn load(&mut self, params: &[Tensor], state: &[(String, Tensor)]) -> Result<()> {
        let mut slots = Slots::new(params.len());
        for (key, t) in state {
            let bad = || Error::Arg {
                op: "load_state",
                msg: format!("unexpected optimizer state key {key:?}"),
            };
            let mut parts = key.splitn(3, '.');
            let (Some("state"), Some(i), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let i: usize = i.parse().map_err(|_| bad())?;
            let p = params.get(i).ok_or_else(bad)?;
            if name == "step" {
                slots.step[i] = t.item()? as u64;
                continue;
            }
            if t.shape() != p.shape() {
                return Err(Error::Shape {
                    op: "load_state",
                    msg: format!(
                        "{key} has shape {:?}, its parameter {:?}",
                        t.shape(),
                        p.shape()
                    ),
                });
            }
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            let t = Tensor::from_vec_on(t.to_vec(), p.shape(), p.device())?;
            slots.buffers[i].push((name, t));
        }
        *self = slots;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gradient_that_is_the_parameter_itself_is_read_before_the_write() {
        // set_grad can hand a parameter its own storage as gradient: the
        // update must copy it rather than wait on its own lock
        let p = Tensor::from_vec(vec![1.0, 2.0], [2])
            .unwrap()
            .requires_grad_(true);
        p.set_grad(Some(p.clone()));
        let mut opt = Sgd::new(vec![p.clone()], 0.5);
        opt.step().unwrap();
        assert_eq!(p.to_vec(), vec![0.5, 1.0]);
    }

    #[test]
    fn out_of_range_hyperparameters_are_refused_before_any_change() {
        let p = Tensor::from_vec(vec![1.0, 2.0], [2])
            .unwrap()
            .requires_grad_(true);
        p.set_grad(Some(Tensor::from_vec(vec![0.5, 0.5], [2]).unwrap()));
        let ps = || vec![p.clone()];
        let bad: Vec<(Box<dyn Optimizer>, &str)> = vec![
            (Box::new(Sgd::new(ps(), -0.1)), "learning rate"),
            (Box::new(Sgd::new(ps(), f32::NAN)), "learning rate"),
            (Box::new(Sgd::new(ps(), 0.1).momentum(-0.9)), "momentum"),
            (
                Box::new(Sgd::new(ps(), 0.1).weight_decay(-1.0)),
                "weight_decay",
            ),
            (Box::new(Sgd::new(ps(), 0.1).nesterov(true)), "Nesterov"),
            (
                Box::new(Adam::new(ps(), 0.1).betas(0.9, 1.0)),
                "beta at index 1",
            ),
            (
                Box::new(Adam::new(ps(), 0.1).betas(-0.1, 0.9)),
                "beta at index 0",
            ),
            (Box::new(Adam::adamw(ps(), 0.1).eps(-1e-8)), "eps"),
            (Box::new(RMSprop::new(ps(), 0.1).alpha(-0.5)), "alpha"),
            (
                Box::new(RMSprop::new(ps(), 0.1).momentum(f32::INFINITY)),
                "momentum",
            ),
            (Box::new(Adagrad::new(ps(), 0.1).lr_decay(-1.0)), "lr_decay"),
            (
                Box::new(Adagrad::new(ps(), 0.1).initial_accumulator_value(-1.0)),
                "initial_accumulator_value",
            ),
        ];
        for (mut opt, what) in bad {
            let err = opt.step().expect_err(what).to_string();
            assert!(err.contains(what), "{what}: {err}");
            assert!(opt.check().is_err(), "{what}");
            assert_eq!(p.to_vec(), vec![1.0, 2.0], "{what}: changed the parameter");
        }
        // the edges PyTorch allows
        let mut fine: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Sgd::new(ps(), 0.0).momentum(0.0)),
            Box::new(Adam::new(ps(), 0.1).betas(0.0, 0.0).eps(0.0)),
            Box::new(RMSprop::new(ps(), 0.1).alpha(0.0)),
            Box::new(Adagrad::new(ps(), 0.1)),
        ];
        fine.iter_mut().for_each(|o| o.step().unwrap());
    }
}
