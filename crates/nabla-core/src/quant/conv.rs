//! The statically quantized 2-d convolution (PyTorch's
//! `torch.ao.nn.quantized.Conv2d` with an f32 output):
//!
//! `y[n, o, p] = sx · sw[o] · Σ_k (xq[n, k@p] − zx) · wq[o, k] + b[o]`
//!
//! for `x [N, C, H, W]` quantized to u8 with **fixed** parameters `sx`,
//! `zx` (chosen once from calibration batches: static quantization),
//! `w [O, C, KH, KW]` quantized once to s8 (`sw` per tensor or per output
//! channel), `k = (c, ki, kj)` running over the taps and `k@p` the input
//! pixel tap k meets at output position p; `y [N, O, OH, OW]` in f32.
//!
//! Each image is quantized once into a copy padded with the zero point
//! (so the padding is exactly 0 after the zero point is taken off), its
//! taps laid out as rows of bytes, one per output position (im2col, in
//! bytes: a quarter of the f32 lowering's traffic), and multiplied by the
//! packed weight on the int8 kernels of the Linear layers
//! (`backend/cpu/int8_gemm`); the `[P, O]` result is turned into the
//! image's `[O, P]`. Images run in parallel. Groups must be 1.
//! Inference only: no gradient.

use rayon::prelude::*;

use crate::{Conv2dParams, Error, Result, Tensor};

use super::{quantize_row, QParams, QTensor, QuantizedLinearWeight, RowsA};

/// A convolution's weight quantized and packed, with its geometry and the
/// fixed parameters of its input.
#[derive(Clone, Debug)]
pub struct QuantizedConv2dWeight {
    /// The weight as `[O, C·KH·KW]`, a Linear's layout.
    linear: QuantizedLinearWeight,
    /// `[O, C, KH, KW]`.
    shape: [usize; 4],
    params: Conv2dParams,
    input: QParams,
}

impl QuantizedConv2dWeight {
    /// From a quantized `[O, C, KH, KW]` weight, the convolution's
    /// parameters (groups 1) and the input's quantization parameters.
    pub fn new(weight: QTensor, params: Conv2dParams, input: QParams) -> Result<Self> {
        weight.check("quantized conv2d weight")?;
        let &[o, c, kh, kw] = &weight.shape[..] else {
            return Err(Error::shape(
                "quantized conv2d",
                format!(
                    "the weight must be [out, in, kh, kw], not {:?}",
                    weight.shape
                ),
            ));
        };
        if params.groups != 1 {
            return Err(Error::arg(
                "quantized conv2d",
                format!("groups must be 1, not {}", params.groups),
            ));
        }
        check_input(input)?;
        let flat = QTensor {
            shape: vec![o, c * kh * kw],
            ..weight
        };
        Ok(QuantizedConv2dWeight {
            linear: QuantizedLinearWeight::new(flat)?,
            shape: [o, c, kh, kw],
            params,
            input,
        })
    }

    /// The weight, `[O, C, KH, KW]`.
    pub fn weight(&self) -> QTensor {
        QTensor {
            shape: self.shape.to_vec(),
            ..self.linear.weight().clone()
        }
    }

    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// The input's fixed scale and zero point.
    pub fn input_params(&self) -> QParams {
        self.input
    }

    /// Sets the input's scale and zero point (loading a calibrated model).
    pub fn set_input_params(&mut self, input: QParams) -> Result<()> {
        check_input(input)?;
        self.input = input;
        Ok(())
    }

    /// Padding before and after, per axis.
    fn pads(&self) -> [(usize, usize); 2] {
        let p = &self.params;
        let [_, _, kh, kw] = self.shape;
        let pad = |k: usize, d: usize, explicit: usize| match p.same {
            false => (explicit, explicit),
            true => {
                let total = d * k.saturating_sub(1);
                (total / 2, total - total / 2)
            }
        };
        [
            pad(kh, p.dilation.0, p.padding.0),
            pad(kw, p.dilation.1, p.padding.1),
        ]
    }

    /// `x [N, C, H, W] → [N, O, OH, OW]`, plus `bias [O]`.
    pub fn forward(&self, x: &Tensor, bias: Option<&[f32]>) -> Result<Tensor> {
        let [o, c, kh, kw] = self.shape;
        let shape_error = || {
            Error::shape(
                "quantized conv2d",
                format!("expected an input [N, {c}, H, W], got {:?}", x.shape()),
            )
        };
        let &[n, xc, h, w] = x.shape() else {
            return Err(shape_error());
        };
        if xc != c {
            return Err(shape_error());
        }
        if let Some(b) = bias.filter(|b| b.len() != o) {
            return Err(Error::shape(
                "quantized conv2d",
                format!("bias of {} values for {o} output channels", b.len()),
            ));
        }
        if self.params.same && self.params.stride != (1, 1) {
            return Err(Error::arg(
                "quantized conv2d",
                "padding 'same' needs stride 1",
            ));
        }
        let [(top, bottom), (left, right)] = self.pads();
        let (s, d) = (self.params.stride, self.params.dilation);
        let out_size = |input: usize, before: usize, after: usize, k: usize, s: usize, d: usize| {
            let span = d * (k - 1) + 1;
            let padded = input + before + after;
            (s > 0 && padded >= span).then(|| (padded - span) / s + 1)
        };
        let (Some(oh), Some(ow)) = (
            out_size(h, top, bottom, kh, s.0, d.0),
            out_size(w, left, right, kw, s.1, d.1),
        ) else {
            return Err(Error::shape(
                "quantized conv2d",
                format!("a {kh}×{kw} kernel does not fit the input {:?}", x.shape()),
            ));
        };
        let geom = Lowering {
            c,
            h,
            w,
            hp: h + top + bottom,
            wp: w + left + right,
            top,
            left,
            kh,
            kw,
            s,
            d,
            oh,
            ow,
        };
        let p = oh * ow;
        let bias = self.linear.padded(bias);
        let q = self.input;
        let (inv, zp) = (1.0 / q.scale, q.zero_point as f32);
        let stride = self.linear.a_stride();
        let mut y = vec![0f32; n * o * p];
        x.read_data(|xs| {
            crate::threads::in_pool(|| {
                y.par_chunks_mut((o * p).max(1))
                    .zip(xs.par_chunks((c * h * w).max(1)))
                    .for_each_init(
                        || (Vec::new(), Vec::new(), Vec::new()),
                        |(image, bytes, out), (y_img, x_img)| {
                            geom.quantize_image(x_img, image, inv, zp, q.zero_point as u8);
                            geom.rows(image, stride, bytes);
                            let rows = self.linear.rows_from_bytes(std::mem::take(bytes), p);
                            out.resize(p * o, 0.0);
                            self.linear.product_rows(&rows, p, q, &bias, out, 1);
                            if let RowsA::Bytes(b) = rows {
                                *bytes = b; // the buffer again for the next image
                            }
                            // [P, O] → the image's [O, P]
                            assert_eq!(y_img.len(), o * p);
                            // SAFETY: y_img holds o rows of p, this task's alone
                            unsafe {
                                crate::backend::cpu::transpose::transpose_into(
                                    y_img.as_mut_ptr(),
                                    p,
                                    false,
                                    out,
                                    o,
                                    p,
                                    o,
                                )
                            };
                        },
                    )
            })
        });
        Tensor::from_vec_on(y, [n, o, oh, ow], x.device())
    }
}

/// An error unless `input` quantizes to u8 (a positive finite scale, a
/// zero point in 0..=255).
fn check_input(input: QParams) -> Result<()> {
    match input.scale > 0.0 && input.scale.is_finite() && (0..=255).contains(&input.zero_point) {
        true => Ok(()),
        false => Err(Error::arg(
            "quantized conv2d",
            format!("input parameters {input:?} are not those of u8 activations"),
        )),
    }
}

/// One image's sizes, for the lowering to rows of bytes.
#[derive(Clone, Copy)]
struct Lowering {
    c: usize,
    h: usize,
    w: usize,
    /// The padded image.
    hp: usize,
    wp: usize,
    top: usize,
    left: usize,
    kh: usize,
    kw: usize,
    s: (usize, usize),
    d: (usize, usize),
    oh: usize,
    ow: usize,
}

/// Bytes past the end of the buffers, so 8-byte loads and stores may run
/// over (see [`Lowering::rows`]).
const SLACK: usize = 8;

impl Lowering {
    /// `x [C, H, W]` quantized into `image [C, Hp, Wp]`, the border holding
    /// the zero point.
    fn quantize_image(&self, x: &[f32], image: &mut Vec<u8>, inv: f32, zp: f32, zp_byte: u8) {
        image.clear();
        image.resize(self.c * self.hp * self.wp + SLACK, zp_byte);
        for (ch, plane) in x.chunks_exact(self.h * self.w).enumerate() {
            for (r, row) in plane.chunks_exact(self.w).enumerate() {
                let at = (ch * self.hp + r + self.top) * self.wp + self.left;
                quantize_row(row, &mut image[at..at + self.w], inv, zp);
            }
        }
    }

    /// The rows of taps: row `p = (oh, ow)` holds, at column `(c, ki, kj)`,
    /// the padded image's byte at `(c, oh·sh + ki·dh, ow·sw + kj·dw)`.
    fn rows(&self, image: &[u8], stride: usize, rows: &mut Vec<u8>) {
        let p = self.oh * self.ow;
        let taps = self.c * self.kh * self.kw;
        // (every byte a kernel reads is written below: no clearing needed,
        // only the size)
        rows.resize(p * stride + SLACK, 0);
        if self.d.1 == 1 && self.kw <= SLACK {
            // The kw taps of one kernel row are adjacent bytes of the image
            // (the stride only moves their start): one 8-byte copy each.
            // The bytes a copy carries past its taps are rewritten by the
            // next copy, or land in the row's padding (never read against
            // a non-zero weight), the next row's start (written after) or
            // the slack; its source stays inside the image's slack too.
            assert!(image.len() >= self.c * self.hp * self.wp + SLACK);
            let (src, dst) = (image.as_ptr(), rows.as_mut_ptr());
            for oh in 0..self.oh {
                for ow in 0..self.ow {
                    let mut col = (oh * self.ow + ow) * stride;
                    for ch in 0..self.c {
                        let plane = ch * self.hp;
                        for ki in 0..self.kh {
                            let r = oh * self.s.0 + ki * self.d.0;
                            let from = (plane + r) * self.wp + ow * self.s.1;
                            // SAFETY: `from + 8` ≤ the image's length (its
                            // last tap is inside it, and the slack follows);
                            // `col + 8` ≤ the rows' length (col + kw ≤ the
                            // last row's end, and the slack follows)
                            unsafe {
                                let v = src.add(from).cast::<u64>().read_unaligned();
                                dst.add(col).cast::<u64>().write_unaligned(v);
                            }
                            col += self.kw;
                        }
                    }
                }
            }
        } else {
            for (pos, row) in rows.chunks_mut(stride).take(p).enumerate() {
                let (oh, ow) = (pos / self.ow, pos % self.ow);
                let mut col = 0;
                for ch in 0..self.c {
                    for ki in 0..self.kh {
                        let r = oh * self.s.0 + ki * self.d.0;
                        let from = (ch * self.hp + r) * self.wp + ow * self.s.1;
                        for kj in 0..self.kw {
                            row[col + kj] = image[from + kj * self.d.1];
                        }
                        col += self.kw;
                    }
                }
                debug_assert_eq!(col, taps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// The int8 convolution equals the f32 convolution of the dequantized
    /// input and weight (to f32 rounding), for strides, paddings,
    /// dilations and 'same'; every kernel path gives the same bits.
    #[test]
    fn quantized_conv_is_the_conv_of_the_dequantized_operands() {
        crate::manual_seed(4);
        let cases = [
            (Conv2dParams::default().padding(2), 5),
            (Conv2dParams::default(), 3),
            (Conv2dParams::default().stride(2).padding(1), 3),
            (Conv2dParams::default().dilation(2).padding(2), 3),
            (Conv2dParams::default().same(), 4),
            (Conv2dParams::default().padding(1), 9), // wider than 8 taps
        ];
        for (params, k) in cases {
            let x = Tensor::randn([3, 4, 11, 10]).mul_scalar(1.5).unwrap();
            let w = Tensor::randn([5, 4, k, k]);
            let b: Vec<f32> = (0..5).map(|j| j as f32 * 0.2 - 0.4).collect();
            let qw = QTensor::quantize(&w, true).unwrap();
            let xs = x.to_vec();
            let q = QParams::for_activations(&xs);
            // the reference: the f32 convolution of the dequantized operands
            let xd: Vec<f32> = xs
                .iter()
                .map(|&v| (q.quantize(v, 0, 255) - q.zero_point) as f32 * q.scale)
                .collect();
            let xd = Tensor::from_vec(xd, x.shape()).unwrap();
            let bias = Tensor::from_slice(&b, [5]).unwrap();
            let want = xd
                .conv2d(&qw.dequantize().unwrap(), Some(&bias), params)
                .unwrap();
            let mut first: Option<Vec<f32>> = None;
            for isa in Isa::ALL
                .into_iter()
                .filter(|&i| crate::isa::int8_supported(i))
            {
                let conv = QuantizedConv2dWeight {
                    linear: QuantizedLinearWeight::with_isa(
                        QTensor {
                            shape: vec![5, 4 * k * k],
                            ..qw.clone()
                        },
                        isa,
                    )
                    .unwrap(),
                    ..QuantizedConv2dWeight::new(qw.clone(), params, q).unwrap()
                };
                let got = conv.forward(&x, Some(&b)).unwrap();
                assert_eq!(got.shape(), want.shape(), "{params:?}");
                let (g, wv) = (got.to_vec(), want.to_vec());
                for (a, e) in g.iter().zip(&wv) {
                    assert!(
                        (a - e).abs() < 1e-3 * (1.0 + e.abs()),
                        "{params:?} {isa}: {a} vs {e}"
                    );
                }
                match &first {
                    None => first = Some(g),
                    Some(f) => assert_eq!(&g, f, "{isa} differs from the first path"),
                }
            }
        }
    }

    #[test]
    fn bad_shapes_and_parameters_are_errors() {
        let qw = QTensor::quantize(&Tensor::randn([2, 3, 3, 3]), false).unwrap();
        let q = QParams::choose(-1.0, 1.0, 0, 255);
        let conv = QuantizedConv2dWeight::new(qw.clone(), Conv2dParams::default(), q).unwrap();
        let err = conv
            .forward(&Tensor::zeros([1, 4, 5, 5]), None)
            .unwrap_err();
        assert!(
            err.to_string().contains("expected an input [N, 3, H, W]"),
            "{err}"
        );
        let err = conv
            .forward(&Tensor::zeros([1, 3, 2, 2]), None)
            .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(conv
            .forward(&Tensor::zeros([1, 3, 5, 5]), Some(&[0.0]))
            .is_err());
        let grouped = Conv2dParams::default().groups(3);
        assert!(QuantizedConv2dWeight::new(qw.clone(), grouped, q).is_err());
        let bad = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        assert!(QuantizedConv2dWeight::new(qw, Conv2dParams::default(), bad).is_err());
        // an empty batch gives an empty output
        let y = conv.forward(&Tensor::zeros([0, 3, 5, 5]), None).unwrap();
        assert_eq!(y.shape(), [0, 2, 3, 3]);
    }
}
