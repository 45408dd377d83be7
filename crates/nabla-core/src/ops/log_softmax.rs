//! Log-softmax over one dimension, numerically stable.
//!
//! `y_i = (x_i − m) − ln Σ_j e^(x_j − m)` with `m = max_j x_j`; the log of
//! the sum as `ln_1p` of its terms but the max's.
//! Backward: `dx_i = dy_i − e^(y_i) · Σ_j dy_j`, for the dominant class
//! (`e^y > ½`) as `(dy_i − Σ) − (e^(y_i) − 1)·Σ` with `expm1`, which keeps
//! `1 − p` exact where p is near 1.

use super::softmax::{along_dim, map_rows};
use crate::backend::RowOp;
use crate::{Result, Tensor};

fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let y = map_rows(x, RowOp::LogSoftmax)?;
    let ys = y.detach();
    Ok(y.attach("LogSoftmaxBackward", &[x], move |g, _| {
        let s = g.sum(&[-1], true)?;
        // dx = g − e^y·s; where e^y > ½ (a dominant class, at most one per
        // row) as (g − s) − (e^y − 1)·s, with expm1: g − e^y·s cancels
        // there, and a probability of 0.99998 keeps only 2 digits of 1 − p
        let far = g.sub(&ys.exp()?.mul(&s)?)?;
        let near = g.sub(&s)?.sub(&ys.expm1()?.mul(&s)?)?;
        // (and only for a finite sum: with s = ±∞, e^y − 1 = 0 at y = 0
        // would make 0 · ∞ = NaN where g − e^y·s gives PyTorch's ∓∞)
        let finite = s.abs()?.lt(&Tensor::scalar(f32::INFINITY))?;
        let dominant = ys
            .gt(&Tensor::scalar(-std::f32::consts::LN_2))?
            .mul(&finite)?;
        Ok(vec![Some(Tensor::where_cond(&dominant, &near, &far)?)])
    }))
}

impl Tensor {
    /// Log-softmax over `dim` (negative counts from the end).
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        along_dim(self, "log_softmax", dim, log_softmax_last)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn equals_log_of_softmax_and_stays_finite() {
        let x = Tensor::from_vec(vec![1000., 1001., 1002., -5., 0., 5.], [2, 3]).unwrap();
        let a = x.log_softmax(1).unwrap().to_vec();
        let b = x.softmax(1).unwrap().log().unwrap().to_vec();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn gradcheck_log_softmax() {
        let x = rand_input(&[3, 5], 1).mul_scalar(3.0).unwrap();
        gradcheck(|x| x[0].log_softmax(-1), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].log_softmax(0), &[x], Default::default()).unwrap();
    }

    /// Large logits keep their precision: PyTorch (f32, and f64 rounded)
    /// gives these values for logits near 1356.
    #[test]
    fn large_logits_lose_no_precision() {
        let x = Tensor::from_vec(vec![1356.6038, 1356.1819, 1358.5898], [3]).unwrap();
        let y = x.log_softmax(0).unwrap().to_vec();
        let want = [-2.190_844_f32, -2.612_719, -0.204_76];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() <= 2e-6, "{y:?}");
        }
    }

    /// One dominant logit: log-probabilities near 0 keep their digits
    /// (ln of the rounded 1 + 1.9e-5 was 0.3% off).
    #[test]
    fn a_dominant_logit_keeps_its_digits() {
        let x = Tensor::from_vec(vec![0.0, -10.867181], [2]).unwrap();
        let y = x.log_softmax(0).unwrap().to_vec();
        let want = -(-10.867181f64).exp().ln_1p();
        assert!(
            ((y[0] as f64 - want) / want).abs() < 1e-6,
            "{} vs {want}",
            y[0]
        );
    }

    /// PyTorch (f32) keeps 1 − p's digits in the backward pass where the
    /// class is nearly certain: −6.358e-6 here (g − e^y·s gave −6.348e-6).
    #[test]
    fn a_nearly_certain_class_keeps_its_gradient_digits() {
        let x = Tensor::from_vec(vec![1.048_808_8, 11.915_971], [2])
            .unwrap()
            .requires_grad_(true);
        let g = Tensor::from_vec(vec![0.0, -1.0 / 3.0], [2]).unwrap();
        x.log_softmax(0)
            .unwrap()
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = x.grad().unwrap().to_vec();
        let want = 6.358_02e-6_f32;
        assert!(((d[0] - want) / want).abs() < 1e-5, "{d:?}");
        assert!(((d[1] + want) / want).abs() < 1e-5, "{d:?}");
    }
}
