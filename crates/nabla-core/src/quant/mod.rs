//! Quantization to 8-bit integers: `q = clamp(round(x / scale) + zero_point)`,
//! read back as `x ≈ (q − zero_point) · scale`.
//!
//! The schemes are PyTorch's (fbgemm's on x86), so a model quantized here
//! agrees with one quantized there:
//!
//! - **weights**: signed 8-bit, symmetric (zero point 0), one scale for the
//!   tensor or one per output channel: `scale = max|w| / 127.5` (the
//!   observer's `max / ((qmax − qmin) / 2)`), so ±max|w| land on the ends of −128..=127.
//! - **activations**: unsigned 8-bit, affine, the scale and zero point
//!   chosen from the batch's minimum and maximum (with 0 inside the range,
//!   so zero padding is exact) when the batch arrives: dynamic quantization.
//!   The full `0..=255` is used; PyTorch's default `reduce_range` (7 bits),
//!   which exists to dodge a saturation of AVX2's `VPMADDUBSW`, is not
//!   needed by these kernels (`backend/cpu/int8_gemm.rs`).
//!
//! Rounding is to nearest, ties to even, after multiplying by `1 / scale`,
//! as fbgemm does.

mod linear;
pub mod recurrent;

pub use linear::QuantizedLinearWeight;

use crate::{Error, Result, Tensor};

/// The scale and zero point of an affine quantization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

/// Below this scale fbgemm widens the range (its `SMALL_SCALE_THRESHOLD`).
const SMALL_SCALE: f32 = 6.1e-5;

impl QParams {
    /// PyTorch's `ChooseQuantizationParams` for values in `min..=max`
    /// mapped onto `qmin..=qmax`: the range stretched to hold 0, the scale
    /// `(max − min) / (qmax − qmin)` (0.1 for an empty range), the zero
    /// point from whichever end loses less, rounded into `qmin..=qmax`.
    pub fn choose(min: f32, max: f32, qmin: i32, qmax: i32) -> QParams {
        let (mut min, mut max) = (min.min(0.0), max.max(0.0));
        let mut scale = (f64::from(max) - f64::from(min)) / f64::from(qmax - qmin);
        if scale as f32 == 0.0 || (1.0 / scale as f32).is_infinite() {
            scale = 0.1;
        }
        if (scale as f32) < SMALL_SCALE {
            let original = scale as f32;
            scale = SMALL_SCALE.into();
            let span = SMALL_SCALE * (qmax - qmin) as f32;
            if min == 0.0 {
                max = span;
            } else if max == 0.0 {
                min = -span;
            } else {
                let amplify = SMALL_SCALE / original;
                (min, max) = (min * amplify, max * amplify);
            }
        }
        let (lo, hi) = (f64::from(min) / scale, f64::from(max) / scale);
        let from_min = f64::from(qmin) - lo;
        let from_max = f64::from(qmax) - hi;
        let error_min = f64::from(qmin).abs() - lo.abs();
        let error_max = f64::from(qmax).abs() - hi.abs();
        let initial = if error_min < error_max {
            from_min
        } else {
            from_max
        };
        let zero_point = if initial < f64::from(qmin) {
            qmin
        } else if initial > f64::from(qmax) {
            qmax
        } else {
            initial.round_ties_even() as i32
        };
        QParams {
            scale: scale as f32,
            zero_point,
        }
    }

    /// The unsigned 8-bit parameters of a batch (`0..=255`).
    pub fn for_activations(values: &[f32]) -> QParams {
        let (min, max) = min_max(values);
        if min > max {
            return QParams::choose(0.0, 0.0, 0, 255);
        }
        QParams::choose(min, max, 0, 255)
    }

    /// The signed, symmetric parameters of weights whose largest
    /// magnitude is `max_abs`: `max_abs / 127.5`, at least f32's epsilon
    /// (the observer's floor), zero point 0.
    pub fn symmetric(max_abs: f32) -> QParams {
        QParams {
            scale: (max_abs / 127.5).max(f32::EPSILON),
            zero_point: 0,
        }
    }

    /// `x` quantized into `lo..=hi`: `round(x · (1/scale) + zero_point)`,
    /// the zero point added before rounding as fbgemm's activations do.
    #[inline]
    pub fn quantize(self, x: f32, lo: i32, hi: i32) -> i32 {
        self.quantize_with(1.0 / self.scale, x, lo, hi)
    }

    /// [`Self::quantize`] with `1 / scale` computed once by the caller.
    #[inline]
    pub fn quantize_with(self, inv_scale: f32, x: f32, lo: i32, hi: i32) -> i32 {
        let q = (x * inv_scale + self.zero_point as f32).round_ties_even();
        q.clamp(lo as f32, hi as f32) as i32
    }
}

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
/// values of [`QParams::quantize_with`] (NaN gives 0), into u8 or into
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

/// A tensor of signed 8-bit values with a scale per tensor or per slice of
/// `axis` (symmetric: zero point 0), as PyTorch's `qint8` weights:
/// value `i` reads as `data[i] · scale`.
#[derive(Clone, Debug, PartialEq)]
pub struct QTensor {
    pub data: Vec<i8>,
    pub shape: Vec<usize>,
    /// One scale, or one per index of dimension 0 (an output channel).
    pub scales: Vec<f32>,
}

impl QTensor {
    /// `t` quantized symmetrically: one scale for the tensor, or one per
    /// index of its first dimension (`per_channel`: a Linear's output
    /// neurons, a convolution's output channels).
    pub fn quantize(t: &Tensor, per_channel: bool) -> Result<QTensor> {
        let shape = t.shape().to_vec();
        if shape.is_empty() || t.numel() == 0 {
            return Err(Error::Arg {
                op: "quantize",
                msg: format!("nothing to quantize in a tensor of shape {shape:?}"),
            });
        }
        let values = t.to_vec();
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Arg {
                op: "quantize",
                msg: format!("value {} at index {bad} is not finite", values[bad]),
            });
        }
        let groups = if per_channel { shape[0] } else { 1 };
        let per = values.len() / groups;
        let mut data = Vec::with_capacity(values.len());
        let mut scales = Vec::with_capacity(groups);
        for chunk in values.chunks(per) {
            let q = QParams::symmetric(chunk.iter().fold(0f32, |m, v| m.max(v.abs())));
            scales.push(q.scale);
            data.extend(chunk.iter().map(|&v| q.quantize(v, -128, 127) as i8));
        }
        Ok(QTensor {
            data,
            shape,
            scales,
        })
    }

    /// The scale of row `i` of dimension 0.
    pub fn scale_of(&self, i: usize) -> f32 {
        match self.scales.len() {
            1 => self.scales[0],
            _ => self.scales[i],
        }
    }

    /// The values read back as f32 (`q · scale`).
    pub fn dequantize(&self) -> Result<Tensor> {
        let per = self.data.len() / self.shape[0].max(1);
        let values = self
            .data
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scale_of(i / per.max(1)))
            .collect();
        Tensor::from_vec(values, self.shape.clone())
    }

    /// Bytes the values and scales take.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len() + 4 * self.scales.len()
    }

    /// Checks that the scales fit the shape (one, or one per row) and are
    /// positive and finite: a file's tensors are checked before use.
    pub fn check(&self, name: &str) -> Result<()> {
        let bad = |msg: String| Error::Arg {
            op: "quantized tensor",
            msg: format!("{name}: {msg}"),
        };
        if self.shape.is_empty() || self.data.len() != self.shape.iter().product::<usize>() {
            return Err(bad(format!(
                "{} values do not fill shape {:?}",
                self.data.len(),
                self.shape
            )));
        }
        if self.scales.len() != 1 && self.scales.len() != self.shape[0] {
            return Err(bad(format!(
                "{} scales for shape {:?} (expected 1 or {})",
                self.scales.len(),
                self.shape,
                self.shape[0]
            )));
        }
        if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(bad(format!("scale {s} is not a positive number")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_parameters_follow_fbgemm() {
        // a range holding 0: scale (max − min)/255, zero point where 0 falls
        let q = QParams::choose(-1.0, 3.0, 0, 255);
        assert_eq!(q.scale, 4.0 / 255.0);
        assert_eq!(q.zero_point, 64); // 1 / (4/255) = 63.75
                                      // all positive: stretched to 0, zero point 0
        let q = QParams::choose(2.0, 5.1, 0, 255);
        assert_eq!((q.scale, q.zero_point), (5.1 / 255.0, 0));
        // all negative: zero point at the top
        assert_eq!(QParams::choose(-2.0, -1.0, 0, 255).zero_point, 255);
        // nothing but zeros: scale 0.1, not a division by zero
        assert_eq!(QParams::for_activations(&[0.0; 4]).scale, 0.1);
        // a tiny range is widened to fbgemm's smallest scale
        let q = QParams::choose(0.0, 1e-6, 0, 255);
        assert_eq!((q.scale, q.zero_point), (SMALL_SCALE, 0));
        // quantizing rounds ties to even and clamps
        let q = QParams {
            scale: 0.5,
            zero_point: 10,
        };
        assert_eq!(q.quantize(0.25, 0, 255), 10);
        assert_eq!(q.quantize(0.75, 0, 255), 12);
        assert_eq!(q.quantize(-100.0, 0, 255), 0);
        assert_eq!(q.quantize(1e9, 0, 255), 255);
    }

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

    #[test]
    fn weights_quantize_symmetrically_per_tensor_or_per_row() {
        let w = Tensor::from_vec(vec![1.0, -0.5, 0.25, 2.0, 0.0, -4.0], [2, 3]).unwrap();
        let q = QTensor::quantize(&w, false).unwrap();
        assert_eq!(q.scales, [4.0 / 127.5]);
        // −4 · (1/scale) is −127.49999 in f32 → −127, as PyTorch gives;
        // 2 → 63.75 → 64
        assert_eq!(q.data, [32, -16, 8, 64, 0, -127]);
        let q = QTensor::quantize(&w, true).unwrap();
        assert_eq!(q.scales, [1.0 / 127.5, 4.0 / 127.5]);
        assert_eq!(q.data, [127, -64, 32, 64, 0, -127]);
        let back = q.dequantize().unwrap().to_vec();
        for (b, v) in back.iter().zip(w.to_vec()) {
            assert!((b - v).abs() <= 0.5 * 4.0 / 127.5, "{b} vs {v}");
        }
        assert_eq!(q.size_in_bytes(), 6 + 8);
        q.check("w").unwrap();
        // a zero row keeps a positive scale; non-finite weights are refused
        let z = QTensor::quantize(&Tensor::zeros([2, 2]), true).unwrap();
        assert!(z.scales.iter().all(|&s| s == f32::EPSILON));
        let nan = Tensor::from_vec(vec![1.0, f32::NAN], [2]).unwrap();
        assert!(QTensor::quantize(&nan, false).is_err());
        let mut broken = q.clone();
        broken.scales = vec![1.0; 3];
        assert!(broken
            .check("w")
            .unwrap_err()
            .to_string()
            .contains("3 scales"));
    }
}
