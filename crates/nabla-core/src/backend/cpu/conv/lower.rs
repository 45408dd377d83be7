//! How one image becomes the matrix `B` of a convolution's products: one
//! row per kernel tap `(c, ki, kj)` holding the input pixels that tap meets
//! at every output position, in one of three layouts (see [`Plan`]); and
//! col2im, the adjoint of im2col, for input gradients.

use super::super::small_gemm::row_offsets;
use super::super::uninit::{assume_init, init, Slots};
use super::ConvGeom;

/// How `B` is laid out for this geometry: strips ([`fill_strips`]), wide
/// (the padded image itself: a tap's row is the slice starting at its
/// offset, OH·Wp long, of which each row's last Wp − OW outputs are
/// dropped) or im2col (`[C·KH·KW, P]`, zeros in the padding).
pub(super) struct Plan {
    pub layout: Layout,
    /// padded width (wide) or OW (strips, im2col): the row pitch of the outputs
    pub pitch: usize,
    /// length of a row of B: OH·pitch
    pub q: usize,
    /// floats of B per image
    pub per_image: usize,
    /// start of each tap's row in an image's B
    pub offsets: Vec<usize>,
}

/// The three layouts of B (see [`Plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    Strips,
    Wide,
    Im2col,
}

impl Plan {
    /// Whether the wide layout applies (stride 1, no dilation) and its wasted
    /// columns stay few.
    pub fn wide_fits(g: &ConvGeom) -> bool {
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

    pub fn new(g: &ConvGeom) -> Plan {
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
                layout: Layout::Strips,
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
                layout: Layout::Wide,
                pitch: wp,
                q: g.oh * wp,
                per_image: g.c * hp * wp + g.kw - 1,
                offsets,
            }
        } else {
            Plan {
                layout: Layout::Im2col,
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
    pub fn fill<'a>(&self, x: &[f32], g: &ConvGeom, buf: Slots<'a>, zeroed: bool) -> &'a mut [f32] {
        if self.layout == Layout::Strips {
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
        if self.layout == Layout::Im2col {
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
    if crate::backend::cpu::has_avx512() {
        // SAFETY: the CPU has AVX-512; the body only copies checked ranges.
        return unsafe { fill_strips_avx512(x, g, strips) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
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

/// [`fill_strips_body`] on the AVX-512 path: a 16-float piece is one move.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn fill_strips_avx512(x: &[f32], g: &ConvGeom, strips: Slots) {
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
                    if lo < hi {
                        // (an empty range can start left of the row)
                        for (o, v) in mid.iter_mut().zip(&row[lo + kj - g.pw..]) {
                            o.write(*v);
                        }
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
                    if ox_lo == ox_hi {
                        // no output column reads this kernel column (the
                        // first one's offset below would underflow)
                        continue;
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
    if crate::backend::cpu::has_avx512() {
        // SAFETY: the CPU has AVX-512; the function only adds slices.
        return unsafe { col2im_avx512(cols, g, dx) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
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

/// [`col2im_body`] on the AVX-512 path (the same sums).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn col2im_avx512(cols: &[f32], g: &ConvGeom, dx: &mut [f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
