//! Variance (and standard deviation, its square root) over dimensions:
//! `y = Σ (x − x̄)² / (n − correction)` (`correction = 1` is the unbiased
//! estimate, PyTorch's default; 0 is the population variance that
//! BatchNorm uses).
//!
//! Forward: two passes per output in f64, as PyTorch's CPU kernel
//! accumulates in double: constant inputs give exactly 0, and the standard
//! deviation of values whose squares overflow f32 (1e20) is still finite.
//! Backward: `dx = dy · 2(x − x̄)/(n − correction)`, PyTorch's rule: the
//! mean's own term is left out (it is Σ(x − x̄) = 0 in exact arithmetic,
//! and an infinite dy would make it ∞ − ∞ = NaN).

use super::sum::squeeze_dims;
use crate::layout::normalize_dims;
use crate::{Error, Result, Tensor};

/// The variance (or, with `sqrt`, the standard deviation) of `x` over
/// `dims`, with its gradient.
fn spread(
    x: &Tensor,
    op: &'static str,
    dims: &[isize],
    correction: usize,
    keepdim: bool,
    sqrt: bool,
) -> Result<Tensor> {
    let reduced = normalize_dims(op, dims, x.shape())?;
    let n: usize = reduced.iter().map(|&d| x.shape()[d]).product();
    if n <= correction {
        return Err(Error::Arg {
            op,
            msg: format!("{n} elements are too few for correction {correction}"),
        });
    }
    // the reduced dims last, each output one contiguous row
    let shape = x.shape();
    let kept = (0..shape.len()).filter(|d| !reduced.contains(d));
    let perm: Vec<usize> = kept.chain(reduced.iter().copied()).collect();
    // each row's spread in f64, and its mean as two f32, hi + lo:
    // `(x − hi) − lo` centers to within rounding, so the deviations sum to
    // 0 as they should (a bias's gradient through a variance is 0)
    let rows = x.detach().permute(&perm)?;
    let (out, hi, lo) =
        rows.with_view("var", |v| x.backend().row_spread(v, n, correction, sqrt))?;
    let keep_shape: Vec<usize> = (0..shape.len())
        .map(|d| if reduced.contains(&d) { 1 } else { shape[d] })
        .collect();
    let y_keep = Tensor::from_storage(out, &keep_shape);
    let y = match keepdim {
        true => y_keep.clone(),
        false => y_keep.reshape(squeeze_dims(&keep_shape, &reduced))?,
    };
    let mean_hi = Tensor::from_storage(hi, &keep_shape);
    let mean_lo = Tensor::from_storage(lo, &keep_shape);
    let scale = 2.0 / (n - correction) as f32;
    let name = if sqrt { "StdBackward" } else { "VarBackward" };
    Ok(y.attach(name, &[x], move |g, inputs| {
        let x = &inputs[0];
        let mut g = g.reshape(&keep_shape)?;
        if sqrt {
            // d√v = dv / (2√v), selected to 0 where √v = 0 (constant rows)
            g = super::binary_map(
                name,
                &g,
                &y_keep,
                crate::backend::BinaryOp::HalfQuotientOrZero,
            )?;
        }
        let centered = x.sub(&mean_hi)?.sub(&mean_lo)?;
        Ok(vec![Some(centered.mul(&g.mul_scalar(scale)?)?)])
    }))
}

impl Tensor {
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        spread(self, "var", dims, correction, keepdim, false)
    }

    /// Standard deviation, `√var` over the same dims (`torch.std`), with
    /// gradient `dy · (x − x̄) / ((n − correction)·y)`, taken as 0 where
    /// `y = 0` (constant inputs), as PyTorch does (the plain rule would
    /// give ∞ · 0 = NaN there).
    pub fn std(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        spread(self, "std", dims, correction, keepdim, true)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn var_values_and_gradcheck() {
        let x = Tensor::from_vec(vec![1., 2., 3., 4.], [4]).unwrap();
        assert!((x.var(&[], 1, false).unwrap().item().unwrap() - 5.0 / 3.0).abs() < 1e-6);
        assert!((x.var(&[], 0, false).unwrap().item().unwrap() - 1.25).abs() < 1e-6);
        assert!((x.std(&[0], 0, true).unwrap().to_vec()[0] - 1.25f32.sqrt()).abs() < 1e-6);
        assert_eq!(x.std(&[0], 0, true).unwrap().shape(), &[1]);
        gradcheck(
            |x| x[0].std(&[0], 1, true),
            &[rand_input(&[3, 5], 2)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].var(&[1], 1, false),
            &[rand_input(&[3, 5], 1)],
            Default::default(),
        )
        .unwrap();
    }

    /// PyTorch: `[[1, 1], [2, 3]].std(1).sum()` has gradient
    /// `[0, 0, −0.7071, 0.7071]`: a constant row gets zeros, not NaN.
    #[test]
    fn std_of_a_constant_row_has_a_zero_gradient() {
        let x = Tensor::from_vec(vec![1., 1., 2., 3.], [2, 2])
            .unwrap()
            .requires_grad_(true);
        x.std(&[1], 1, false)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = x.grad().unwrap().to_vec();
        let want = [
            0.0,
            0.0,
            -std::f32::consts::FRAC_1_SQRT_2,
            std::f32::consts::FRAC_1_SQRT_2,
        ];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    /// Constant rows have a variance of exactly 0; values whose squares
    /// overflow f32 still have a finite one (f64 accumulation, as PyTorch);
    /// an infinite upstream gradient gives ±∞, not ∞ − ∞.
    #[test]
    fn exact_for_constants_finite_for_huge_values() {
        let x = Tensor::full([3, 7], 0.1);
        assert_eq!(x.var(&[1], 1, false).unwrap().to_vec(), vec![0.0; 3]);
        let big = Tensor::from_vec(vec![3e19, -1e19], [2]).unwrap();
        assert_eq!(big.std(&[], 0, false).unwrap().item().unwrap(), 2e19);
        let x = Tensor::from_vec(vec![1.0, 2.0, 4.0], [3])
            .unwrap()
            .requires_grad_(true);
        let g = Tensor::scalar(f32::INFINITY);
        x.var(&[], 1, false)
            .unwrap()
            .mul(&g)
            .unwrap()
            .backward()
            .unwrap();
        let d = x.grad().unwrap().to_vec();
        assert_eq!(d, vec![f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY]);
    }
}
