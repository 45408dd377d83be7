//! Softmax and cross-entropy fused, forward and backward, over rows of
//! logits `[N, C]` (the formulas are in nabla-nn's `loss/cross_entropy.rs`).

use crate::backend::CrossEntropyRows;

/// Each row's loss (or, with `total`, their sum in row order, one value)
/// and its softmax probabilities, which the backward pass reads.
pub fn cross_entropy(x: &[f32], rows: &CrossEntropyRows, total: bool) -> (Vec<f32>, Vec<f32>) {
    let (n, c) = (rows.ids.len(), rows.weight.len());
    let (ids, w, eps) = (rows.ids, rows.weight, rows.smoothing);
    let mut probs = vec![0f32; n * c];
    let mut losses = vec![0f32; n];
    for i in 0..n {
        let Some(y) = ids[i] else { continue };
        let row = &x[i * c..(i + 1) * c];
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        // p = e^(x − m) / s, as softmax computes it (equal logits give
        // exactly 1/C, whose gradients then cancel exactly)
        let p = &mut probs[i * c..(i + 1) * c];
        for (p, &v) in p.iter_mut().zip(row) {
            *p = (v - m).exp();
        }
        // (x − m) − ln s, not x − (m + ln s): for large logits the sum
        // m + ln s rounds away the low bits of ln s; and ln s from the
        // terms below the max, which ln of the rounded sum loses
        let ln_s = super::math::ln_sum_of_shifted_exps(p, m);
        let s: f32 = p.iter().sum();
        p.iter_mut().for_each(|p| *p /= s);
        let nll = -((row[y] - m) - ln_s) * w[y];
        // (the smoothing term only with smoothing: 0 · ∞ would turn the
        // infinite loss of a −∞ logit into NaN)
        losses[i] = match eps > 0.0 {
            true => {
                let smooth: f32 = (0..c).map(|k| -w[k] * ((row[k] - m) - ln_s)).sum();
                (1.0 - eps) * nll + eps / c as f32 * smooth
            }
            false => nll,
        };
    }
    match total {
        true => (vec![losses.iter().sum()], probs),
        false => (losses, probs),
    }
}

/// `dx [N, C]` from the saved probabilities and each row's upstream
/// gradient `scale [N]`.
pub fn cross_entropy_backward(probs: &[f32], rows: &CrossEntropyRows, scale: &[f32]) -> Vec<f32> {
    let (n, c) = (rows.ids.len(), rows.weight.len());
    let (ids, w, eps) = (rows.ids, rows.weight, rows.smoothing);
    let w_total: f32 = w.iter().sum();
    let mut dx = vec![0f32; n * c];
    for i in 0..n {
        // (an ignored sample's row stays 0)
        let Some(y) = ids[i] else { continue };
        let (s, wy) = (scale[i], w[y]);
        let row = &probs[i * c..(i + 1) * c];
        // p_y − 1 as −Σ_{k≠y} p_k: the difference cancels where the class
        // is nearly certain, the sum keeps its digits
        let others: f32 = (0..c).filter(|&k| k != y).map(|k| row[k]).sum();
        for k in 0..c {
            let p = row[k];
            let hard = (1.0 - eps) * wy * if k == y { -others } else { p };
            let soft = eps / c as f32 * (w_total * p - w[k]);
            dx[i * c + k] = s * (hard + soft);
        }
    }
    dx
}
