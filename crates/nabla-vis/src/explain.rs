//! Attribution: which input pixels a prediction depends on.
//!
//! Inputs are one example `x [C, H, W]`; the model is any function from a
//! batch `[N, C, H, W]` to class scores `[N, K]` (logits); `target` is the
//! class explained. Maps are `[H, W]`.
//!
//! - **Saliency**: `|∂f_t/∂x|`, the largest over channels.
//! - **SmoothGrad**: the saliency averaged over `n` copies of x with
//!   Gaussian noise of standard deviation `σ·(max x − min x)` (seeded).
//! - **Integrated gradients**: `(x − b)·∫₀¹ ∂f_t(b + α(x − b))/∂x dα`
//!   against a baseline b (zeros by default), the integral by the
//!   trapezoidal rule over `steps` intervals, evaluated in one batch. By
//!   completeness the attributions sum to `f_t(x) − f_t(b)`. The map sums
//!   over channels (signed).
//! - **Grad-CAM**: for a model split at a layer into `features` (x → A
//!   `[N, K, h, w]`) and `head` (A → scores), `relu(Σ_k α_k·A_k)` with
//!   `α_k` the spatial mean of `∂f_t/∂A_k`: a `[h, w]` map at the layer's
//!   resolution, then bilinearly upsampled to the input's `[H, W]`.

use nabla_core::{Error, Generator, Result, Tensor};

/// Scores of a batch: `[N, C, H, W] → [N, K]`.
pub type Scores<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

fn check_example(x: &Tensor) -> Result<(usize, usize, usize)> {
    x.dims3().map_err(|_| Error::Shape {
        op: "explain",
        msg: format!("expected one example [C, H, W], got {:?}", x.shape()),
    })
}

/// Gradient of the target score, summed over the batch, with respect to
/// the batch `xs`; and the scores.
fn input_gradient(model: &Scores, xs: &Tensor, target: usize) -> Result<(Tensor, Tensor)> {
    let xs = xs.detach().requires_grad_(true);
    let scores = model(&xs)?;
    let k = scores.dims2()?.1;
    if target >= k {
        return Err(Error::Index {
            op: "explain",
            index: target as f64,
            size: k,
        });
    }
    scores.narrow(1, target, 1)?.sum_all()?.backward()?;
    let g = xs
        .grad()
        .ok_or_else(|| Error::Backward("the scores do not depend on the input".into()))?;
    Ok((g, scores.detach()))
}

/// `|grad|` reduced to `[H, W]` by the largest value over channels.
fn channel_max_abs(g: &Tensor) -> Result<Tensor> {
    g.abs()?.max(&[0], false)
}

/// Vanilla gradient saliency `[H, W]`.
pub fn saliency(model: &Scores, x: &Tensor, target: usize) -> Result<Tensor> {
    check_example(x)?;
    let (g, _) = input_gradient(model, &x.unsqueeze(0)?, target)?;
    channel_max_abs(&g.squeeze(0)?)
}

/// SmoothGrad `[H, W]`: saliency averaged over `n` noisy copies.
pub fn smoothgrad(
    model: &Scores,
    x: &Tensor,
    target: usize,
    n: usize,
    sigma: f32,
    seed: u64,
) -> Result<Tensor> {
    let (c, h, w) = check_example(x)?;
    let v = x.to_vec();
    let range = v.iter().fold(f32::NEG_INFINITY, |m, &a| m.max(a))
        - v.iter().fold(f32::INFINITY, |m, &a| m.min(a));
    let noise = Tensor::randn_with([n.max(1), c, h, w], &mut Generator::new(seed))
        .mul_scalar(sigma * range)?;
    let xs = x.unsqueeze(0)?.add(&noise)?;
    let (g, _) = input_gradient(model, &xs, target)?;
    g.abs()?.max(&[1], false)?.mean(&[0], false)
}

/// Integrated-gradients attributions `[C, H, W]` of `x` against `baseline`
/// (zeros when None), and `f_t(x) − f_t(baseline)` to check them against.
pub fn integrated_gradients(
    model: &Scores,
    x: &Tensor,
    baseline: Option<&Tensor>,
    target: usize,
    steps: usize,
) -> Result<(Tensor, f32)> {
    let (c, h, w) = check_example(x)?;
    let b = match baseline {
        Some(b) if b.shape() != x.shape() => {
            return Err(Error::Shape {
                op: "integrated_gradients",
                msg: format!(
                    "baseline {:?} differs from the input {:?}",
                    b.shape(),
                    x.shape()
                ),
            })
        }
        Some(b) => b.clone(),
        None => Tensor::zeros(x.shape()),
    };
    let m = steps.max(1);
    let alphas: Vec<f32> = (0..=m).map(|k| k as f32 / m as f32).collect();
    let diff = x.sub(&b)?;
    let path = b
        .unsqueeze(0)?
        .add(&Tensor::from_vec(alphas, [m + 1, 1, 1, 1])?.mul(&diff.unsqueeze(0)?)?)?;
    let (g, scores) = input_gradient(model, &path, target)?;
    // trapezoid weights: 1/2 at both ends
    let mut wts = vec![1.0f32; m + 1];
    (wts[0], wts[m]) = (0.5, 0.5);
    let wts = Tensor::from_vec(wts, [m + 1, 1, 1, 1])?;
    let avg = g.mul(&wts)?.sum(&[0], false)?.div_scalar(m as f32)?;
    let attr = avg.mul(&diff)?.reshape([c, h, w])?;
    let s = scores.narrow(1, target, 1)?.to_vec();
    Ok((attr, s[m] - s[0]))
}

/// Grad-CAM `[H, W]` for the layer at which the model is split, and the
/// raw map `[h, w]` at that layer's resolution.
pub fn grad_cam(
    features: &Scores,
    head: &Scores,
    x: &Tensor,
    target: usize,
) -> Result<(Tensor, Tensor)> {
    let (_, hh, ww) = check_example(x)?;
    let a = features(&x.unsqueeze(0)?)?.detach();
    let (_, _, h, w) = a.dims4().map_err(|_| Error::Shape {
        op: "grad_cam",
        msg: format!(
            "the chosen layer must give feature maps [N, K, h, w], got {:?}",
            a.shape()
        ),
    })?;
    let (g, _) = input_gradient(head, &a, target)?;
    let alpha = g.mean(&[2, 3], true)?; // [1, K, 1, 1]
    let cam = a.mul(&alpha)?.sum(&[1], false)?.relu()?.reshape([h, w])?;
    Ok((bilinear(&cam, hh, ww)?, cam))
}

/// Attention rollout (Abnar & Zuidema 2020) of a Vision Transformer's
/// layers, each `[1, T, T]` with the class token first: with the residual
/// path counted as half of each layer, `Â = ½A + ½I` (rows renormalized),
/// the product `Â_L ⋯ Â_1`'s class-token row over the patches is how much
/// each patch reaches the classification. Returned as the `[gh, gw]` grid
/// of patches (`gh·gw = T − 1`), resized to `[oh, ow]`.
pub fn attention_rollout(
    layers: &[Tensor],
    (gh, gw): (usize, usize),
    (oh, ow): (usize, usize),
) -> Result<Tensor> {
    let t = gh * gw + 1;
    let eye = |t: usize| {
        Tensor::from_vec(
            (0..t * t)
                .map(|i| (i % (t + 1) == 0) as u8 as f32)
                .collect(),
            [t, t],
        )
    };
    let mut roll = eye(t)?;
    for a in layers {
        if a.shape() != [1, t, t] {
            return Err(Error::Shape {
                op: "attention_rollout",
                msg: format!("each layer's weights must be [1, {t}, {t}] (a {gh}×{gw} grid and a class token), got {:?}", a.shape()),
            });
        }
        let mixed = a
            .reshape([t, t])?
            .mul_scalar(0.5)?
            .add(&eye(t)?.mul_scalar(0.5)?)?;
        let mixed = mixed.div(&mixed.sum(&[1], true)?)?;
        roll = mixed.matmul(&roll)?;
    }
    let cls = roll
        .narrow(0, 0, 1)?
        .narrow(1, 1, t - 1)?
        .reshape([gh, gw])?;
    bilinear(&cls, oh, ow)
}

/// Bilinear resize of a `[h, w]` map to `[oh, ow]` (align_corners = false).
pub fn bilinear(map: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let (h, w) = map.dims2()?;
    let v = map.to_vec();
    let mut out = vec![0f32; oh * ow];
    for y in 0..oh {
        let sy = ((y as f32 + 0.5) * h as f32 / oh as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, fy) = (sy.floor() as usize, sy - sy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..ow {
            let sx = ((x as f32 + 0.5) * w as f32 / ow as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, fx) = (sx.floor() as usize, sx - sx.floor());
            let x1 = (x0 + 1).min(w - 1);
            let top = v[y0 * w + x0] * (1.0 - fx) + v[y0 * w + x1] * fx;
            let bottom = v[y1 * w + x0] * (1.0 - fx) + v[y1 * w + x1] * fx;
            out[y * ow + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
    Tensor::from_vec(out, [oh, ow])
}

/// Spearman rank correlation of two maps of the same size.
pub fn rank_correlation(a: &Tensor, b: &Tensor) -> Result<f32> {
    if a.shape() != b.shape() {
        return Err(Error::Shape {
            op: "rank_correlation",
            msg: format!("shapes differ: {:?} and {:?}", a.shape(), b.shape()),
        });
    }
    let ranks = |t: &Tensor| -> Vec<f64> {
        let v = t.to_vec();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f64; v.len()];
        // average ranks over ties
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    Ok((cov / (va * vb).sqrt().max(1e-12)) as f32)
}

#[cfg(test)]
mod rollout_tests {
    use super::*;

    /// The class token looking only at one patch (the others at
    /// themselves) puts the map's weight on that patch; shapes that do not
    /// fit the grid are refused.
    #[test]
    fn rollout_follows_the_class_token() {
        let mut a = vec![0f32; 25];
        a[3] = 1.0; // class token → patch 2 (token 3: grid row 1, column 0)
        for i in 1..5 {
            a[i * 5 + i] = 1.0;
        }
        let a = Tensor::from_vec(a, [1, 5, 5]).unwrap();
        let grid = attention_rollout(&[a.clone()], (2, 2), (2, 2))
            .unwrap()
            .to_vec();
        assert_eq!(grid, [0.0, 0.0, 0.5, 0.0]);
        // two such layers: the class token keeps half of itself each time
        let two = attention_rollout(&[a.clone(), a.clone()], (2, 2), (2, 2))
            .unwrap()
            .to_vec();
        assert_eq!(two, [0.0, 0.0, 0.75, 0.0]);
        let up = attention_rollout(&[a.clone()], (2, 2), (4, 4))
            .unwrap()
            .to_vec();
        let best = (0..16).max_by(|&i, &j| up[i].total_cmp(&up[j])).unwrap();
        assert!(best / 4 >= 2 && best % 4 < 2, "{up:?}");
        assert!(attention_rollout(&[a], (3, 2), (4, 4)).is_err());
    }
}
