//! im2col / col2im for 2-d convolution over a whole batch.
//!
//! N = batch, C = input channels, H, W = input height, width,
//! KH, KW = kernel size, OH, OW = output size, P = OH·OW.
//! `cols` is `[C·KH·KW, N·P]`, row-major: row `(c·KH + ki)·KW + kj` holds
//! input pixel `(c, oy·sh + ki·dh − ph, ox·sw + kj·dw − pw)` for every output
//! position `(n, oy, ox)`, or 0 where that falls in the padding. A
//! convolution is then one GEMM per group: `W[O, C·KH·KW] · cols`.

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

impl ConvGeom {
    /// Output size along one axis, or None if the window does not fit.
    pub fn out_size(input: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        let span = d * (k - 1) + 1;
        let padded = input + 2 * p;
        if k == 0 || s == 0 || padded < span {
            return None;
        }
        Some((padded - span) / s + 1)
    }

    /// Output positions `o` along one axis whose input index
    /// `o·s + k·d − p` lies in `0..input`: the range `lo..hi`.
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

    pub fn p(&self) -> usize {
        self.oh * self.ow
    }
}

/// Builds `cols [C·KH·KW, N·P]` from a contiguous input `[N, C, H, W]`.
pub fn im2col(x: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (p, np) = (g.p(), g.n * g.p());
    let rows = g.c * g.kh * g.kw;
    let mut cols = vec![0f32; rows * np];
    super::for_each_chunk(&mut cols, np, |r, row| {
        let (c, ki, kj) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (ox_lo, ox_hi) = ConvGeom::valid(g.ow, g.w, kj * g.dw, g.sw, g.pw);
        let (oy_lo, oy_hi) = ConvGeom::valid(g.oh, g.h, ki * g.dh, g.sh, g.ph);
        for n in 0..g.n {
            let plane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
            let out = &mut row[n * p..(n + 1) * p];
            for oy in oy_lo..oy_hi {
                let iy = oy * g.sh + ki * g.dh - g.ph;
                let src = &plane[iy * g.w..(iy + 1) * g.w];
                let dst = &mut out[oy * g.ow..(oy + 1) * g.ow];
                for ox in ox_lo..ox_hi {
                    dst[ox] = src[ox * g.sw + kj * g.dw - g.pw];
                }
            }
        }
    });
    cols
}

/// Adds `cols [C·KH·KW, N·P]` back onto an input-shaped gradient
/// `[N, C, H, W]` (the adjoint of [`im2col`]).
pub fn col2im(cols: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (p, np) = (g.p(), g.n * g.p());
    let hw = g.h * g.w;
    let mut dx = vec![0f32; g.n * g.c * hw];
    super::for_each_chunk(&mut dx, hw, |plane_idx, plane| {
        let (n, c) = (plane_idx / g.c, plane_idx % g.c);
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = ConvGeom::valid(g.oh, g.h, ki * g.dh, g.sh, g.ph);
            for kj in 0..g.kw {
                let (ox_lo, ox_hi) = ConvGeom::valid(g.ow, g.w, kj * g.dw, g.sw, g.pw);
                let r = (c * g.kh + ki) * g.kw + kj;
                let src = &cols[r * np + n * p..][..p];
                for oy in oy_lo..oy_hi {
                    let iy = oy * g.sh + ki * g.dh - g.ph;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let s = &src[oy * g.ow..(oy + 1) * g.ow];
                    for ox in ox_lo..ox_hi {
                        dst[ox * g.sw + kj * g.dw - g.pw] += s[ox];
                    }
                }
            }
        }
    });
    dx
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
            n: 2,
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
        let x: Vec<f32> = (0..2 * 2 * 5 * 4)
            .map(|i| ((i * 7) % 11) as f32 - 5.0)
            .collect();
        let cols = im2col(&x, &g);
        let y: Vec<f32> = (0..cols.len())
            .map(|i| ((i * 5) % 13) as f32 - 6.0)
            .collect();
        let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(col2im(&y, &g)).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
