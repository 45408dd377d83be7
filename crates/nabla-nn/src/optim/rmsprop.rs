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

use super::{grad_of, OptimCore, Optimizer};

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
    fn step(&mut self) -> Result<()> {
        let (lr, alpha, eps, wd, mu) = (
            self.core.lr,
            self.alpha,
            self.eps,
            self.weight_decay,
            self.momentum,
        );
        for (i, p) in self.core.params.iter().enumerate() {
            let Some(mut g) = grad_of(p, self.maximize) else {
                continue;
            };
            let slots = &mut self.core.slots;
            slots.step[i] += 1;
            let n = g.len();
            p.update_data(|w| {
                if wd != 0.0 {
                    g.iter_mut().zip(w.iter()).for_each(|(g, &w)| *g += wd * w);
                }
                let (s, _) = slots.get(i, "square_avg", || vec![0.0; n]);
                s.iter_mut()
                    .zip(&g)
                    .for_each(|(s, &g)| *s = *s * alpha + (1.0 - alpha) * g * g);
                let mut d: Vec<f32> = s.clone();
                if self.centered {
                    let (a, _) = slots.get(i, "grad_avg", || vec![0.0; n]);
                    a.iter_mut()
                        .zip(&g)
                        .for_each(|(a, &g)| *a += (1.0 - alpha) * (g - *a));
                    d.iter_mut()
                        .zip(a.iter())
                        .for_each(|(d, &a)| *d += -(a * a));
                }
                d.iter_mut().for_each(|d| *d = d.sqrt() + eps);
                if mu > 0.0 {
                    let (b, _) = slots.get(i, "momentum_buffer", || vec![0.0; n]);
                    for k in 0..n {
                        b[k] = b[k] * mu + g[k] / d[k];
                        w[k] += -lr * b[k];
                    }
                } else {
                    for k in 0..n {
                        w[k] += -lr * (g[k] / d[k]);
                    }
                }
            })?;
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
