//! Rectifiers.
//!
//! `relu`: `y = max(x, 0)`; `dx = dy` where x > 0 (or NaN), else 0 — even
//! for an infinite or NaN dy, as in PyTorch.
//! `leaky_relu`: `y = x` for x > 0, `slope · x` otherwise; `dx = dy · (1 or slope)`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    /// `max(x, 0)`; a NaN passes through, forward and back, as in PyTorch
    /// (hiding it would hide a diverging network behind its ReLUs), and the
    /// gradient is selected where `x > 0`, not multiplied by 0 elsewhere.
    pub fn relu(&self) -> Result<Tensor> {
        unary_op(self, "ReluBackward", UnaryOp::Relu)
    }

    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        unary_op(self, "LeakyReluBackward", UnaryOp::LeakyRelu(slope))
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_relu() {
        gradcheck(
            |x| x[0].relu(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].leaky_relu(0.1),
            &[rand_input(&[3, 4], 2)],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn relu_values() {
        let x = Tensor::from_vec(vec![-1.0, 0.0, 2.0], [3]).unwrap();
        assert_eq!(x.relu().unwrap().to_vec(), vec![0.0, 0.0, 2.0]);
        let nan = Tensor::from_vec(vec![f32::NAN, -1.0], [2]).unwrap();
        assert!(nan.relu().unwrap().to_vec()[0].is_nan());
        assert!(nan.leaky_relu(0.1).unwrap().to_vec()[0].is_nan());
        assert_eq!(x.leaky_relu(0.01).unwrap().to_vec(), vec![-0.01, 0.0, 2.0]);
    }
}
