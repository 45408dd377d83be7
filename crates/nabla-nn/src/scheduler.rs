//! Learning-rate schedules, as `torch.optim.lr_scheduler`. A [`Schedule`]
//! gives the learning rate at step (or epoch) t from the initial one;
//! [`LrScheduler`] applies it to an optimizer each time `step()` is called.
//!
//! - StepLR: `lr₀·γ^⌊t/step⌋`; MultiStepLR: `lr₀·γ^#{milestones ≤ t}`;
//!   ExponentialLR: `lr₀·γᵗ`;
//! - CosineAnnealingLR: `η_min + (lr₀ − η_min)·(1 + cos(π·t/T))/2`;
//! - LinearLR (linear warm-up): `lr₀·(s + (e − s)·min(t, T)/T)`;
//! - OneCycleLR: cosine from `max/div` up to `max` over the first
//!   `pct_start` of the steps, then down to `max/(div·final_div)`; with
//!   `momentum: Some((base, max))` (PyTorch's default `cycle_momentum`,
//!   0.85 and 0.95) the momentum (Adam's β1) runs the other way, from `max`
//!   down to `base` and back;
//! - WarmupCosine (nanoGPT's): `lr₀·(t + 1)/(W + 1)` for the first `W`
//!   steps, then a cosine from `lr₀` to `lr₀/d` at step `T`, and `lr₀/d` after;
//! - ReduceLROnPlateau: multiply by `factor` when a metric has not improved
//!   (relative threshold) for `patience` epochs, then wait `cooldown`.

use crate::optim::Optimizer;

/// A learning rate as a function of the step count.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Step {
        step_size: usize,
        gamma: f32,
    },
    MultiStep {
        milestones: Vec<usize>,
        gamma: f32,
    },
    Exponential {
        gamma: f32,
    },
    CosineAnnealing {
        t_max: usize,
        eta_min: f32,
    },
    Linear {
        start_factor: f32,
        end_factor: f32,
        total_iters: usize,
    },
    OneCycle {
        max_lr: f32,
        total_steps: usize,
        pct_start: f32,
        div_factor: f32,
        final_div_factor: f32,
        /// `(base_momentum, max_momentum)` to cycle, or None
        /// (`cycle_momentum=False`).
        momentum: Option<(f32, f32)>,
    },
    /// nanoGPT's: a linear warm-up over `warmup` steps, then a cosine
    /// decay to `lr₀ / final_div_factor` at step `total` (per optimizer step).
    WarmupCosine {
        warmup: usize,
        total: usize,
        final_div_factor: f32,
    },
}

impl Schedule {
    /// Learning rate at step `t` for initial rate `base`.
    pub fn lr_at(&self, t: usize, base: f32) -> f32 {
        let (t64, base64) = (t as f64, base as f64);
        let lr = match self {
            Schedule::Step { step_size, gamma } => {
                base64 * (*gamma as f64).powi((t / step_size.max(&1)) as i32)
            }
            Schedule::MultiStep { milestones, gamma } => {
                base64 * (*gamma as f64).powi(milestones.iter().filter(|&&m| m <= t).count() as i32)
            }
            Schedule::Exponential { gamma } => base64 * (*gamma as f64).powi(t as i32),
            Schedule::CosineAnnealing { t_max, eta_min } => {
                let e = *eta_min as f64;
                e + (base64 - e)
                    * (1.0 + (std::f64::consts::PI * t64 / (*t_max).max(1) as f64).cos())
                    / 2.0
            }
            Schedule::Linear {
                start_factor,
                end_factor,
                total_iters,
            } => {
                let (s, e) = (*start_factor as f64, *end_factor as f64);
                let frac = (t.min(*total_iters) as f64) / (*total_iters).max(1) as f64;
                base64 * (s + (e - s) * frac)
            }
            Schedule::OneCycle {
                max_lr,
                div_factor,
                final_div_factor,
                ..
            } => {
                let max = *max_lr as f64;
                let initial = max / *div_factor as f64;
                let min = initial / *final_div_factor as f64;
                self.one_cycle(t, (initial, max), (max, min))
            }
            // in f32, as nanoGPT's recipe has always been computed here
            Schedule::WarmupCosine {
                warmup,
                total,
                final_div_factor,
            } => warmup_cosine(t, (*warmup, *total), base, *final_div_factor) as f64,
        };
        lr as f32
    }

    /// The momentum (or β1) at step `t`, for a OneCycle schedule that
    /// cycles it; else None.
    pub fn momentum_at(&self, t: usize) -> Option<f32> {
        match self {
            Schedule::OneCycle {
                momentum: Some((base, max)),
                ..
            } => {
                let (base, max) = (*base as f64, *max as f64);
                Some(self.one_cycle(t, (max, base), (base, max)) as f32)
            }
            _ => None,
        }
    }

    /// OneCycle's two cosine phases: `up.0 → up.1` over the first
    /// `pct_start` of the steps, then `down.0 → down.1`.
    fn one_cycle(&self, t: usize, up: (f64, f64), down: (f64, f64)) -> f64 {
        let Schedule::OneCycle {
            total_steps,
            pct_start,
            ..
        } = self
        else {
            unreachable!("only OneCycle has phases")
        };
        let t = t as f64;
        let up_end = (*pct_start as f64 * *total_steps as f64) - 1.0;
        let down_end = *total_steps as f64 - 1.0;
        let cos = |(start, end): (f64, f64), pct: f64| {
            end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
        };
        if t <= up_end {
            cos(up, t / up_end)
        } else {
            cos(down, (t - up_end) / (down_end - up_end))
        }
    }
}

/// The learning rate of [`Schedule::WarmupCosine`] at step `t`.
fn warmup_cosine(t: usize, (warmup, total): (usize, usize), lr: f32, div: f32) -> f32 {
    let min = lr / div;
    if t < warmup {
        return lr * (t + 1) as f32 / (warmup + 1) as f32;
    }
    if t >= total {
        return min;
    }
    let ratio = (t - warmup) as f32 / (total - warmup).max(1) as f32;
    min + 0.5 * (1.0 + (std::f32::consts::PI * ratio).cos()) * (lr - min)
}

/// Applies a [`Schedule`] to an optimizer: call [`step`](Self::step) once per
/// epoch (or per batch for OneCycle), after the optimizer's step. A
/// schedule that cycles momentum sets it through
/// [`Optimizer::set_momentum`]; an optimizer without one (Adagrad) keeps
/// its settings.
pub struct LrScheduler {
    pub schedule: Schedule,
    base_lr: f32,
    t: usize,
}

impl LrScheduler {
    /// Starts the schedule at step 0, setting the optimizer's rate to it.
    /// For OneCycle the optimizer's own rate is ignored.
    pub fn new(schedule: Schedule, opt: &mut dyn Optimizer) -> LrScheduler {
        let base_lr = opt.lr();
        let s = LrScheduler {
            schedule,
            base_lr,
            t: 0,
        };
        s.apply(opt);
        s
    }

    pub fn step(&mut self, opt: &mut dyn Optimizer) {
        self.t += 1;
        self.apply(opt);
    }

    fn apply(&self, opt: &mut dyn Optimizer) {
        opt.set_lr(self.schedule.lr_at(self.t, self.base_lr));
        if let Some(m) = self.schedule.momentum_at(self.t) {
            opt.set_momentum(m);
        }
    }

    /// Steps taken so far (saved in checkpoints).
    pub fn steps(&self) -> usize {
        self.t
    }

    /// Resumes at step `t`.
    pub fn set_steps(&mut self, t: usize, opt: &mut dyn Optimizer) {
        self.t = t;
        self.apply(opt);
    }
}

/// `ReduceLROnPlateau(mode='min', factor, patience, threshold (relative), cooldown, min_lr)`.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    pub factor: f32,
    pub patience: usize,
    pub threshold: f32,
    pub cooldown: usize,
    pub min_lr: f32,
    /// Best metric so far, epochs without improvement, cooldown epochs
    /// left: the state a checkpoint saves.
    pub best: f32,
    pub bad_epochs: usize,
    pub cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults: factor 0.1, patience 10, threshold 1e-4, no cooldown.
    pub fn new() -> ReduceLrOnPlateau {
        ReduceLrOnPlateau {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: f32::INFINITY,
            bad_epochs: 0,
            cooldown_left: 0,
        }
    }

    /// Reports the epoch's metric (lower is better); may lower the rate.
    pub fn step(&mut self, metric: f32, opt: &mut dyn Optimizer) {
        if metric < self.best * (1.0 - self.threshold) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            let new = (opt.lr() * self.factor).max(self.min_lr);
            opt.set_lr(new);
            self.cooldown_left = self.cooldown;
            self.bad_epochs = 0;
        }
    }
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nanoGPT's schedule: rising to lr₀ over the warm-up, lr₀ where the
    /// cosine starts, halfway down at its middle, lr₀/d at the end and after.
    #[test]
    fn warmup_cosine_rises_then_falls_to_its_floor() {
        let s = Schedule::WarmupCosine {
            warmup: 4,
            total: 24,
            final_div_factor: 10.0,
        };
        let lr = |t| s.lr_at(t, 1.0);
        assert!((lr(0) - 0.2).abs() < 1e-7 && (lr(3) - 0.8).abs() < 1e-7);
        assert_eq!(lr(4), 1.0);
        assert!((lr(14) - 0.55).abs() < 1e-6, "{}", lr(14));
        assert!((lr(24) - 0.1).abs() < 1e-7 && lr(100) == lr(24));
        assert!((5..24).all(|t| lr(t) < lr(t - 1)));
    }
}
