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
use rayon::prelude::*;

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

    /// Buffers `names` of parameter `i` (`n` elements each), created
    /// filled with `init` on first use; `fresh` says whether they were just
    /// created.
    pub fn get(
        &mut self,
        i: usize,
        names: &[&'static str],
        n: usize,
        init: f32,
    ) -> (Vec<&mut [f32]>, bool) {
        let bufs = &mut self.buffers[i];
        let mut fresh = false;
        for &name in names {
            if !bufs.iter().any(|(b, _)| *b == name) {
                bufs.push((name, vec![init; n]));
                fresh = true;
            }
        }
        let mut found: Vec<Option<&mut [f32]>> = names.iter().map(|_| None).collect();
        for (b, v) in bufs.iter_mut() {
            if let Some(k) = names.iter().position(|name| name == b) {
                found[k] = Some(v.as_mut_slice());
            }
        }
        let out = found
            .into_iter()
            .map(|v| v.expect("every name was inserted above"))
            .collect();
        (out, fresh)
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

/// Parameters of at least two chunks are updated a chunk per task on the
/// pool's threads: an update is a few flops per element, so smaller ones are
/// not worth a hand-over.
const CHUNK: usize = 1 << 14;

/// One optimizer update of parameter `p` in a single pass over memory:
/// `f(w, g, state)` runs on matching pieces of the values (updated in
/// place), its gradient `grad` (negated when `maximize`) and each `state`
/// buffer.
///
/// The pieces are independent, so the result does not depend on how they
/// are cut: `f` must treat every element alone.
pub(crate) fn update_param(
    p: &Tensor,
    grad: &Tensor,
    maximize: bool,
    state: Vec<&mut [f32]>,
    f: impl Fn(&mut [f32], &[f32], &mut [&mut [f32]]) + Sync,
) -> Result<()> {
    if grad.numel() != p.numel() {
        return Err(Error::Shape {
            op: "optimizer step",
            msg: format!(
                "gradient of shape {:?} for a parameter of shape {:?}",
                grad.shape(),
                p.shape()
            ),
        });
    }
    let update = |g: &[f32]| {
        let negated: Vec<f32>;
        let g = if maximize {
            negated = g.iter().map(|v| -v).collect();
            &negated
        } else {
            g
        };
        p.update_data(|w| in_chunks(w, g, state, &f))
    };
    if grad.shares_storage(p) {
        // reading the gradient in place while writing the values would
        // lock the one storage twice: copy it first
        return update(&grad.to_vec());
    }
    grad.read_data(update)
}

/// One piece of an update: values, gradient, state buffers.
type Piece<'a> = (&'a mut [f32], &'a [f32], Vec<&'a mut [f32]>);

/// Runs `f` on the whole of `w`, `g` and `state` at once, or on their
/// [`pieces`] in parallel when there are at least two.
fn in_chunks(
    w: &mut [f32],
    g: &[f32],
    mut state: Vec<&mut [f32]>,
    f: &(impl Fn(&mut [f32], &[f32], &mut [&mut [f32]]) + Sync),
) {
    if w.len() < 2 * CHUNK || nabla_core::num_threads() == 1 {
        return f(w, g, &mut state);
    }
    let pieces = pieces(w, g, state);
    nabla_core::in_pool(|| {
        pieces
            .into_par_iter()
            .for_each(|(w, g, mut s)| f(w, g, &mut s))
    });
}

/// `w`, `g` and every `state` buffer cut at the same multiples of [`CHUNK`].
fn pieces<'a>(
    mut w: &'a mut [f32],
    mut g: &'a [f32],
    mut state: Vec<&'a mut [f32]>,
) -> Vec<Piece<'a>> {
    let mut out = vec![];
    while !w.is_empty() {
        let at = CHUNK.min(w.len());
        let (w0, w1) = w.split_at_mut(at);
        let (g0, g1) = g.split_at(at);
        let (mut heads, mut tails) = (vec![], vec![]);
        for s in state {
            let (h, t) = s.split_at_mut(at);
            heads.push(h);
            tails.push(t);
        }
        out.push((w0, g0, heads));
        (w, g, state) = (w1, g1, tails);
    }
    out
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

    /// An update whose result says which element it came from: chunks cut
    /// at the wrong place, or state out of step with the values, show.
    fn update(w: &mut [f32], g: &[f32], s: &mut [&mut [f32]]) {
        let [a, b] = s else { panic!("two buffers") };
        for k in 0..w.len() {
            a[k] += g[k];
            b[k] = a[k] * 2.0 + w[k];
            w[k] -= 0.5 * b[k];
        }
    }

    #[test]
    fn chunked_updates_equal_one_pass() {
        let n = 5 * CHUNK + 77;
        let values = |k: usize, s: f32| {
            (0..n)
                .map(|i| ((i * k) % 97) as f32 * s)
                .collect::<Vec<f32>>()
        };
        let g = values(3, 0.01);
        let (mut w1, mut a1, mut b1) = (values(5, 0.1), values(7, 1.0), vec![0.0; n]);
        let (mut w2, mut a2, mut b2) = (w1.clone(), a1.clone(), b1.clone());
        update(&mut w1, &g, &mut [&mut a1, &mut b1]);
        let cut = pieces(&mut w2, &g, vec![&mut a2, &mut b2]);
        assert_eq!(cut.len(), 6);
        for (w, g, mut s) in cut {
            update(w, g, &mut s);
        }
        assert_eq!(w1, w2);
        assert_eq!(a1, a2);
        assert_eq!(b1, b2);
    }
}
