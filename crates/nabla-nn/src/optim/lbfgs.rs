//! L-BFGS (PyTorch's `torch.optim.LBFGS`, after minFunc): a quasi-Newton
//! method that keeps the last `history_size` steps `s` and gradient changes
//! `y` and turns the gradient into a direction with the two-loop recursion
//! (`H₀ = yᵀs / yᵀy`). Each `step_with(closure)` runs up to `max_iter`
//! iterations, re-evaluating the loss and gradient through the closure;
//! the step length is `lr` (`min(1, 1/‖g‖₁)·lr` on the very first), or
//! comes from a line search meeting the strong Wolfe conditions
//! (`c1 = 1e-4`, `c2 = 0.9`, cubic interpolation, at most 25 evaluations).
//! It stops when the largest gradient is below `tolerance_grad`, or a step
//! or the loss changes less than `tolerance_change`.
//!
//! Defaults as PyTorch: lr 1, max_iter 20, max_eval 1.25·max_iter,
//! tolerance_grad 1e-7, tolerance_change 1e-9, history 100, no line
//! search. The parameters are seen as one flat vector on the host (the
//! algorithm branches on dot products at every step); the model runs
//! where its parameters live.

use nabla_core::{no_grad, Error, Result, Tensor};

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// `a ← a + alpha·b`.
fn axpy(a: &mut [f32], alpha: f32, b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += alpha * y);
}

/// The minimizer of the cubic through `(x1, f1)`, `(x2, f2)` with slopes
/// `g1`, `g2`, clamped to `bounds` (default: between x1 and x2); their
/// middle when the cubic has no minimum.
fn cubic_interpolate(p1: (f32, f32, f32), p2: (f32, f32, f32), bounds: Option<(f32, f32)>) -> f32 {
    let ((x1, f1, g1), (x2, f2, g2)) = (p1, p2);
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        min_pos.max(lo).min(hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// Which line search [`Lbfgs`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSearch {
    /// Steps of `lr` (PyTorch's `line_search_fn=None`).
    None,
    /// PyTorch's `line_search_fn="strong_wolfe"`.
    StrongWolfe,
}

/// What the iterations carry from one `step_with` to the next.
#[derive(Default)]
struct History {
    d: Vec<f32>,
    t: f32,
    old_dirs: Vec<Vec<f32>>,
    old_stps: Vec<Vec<f32>>,
    ro: Vec<f32>,
    h_diag: f32,
    prev_flat_grad: Option<Vec<f32>>,
    prev_loss: f32,
    n_iter: usize,
    func_evals: usize,
}

pub struct Lbfgs {
    params: Vec<Tensor>,
    pub lr: f32,
    pub max_iter: usize,
    pub max_eval: Option<usize>,
    pub tolerance_grad: f32,
    pub tolerance_change: f32,
    pub history_size: usize,
    pub line_search: LineSearch,
    state: History,
}

impl Lbfgs {
    /// `torch.optim.LBFGS(params, lr)`.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Lbfgs {
        Lbfgs {
            params,
            lr,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search: LineSearch::None,
            state: History::default(),
        }
    }
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    pub fn history_size(mut self, n: usize) -> Self {
        self.history_size = n;
        self
    }
    pub fn line_search(mut self, ls: LineSearch) -> Self {
        self.line_search = ls;
        self
    }

    /// Forgets every parameter's gradient.
    pub fn zero_grad(&self) {
        self.params.iter().for_each(|p| p.zero_grad());
    }

    /// Loss evaluations so far (PyTorch's `state['func_evals']`).
    pub fn func_evals(&self) -> usize {
        self.state.func_evals
    }

    fn flat_grad(&self) -> Vec<f32> {
        let mut g = Vec::new();
        for p in &self.params {
            match p.grad() {
                Some(gr) => g.extend(gr.to_vec()),
                None => g.resize(g.len() + p.numel(), 0.0),
            }
        }
        g
    }

    fn flat_params(&self) -> Vec<f32> {
        self.params.iter().flat_map(|p| p.to_vec()).collect()
    }

    /// Writes `x` (flat) into the parameters.
    fn set_params(&self, x: &[f32]) -> Result<()> {
        let mut at = 0;
        no_grad(|| {
            for p in &self.params {
                let n = p.numel();
                p.copy_from(&Tensor::from_vec(x[at..at + n].to_vec(), p.shape())?)?;
                at += n;
            }
            Ok(())
        })
    }

    /// The parameters moved by `t·d`.
    fn add_grad(&self, t: f32, d: &[f32]) -> Result<()> {
        let mut x = self.flat_params();
        axpy(&mut x, t, d);
        self.set_params(&x)
    }

    /// Loss and flat gradient at `x + t·d`, the parameters left at `x`.
    fn directional_evaluate(
        &self,
        closure: &mut dyn FnMut() -> Result<Tensor>,
        x: &[f32],
        t: f32,
        d: &[f32],
    ) -> Result<(f32, Vec<f32>)> {
        self.add_grad(t, d)?;
        let loss = closure()?.item()?;
        let g = self.flat_grad();
        self.set_params(x)?;
        Ok((loss, g))
    }

    /// One optimization step: up to `max_iter` iterations, the loss and
    /// gradient re-evaluated by `closure` (which zeroes the gradients,
    /// computes the loss, calls `backward` and returns the loss). Returns
    /// the loss from the first evaluation, as PyTorch does.
    pub fn step_with(&mut self, mut closure: impl FnMut() -> Result<Tensor>) -> Result<f32> {
        if !(self.lr > 0.0 && self.lr.is_finite()) || self.max_iter == 0 || self.history_size == 0 {
            return Err(Error::Arg {
                op: "LBFGS",
                msg: format!(
                    "lr must be positive, max_iter and history_size at least 1: got {}, {}, {}",
                    self.lr, self.max_iter, self.history_size
                ),
            });
        }
        let max_eval = self.max_eval.unwrap_or(self.max_iter * 5 / 4);
        let orig_loss = closure()?.item()?;
        let mut loss = orig_loss;
        let mut current_evals = 1;
        self.state.func_evals += 1;
        let mut flat_grad = self.flat_grad();
        if max_abs(&flat_grad) <= self.tolerance_grad {
            return Ok(orig_loss);
        }
        let mut st = std::mem::take(&mut self.state);
        let mut n_iter = 0;
        while n_iter < self.max_iter {
            n_iter += 1;
            st.n_iter += 1;
            if st.n_iter == 1 {
                st.d = flat_grad.iter().map(|g| -g).collect();
                (st.old_dirs, st.old_stps, st.ro, st.h_diag) = (vec![], vec![], vec![], 1.0);
            } else {
                // the newest pair (y, s), if it keeps the curvature positive
                let prev = st
                    .prev_flat_grad
                    .as_ref()
                    .expect("set after the first iteration");
                let y: Vec<f32> = flat_grad.iter().zip(prev).map(|(a, b)| a - b).collect();
                let s: Vec<f32> = st.d.iter().map(|v| v * st.t).collect();
                let ys = dot(&y, &s);
                if ys > 1e-10 {
                    if st.old_dirs.len() == self.history_size {
                        st.old_dirs.remove(0);
                        st.old_stps.remove(0);
                        st.ro.remove(0);
                    }
                    st.h_diag = ys / dot(&y, &y);
                    st.old_dirs.push(y);
                    st.old_stps.push(s);
                    st.ro.push(1.0 / ys);
                }
                // two-loop recursion: d = −H·g
                let m = st.old_dirs.len();
                let mut al = vec![0f32; m];
                let mut q: Vec<f32> = flat_grad.iter().map(|g| -g).collect();
                for i in (0..m).rev() {
                    al[i] = dot(&st.old_stps[i], &q) * st.ro[i];
                    axpy(&mut q, -al[i], &st.old_dirs[i]);
                }
                let mut r: Vec<f32> = q.iter().map(|v| v * st.h_diag).collect();
                for i in 0..m {
                    let be_i = dot(&st.old_dirs[i], &r) * st.ro[i];
                    axpy(&mut r, al[i] - be_i, &st.old_stps[i]);
                }
                st.d = r;
            }
            st.prev_flat_grad = Some(flat_grad.clone());
            st.prev_loss = loss;
            st.t = match st.n_iter {
                1 => (1.0f32).min(1.0 / flat_grad.iter().map(|g| g.abs()).sum::<f32>()) * self.lr,
                _ => self.lr,
            };
            let gtd = dot(&flat_grad, &st.d);
            if gtd > -self.tolerance_change {
                break;
            }
            let mut ls_func_evals = 0;
            let mut opt_cond = false;
            match self.line_search {
                LineSearch::StrongWolfe => {
                    let x_init = self.flat_params();
                    let d = st.d.clone();
                    let (l, g, t, evals) =
                        self.strong_wolfe(&mut closure, &x_init, st.t, &d, loss, &flat_grad, gtd)?;
                    (loss, flat_grad, st.t, ls_func_evals) = (l, g, t, evals);
                    self.add_grad(st.t, &st.d)?;
                    opt_cond = max_abs(&flat_grad) <= self.tolerance_grad;
                }
                LineSearch::None => {
                    self.add_grad(st.t, &st.d)?;
                    if n_iter != self.max_iter {
                        loss = closure()?.item()?;
                        flat_grad = self.flat_grad();
                        opt_cond = max_abs(&flat_grad) <= self.tolerance_grad;
                        ls_func_evals = 1;
                    }
                }
            }
            current_evals += ls_func_evals;
            st.func_evals += ls_func_evals;
            let step = max_abs(&st.d) * st.t.abs();
            if n_iter == self.max_iter
                || current_evals >= max_eval
                || opt_cond
                || step <= self.tolerance_change
                || (loss - st.prev_loss).abs() < self.tolerance_change
            {
                break;
            }
        }
        self.state = st;
        Ok(orig_loss)
    }

    /// A step length along `d` from `x` meeting the strong Wolfe
    /// conditions: the loss, the gradient and the step there, and the
    /// evaluations it took (PyTorch's `_strong_wolfe`).
    #[allow(clippy::too_many_arguments)]
    fn strong_wolfe(
        &self,
        closure: &mut dyn FnMut() -> Result<Tensor>,
        x: &[f32],
        mut t: f32,
        d: &[f32],
        f: f32,
        g: &[f32],
        gtd: f32,
    ) -> Result<(f32, Vec<f32>, f32, usize)> {
        let (c1, c2, max_ls) = (1e-4f32, 0.9f32, 25);
        let d_norm = max_abs(d);
        let (mut f_new, mut g_new) = self.directional_evaluate(closure, x, t, d)?;
        let mut evals = 1;
        let mut gtd_new = dot(&g_new, d);
        let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0f32, f, g.to_vec(), gtd);
        let mut done = false;
        let mut ls_iter = 0;
        // brackets: (step, loss, gradient, slope) at each end
        let mut bracket: Vec<(f32, f32, Vec<f32>, f32)> = vec![];
        while ls_iter < max_ls {
            if f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
                bracket = vec![
                    (t_prev, f_prev, g_prev, gtd_prev),
                    (t, f_new, g_new.clone(), gtd_new),
                ];
                break;
            }
            if gtd_new.abs() <= -c2 * gtd {
                bracket = vec![(t, f_new, g_new.clone(), gtd_new)];
                done = true;
                break;
            }
            if gtd_new >= 0.0 {
                bracket = vec![
                    (t_prev, f_prev, g_prev, gtd_prev),
                    (t, f_new, g_new.clone(), gtd_new),
                ];
                break;
            }
            // extrapolate
            let (min_step, max_step) = (t + 0.01 * (t - t_prev), t * 10.0);
            let tmp = t;
            t = cubic_interpolate(
                (t_prev, f_prev, gtd_prev),
                (t, f_new, gtd_new),
                Some((min_step, max_step)),
            );
            (t_prev, f_prev, g_prev, gtd_prev) = (tmp, f_new, g_new.clone(), gtd_new);
            (f_new, g_new) = self.directional_evaluate(closure, x, t, d)?;
            evals += 1;
            gtd_new = dot(&g_new, d);
            ls_iter += 1;
        }
        if ls_iter == max_ls {
            bracket = vec![
                (0.0, f, g.to_vec(), gtd),
                (t, f_new, g_new.clone(), gtd_new),
            ];
        }
        // zoom: shrink the bracket until a point meets the conditions
        let mut insuf_progress = false;
        let order = |b: &[(f32, f32, Vec<f32>, f32)]| {
            if b[0].1 <= b[b.len() - 1].1 {
                (0, 1)
            } else {
                (1, 0)
            }
        };
        let (mut low, mut high) = order(&bracket);
        while !done && ls_iter < max_ls {
            let (b0, b1) = (bracket[0].0, bracket[1].0);
            if (b1 - b0).abs() * d_norm < self.tolerance_change {
                break;
            }
            t = cubic_interpolate(
                (b0, bracket[0].1, bracket[0].3),
                (b1, bracket[1].1, bracket[1].3),
                None,
            );
            let (lo, hi) = (b0.min(b1), b0.max(b1));
            let eps = 0.1 * (hi - lo);
            if (hi - t).min(t - lo) < eps {
                // too close to an end: step away, unless the last step was
                // fine
                if insuf_progress || t >= hi || t <= lo {
                    t = if (t - hi).abs() < (t - lo).abs() {
                        hi - eps
                    } else {
                        lo + eps
                    };
                    insuf_progress = false;
                } else {
                    insuf_progress = true;
                }
            } else {
                insuf_progress = false;
            }
            (f_new, g_new) = self.directional_evaluate(closure, x, t, d)?;
            evals += 1;
            gtd_new = dot(&g_new, d);
            ls_iter += 1;
            if f_new > f + c1 * t * gtd || f_new >= bracket[low].1 {
                bracket[high] = (t, f_new, g_new.clone(), gtd_new);
                (low, high) = order(&bracket);
            } else {
                if gtd_new.abs() <= -c2 * gtd {
                    done = true;
                } else if gtd_new * (bracket[high].0 - bracket[low].0) >= 0.0 {
                    bracket[high] = bracket[low].clone();
                }
                bracket[low] = (t, f_new, g_new.clone(), gtd_new);
            }
        }
        let (t, f_new, g_new, _) = bracket.swap_remove(low);
        Ok((f_new, g_new, t, evals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ (p − c)²` from anywhere: L-BFGS lands on c (a quadratic is
    /// solved within a few iterations) and then stops on the gradient.
    #[test]
    fn solves_a_quadratic() {
        for search in [LineSearch::None, LineSearch::StrongWolfe] {
            let c = Tensor::from_vec(vec![1.0, -2.0, 0.5], [3]).unwrap();
            let p = Tensor::zeros([3]).requires_grad_(true);
            let mut opt = Lbfgs::new(vec![p.clone()], 1.0).line_search(search);
            for _ in 0..3 {
                opt.step_with(|| {
                    p.zero_grad();
                    let d = p.sub(&c)?;
                    let loss = d.mul(&d)?.sum_all()?;
                    loss.backward()?;
                    Ok(loss)
                })
                .unwrap();
            }
            for (a, b) in p.to_vec().iter().zip(c.to_vec()) {
                assert!((a - b).abs() < 1e-4, "{search:?}: {a} against {b}");
            }
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let p = Tensor::zeros([2]).requires_grad_(true);
        let loss = || Ok(Tensor::scalar(0.0));
        assert!(Lbfgs::new(vec![p.clone()], 0.0).step_with(loss).is_err());
        assert!(Lbfgs::new(vec![p], 1.0)
            .max_iter(0)
            .step_with(loss)
            .is_err());
    }
}
