//! 2-d convolution on the CPU, lowered to GEMMs one image at a time.
//!
//! N = batch, C = input channels, H, W = input size, O = output channels,
//! G = groups, KH, KW = kernel, OH, OW = output size, P = OH·OW, K = C/G·KH·KW.
//!
//! For image n, `cols_n` is `[C·KH·KW, P]`: row `(c·KH + ki)·KW + kj` holds
//! input pixel `(c, oy·sh + ki·dh − ph, ox·sw + kj·dw − pw)` for every output
//! position `(oy, ox)`, or 0 in the padding (im2col). Then per group g:
//!
//! - forward   `y_n[g] = W[g] · cols_n[g]`, `[O/G, K]·[K, P]`, written straight
//!   into the NCHW output (no transpose);
//! - input grad `dcols_n[g] = W[g]ᵀ · dy_n[g]`, then col2im (the adjoint of im2col);
//! - weight grad `dW[g] = Σ_n dy_n[g] · cols_n[g]ᵀ`.
//!
//! Images are spread over threads; a per-image `cols_n` (tens of KB for
//! LeNet) stays in cache between im2col and the GEMM that reads it. Weight
//! and bias gradients are summed per fixed block of images and the blocks
//! are added in order, so results do not depend on the thread count.

use rayon::prelude::*;

use super::small_gemm::{gemm_bcast, gemm_dot, Strided};

/// Sizes of one convolution (or pooling) window sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Images per block of the weight-gradient sum (fixed, for determinism).
const IMAGES_PER_BLOCK: usize = 4;

impl ConvGeom {
    /// Output size along one axis, or None if the window does not fit.
    pub fn out_size(input: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        if k == 0 || s == 0 {
            return None;
        }
        let span = d * (k - 1) + 1;
        let padded = input + 2 * p;
        if padded < span {
            return None;
        }
        Some((padded - span) / s + 1)
    }

    /// Output positions `o` along one axis whose input index
    /// `o·s + k_off − p` lies in `0..input`: the range `lo..hi`.
    fn valid(out: usize, input: usize, k_off: usize, s: usize, p: usize) -> (usize, usize) {
        // o·s + k_off − p ≥ 0  ⇔  o ≥ ceil((p − k_off) / s)
        let lo = if p > k_off {
            (p - k_off).div_ceil(s)
        } else {
            0
        };
        // o·s + k_off − p ≤ input − 1  ⇔  o ≤ (input − 1 + p − k_off) / s
        let hi = if input + p > k_off {
            ((input - 1 + p - k_off) / s + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Output positions per image.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of `cols_n`: C·KH·KW.
    pub fn k_all(&self) -> usize {
        self.c * self.kh * self.kw
    }
}

/// Valid output ranges per kernel row and column, computed once per call
/// (they hold divisions, too slow to redo for every row of `cols`).
type Ranges = Vec<(usize, usize)>;

fn valid_ranges(g: &ConvGeom) -> (Ranges, Ranges) {
    let rows = (0..g.kh)
        .map(|ki| ConvGeom::valid(g.oh, g.h, ki * g.dh, g.sh, g.ph))
        .collect();
    let cols = (0..g.kw)
        .map(|kj| ConvGeom::valid(g.ow, g.w, kj * g.dw, g.sw, g.pw))
        .collect();
    (rows, cols)
}

/// Fills `cols [C·KH·KW, P]` from one image `x [C, H, W]`.
pub fn im2col_image(x: &[f32], g: &ConvGeom, cols: &mut [f32]) {
    let p = g.p();
    let (vy, vx) = valid_ranges(g);
    let mut rows = cols.chunks_exact_mut(p);
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = vy[ki];
            for kj in 0..g.kw {
                let (ox_lo, ox_hi) = vx[kj];
                let row = rows.next().expect("cols has C·KH·KW rows");
                row[..oy_lo * g.ow].fill(0.0);
                row[oy_hi * g.ow..].fill(0.0);
                for oy in oy_lo..oy_hi {
                    let src = &plane[(oy * g.sh + ki * g.dh - g.ph) * g.w..][..g.w];
                    let dst = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    for d in &mut dst[..ox_lo] {
                        *d = 0.0;
                    }
                    for d in &mut dst[ox_hi..] {
                        *d = 0.0;
                    }
                    let first = ox_lo * g.sw + kj * g.dw - g.pw;
                    let dst = &mut dst[ox_lo..ox_hi];
                    if g.sw == 1 {
                        // an inline loop: a memcpy call costs more than these few floats
                        for (d, s) in dst.iter_mut().zip(&src[first..]) {
                            *d = *s;
                        }
                    } else {
                        for (k, d) in dst.iter_mut().enumerate() {
                            *d = src[first + k * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `cols [C·KH·KW, P]` onto one image's gradient `dx [C, H, W]`.
pub fn col2im_image(cols: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    let p = g.p();
    let (vy, vx) = valid_ranges(g);
    let mut rows = cols.chunks_exact(p);
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = vy[ki];
            for kj in 0..g.kw {
                let (ox_lo, ox_hi) = vx[kj];
                let row = rows.next().expect("cols has C·KH·KW rows");
                for oy in oy_lo..oy_hi {
                    let dst = &mut plane[(oy * g.sh + ki * g.dh - g.ph) * g.w..][..g.w];
                    let src = &row[oy * g.ow + ox_lo..oy * g.ow + ox_hi];
                    let first = ox_lo * g.sw + kj * g.dw - g.pw;
                    if g.sw == 1 {
                        dst[first..].iter_mut().zip(src).for_each(|(d, s)| *d += s);
                    } else {
                        for (k, s) in src.iter().enumerate() {
                            dst[first + k * g.sw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f(index, item, scratch)` over `items`, in parallel when there are
/// threads; each task reuses one scratch buffer instead of allocating per item.
fn run_parallel<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T, &mut Vec<f32>) + Sync + Send) {
    if items.len() > 1 && crate::threads::num_threads() > 1 {
        crate::threads::install(|| {
            items
                .par_iter_mut()
                .enumerate()
                .for_each_init(Vec::new, |scratch, (i, t)| f(i, t, scratch))
        });
    } else {
        let mut scratch = Vec::new();
        items
            .iter_mut()
            .enumerate()
            .for_each(|(i, t)| f(i, t, &mut scratch));
    }
}

/// Convolution forward over the batch. `x [N, C, H, W]`, `w [O, C/G, KH, KW]`
/// (contiguous). Returns `y [N, O, OH, OW]` and, when `keep_cols`, every
/// image's `cols_n` (for the weight gradient).
pub fn conv_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeom,
    o: usize,
    groups: usize,
    keep_cols: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg) = (o / groups, kc / groups);
    let mut y = vec![0f32; g.n * o * p];
    let mut cols = vec![0f32; if keep_cols { g.n * kc * p } else { 0 }];
    let mut work: Vec<(&mut [f32], Option<&mut [f32]>)> = if keep_cols {
        y.chunks_mut(o * p)
            .zip(cols.chunks_mut(kc * p).map(Some))
            .collect()
    } else {
        y.chunks_mut(o * p).map(|c| (c, None)).collect()
    };
    run_parallel(&mut work, |n, (yn, saved), scratch| {
        let cn: &mut [f32] = match saved {
            Some(c) => c,
            None => {
                scratch.resize(kc * p, 0.0);
                scratch
            }
        };
        im2col_image(&x[n * chw..(n + 1) * chw], g, cn);
        for gi in 0..groups {
            let wg = Strided {
                data: &w[gi * og * kg..(gi + 1) * og * kg],
                rs: kg,
                cs: 1,
            };
            let cg = &cn[gi * kg * p..(gi + 1) * kg * p];
            gemm_bcast(
                og,
                p,
                kg,
                wg,
                cg,
                p,
                &mut yn[gi * og * p..(gi + 1) * og * p],
                p,
                false,
            );
        }
        if let Some(b) = bias {
            for (oc, plane) in yn.chunks_mut(p).enumerate() {
                plane.iter_mut().for_each(|v| *v += b[oc]);
            }
        }
    });
    (y, keep_cols.then_some(cols))
}

/// Gradient of the input: `dx [N, C, H, W]` from `dy [N, O, OH, OW]`.
pub fn conv_backward_input(
    dy: &[f32],
    w: &[f32],
    g: &ConvGeom,
    o: usize,
    groups: usize,
) -> Vec<f32> {
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg) = (o / groups, kc / groups);
    let mut dx = vec![0f32; g.n * chw];
    let mut work: Vec<&mut [f32]> = dx.chunks_mut(chw).collect();
    run_parallel(&mut work, |n, dxn, dcols| {
        dcols.resize(kc * p, 0.0);
        let dyn_ = &dy[n * o * p..(n + 1) * o * p];
        for gi in 0..groups {
            // Wᵀ: element (k, o) of [K, O/G] is w[o·K + k]
            let wt = Strided {
                data: &w[gi * og * kg..(gi + 1) * og * kg],
                rs: 1,
                cs: kg,
            };
            let dyg = &dyn_[gi * og * p..(gi + 1) * og * p];
            gemm_bcast(
                kg,
                p,
                og,
                wt,
                dyg,
                p,
                &mut dcols[gi * kg * p..(gi + 1) * kg * p],
                p,
                false,
            );
        }
        col2im_image(dcols, g, dxn);
    });
    dx
}

/// Gradients of the weight `[O, C/G·KH·KW]` and of the bias `[O]`, from
/// `dy [N, O, P]` and the saved `cols [N, C·KH·KW, P]`.
pub fn conv_backward_params(
    dy: &[f32],
    cols: Option<&[f32]>,
    g: &ConvGeom,
    o: usize,
    groups: usize,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (p, kc) = (g.p(), g.k_all());
    let (og, kg) = (o / groups, kc / groups);
    let blocks = g.n.div_ceil(IMAGES_PER_BLOCK);
    // Per block: weight gradient partial (if wanted) and bias partial.
    let mut partials: Vec<(Vec<f32>, Vec<f32>)> = (0..blocks)
        .map(|_| {
            (
                vec![0f32; if cols.is_some() { o * kg } else { 0 }],
                vec![0f32; o],
            )
        })
        .collect();
    run_parallel(&mut partials, |b, (dw, db), _| {
        for n in b * IMAGES_PER_BLOCK..((b + 1) * IMAGES_PER_BLOCK).min(g.n) {
            let dyn_ = &dy[n * o * p..(n + 1) * o * p];
            for (oc, plane) in dyn_.chunks(p).enumerate() {
                db[oc] += super::reduce::sum_lanes(plane);
            }
            let Some(cols) = cols else { continue };
            let cn = &cols[n * kc * p..(n + 1) * kc * p];
            for gi in 0..groups {
                let dyg = &dyn_[gi * og * p..(gi + 1) * og * p];
                let cg = &cn[gi * kg * p..(gi + 1) * kg * p];
                gemm_dot(
                    og,
                    kg,
                    p,
                    dyg,
                    p,
                    cg,
                    p,
                    &mut dw[gi * og * kg..(gi + 1) * og * kg],
                    kg,
                    true,
                );
            }
        }
    });
    let mut dw = cols.map(|_| vec![0f32; o * kg]);
    let mut db = vec![0f32; o];
    for (pw, pb) in &partials {
        if let Some(dw) = dw.as_mut() {
            dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        }
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges() {
        // input 5, kernel offset 0, stride 1, pad 2: o in 2..7 when out = 9
        assert_eq!(ConvGeom::valid(9, 5, 0, 1, 2), (2, 7));
        assert_eq!(ConvGeom::out_size(28, 5, 1, 2, 1), Some(28));
        assert_eq!(ConvGeom::out_size(3, 5, 1, 0, 1), None);
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for any x, y.
        let g = ConvGeom {
            n: 1,
            c: 2,
            h: 5,
            w: 4,
            kh: 3,
            kw: 2,
            sh: 2,
            sw: 1,
            ph: 1,
            pw: 1,
            dh: 1,
            dw: 2,
            oh: ConvGeom::out_size(5, 3, 2, 1, 1).unwrap(),
            ow: ConvGeom::out_size(4, 2, 1, 1, 2).unwrap(),
        };
        let x: Vec<f32> = (0..2 * 5 * 4)
            .map(|i| ((i * 7) % 11) as f32 - 5.0)
            .collect();
        let mut cols = vec![1f32; g.k_all() * g.p()];
        im2col_image(&x, &g, &mut cols);
        let y: Vec<f32> = (0..cols.len())
            .map(|i| ((i * 5) % 13) as f32 - 6.0)
            .collect();
        let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
        let mut dx = vec![0f32; x.len()];
        col2im_image(&y, &g, &mut dx);
        let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
