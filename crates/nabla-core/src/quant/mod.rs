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

mod conv;
mod linear;
pub mod recurrent;
mod rows;

pub use conv::QuantizedConv2dWeight;
pub use linear::{QuantizedLinearWeight, RowsA};
pub use rows::{min_max, quantize_row, QuantizedLane};

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
