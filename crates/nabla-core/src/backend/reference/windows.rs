//! Where a convolution's or pooling's window meets the image, for the
//! reference backend's loops.

use crate::backend::ConvGeom;

/// Output `[oh, ow]` window positions of a pooling or convolution tap:
/// the input row of output row `o` and tap `k`, if inside the image.
pub(super) fn input_at(
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    size: usize,
) -> Option<usize> {
    (o * stride + k * dil)
        .checked_sub(pad)
        .filter(|&i| i < size)
}

/// The input positions inside the image under output `(oy, ox)`'s window.
pub(super) fn window(g: &ConvGeom, oy: usize, ox: usize) -> Vec<(usize, usize)> {
    let mut w = vec![];
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            if let (Some(iy), Some(ix)) = (
                input_at(oy, ky, g.sh, g.ph, g.dh, g.h),
                input_at(ox, kx, g.sw, g.pw, g.dw, g.w),
            ) {
                w.push((iy, ix));
            }
        }
    }
    w
}

/// PyTorch's average-pool divisor: the window clipped to the padded image
/// (`count_include_pad`) or to the image itself.
pub(super) fn pool_divisor(g: &ConvGeom, oy: usize, ox: usize, count_include_pad: bool) -> f64 {
    let span = |o: usize, k: usize, s: usize, p: usize, size: usize| {
        let start = (o * s) as isize - p as isize;
        let (lo, hi) = match count_include_pad {
            true => (-(p as isize), (size + p) as isize),
            false => (0, size as isize),
        };
        ((start + k as isize).min(hi) - start.max(lo)) as f64
    };
    span(oy, g.kh, g.sh, g.ph, g.h) * span(ox, g.kw, g.sw, g.pw, g.w)
}
