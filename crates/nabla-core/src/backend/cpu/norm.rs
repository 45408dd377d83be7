//! Layer normalization over rows, forward and backward in one pass each
//! (`ops/layer_norm.rs` gives the formulas). Each row's mean, then its
//! variance about that mean (two passes, so no cancellation), are summed
//! eight lanes at a time, which vectorizes (f64 running sums did not, and
//! cost a GPT step 4%); rows go to the threads in blocks, and the weight
//! and bias gradients are summed block by block in a fixed order, so
//! results do not depend on the thread count.

use rayon::prelude::*;

use super::reduce::sum_lanes;

/// Rows per parallel block.
const ROWS: usize = 64;

/// What the forward pass keeps: each row's mean and `1/σ`.
pub struct Kept {
    pub mean: Vec<f32>,
    pub rstd: Vec<f32>,
}

/// A block of rows forward: (y, x) and (means, 1/σ).
type ForwardBlock<'a> = ((&'a mut [f32], &'a [f32]), (&'a mut [f32], &'a mut [f32]));
/// A block of rows backward: its index, dx, and (x, dy).
type BackwardBlock<'a> = (usize, (&'a mut [f32], (&'a [f32], &'a [f32])));

/// `Σ (x − μ)²`, eight lanes at a time.
fn sum_squares_about(x: &[f32], mu: f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| (v - mu) * (v - mu))
        .sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mu) * (v - mu);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y = (x − μ)/σ·w + b` for each row of `d` values.
pub fn forward(
    x: &[f32],
    d: usize,
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    eps: f32,
) -> (Vec<f32>, Kept) {
    let rows = x.len() / d.max(1);
    let mut y = vec![0f32; x.len()];
    let (mut mean, mut rstd) = (vec![0f32; rows], vec![0f32; rows]);
    let run = |((ys, xs), (ms, rs)): ForwardBlock| {
        for (((yr, xr), m), r) in ys.chunks_mut(d).zip(xs.chunks(d)).zip(ms).zip(rs) {
            let mu = sum_lanes(xr) / d as f32;
            let var = sum_squares_about(xr, mu) / d as f32;
            let inv = 1.0 / (var + eps).sqrt();
            (*m, *r) = (mu, inv);
            for (k, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
                let n = (v - mu) * inv;
                *o = n * w.map_or(1.0, |w| w[k]) + b.map_or(0.0, |b| b[k]);
            }
        }
    };
    if d > 0 {
        let blocks = y
            .chunks_mut(ROWS * d)
            .zip(x.chunks(ROWS * d))
            .zip(mean.chunks_mut(ROWS).zip(rstd.chunks_mut(ROWS)));
        match rows > ROWS && x.len() >= super::PAR_MIN_ELEMS {
            true => crate::threads::in_pool(|| {
                let blocks: Vec<_> = blocks.collect();
                blocks.into_par_iter().for_each(run)
            }),
            false => blocks.for_each(run),
        }
    }
    (y, Kept { mean, rstd })
}

/// dx, and the weight's and bias's gradients (when there are a weight and
/// a bias), from the output's gradient `dy`.
pub fn backward(
    x: &[f32],
    d: usize,
    w: Option<&[f32]>,
    kept: &Kept,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![0f32; x.len()];
    // one (dw, db) partial per block of rows, summed in block order
    let block = |(b, (dxs, (xs, dys))): BackwardBlock| {
        let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
        let r0 = b * ROWS;
        for (r, ((dxr, xr), dyr)) in dxs
            .chunks_mut(d)
            .zip(xs.chunks(d))
            .zip(dys.chunks(d))
            .enumerate()
        {
            let (mu, inv) = (kept.mean[r0 + r], kept.rstd[r0 + r]);
            // g = dy·w; dx = (g − mean(g) − x̂·mean(g·x̂))/σ
            let (mut sg, mut sgx) = ([0f32; 8], [0f32; 8]);
            for k in 0..d {
                let xh = (xr[k] - mu) * inv;
                let g = dyr[k] * w.map_or(1.0, |w| w[k]);
                sg[k % 8] += g;
                sgx[k % 8] += g * xh;
                dw[k] += dyr[k] * xh;
                db[k] += dyr[k];
            }
            let mean = |s: [f32; 8]| s.iter().sum::<f32>() / d as f32;
            let (mg, mgx) = (mean(sg), mean(sgx));
            for k in 0..d {
                let xh = (xr[k] - mu) * inv;
                let g = dyr[k] * w.map_or(1.0, |w| w[k]);
                dxr[k] = (g - mg - xh * mgx) * inv;
            }
        }
        (dw, db)
    };
    if d == 0 {
        return (dx, Vec::new(), Vec::new());
    }
    let rows = x.len() / d;
    let work = dx
        .chunks_mut(ROWS * d)
        .zip(x.chunks(ROWS * d).zip(dy.chunks(ROWS * d)))
        .enumerate();
    let parts: Vec<(Vec<f32>, Vec<f32>)> = match rows > ROWS && x.len() >= super::PAR_MIN_ELEMS {
        true => crate::threads::in_pool(|| {
            let work: Vec<_> = work.collect();
            work.into_par_iter().map(block).collect()
        }),
        false => work.map(block).collect(),
    };
    let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
    for (pw, pb) in parts {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dx, dw, db)
}
