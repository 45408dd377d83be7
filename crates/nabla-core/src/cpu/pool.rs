//! 2-d max and average pooling over planes of a contiguous `[N, C, H, W]`
//! input (each of the N·C planes is independent). The window geometry is the
//! one of [`ConvGeom`] with C = 1 per plane.

use super::conv::ConvGeom;

/// Max pooling: the output `[N·C, OH, OW]` and, for each output, the index
/// within its input plane that won (for the backward pass). Padding is −∞.
pub fn max_pool_forward(x: &[f32], planes: usize, g: &ConvGeom) -> (Vec<f32>, Vec<u32>) {
    let (hw, p) = (g.h * g.w, g.p());
    let mut out = vec![0f32; planes * p];
    let mut arg = vec![0u32; planes * p];
    // Pair each output plane with its argmax plane so one parallel loop fills both.
    let mut pairs: Vec<(&mut [f32], &mut [u32])> =
        out.chunks_mut(p).zip(arg.chunks_mut(p)).collect();
    let work = |i: usize, (o, a): &mut (&mut [f32], &mut [u32])| {
        let plane = &x[i * hw..(i + 1) * hw];
        for oy in 0..g.oh {
            let y0 = (oy * g.sh) as isize - g.ph as isize;
            for ox in 0..g.ow {
                let x0 = (ox * g.sw) as isize - g.pw as isize;
                let (mut best, mut best_i) = (f32::NEG_INFINITY, usize::MAX);
                for ki in 0..g.kh {
                    let iy = y0 + (ki * g.dh) as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    for kj in 0..g.kw {
                        let ix = x0 + (kj * g.dw) as isize;
                        if ix < 0 || ix >= g.w as isize {
                            continue;
                        }
                        let idx = iy as usize * g.w + ix as usize;
                        let v = plane[idx];
                        // NaN wins, as in PyTorch; ties keep the first index.
                        if best_i == usize::MAX || v > best || (v.is_nan() && !best.is_nan()) {
                            best = v;
                            best_i = idx;
                        }
                    }
                }
                o[oy * g.ow + ox] = best;
                a[oy * g.ow + ox] = best_i as u32;
            }
        }
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
