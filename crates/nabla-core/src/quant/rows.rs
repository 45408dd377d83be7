//! Whole rows of activations: their minimum and maximum, and their
//! quantization to u8 (or to the i16 the AVX2 kernels widen them to), on
//! AVX2 vectors where the CPU has them, the same values as one at a time.

/// The smallest and largest of `xs` (NaNs skipped; +∞ and −∞ when empty).
pub fn min_max(xs: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::isa() >= crate::Isa::Avx2 {
        // SAFETY: the AVX2 path is only chosen where the CPU has AVX2.
        return unsafe { avx2::min_max(xs) };
    }
    min_max_scalar(xs)
}

fn min_max_scalar(xs: &[f32]) -> (f32, f32) {
    // (a comparison with NaN is false: NaNs are skipped)
    xs.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (if v < lo { v } else { lo }, if v > hi { v } else { hi })
        })
}

/// `dst[i] = clamp(round(src[i] · inv_scale + zero_point), 0, 255)`, the
/// values of [`QParams::quantize_with`](super::QParams::quantize_with) (NaN gives 0), into u8 or into
/// i16 (the AVX2 kernels' widened rows). The vector path multiplies, adds,
/// clamps, then converts with the CPU's rounding (to nearest, ties to
/// even); the plain one clamps, then rounds by adding and taking away
/// 1.5·2²³ (a float below 2²² comes back a whole number, ties to even):
/// the same values, and no call to the C library's `rint` per value.
pub fn quantize_row<T: QuantizedLane>(src: &[f32], dst: &mut [T], inv_scale: f32, zero_point: f32) {
    assert!(dst.len() >= src.len(), "quantize_row: dst shorter than src");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::isa::isa() >= crate::Isa::Avx2 {
        // SAFETY: the AVX2 path is only chosen where the CPU has AVX2.
        done = unsafe { T::quantize_avx2(src, dst, inv_scale, zero_point) };
    }
    const ROUND: f32 = 12_582_912.0;
    for (d, &x) in dst[done..].iter_mut().zip(&src[done..]) {
        let v = (x * inv_scale + zero_point).clamp(0.0, 255.0);
        *d = T::from(((v + ROUND) - ROUND) as u8);
    }
}

/// The element types a quantized row is written in.
pub trait QuantizedLane: From<u8> + Copy {
    /// Quantizes the longest prefix of whole vectors; returns its length.
    ///
    /// # Safety
    /// The CPU must have AVX2; `dst` at least as long as `src`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn quantize_avx2(src: &[f32], dst: &mut [Self], inv: f32, zp: f32) -> usize;
}

impl QuantizedLane for u8 {
    #[cfg(target_arch = "x86_64")]
    unsafe fn quantize_avx2(src: &[f32], dst: &mut [u8], inv: f32, zp: f32) -> usize {
        // SAFETY: as the caller guarantees.
        unsafe { avx2::quantize(src, dst.as_mut_ptr(), inv, zp, false) }
    }
}

impl QuantizedLane for i16 {
    #[cfg(target_arch = "x86_64")]
    unsafe fn quantize_avx2(src: &[f32], dst: &mut [i16], inv: f32, zp: f32) -> usize {
        // SAFETY: as the caller guarantees.
        unsafe { avx2::quantize(src, dst.as_mut_ptr() as *mut u8, inv, zp, true) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Minimum and maximum on four pairs of 8-lane accumulators.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_max(xs: &[f32]) -> (f32, f32) {
        let mut lo = [_mm256_set1_ps(f32::INFINITY); 4];
        let mut hi = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
        let chunks = xs.chunks_exact(32);
        let tail = chunks.remainder();
        for c in chunks {
            for (q, (lo, hi)) in lo.iter_mut().zip(&mut hi).enumerate() {
                // SAFETY: 8 values at 8·q of a 32-value chunk.
                let v = unsafe { _mm256_loadu_ps(c.as_ptr().add(8 * q)) };
                // (MINPS/MAXPS return the second operand when one is NaN)
                *lo = _mm256_min_ps(v, *lo);
                *hi = _mm256_max_ps(v, *hi);
            }
        }
        let (mut l, mut h) = ([0f32; 32], [0f32; 32]);
        for q in 0..4 {
            // SAFETY: l and h hold 32 values.
            unsafe {
                _mm256_storeu_ps(l.as_mut_ptr().add(8 * q), lo[q]);
                _mm256_storeu_ps(h.as_mut_ptr().add(8 * q), hi[q]);
            }
        }
        let (tl, th) = super::min_max_scalar(tail);
        let (ml, _) = super::min_max_scalar(&l);
        let (_, mh) = super::min_max_scalar(&h);
        (ml.min(tl), mh.max(th))
    }

    /// 16 values at a time: `v·inv + zp` (multiply, then add, as the
    /// plain loop), clamped to 0..=255, converted to nearest, packed to
    /// i16 (`wide`) or u8. Returns how many values were written.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantize(
        src: &[f32],
        dst: *mut u8,
        inv: f32,
        zp: f32,
        wide: bool,
    ) -> usize {
        let (inv, zp) = (_mm256_set1_ps(inv), _mm256_set1_ps(zp));
        let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
        let n = src.len() / 16 * 16;
        for i in (0..n).step_by(16) {
            // SAFETY: values i..i+16 of src, and of dst (as long as src).
            unsafe {
                let q = |p: *const f32| {
                    let v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p), inv), zp);
                    // (MAXPS with NaN first returns 0)
                    _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top))
                };
                let (a, b) = (q(src.as_ptr().add(i)), q(src.as_ptr().add(i + 8)));
                // packs works within 128-bit halves: put the halves back in order
                let halves = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0b11_01_10_00);
                if wide {
                    _mm256_storeu_si256(dst.add(2 * i) as *mut __m256i, halves);
                } else {
                    let bytes =
                        _mm256_permute4x64_epi64(_mm256_packus_epi16(halves, halves), 0b10_00);
                    _mm_storeu_si128(dst.add(i) as *mut __m128i, _mm256_castsi256_si128(bytes));
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QParams;

    /// The vectorized row quantizer gives `quantize_with`'s values on
    /// ties, both ends, NaN and infinities; min_max skips NaNs.
    #[test]
    fn rows_quantize_as_one_value_at_a_time() {
        let q = QParams {
            scale: 0.25,
            zero_point: 7,
        };
        let mut src: Vec<f32> = (-80..80).map(|i| i as f32 * 0.0625).collect();
        src.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            61.875,
        ]);
        // the same specials again inside whole vectors, not only in the tail
        src.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            61.875,
            62.125,
            0.0,
        ]);
        src.extend([2.125, 2.375, -1.875, 0.125, 59.5, 63.875, 63.9, -0.0]);
        src.extend([7.0; 5]);
        let mut dst = vec![0u8; src.len()];
        quantize_row(&src, &mut dst, 4.0, 7.0);
        let want: Vec<u8> = src.iter().map(|&x| q.quantize(x, 0, 255) as u8).collect();
        assert_eq!(dst, want);
        let mut wide = vec![0i16; src.len()];
        quantize_row(&src, &mut wide, 4.0, 7.0);
        assert!(wide.iter().zip(&want).all(|(w, v)| *w == *v as i16));
        assert_eq!(min_max(&src[..160]), (-5.0, 4.9375));
        assert_eq!(min_max(&[f32::NAN, 2.0, -1.0]), (-1.0, 2.0));
        let mut long: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        long[37] = f32::NAN;
        long[70] = -3.0;
        long[99] = 5.0;
        assert_eq!(min_max(&long), min_max_scalar(&long));
        assert_eq!(min_max(&long), (-3.0, 5.0));
    }
}
