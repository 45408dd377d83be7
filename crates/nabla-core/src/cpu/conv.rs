//! 2-d convolution on the CPU, lowered to small matrix products one image
//! at a time.
//!
//! N = batch, C = input channels, H, W = input size, O = output channels,
//! G = groups, KH, KW = kernel, OH, OW = output size, P = OH·OW,
//! K = C/G·KH·KW per group.
//!
//! The products need, for each image, a matrix `B` with one row per kernel
//! tap `(c, ki, kj)` holding the input pixels that tap meets at every output
//! position. Two ways to get it:
//!
//! - **wide** (stride 1, no dilation): pad the image once to `[C, Hp, Wp]`;
//!   the row of tap `(c, ki, kj)` is then simply the slice of the padded
//!   image starting at `(c, ki, kj)`, `OH·Wp` long: the output computed at
//!   "wide" positions `oy·Wp + ox`, of which the `ox ≥ OW` are dropped. No
//!   copy per tap, at the price of `Wp/OW` more columns (1.14× for LeNet's
//!   conv1, 1.4× for conv2);
//! - **im2col** (any stride and dilation): copy each tap's pixels into
//!   `cols [C·KH·KW, P]`, 0 in the padding.
//!
//! Then per group g: forward `y_n[g] = W[g]·B_n[g]`; weight gradient
//! `dW[g] += dy_n[g]·B_n[g]ᵀ`; input gradient `dcols_n = W[g]ᵀ·dy_n[g]`
//! followed by col2im (the adjoint of im2col). Images are spread over
//! threads; one image's `B` (tens of KB for LeNet) stays in cache. Weight and
//! bias gradients are summed per fixed block of images and the blocks added
//! in order, so results do not depend on the thread count.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::small_gemm::{gemm_bcast, gemm_dot, row_offsets, Rows, Strided};

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

/// How `B` is laid out for this geometry (see the module docs).
struct Plan {
    wide: bool,
    /// padded width (wide) or OW (im2col): the row pitch of the outputs
    pitch: usize,
    /// length of a row of B: OH·pitch
    q: usize,
    /// floats of B per image
    per_image: usize,
    /// start of each tap's row in an image's B
    offsets: Vec<usize>,
}

impl Plan {
    /// Whether the wide layout applies (stride 1, no dilation) and its wasted
    /// columns stay few.
    fn wide_fits(g: &ConvGeom) -> bool {
        let wp = g.w + 2 * g.pw;
        g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && 2 * wp <= 3 * g.ow
    }

    /// Whether B is built as strips (see [`fill_strips`]): stride 1 and no
    /// dilation, where the wide layout would waste more than an eighth of
    /// its columns (LeNet's conv1: 32 for 28, conv2: 14 for 10). Strips
    /// cost a copy of C·KW·Hp·OW floats but no wasted product columns:
    /// LeNet's conv2 forward went 0.46 → 0.35 ms and its weight gradient
    /// 0.55 → 0.42 ms. Big images (56 + 2 columns for 56) stay wide, where
    /// the copy would cost more than the few wasted columns.
    fn strips(g: &ConvGeom) -> bool {
        let wp = g.w + 2 * g.pw;
        g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && 8 * wp > 9 * g.ow
    }

    fn new(g: &ConvGeom) -> Plan {
        let (hp, wp, p) = (g.h + 2 * g.ph, g.w + 2 * g.pw, g.p());
        let mut offsets = Vec::with_capacity(g.k_all());
        if Plan::strips(g) {
            // tap (c, ki, kj) starts ki pieces into strip (c, kj)
            let strip = hp * g.ow;
            for c in 0..g.c {
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        offsets.push((c * g.kw + kj) * strip + ki * g.ow);
                    }
                }
            }
            Plan {
                wide: false,
                pitch: g.ow,
                q: p,
                per_image: g.c * g.kw * strip,
                offsets,
            }
        } else if Plan::wide_fits(g) {
            for c in 0..g.c {
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        offsets.push(c * hp * wp + ki * wp + kj);
                    }
                }
            }
            // the last tap's row ends KW − 1 floats past the padded image
            Plan {
                wide: true,
                pitch: wp,
                q: g.oh * wp,
                per_image: g.c * hp * wp + g.kw - 1,
                offsets,
            }
        } else {
            Plan {
                wide: false,
                pitch: g.ow,
                q: p,
                per_image: g.k_all() * p,
                offsets: row_offsets(g.k_all(), p),
            }
        }
    }

    /// Builds image `x [C, H, W]`'s B into `buf` (`per_image` floats) and
    /// returns it. `zeroed` says `buf` already holds zeros where a wide B's
    /// padding goes (a reused scratch buffer); otherwise what is not copied
    /// is zeroed here. Strips are written once, zeros included.
    fn fill<'a>(&self, x: &[f32], g: &ConvGeom, buf: Slots<'a>, zeroed: bool) -> &'a mut [f32] {
        if Plan::strips(g) {
            fill_strips(x, g, buf);
            // SAFETY: fill_strips wrote all of buf.
            return unsafe { assume_init(buf) };
        }
        let buf = if zeroed {
            // SAFETY: the caller says buf is initialized.
            unsafe { assume_init(buf) }
        } else {
            init(buf, self.per_image, |_| 0.0)
        };
        if !self.wide {
            im2col_image(x, g, buf);
            return buf;
        }
        let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
        for c in 0..g.c {
            for y in 0..g.h {
                let dst = &mut buf[c * hp * wp + (y + g.ph) * wp + g.pw..][..g.w];
                dst.copy_from_slice(&x[(c * g.h + y) * g.w..][..g.w]);
            }
        }
        buf
    }
}

/// B for stride 1 and no dilation with its rows shared: the row of tap
/// `(c, ki, kj)` is OH pieces of OW floats from padded image rows
/// `ki..ki + OH` at column `kj`, so the taps `(c, 0..KH, kj)` are windows
/// of one strip holding that column range of all Hp padded rows. Only the
/// C·KW strips are written (LeNet's conv2: 4,200 floats instead of im2col's
/// 15,000; the copy is bound by its stores). Without padding, a piece of
/// at most 16 floats is copied as 16 (two vector moves); the excess lands
/// on the next piece, which is written right after.
fn fill_strips(x: &[f32], g: &ConvGeom, strips: Slots) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; the body only copies checked ranges.
        return unsafe { fill_strips_avx2(x, g, strips) };
    }
    fill_strips_body(x, g, strips)
}

/// [`fill_strips_body`] compiled for AVX2: a 16-float piece is two
/// 32-byte moves instead of four 16-byte ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_strips_avx2(x: &[f32], g: &ConvGeom, strips: Slots) {
    fill_strips_body(x, g, strips)
}

#[inline(always)]
fn fill_strips_body(x: &[f32], g: &ConvGeom, strips: Slots) {
    let hp = g.h + 2 * g.ph;
    let mut dst = 0;
    for c in 0..g.c {
        for kj in 0..g.kw {
            let src = c * g.h * g.w + kj;
            let last_src = src + (g.h - 1) * g.w;
            let last_dst = dst + (g.h - 1) * g.ow;
            let unpadded = g.ph == 0 && g.pw == 0;
            if unpadded && g.ow <= 16 && last_src + 16 <= x.len() && last_dst + 16 <= strips.len() {
                for y in 0..g.h {
                    let (s, d) = (src + y * g.w, dst + y * g.ow);
                    // SAFETY: s + 16 ≤ last_src + 16 ≤ x.len() and
                    // d + 16 ≤ last_dst + 16 ≤ strips.len(), checked above.
                    unsafe {
                        let piece = x.as_ptr().add(s).cast::<[f32; 16]>().read_unaligned();
                        let out = strips.as_mut_ptr().add(d).cast::<[f32; 16]>();
                        out.write_unaligned(piece);
                    }
                }
            } else {
                // output columns lo..hi read image columns lo + kj − pw..
                let lo = g.pw.saturating_sub(kj).min(g.ow);
                let hi = (g.w + g.pw).saturating_sub(kj).clamp(lo, g.ow);
                for y in 0..hp {
                    let piece = &mut strips[dst + y * g.ow..dst + (y + 1) * g.ow];
                    if y < g.ph || y >= g.h + g.ph {
                        piece.iter_mut().for_each(|o| {
                            o.write(0.0);
                        });
                        continue;
                    }
                    let row = &x[(c * g.h + y - g.ph) * g.w..][..g.w];
                    let (left, rest) = piece.split_at_mut(lo);
                    let (mid, right) = rest.split_at_mut(hi - lo);
                    left.iter_mut().chain(right).for_each(|o| {
                        o.write(0.0);
                    });
                    for (o, v) in mid.iter_mut().zip(&row[lo + kj - g.pw..]) {
                        o.write(*v);
                    }
                }
            }
            dst += hp * g.ow;
        }
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
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; the function only adds slices.
        return unsafe { col2im_avx2(cols, g, dx) };
    }
    col2im_body(cols, g, dx)
}

/// [`col2im_body`] compiled for AVX2: 8-wide adds for the short rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn col2im_avx2(cols: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    col2im_body(cols, g, dx)
}

#[inline(always)]
fn col2im_body(cols: &[f32], g: &ConvGeom, dx: &mut [f32]) {
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
                if oy_lo >= oy_hi || ox_lo >= ox_hi {
                    continue;
                }
                let first = ox_lo * g.sw + kj * g.dw - g.pw;
                let len = ox_hi - ox_lo;
                let iy0 = oy_lo * g.sh + ki * g.dh - g.ph;
                // input rows iy0, iy0 + sh, … meet output rows oy_lo..oy_hi
                let dst_rows = plane[iy0 * g.w..].chunks_mut(g.w * g.sh);
                let src_rows = row[oy_lo * g.ow..oy_hi * g.ow].chunks_exact(g.ow);
                for (d, s) in dst_rows.zip(src_rows) {
                    let s = &s[ox_lo..ox_hi];
                    if g.sw == 1 {
                        let d = &mut d[first..first + len];
                        d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
                    } else {
                        for (k, s) in s.iter().enumerate() {
                            d[first + k * g.sw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Room for outputs not yet written.
type Slots<'a> = &'a mut [MaybeUninit<f32>];

/// The slots of an initialized buffer (writing floats into them keeps it so).
fn as_slots(buf: &mut [f32]) -> Slots<'_> {
    // SAFETY: MaybeUninit<f32> has f32's layout, and every f32 is a valid one.
    unsafe { &mut *(buf as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// The slots as floats.
///
/// # Safety
/// Every slot must have been written.
unsafe fn assume_init(slots: Slots<'_>) -> &mut [f32] {
    // SAFETY: the caller guarantees every slot was written; the layouts match.
    unsafe { &mut *(slots as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Fills the slots, `len` at a time, with `value(i)` for the i-th run
/// of `len` (a channel's bias, say) and returns them as initialized.
fn init(slots: &mut [MaybeUninit<f32>], len: usize, value: impl Fn(usize) -> f32) -> &mut [f32] {
    for (i, run) in slots.chunks_mut(len.max(1)).enumerate() {
        let v = value(i);
        run.iter_mut().for_each(|s| {
            s.write(v);
        });
    }
    // SAFETY: every slot was just written.
    unsafe { assume_init(slots) }
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
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg, q) = (o / groups, kc / groups, plan.q);
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
    let bias_of = |oc: usize| bias.map_or(0.0, |b| b[oc]);
    run_parallel(&mut work, |n, (yn, kept), scratch| {
        // scratch: [B if not kept][wide output O × q]; zeros where the
        // padding of a wide B goes, which fill never writes
        let own_b = if kept.is_some() { 0 } else { plan.per_image };
        scratch.resize(own_b + if plan.wide { o * q } else { 0 }, 0.0);
        let (sb, wide_out) = scratch.split_at_mut(own_b);
        let image = &x[n * chw..(n + 1) * chw];
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
                gemm_bcast(og, q, kg, wg, rows, out_g, &out_rows, accumulate);
            }
        };
        if plan.wide {
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
    // With fewer channels than a tile's 6 rows, a tile would hold neighbouring
    // taps of one channel (see backward_input_wide), which measured slower.
    if Plan::wide_fits(g) && g.c / groups >= 6 {
        return backward_input_wide(dy, w, g, o, groups);
    }
    backward_input_im2col(dy, w, g, o, groups)
}

/// The input gradient through `dcols = Wᵀ·dy_n` and col2im, for any geometry.
fn backward_input_im2col(dy: &[f32], w: &[f32], g: &ConvGeom, o: usize, groups: usize) -> Vec<f32> {
    let (p, kc, chw) = (g.p(), g.k_all(), g.c * g.h * g.w);
    let (og, kg) = (o / groups, kc / groups);
    let (dy_rows, dcols_rows) = (row_offsets(og, p), row_offsets(kg, p));
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
            let rows = Rows {
                data: &dyn_[gi * og * p..(gi + 1) * og * p],
                offsets: &dy_rows,
            };
            let dcols_g = &mut dcols[gi * kg * p..(gi + 1) * kg * p];
            gemm_bcast(kg, p, og, wt, rows, dcols_g, &dcols_rows, false);
        }
        col2im_image(dcols, g, dxn);
    });
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
fn backward_input_wide(dy: &[f32], w: &[f32], g: &ConvGeom, o: usize, groups: usize) -> Vec<f32> {
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
    // the padded gradient of one group; the last taps run KW − 1 + (KH − 1)·Wp
    // floats past the last plane, adding zeros there
    let padded = cg * hp * wp + (g.kh - 1) * wp + g.kw;
    let mut dx = vec![0f32; g.n * chw];
    let mut work: Vec<&mut [f32]> = dx.chunks_mut(chw).collect();
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
            gemm_bcast(kg, q, og, a, rows, dx_pad, &targets, true);
            // keep the interior of the padded planes
            for c in 0..cg {
                let plane = &dx_pad[c * hp * wp..];
                let out = &mut dxn[(gi * cg + c) * g.h * g.w..][..g.h * g.w];
                for (y, row) in out.chunks_mut(g.w).enumerate() {
                    row.copy_from_slice(&plane[(y + g.ph) * wp + g.pw..][..g.w]);
                }
            }
        }
    });
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
            let a: &[f32] = if plan.wide {
                scratch.clear();
                scratch.resize(o * q, 0.0);
                for (dst, src) in scratch.chunks_mut(plan.pitch).zip(dyn_.chunks(g.ow)) {
                    dst[..g.ow].copy_from_slice(src);
                }
                scratch
            } else {
                dyn_
            };
            for gi in 0..groups {
                let ag = &a[gi * og * q..(gi + 1) * og * q];
                let rows = Rows {
                    data: b,
                    offsets: &plan.offsets[gi * kg..(gi + 1) * kg],
                };
                gemm_dot(
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
            let want = backward_input_im2col(&dy, &wt, &g, o, groups);
            let got = backward_input_wide(&dy, &wt, &g, o, groups);
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{g:?}: off by {worst}");
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
            let layout = (Plan::strips(&g), plan.wide);
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
        for layout in [(true, false), (false, true), (false, false)] {
            assert!(seen.contains(&layout), "no case with layout {layout:?}");
        }
    }
}
