//! 2-d convolution on the CPU, lowered to small matrix products one image
//! at a time.
//!
//! N = batch, C = input channels, H, W = input size, O = output channels,
//! G = groups, KH, KW = kernel, OH, OW = output size, P = OH·OW,
//! K = C/G·KH·KW per group.
//!
//! The products need, for each image, a matrix `B` with one row per kernel
//! tap `(c, ki, kj)` holding the input pixels that tap meets at every output
//! position; `lower.rs` builds it in one of three layouts: **strips** (stride
//! 1, rows shared between taps), **wide** (stride 1, rows read in place from
//! the padded image, `Wp − OW` extra columns per output row) and **im2col**
//! (any stride and dilation).
//!
//! Then per group g: forward `y_n[g] = W[g]·B_n[g]`; weight gradient
//! `dW[g] += dy_n[g]·B_n[g]ᵀ`; input gradient `W[g]ᵀ·dy_n[g]`, added back
//! at each tap's place by the product itself (stride 1, see
//! `backward_input_wide`) or by col2im (the adjoint of im2col). Images are spread over
//! threads; one image's `B` (tens of KB for LeNet) stays in cache. Weight and
//! bias gradients are summed per fixed block of images and the blocks added
//! in order, so results do not depend on the thread count.
//!
//! Under [`autocast`](crate::autocast)`(Bf16, ..)` the products round
//! their operands to bfloat16 (`bf16_gemm/rows.rs`, same arguments); the
//! bias, col2im and the sums over images stay f32. Each entry point reads
//! the caller's precision once and hands it to the pool's threads.

mod lower;
mod products;

use rayon::prelude::*;

use super::small_gemm::{row_offsets, Rows, Strided};
use super::uninit::{as_slots, init, Slots};
use crate::autocast::{product_precision, Precision};
use lower::{col2im_image, Layout, Plan};
use products::{f32_operand, gemm_bcast, gemm_dot, Kernels};

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

    /// Kernel taps over all channels: C·KH·KW.
    pub fn k_all(&self) -> usize {
        self.c * self.kh * self.kw
    }
}

/// Runs `f(index, item, scratch)` over `items`, in parallel when there are
/// threads; each task reuses one scratch buffer instead of allocating per item.
fn run_parallel<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T, &mut Vec<f32>) + Sync + Send) {
    if items.len() > 1 && crate::threads::num_threads() > 1 {
        crate::threads::in_pool(|| {
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
/// (contiguous). Returns `y [N, O, OH, OW]` and, when `keep`, what the
/// weight gradient needs (every image's B).
pub fn conv_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeom,
    o: usize,
    groups: usize,
    keep: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let plan = Plan::new(g);
    let precision = product_precision();
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg, q) = (o / groups, kc / groups, plan.q);
    let kernels = Kernels::for_bcast(precision, og);
    // (the bf16 kernels round W as they pack it)
    let w = &f32_operand(w, kernels.rounding(precision))[..];
    let wide = plan.layout == Layout::Wide;
    let bias_of = |oc: usize| bias.map_or(0.0, |b| b[oc]);
    if g.n * o * p == 0 || kc == 0 {
        // no images, no output channels or no input channels: the bias alone
        let y = (0..g.n * o * p).map(|i| bias_of(i / p % o)).collect();
        return (y, keep.then(|| vec![0f32; g.n * plan.per_image]));
    }
    let out_rows = row_offsets(og, q);
    // y and the saved B's start uninitialized: every element is written
    // once below (zeroing them first cost a few percent of a LeNet step).
    let mut y: Vec<f32> = Vec::with_capacity(g.n * o * p);
    let mut saved: Vec<f32> = Vec::with_capacity(if keep { g.n * plan.per_image } else { 0 });
    let y_slots = &mut y.spare_capacity_mut()[..g.n * o * p];
    let mut work: Vec<(Slots, Option<Slots>)> = if keep {
        let saved_slots = &mut saved.spare_capacity_mut()[..g.n * plan.per_image];
        y_slots
            .chunks_mut(o * p)
            .zip(saved_slots.chunks_mut(plan.per_image).map(Some))
            .collect()
    } else {
        y_slots.chunks_mut(o * p).map(|c| (c, None)).collect()
    };
    run_parallel(&mut work, |n, (yn, kept), scratch| {
        // scratch: [B if not kept][wide output O × q][the image rounded,
        // at bf16]; zeros where the padding of a wide B goes, which fill
        // never writes
        let bf16 = precision == Precision::Bf16;
        let own_b = if kept.is_some() { 0 } else { plan.per_image };
        let own_out = if wide { o * q } else { 0 };
        scratch.resize(own_b + own_out + if bf16 { chw } else { 0 }, 0.0);
        let (sb, rest) = scratch.split_at_mut(own_b);
        let (wide_out, rounded) = rest.split_at_mut(own_out);
        let mut image = &x[n * chw..(n + 1) * chw];
        if bf16 {
            // rounded once here, not in each of the B's KH·KW copies: for
            // the f32 kernels, and kept so for the weight gradient's
            rounded.copy_from_slice(image);
            super::bf16_gemm::round_slice(rounded);
            image = rounded;
        }
        let b: &mut [f32] = match kept {
            Some(k) => plan.fill(image, g, k, false),
            None => plan.fill(image, g, as_slots(sb), true),
        };
        let products = |out: &mut [f32], accumulate: bool| {
            for gi in 0..groups {
                let wg = Strided {
                    data: &w[gi * og * kg..(gi + 1) * og * kg],
                    rs: kg,
                    cs: 1,
                };
                let rows = Rows {
                    data: b,
                    offsets: &plan.offsets[gi * kg..(gi + 1) * kg],
                };
                let out_g = &mut out[gi * og * q..(gi + 1) * og * q];
                gemm_bcast(kernels, og, q, kg, wg, rows, out_g, &out_rows, accumulate);
            }
        };
        if wide {
            products(wide_out, false);
            // keep the first OW of every pitch-long output row, plus the bias
            let rows = yn.chunks_mut(g.ow).zip(wide_out.chunks(plan.pitch));
            for (r, (dst, src)) in rows.enumerate() {
                let bv = bias_of(r / g.oh);
                for (d, s) in dst.iter_mut().zip(&src[..g.ow]) {
                    d.write(s + bv);
                }
            }
        } else {
            // start from the bias and add the product onto it
            let yn = init(yn, p, bias_of);
            products(yn, bias.is_some());
        }
    });
    // SAFETY: every image wrote all o·p of its outputs (and, when kept, all
    // of its B) above.
    unsafe {
        y.set_len(g.n * o * p);
        if keep {
            saved.set_len(g.n * plan.per_image);
        }
    }
    (y, keep.then_some(saved))
}

/// Gradient of the input: `dx [N, C, H, W]` from `dy [N, O, OH, OW]`:
/// `dcols = Wᵀ·dy_n`, one row per tap, each row added back at its tap's
/// place: by col2im, or, in the wide layout, by the product itself.
pub fn conv_backward_input(
    dy: &[f32],
    w: &[f32],
    g: &ConvGeom,
    o: usize,
    groups: usize,
) -> Vec<f32> {
    if g.n * g.c * o == 0 {
        return vec![0f32; g.n * g.c * g.h * g.w];
    }
    // the product Wᵀ·dy has a row per tap of a group; on the f32 kernels
    // at bf16 both operands are rounded first (dy image by image)
    let precision = product_precision();
    let kernels = Kernels::for_bcast(precision, g.k_all() / groups);
    let round_dy = kernels.rounding(precision) == Precision::Bf16;
    let w = f32_operand(w, kernels.rounding(precision));
    // With fewer channels than a tile's 6 rows, a tile would hold neighbouring
    // taps of one channel (see backward_input_wide), which measured slower.
    if Plan::wide_fits(g) && g.c / groups >= 6 {
        return backward_input_wide(dy, &w, g, (o, groups), (kernels, round_dy));
    }
    backward_input_im2col(dy, &w, g, (o, groups), (kernels, round_dy))
}

/// The input gradient through `dcols = Wᵀ·dy_n` and col2im, for any geometry.
fn backward_input_im2col(
    dy: &[f32],
    w: &[f32],
    g: &ConvGeom,
    (o, groups): (usize, usize),
    (kernels, round_dy): (Kernels, bool),
) -> Vec<f32> {
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg) = (o / groups, kc / groups);
    let (dy_rows, dcols_rows) = (row_offsets(og, p), row_offsets(kg, p));
    // dx zeroed image by image by the thread that adds into it (see
    // `zeroed_chunks` for why not `vec![0.0; ..]`)
    let mut dx: Vec<f32> = Vec::with_capacity(g.n * chw);
    let mut work: Vec<Slots> = dx.spare_capacity_mut()[..g.n * chw]
        .chunks_mut(chw)
        .collect();
    run_parallel(&mut work, |n, dxn, scratch| {
        let dxn = init(std::mem::take(dxn), chw, |_| 0.0);
        scratch.resize(kc * p + if round_dy { o * p } else { 0 }, 0.0);
        let (dcols, rounded) = scratch.split_at_mut(kc * p);
        let mut dyn_ = &dy[n * o * p..(n + 1) * o * p];
        if round_dy {
            rounded.copy_from_slice(dyn_);
            super::bf16_gemm::round_slice(rounded);
            dyn_ = rounded;
        }
        for gi in 0..groups {
            // Wᵀ: element (k, o) of [K, O/G] is w[o·K + k]
            let wt = Strided {
                data: &w[gi * og * kg..(gi + 1) * og * kg],
                rs: 1,
                cs: kg,
            };
            let rows = Rows {
                data: &dyn_[gi * og * p..(gi + 1) * og * p],
                offsets: &dy_rows,
            };
            let dcols_g = &mut dcols[gi * kg * p..(gi + 1) * kg * p];
            gemm_bcast(kernels, kg, p, og, wt, rows, dcols_g, &dcols_rows, false);
        }
        col2im_image(dcols, g, dxn);
    });
    // SAFETY: every image's slots were zeroed above.
    unsafe { dx.set_len(g.n * chw) };
    dx
}

/// The input gradient in the wide layout (stride 1, no dilation): with dy
/// spread to the padded pitch (zeros in the dropped columns), row `(c, ki,
/// kj)` of `Wᵀ·dy` is exactly what tap `(ki, kj)` adds to the padded
/// gradient of channel c starting at `ki·Wp + kj`. So the product adds its
/// tiles there directly and no col2im pass is needed. The rows are ordered
/// tap-major, channel-minor, so the rows of one 6-row tile write to
/// different planes: neighbouring taps overlap by all but one float, and
/// read-modify-writes that close together would stall on store forwarding.
fn backward_input_wide(
    dy: &[f32],
    w: &[f32],
    g: &ConvGeom,
    (o, groups): (usize, usize),
    (kernels, round_dy): (Kernels, bool),
) -> Vec<f32> {
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg, cg, taps) = (o / groups, kc / groups, g.c / groups, g.kh * g.kw);
    let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
    let q = g.oh * wp;
    // Wᵀ of each group with its rows in (tap, channel) order: [G, K, O/G]
    let mut wt = vec![0f32; kc * og];
    let mut targets = Vec::with_capacity(kg);
    for t in 0..taps {
        for c in 0..cg {
            let r = targets.len();
            targets.push(c * hp * wp + (t / g.kw) * wp + t % g.kw);
            for gi in 0..groups {
                for oc in 0..og {
                    wt[(gi * kg + r) * og + oc] = w[(gi * og + oc) * kg + c * taps + t];
                }
            }
        }
    }
    let dy_rows = row_offsets(og, q);
    // the padded gradient of one group; the last taps' rows end KW − 1
    // floats past the last plane (OH + KH − 1 = Hp), adding zeros there
    let padded = cg * hp * wp + g.kw - 1;
    // dx starts uninitialized: the interiors copied below cover all of it
    let mut dx: Vec<f32> = Vec::with_capacity(g.n * chw);
    let mut work: Vec<Slots> = dx.spare_capacity_mut()[..g.n * chw]
        .chunks_mut(chw)
        .collect();
    run_parallel(&mut work, |n, dxn, scratch| {
        scratch.clear();
        scratch.resize(og * q + padded, 0.0);
        let (spread, dx_pad) = scratch.split_at_mut(og * q);
        let dyn_ = &dy[n * o * p..(n + 1) * o * p];
        for gi in 0..groups {
            for (dst, src) in spread
                .chunks_mut(wp)
                .zip(dyn_[gi * og * p..(gi + 1) * og * p].chunks(g.ow))
            {
                dst[..g.ow].copy_from_slice(src);
            }
            if round_dy {
                super::bf16_gemm::round_slice(spread);
            }
            if gi > 0 {
                dx_pad.fill(0.0);
            }
            let a = Strided {
                data: &wt[gi * kg * og..(gi + 1) * kg * og],
                rs: og,
                cs: 1,
            };
            let rows = Rows {
                data: spread,
                offsets: &dy_rows,
            };
            gemm_bcast(kernels, kg, q, og, a, rows, dx_pad, &targets, true);
            // keep the interior of the padded planes
            for c in 0..cg {
                let plane = &dx_pad[c * hp * wp..];
                let out = &mut dxn[(gi * cg + c) * g.h * g.w..][..g.h * g.w];
                for (y, row) in out.chunks_mut(g.w).enumerate() {
                    let src = &plane[(y + g.ph) * wp + g.pw..][..g.w];
                    for (d, v) in row.iter_mut().zip(src) {
                        d.write(*v);
                    }
                }
            }
        }
    });
    // SAFETY: each image's groups wrote every row of all their channels.
    unsafe { dx.set_len(g.n * chw) };
    dx
}

/// Gradients of the weight `[O, C/G·KH·KW]` (when the forward kept its
/// `saved` B's) and of the bias `[O]`, from `dy [N, O, OH, OW]`.
pub fn conv_backward_params(
    dy: &[f32],
    saved: Option<&[f32]>,
    g: &ConvGeom,
    o: usize,
    groups: usize,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let plan = Plan::new(g);
    let (p, kc, q) = (g.p(), g.k_all(), plan.q);
    let (og, kg) = (o / groups, kc / groups);
    let precision = product_precision();
    let kernels = Kernels::for_dot(precision, og, kg);
    // on the f32 kernels at bf16, dy is rounded (the saved B already is)
    let round_dy = kernels.rounding(precision) == Precision::Bf16;
    let blocks = g.n.div_ceil(IMAGES_PER_BLOCK);
    // Per block: weight gradient partial (if wanted) and bias partial.
    let mut partials: Vec<(Vec<f32>, Vec<f32>)> = (0..blocks)
        .map(|_| {
            (
                vec![0f32; if saved.is_some() { o * kg } else { 0 }],
                vec![0f32; o],
            )
        })
        .collect();
    run_parallel(&mut partials, |blk, (dw, db), scratch| {
        for n in blk * IMAGES_PER_BLOCK..((blk + 1) * IMAGES_PER_BLOCK).min(g.n) {
            let dyn_ = &dy[n * o * p..(n + 1) * o * p];
            for (oc, plane) in dyn_.chunks(p).enumerate() {
                db[oc] += super::reduce::sum_lanes(plane);
            }
            let Some(saved) = saved else { continue };
            let b = &saved[n * plan.per_image..(n + 1) * plan.per_image];
            // In the wide layout dy is spread to the output pitch, zeros at
            // the dropped positions, so they add nothing.
            let wide = plan.layout == Layout::Wide;
            if wide {
                scratch.clear();
                scratch.resize(o * q, 0.0);
                for (dst, src) in scratch.chunks_mut(plan.pitch).zip(dyn_.chunks(g.ow)) {
                    dst[..g.ow].copy_from_slice(src);
                }
            } else if round_dy {
                scratch.clear();
                scratch.extend_from_slice(dyn_);
            }
            if round_dy {
                super::bf16_gemm::round_slice(scratch);
            }
            let a: &[f32] = if wide || round_dy { scratch } else { dyn_ };
            for gi in 0..groups {
                let ag = &a[gi * og * q..(gi + 1) * og * q];
                let rows = Rows {
                    data: b,
                    offsets: &plan.offsets[gi * kg..(gi + 1) * kg],
                };
                gemm_dot(
                    kernels,
                    og,
                    kg,
                    q,
                    ag,
                    q,
                    rows,
                    &mut dw[gi * og * kg..(gi + 1) * og * kg],
                    kg,
                    true,
                );
            }
        }
    });
    let mut dw = saved.map(|_| vec![0f32; o * kg]);
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
    fn the_wide_input_gradient_equals_col2im() {
        // (C, H, W, K, pad, O, groups): LeNet's conv2, padding, groups, ragged
        for (c, h, w, k, pad, o, groups) in [
            (6, 14, 14, 5, 0, 16, 1),
            (8, 9, 11, 3, 1, 4, 1),
            (12, 7, 8, 3, 2, 6, 2),
            (7, 6, 6, 2, 1, 3, 1),
        ] {
            let out = |n: usize| ConvGeom::out_size(n, k, 1, pad, 1).unwrap();
            let g = ConvGeom {
                n: 3,
                c,
                h,
                w,
                kh: k,
                kw: k,
                sh: 1,
                sw: 1,
                ph: pad,
                pw: pad,
                dh: 1,
                dw: 1,
                oh: out(h),
                ow: out(w),
            };
            assert!(Plan::wide_fits(&g), "{g:?}");
            let vals = |len: usize, seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 37 + seed) % 23) as f32 / 8.0 - 1.4)
                    .collect()
            };
            let dy = vals(g.n * o * g.p(), 1);
            let wt = vals(o * g.k_all() / groups, 2);
            for kernels in [
                (Kernels::F32, false),
                (Kernels::F32, true),
                (Kernels::Bf16, false),
            ] {
                let want = backward_input_im2col(&dy, &wt, &g, (o, groups), kernels);
                let got = backward_input_wide(&dy, &wt, &g, (o, groups), kernels);
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-4, "{g:?} on {kernels:?}: off by {worst}");
            }
        }
    }

    #[test]
    fn outputs_and_weight_gradients_match_direct_sums_in_every_layout() {
        // (C, H, W, K, stride, pad, O, groups): strips without padding
        // (LeNet's conv2, and with groups), with padding (LeNet's conv1 and
        // a ragged one) and where wide would not fit; wide; strided im2col
        let mut seen = vec![];
        for (c, h, w, k, s, pad, o, groups) in [
            (6, 14, 14, 5, 1, 0, 16, 1),
            (1, 9, 9, 5, 1, 2, 3, 1),
            (4, 6, 9, 3, 1, 2, 4, 2),
            (1, 8, 8, 7, 1, 0, 2, 1),
            (2, 6, 20, 3, 1, 1, 3, 1),
            (3, 12, 12, 3, 1, 0, 4, 1),
            (4, 7, 7, 3, 1, 0, 6, 2),
            (3, 9, 8, 3, 1, 1, 5, 1),
            (2, 9, 9, 3, 2, 1, 4, 1),
        ] {
            let out = |n: usize| ConvGeom::out_size(n, k, s, pad, 1).unwrap();
            let g = ConvGeom {
                n: 5,
                c,
                h,
                w,
                kh: k,
                kw: k,
                sh: s,
                sw: s,
                ph: pad,
                pw: pad,
                dh: 1,
                dw: 1,
                oh: out(h),
                ow: out(w),
            };
            let vals = |len: usize, seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 37 + seed) % 23) as f32 / 8.0 - 1.4)
                    .collect()
            };
            let x = vals(g.n * c * h * w, 3);
            let dy = vals(g.n * o * g.p(), 4);
            let wt = vals(o * g.k_all() / groups, 5);
            let plan = Plan::new(&g);
            let layout = plan.layout;
            seen.push(layout);
            let (y, saved) = conv_forward(&x, &wt, None, &g, o, groups, true);
            let (dw, _) = conv_backward_params(&dy, saved.as_deref(), &g, o, groups);
            let dw = dw.unwrap();
            let (cg, og) = (c / groups, o / groups);
            let pixel = |n: usize, ch: usize, iy: usize, ix: usize| {
                if iy < pad || ix < pad || iy - pad >= h || ix - pad >= w {
                    0.0
                } else {
                    x[((n * c + ch) * h + iy - pad) * w + ix - pad] as f64
                }
            };
            for (i, &got) in y.iter().enumerate() {
                let (ox, oy) = (i % g.ow, i / g.ow % g.oh);
                let (oc, n) = (i / g.p() % o, i / g.p() / o);
                let mut want = 0f64;
                for cl in 0..cg {
                    for ki in 0..k {
                        for kj in 0..k {
                            let wv = wt[((oc * cg + cl) * k + ki) * k + kj] as f64;
                            want += wv * pixel(n, oc / og * cg + cl, oy * s + ki, ox * s + kj);
                        }
                    }
                }
                assert!(
                    (got as f64 - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{g:?}"
                );
            }
            for oc in 0..o {
                for cl in 0..cg {
                    for ki in 0..k {
                        for kj in 0..k {
                            let ch = oc / og * cg + cl;
                            let mut want = 0f64;
                            for n in 0..g.n {
                                for oy in 0..g.oh {
                                    for ox in 0..g.ow {
                                        let xv = pixel(n, ch, oy * s + ki, ox * s + kj);
                                        let gv = dy[((n * o + oc) * g.oh + oy) * g.ow + ox];
                                        want += xv * gv as f64;
                                    }
                                }
                            }
                            let got = dw[((oc * cg + cl) * k + ki) * k + kj] as f64;
                            assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "{g:?}");
                        }
                    }
                }
            }
        }
        for layout in [Layout::Strips, Layout::Wide, Layout::Im2col] {
            assert!(seen.contains(&layout), "no case with layout {layout:?}");
        }
    }
}
