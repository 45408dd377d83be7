//! Optimizers with PyTorch's update formulas and defaults, and gradient
//! clipping.
//!
//! Every optimizer holds the parameter tensors (handles to the model's
//! storage), reads their `.grad` in [`Optimizer::step`] and writes the new
//! values in place. Full-batch, mini-batch and stochastic gradient descent
//! are the same optimizer fed batches of the whole set, of B samples, or of
//! one sample: only the data loader's batch size differs.

mod adagrad;
mod adam;
mod clip;
mod rmsprop;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::{Adam, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value};
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
    /// One update of every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;
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
    /// Internal state (step counts, moment buffers) as named tensors, for
    /// checkpoints: `state.{param index}.{buffer}`.
    fn state(&self) -> Vec<(String, Tensor)> {
        self.core().slots.to_tensors(&self.core().params)
    }
    /// Restores what [`state`](Self::state) returned.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let core = self.core_mut();
        core.slots.load(&core.params, state)
    }
    /// Forgets all gradients (`optimizer.zero_grad()`).
    fn zero_grad(&self) {
        self.params().iter().for_each(|p| p.zero_grad());
    }
}

/// Per-parameter buffers of an optimizer, by name, allocated on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    pub step: Vec<u64>,
    pub buffers: Vec<Vec<(&'static str, Vec<f32>)>>,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            step: vec![0; n],
            buffers: vec![vec![]; n],
        }
    }

    /// Buffer `name` of parameter `i`, created by `init` on first use;
    /// `fresh` says whether it was just created.
    pub fn get(
        &mut self,
        i: usize,
        name: &'static str,
        init: impl FnOnce() -> Vec<f32>,
    ) -> (&mut Vec<f32>, bool) {
        let bufs = &mut self.buffers[i];
        let fresh = !bufs.iter().any(|(n, _)| *n == name);
        if fresh {
            bufs.push((name, init()));
        }
        let pos = bufs
            .iter()
            .position(|(n, _)| *n == name)
            .expect("just inserted");
        (&mut bufs[pos].1, fresh)
    }

    pub fn to_tensors(&self, params: &[Tensor]) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (i, p) in params.iter().enumerate() {
            out.push((
                format!("state.{i}.step"),
                Tensor::scalar(self.step[i] as f32),
            ));
            for (name, v) in &self.buffers[i] {
                let t = Tensor::from_vec(v.clone(), p.shape())
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
            slots.buffers[i].push((name, t.to_vec()));
        }
        *self = slots;
        Ok(())
    }
}

/// The gradient of `p` as a vector (negated when maximizing), or None.
pub(crate) fn grad_of(p: &Tensor, maximize: bool) -> Option<Vec<f32>> {
    let g = p.grad()?.to_vec();
    Some(if maximize {
        g.into_iter().map(|v| -v).collect()
    } else {
        g
    })
}
