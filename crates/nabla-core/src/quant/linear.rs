//! The dynamically quantized linear layer's product (PyTorch's
//! `quantized::linear_dynamic`):
//!
//! `y[i, j] = sx · sw[j] · Σ_k (xq[i, k] − zx) · wq[j, k] + b[j]`
//!
//! with `x [.., K]` quantized per call to u8 (`sx`, `zx` from its minimum
//! and maximum), `w [N, K]` quantized once to s8 (`sw` per tensor or per
//! output row), `y [.., N]` in f32. The sum runs in exact integers
//! (`backend/cpu/int8_gemm.rs`), `zx · Σ_k wq[j, k]` taken off afterwards,
//! so every path and thread count gives the same bits. No gradient: this is
//! inference only.

pub use crate::backend::cpu::int8_gemm::RowsA;
use crate::backend::cpu::int8_gemm::{gemm_u8s8, pad, Epilogue, PackedInt8};
use crate::{Error, Result, Tensor};

use super::{QParams, QTensor};

/// A Linear layer's weight quantized and packed for the int8 kernels
/// (PyTorch's packed parameters; the f32 bias is the caller's).
#[derive(Clone, Debug)]
pub struct QuantizedLinearWeight {
    weight: QTensor,
    packed: PackedInt8,
    /// `Σ_k wq[j, k]` per output row, to remove the activations' zero
    /// point, and each row's scale (both padded to whole panels).
    row_sums: Vec<i32>,
    col_scales: Vec<f32>,
}

impl QuantizedLinearWeight {
    /// From a quantized `[out, in]` weight, packed for the kernels this
    /// CPU runs ([`crate::isa::int8_isa`]).
    pub fn new(weight: QTensor) -> Result<Self> {
        Self::with_isa(weight, crate::isa::int8_isa())
    }

    /// [`Self::new`] for the kernels of `isa` (tests compare the paths).
    pub fn with_isa(weight: QTensor, isa: crate::Isa) -> Result<Self> {
        weight.check("quantized linear weight")?;
        let [n, k] = weight.shape[..] else {
            return Err(Error::shape(
                "quantized linear",
                format!(
                    "the weight must be [out, in], not {:?}",
                    weight.shape.as_slice()
                ),
            ));
        };
        let packed = PackedInt8::new(&weight.data, n, k, isa);
        let sums = weight.data.chunks_exact(k.max(1));
        let row_sums = pad(sums.map(|r| r.iter().map(|&v| v as i32).sum()), n);
        let col_scales = pad((0..n).map(|j| weight.scale_of(j)), n);
        Ok(QuantizedLinearWeight {
            weight,
            packed,
            row_sums,
            col_scales,
        })
    }

    pub fn weight(&self) -> &QTensor {
        &self.weight
    }

    /// (in, out) features.
    pub fn features(&self) -> (usize, usize) {
        (self.weight.shape[1], self.weight.shape[0])
    }

    /// `out [m, out] = xs [m, in] · Wᵀ + bias` on row-major slices: the
    /// activations quantized from their own minimum and maximum, the int8
    /// product on the pool's threads.
    pub fn product_into(&self, xs: &[f32], m: usize, bias: Option<&[f32]>, out: &mut [f32]) {
        let bias = pad(bias.unwrap_or(&[]).iter().copied(), self.weight.shape[0]);
        crate::threads::in_pool(|| {
            let q = QParams::for_activations(xs);
            self.product_with(xs, m, q, &bias, out, crate::num_threads())
        })
    }

    /// [`Self::product_into`] with the activations' parameters given (a
    /// block of rows of a larger batch quantized as the whole batch) and
    /// the bias padded to whole panels ([`Self::padded`]), on `threads`.
    pub fn product_with(
        &self,
        xs: &[f32],
        m: usize,
        q: QParams,
        bias: &[f32],
        out: &mut [f32],
        threads: usize,
    ) {
        let rows = RowsA::quantize(xs, m, &self.packed, 1.0 / q.scale, q.zero_point as f32);
        self.product_rows(&rows, m, q, bias, out, threads)
    }

    /// The row length of the activations' bytes for
    /// [`Self::rows_from_bytes`] (`in`, rounded up for the kernel).
    pub fn a_stride(&self) -> usize {
        self.packed.a_stride()
    }

    /// Activations already quantized (with the `q` given to
    /// [`Self::product_rows`]): `m` rows of [`Self::a_stride`] bytes.
    pub fn rows_from_bytes(&self, bytes: Vec<u8>, m: usize) -> RowsA {
        RowsA::from_bytes(bytes, m, &self.packed)
    }

    /// [`Self::product_with`] of rows already quantized with `q`.
    pub fn product_rows(
        &self,
        rows: &RowsA,
        m: usize,
        q: QParams,
        bias: &[f32],
        out: &mut [f32],
        threads: usize,
    ) {
        let n = self.weight.shape[0];
        assert_eq!(out.len(), m * n, "product_rows: out holds m·out values");
        let ep = Epilogue {
            zero_point: q.zero_point,
            scale: q.scale,
            row_sums: &self.row_sums,
            col_scales: &self.col_scales,
            bias,
        };
        gemm_u8s8(m, rows, &self.packed, out, &ep, threads);
    }

    /// `bias` (or zeros) padded as [`Self::product_with`] takes it.
    pub fn padded(&self, bias: Option<&[f32]>) -> Vec<f32> {
        pad(bias.unwrap_or(&[]).iter().copied(), self.weight.shape[0])
    }

    /// `x [.., in] → [.., out]` through the int8 product, plus `bias [out]`.
    pub fn forward(&self, x: &Tensor, bias: Option<&[f32]>) -> Result<Tensor> {
        let (k, n) = self.features();
        if let Some(b) = bias {
            if b.len() != n {
                return Err(Error::shape(
                    "quantized linear",
                    format!("bias of {} values for {n} outputs", b.len()),
                ));
            }
        }
        let shape = x.shape();
        if shape.last() != Some(&k) {
            return Err(Error::shape(
                "quantized linear",
                format!("input {shape:?} does not end in {k} features"),
            ));
        }
        let m = x.numel() / k.max(1);
        let mut out_shape = shape.to_vec();
        *out_shape.last_mut().unwrap() = n;
        let mut y = vec![0f32; m * n];
        x.read_data(|xs| self.product_into(xs, m, bias, &mut y));
        Tensor::from_vec_on(y, out_shape, x.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// The int8 product agrees with the f32 product of the dequantized
    /// weight and activations, to f32 rounding; every path gives the same
    /// bits; shapes are checked.
    #[test]
    fn quantized_product_is_the_dequantized_product_on_every_path() {
        let (m, k, n) = (37, 70, 21);
        let x = Tensor::randn([m, k]).mul_scalar(2.0).unwrap();
        let w = Tensor::randn([n, k]);
        let b: Vec<f32> = (0..n).map(|j| j as f32 * 0.1 - 1.0).collect();
        let qw = QTensor::quantize(&w, true).unwrap();
        // the reference: dequantized operands in f64
        let xs = x.to_vec();
        let q = QParams::for_activations(&xs);
        let xd: Vec<f64> = xs
            .iter()
            .map(|&v| (q.quantize(v, 0, 255) - q.zero_point) as f64 * q.scale as f64)
            .collect();
        let wd = qw.dequantize().unwrap().to_vec();
        let mut first: Option<Vec<f32>> = None;
        for isa in Isa::ALL
            .into_iter()
            .filter(|&i| crate::isa::int8_supported(i))
        {
            let layer = QuantizedLinearWeight::with_isa(qw.clone(), isa).unwrap();
            let y = layer.forward(&x, Some(&b)).unwrap();
            assert_eq!(y.shape(), [m, n]);
            let y = y.to_vec();
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|kk| xd[i * k + kk] * wd[j * k + kk] as f64)
                        .sum::<f64>()
                        + b[j] as f64;
                    let got = y[i * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{isa}: {got} vs {want}"
                    );
                }
            }
            match &first {
                None => first = Some(y),
                Some(f) => assert_eq!(&y, f, "{isa} differs from the first path"),
            }
        }
        let layer = QuantizedLinearWeight::new(qw).unwrap();
        let err = layer
            .forward(&Tensor::zeros([2, 3]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not end in 70 features"), "{err}");
        // a batch of several leading dimensions keeps them
        let y = layer.forward(&Tensor::zeros([2, 3, k]), None).unwrap();
        assert_eq!(y.shape(), [2, 3, n]);
        assert!(layer.forward(&x, Some(&[0.0; 3])).is_err());
    }
}
