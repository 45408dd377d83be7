//! Softplus, a smooth ReLU: `y = ln(1 + e^(βx)) / β`, and `y = x` where
//! `βx > threshold` (PyTorch's linear tail, β = 1 and threshold 20 by
//! default); `dx = dy·σ(βx)` (1 on the tail).

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// `nn.Softplus(beta, threshold)`.
    pub fn softplus(&self, beta: f32, threshold: f32) -> Result<Tensor> {
        if !(beta > 0.0 && beta.is_finite()) || threshold.is_nan() {
            return Err(Error::Arg {
                op: "softplus",
                msg: format!("beta must be a positive number and threshold a number, got {beta} and {threshold}"),
            });
        }
        unary_op(
            self,
            "SoftplusBackward",
            UnaryOp::Softplus { beta, threshold },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn values_tail_and_gradcheck() {
        let x = Tensor::from_vec(vec![-100.0, 0.0, 1.0, 30.0], [4]).unwrap();
        let y = x.softplus(1.0, 20.0).unwrap().to_vec();
        assert!(y[0] >= 0.0 && y[0] < 1e-30);
        assert!((y[1] - 2f32.ln()).abs() < 1e-7);
        assert!((y[2] - (1.0 + 1f32.exp()).ln()).abs() < 1e-6);
        assert_eq!(y[3], 30.0);
        let y = x.softplus(2.0, 5.0).unwrap().to_vec();
        assert_eq!(y[3], 30.0);
        assert!((y[2] - (1.0 + 2f32.exp()).ln() / 2.0).abs() < 1e-6);
        assert!(x.softplus(0.0, 20.0).is_err());
        let x = rand_input(&[3, 4], 1).mul_scalar(3.0).unwrap();
        gradcheck(|x| x[0].softplus(1.5, 2.0), &[x], Default::default()).unwrap();
    }
}
