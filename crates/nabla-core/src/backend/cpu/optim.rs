//! Optimizer updates on the CPU: one pass over a parameter's values (in
//! place), its gradient and its state buffers, cut into chunks that run
//! on the pool's threads when the parameter is large. PyTorch's formulas,
//! in f32 (nabla-nn's `optim/` documents each).

use rayon::prelude::*;

use crate::backend::UpdateRule;

/// Parameters of at least two chunks are updated a chunk per task on the
/// pool's threads: an update is a few flops per element, so smaller ones are
/// not worth a hand-over.
const CHUNK: usize = 1 << 14;

/// One piece of an update: values, gradient, state buffers.
type Piece<'a> = (&'a mut [f32], &'a [f32], Vec<&'a mut [f32]>);

/// Applies `rule` to `w` with gradient `g` (negated first when `maximize`)
/// and the rule's state buffers.
pub fn update(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: Vec<&mut [f32]>, maximize: bool) {
    let negated: Vec<f32>;
    let g = if maximize {
        negated = g.iter().map(|v| -v).collect();
        &negated
    } else {
        g
    };
    // the pieces are independent, so the result does not depend on how
    // they are cut: every rule treats each element alone
    let f = |w: &mut [f32], g: &[f32], s: &mut [&mut [f32]]| match *rule {
        UpdateRule::Sgd { .. } => sgd(rule, w, g, s),
        UpdateRule::Adam { .. } => adam(rule, w, g, s),
        UpdateRule::RmsProp { .. } => rmsprop(rule, w, g, s),
        UpdateRule::Adagrad { .. } => adagrad(rule, w, g, s),
        UpdateRule::Adadelta { .. } => adadelta(rule, w, g, s),
    };
    in_chunks(w, g, state, &f)
}

fn sgd(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    let UpdateRule::Sgd {
        lr,
        momentum: mu,
        dampening: damp,
        weight_decay: wd,
        nesterov,
        first_step,
    } = *rule
    else {
        unreachable!()
    };
    // zipped iterators: no bounds checks, so the loops vectorize
    let decayed = |g: f32, w: f32| if wd != 0.0 { g + wd * w } else { g };
    match state {
        [b] => {
            for ((w, &g), b) in w.iter_mut().zip(g).zip(b.iter_mut()) {
                let g = decayed(g, *w);
                // the first step starts the buffer at g
                *b = if first_step {
                    g
                } else {
                    *b * mu + (1.0 - damp) * g
                };
                let g = if nesterov { g + mu * *b } else { *b };
                *w += -lr * g;
            }
        }
        _ => {
            for (w, &g) in w.iter_mut().zip(g) {
                *w += -lr * decayed(g, *w);
            }
        }
    }
}

fn adam(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    let UpdateRule::Adam {
        lr,
        step_size,
        bc2_sqrt,
        beta1: b1,
        beta2: b2,
        eps,
        weight_decay: wd,
        decoupled,
    } = *rule
    else {
        unreachable!()
    };
    let (m, rest) = state.split_first_mut().expect("exp_avg");
    let (v, vmax) = rest.split_first_mut().expect("exp_avg_sq");
    let adam = |w: &mut f32, g: f32, m: &mut f32, v: &mut f32, vmax: Option<&mut f32>| {
        let mut g = g;
        if wd != 0.0 {
            match decoupled {
                true => *w *= 1.0 - lr * wd,
                false => g += wd * *w,
            }
        }
        *m += (1.0 - b1) * (g - *m);
        *v = *v * b2 + (1.0 - b2) * g * g;
        let v_hat = match vmax {
            Some(vmax) => {
                *vmax = vmax.max(*v);
                *vmax
            }
            None => *v,
        };
        *w += -step_size * (*m / (v_hat.sqrt() / bc2_sqrt + eps));
    };
    // zipped iterators: no bounds checks, so the loops vectorize
    let each = w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
    match vmax.first_mut() {
        Some(vmax) => {
            for ((((w, &g), m), v), x) in each.zip(vmax.iter_mut()) {
                adam(w, g, m, v, Some(x));
            }
        }
        None => {
            for (((w, &g), m), v) in each {
                adam(w, g, m, v, None);
            }
        }
    }
}

fn rmsprop(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    let UpdateRule::RmsProp {
        lr,
        alpha,
        eps,
        weight_decay: wd,
        momentum: mu,
        centered,
    } = *rule
    else {
        unreachable!()
    };
    let (s, rest) = state.split_first_mut().expect("square_avg");
    let (mut a, mut b) = match centered {
        true => {
            let (a, b) = rest.split_first_mut().expect("grad_avg");
            (Some(a), b.first_mut())
        }
        false => (None, rest.first_mut()),
    };
    for k in 0..w.len() {
        let g = if wd != 0.0 { g[k] + wd * w[k] } else { g[k] };
        s[k] = s[k] * alpha + (1.0 - alpha) * g * g;
        let mut d = s[k];
        if let Some(a) = a.as_deref_mut() {
            a[k] += (1.0 - alpha) * (g - a[k]);
            d += -(a[k] * a[k]);
        }
        let d = d.sqrt() + eps;
        match b.as_deref_mut() {
            Some(b) if mu > 0.0 => {
                b[k] = b[k] * mu + g / d;
                w[k] += -lr * b[k];
            }
            _ => w[k] += -lr * (g / d),
        }
    }
}

fn adagrad(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    let UpdateRule::Adagrad {
        lr,
        eps,
        weight_decay: wd,
    } = *rule
    else {
        unreachable!()
    };
    let [s] = state else {
        unreachable!("one buffer")
    };
    for ((w, &g), s) in w.iter_mut().zip(g).zip(s.iter_mut()) {
        let g = if wd != 0.0 { g + wd * *w } else { g };
        *s += g * g;
        *w += -lr * (g / (s.sqrt() + eps));
    }
}

fn adadelta(rule: &UpdateRule, w: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    let UpdateRule::Adadelta {
        lr,
        rho,
        eps,
        weight_decay: wd,
    } = *rule
    else {
        unreachable!()
    };
    let [v, u] = state else {
        unreachable!("two buffers")
    };
    for (((w, &g), v), u) in w.iter_mut().zip(g).zip(v.iter_mut()).zip(u.iter_mut()) {
        let g = if wd != 0.0 { g + wd * *w } else { g };
        *v = *v * rho + (1.0 - rho) * g * g;
        let delta = (*u + eps).sqrt() / (*v + eps).sqrt() * g;
        *u = *u * rho + (1.0 - rho) * delta * delta;
        *w += -lr * delta;
    }
}

/// Runs `f` on the whole of `w`, `g` and `state` at once, or on their
/// [`pieces`] in parallel when there are at least two.
fn in_chunks(
    w: &mut [f32],
    g: &[f32],
    mut state: Vec<&mut [f32]>,
    f: &(impl Fn(&mut [f32], &[f32], &mut [&mut [f32]]) + Sync),
) {
    if w.len() < 2 * CHUNK || crate::num_threads() == 1 {
        return f(w, g, &mut state);
    }
    let pieces = pieces(w, g, state);
    crate::in_pool(|| {
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
    use super::{pieces, CHUNK};

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
