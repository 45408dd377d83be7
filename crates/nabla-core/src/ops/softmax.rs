//! Softmax over one dimension, numerically stable.
//!
//! `y_i = e^(x_i − m) / Σ_j e^(x_j − m)` with `m = max_j x_j` (subtracting
//! the max changes nothing mathematically and keeps `exp` from overflowing).
//! Backward: `dx_i = y_i · (dy_i − Σ_j dy_j·y_j)`.
//! The kernel works on the last dim; other dims are transposed there.

use crate::backend::RowOp;
use crate::layout::normalize_dim;
use crate::{Result, Tensor};

/// Applies `f` to the last dim of `x` after moving `dim` there, then moves it back.
pub(crate) fn along_dim(
    x: &Tensor,
    op: &'static str,
    dim: isize,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let d = normalize_dim(op, dim, x.shape())?;
    let last = x.rank().saturating_sub(1);
    if d == last {
        return f(x);
    }
    f(&x.transpose(d as isize, last as isize)?)?.transpose(d as isize, last as isize)
}

/// Softmax or log-softmax of each row (the last dim) of `x`.
pub(crate) fn map_rows(x: &Tensor, op: RowOp) -> Result<Tensor> {
    let out = x.with_view("softmax", |v| x.backend().row_op(op, v))?;
    Ok(Tensor::from_storage(out, x.shape()))
}

fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let y = map_rows(x, RowOp::Softmax)?;
    let ys = y.detach();
    Ok(y.attach("SoftmaxBackward", &[x], move |g, _| {
        // dx = y · (g − Σ g·y), row by row, in that form: y·g − y·s rounds
        // both products before they cancel (PyTorch's form, too)
        let s = g.mul(&ys)?.sum(&[-1], true)?;
        Ok(vec![Some(ys.mul(&g.sub(&s)?)?)])
    }))
}

impl Tensor {
    /// Softmax over `dim` (negative counts from the end).
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        along_dim(self, "softmax", dim, softmax_last)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn rows_sum_to_one_even_for_huge_logits() {
        let x = Tensor::from_vec(vec![1000., 1001., 1002., -5., 0., 5.], [2, 3]).unwrap();
        let y = x.softmax(-1).unwrap();
        for row in y.to_vec2().unwrap() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row.iter().all(|v| v.is_finite()));
        }
        let y0 = x.softmax(0).unwrap().to_vec();
        assert!((y0[0] + y0[3] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn gradcheck_softmax() {
        let x = rand_input(&[3, 4, 2], 1).mul_scalar(2.0).unwrap();
        gradcheck(|x| x[0].softmax(-1), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].softmax(1), &[x], Default::default()).unwrap();
    }

    /// The outputs sum to 1 within an ulp or two, so the gradient of their
    /// sum is 0 (an f32 running sum of these 12 left 2.4e-7).
    #[test]
    fn outputs_sum_to_one_and_their_sum_has_no_gradient() {
        let v = vec![
            0.16591288, 0.16591269, 0.1659211, 0.16591468, 0.16595133, 0.16591269, 0.16591269,
            0.16591269, 0.16611296, 0.16594817, 0.16651675, 0.1659192,
        ];
        let x = Tensor::from_vec(v, [1, 12]).unwrap().requires_grad_(true);
        let y = x.softmax(1).unwrap();
        let total: f64 = y.to_vec().iter().map(|&v| v as f64).sum();
        assert!((total - 1.0).abs() < 1.5e-7, "{total}");
        y.sum_all().unwrap().backward().unwrap();
        assert!(x.grad().unwrap().to_vec().iter().all(|g| g.abs() < 1e-8));
    }
}
