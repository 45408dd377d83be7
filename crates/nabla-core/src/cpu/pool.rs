//! 2-d max and average pooling over planes of a contiguous `[N, C, H, W]`
//! input (each of the N·C planes is independent). The window geometry is the
//! one of [`ConvGeom`] with C = 1 per plane.

use super::conv::ConvGeom;

/// Window positions `k` (in `0..kernel`) whose input index `o·s − p + k·d`
/// lies in `0..input`.
fn taps(
    o: usize,
    s: usize,
    p: usize,
    d: usize,
    kernel: usize,
    input: usize,
) -> std::ops::Range<usize> {
    let start = (o * s) as isize - p as isize;
    let lo = (0..kernel)
        .find(|&k| start + (k * d) as isize >= 0)
        .unwrap_or(kernel);
    let hi = (0..kernel)
        .rev()
        .find(|&k| start + ((k * d) as isize) < input as isize)
        .map_or(0, |k| k + 1);
    lo..hi.max(lo)
}

/// `(v, i)` if `v` beats `best` — it is larger, or either is NaN — else
/// `(best, best_i)`; ties keep the earlier index. One unordered compare and
/// u32 indices keep this branch-free and vectorizable: on real data the
/// comparison is a coin flip, and a branch per element would cost several
/// times the work. NaN is not sticky here; callers apply [`nan_wins`].
#[inline(always)]
fn pick(best: f32, best_i: u32, v: f32, i: u32) -> (f32, u32) {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // true when either is NaN, on purpose
    let better = !(v <= best);
    (
        if better { v } else { best },
        if better { i } else { best_i },
    )
}

/// NaN propagates through max pooling, as in PyTorch.
#[inline(always)]
fn nan_wins(best: f32, window_has_nan: bool) -> f32 {
    if window_has_nan {
        f32::NAN
    } else {
        best
    }
}

/// The common 2×2 window with stride 2 and no padding, with constant trip
/// counts the compiler can unroll.
fn max_pool_plane_2x2(plane: &[f32], g: &ConvGeom, out: &mut [f32], arg: &mut [u32]) {
    let w = g.w;
    for oy in 0..g.oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        let (top, bottom) = (&plane[r0..r0 + w], &plane[r1..r1 + w]);
        let (o, a) = (
            &mut out[oy * g.ow..(oy + 1) * g.ow],
            &mut arg[oy * g.ow..(oy + 1) * g.ow],
        );
        for ox in 0..g.ow {
            let x = 2 * ox;
            let (v0, v1, v2, v3) = (top[x], top[x + 1], bottom[x], bottom[x + 1]);
            let (b, i) = (v0, (r0 + x) as u32);
            let (b, i) = pick(b, i, v1, (r0 + x + 1) as u32);
            let (b, i) = pick(b, i, v2, (r1 + x) as u32);
            let (b, i) = pick(b, i, v3, (r1 + x + 1) as u32);
            let has_nan = v0.is_nan() | v1.is_nan() | v2.is_nan() | v3.is_nan();
            o[ox] = nan_wins(b, has_nan);
            a[ox] = i;
        }
    }
}

/// Max pooling of one plane: outputs and the winning input index of each.
fn max_pool_plane(plane: &[f32], g: &ConvGeom, out: &mut [f32], arg: &mut [u32]) {
    let simple = (g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 0, 0, 1, 1);
    if simple && (g.kh, g.kw) == (2, 2) {
        return max_pool_plane_2x2(plane, g, out, arg);
    }
    let (w, dh, dw) = (g.w, g.dh, g.dw);
    for oy in 0..g.oh {
        let ys = taps(oy, g.sh, g.ph, dh, g.kh, g.h);
        let y0 = oy * g.sh + ys.start * dh - g.ph;
        for ox in 0..g.ow {
            let xs = taps(ox, g.sw, g.pw, dw, g.kw, g.w);
            let x0 = ox * g.sw + xs.start * dw - g.pw;
            let first = y0 * w + x0;
            let (mut best, mut best_i, mut has_nan) = (plane[first], first as u32, false);
            for ki in 0..ys.len() {
                let row = (y0 + ki * dh) * w + x0;
                for kj in 0..xs.len() {
                    let idx = row + kj * dw;
                    (best, best_i) = pick(best, best_i, plane[idx], idx as u32);
                    has_nan |= plane[idx].is_nan();
                }
            }
            let best = nan_wins(best, has_nan);
            out[oy * g.ow + ox] = best;
            arg[oy * g.ow + ox] = best_i;
        }
    }
}

/// Max pooling: the output `[N·C, OH, OW]` and, for each output, the index
/// within its input plane that won (for the backward pass). Padding never
/// wins (PyTorch's −∞ padding); callers ensure every window holds a pixel.
pub fn max_pool_forward(x: &[f32], planes: usize, g: &ConvGeom) -> (Vec<f32>, Vec<u32>) {
    let (hw, p) = (g.h * g.w, g.p());
    let mut out = vec![0f32; planes * p];
    let mut arg = vec![0u32; planes * p];
    let mut pairs: Vec<(&mut [f32], &mut [u32])> =
        out.chunks_mut(p).zip(arg.chunks_mut(p)).collect();
    let work = |i: usize, (o, a): &mut (&mut [f32], &mut [u32])| {
        max_pool_plane(&x[i * hw..(i + 1) * hw], g, o, a)
    };
    if planes * p * g.kh * g.kw >= super::PAR_MIN_ELEMS {
        use rayon::prelude::*;
        crate::threads::install(|| {
            pairs
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, pr)| work(i, pr))
        });
    } else {
        pairs.iter_mut().enumerate().for_each(|(i, pr)| work(i, pr));
    }
    (out, arg)
}

/// Routes each output gradient to the input element that won the max.
pub fn max_pool_backward(grad: &[f32], arg: &[u32], planes: usize, g: &ConvGeom) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    let mut dx = vec![0f32; planes * hw];
    super::for_each_chunk(&mut dx, hw, |i, plane| {
        for k in i * p..(i + 1) * p {
            plane[arg[k] as usize] += grad[k];
        }
    });
    dx
}

/// Number of elements averaged by the window at (oy, ox).
fn divisor(g: &ConvGeom, oy: usize, ox: usize, count_include_pad: bool) -> f32 {
    if count_include_pad {
        return (g.kh * g.kw) as f32;
    }
    let (y0, x0) = (
        (oy * g.sh) as isize - g.ph as isize,
        (ox * g.sw) as isize - g.pw as isize,
    );
    let rows = (y0.max(0)..(y0 + g.kh as isize).min(g.h as isize)).len();
    let cols = (x0.max(0)..(x0 + g.kw as isize).min(g.w as isize)).len();
    (rows * cols).max(1) as f32
}

/// Average pooling forward (padding counts as zeros).
pub fn avg_pool_forward(
    x: &[f32],
    planes: usize,
    g: &ConvGeom,
    count_include_pad: bool,
) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    let mut out = vec![0f32; planes * p];
    super::for_each_chunk(&mut out, p, |i, o| {
        let plane = &x[i * hw..(i + 1) * hw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (y0, x0) = (
                    (oy * g.sh) as isize - g.ph as isize,
                    (ox * g.sw) as isize - g.pw as isize,
                );
                let mut s = 0f32;
                for iy in y0.max(0)..(y0 + g.kh as isize).min(g.h as isize) {
                    for ix in x0.max(0)..(x0 + g.kw as isize).min(g.w as isize) {
                        s += plane[iy as usize * g.w + ix as usize];
                    }
                }
                o[oy * g.ow + ox] = s / divisor(g, oy, ox, count_include_pad);
            }
        }
    });
    out
}

/// Average pooling backward: each output gradient spread evenly over its window.
pub fn avg_pool_backward(
    grad: &[f32],
    planes: usize,
    g: &ConvGeom,
    count_include_pad: bool,
) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    let mut dx = vec![0f32; planes * hw];
    super::for_each_chunk(&mut dx, hw, |i, plane| {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let gv = grad[i * p + oy * g.ow + ox] / divisor(g, oy, ox, count_include_pad);
                let (y0, x0) = (
                    (oy * g.sh) as isize - g.ph as isize,
                    (ox * g.sw) as isize - g.pw as isize,
                );
                for iy in y0.max(0)..(y0 + g.kh as isize).min(g.h as isize) {
                    for ix in x0.max(0)..(x0 + g.kw as isize).min(g.w as isize) {
                        plane[iy as usize * g.w + ix as usize] += gv;
                    }
                }
            }
        }
    });
    dx
}
