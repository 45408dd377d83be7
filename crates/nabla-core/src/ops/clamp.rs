//! `y = min(max(x, lo), hi)`. Backward: `dx = dy` strictly inside,
//! `lo < x < hi`, else 0 — at the bounds too, and even for an infinite or
//! NaN dy (PyTorch 2's rule: it selects, it does not multiply by 0).

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi {
            return Err(crate::Error::Arg {
                op: "clamp",
                msg: format!("min {lo} is greater than max {hi}"),
            });
        }
        // a NaN stays NaN (PyTorch); the gradient passes strictly inside
        unary_op(self, "ClampBackward", UnaryOp::Clamp { min: lo, max: hi })
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_clamp() {
        gradcheck(
            |x| x[0].clamp(-0.45, 0.55),
            &[distinct_input(&[4, 5], 1, 0.1)],
            Default::default(),
        )
        .unwrap();
        assert!(Tensor::zeros([1]).clamp(1.0, 0.0).is_err());
    }

    /// PyTorch 2: the bounds themselves get no gradient, a NaN stays NaN,
    /// and an infinite upstream gradient does not leak out of the range.
    #[test]
    fn bounds_nan_and_infinite_gradients() {
        let x = Tensor::from_vec(vec![-2.0, -1.5, -1.7, 0.0, f32::NAN], [5])
            .unwrap()
            .requires_grad_(true);
        let y = x.clamp(-2.0, -1.5).unwrap();
        assert!(y.to_vec()[4].is_nan());
        let g = Tensor::from_vec(vec![f32::INFINITY, 1.0, 1.0, f32::NAN, 0.0], [5]).unwrap();
        y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
    }
}
