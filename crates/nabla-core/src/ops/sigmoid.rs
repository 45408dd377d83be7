//! Logistic sigmoid `y = 1 / (1 + e^(−x))`. Backward: `dx = dy · y(1 − y)`.
//! Computed as `e^x / (1 + e^x)` for negative x so it never overflows.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn sigmoid(&self) -> Result<Tensor> {
        unary_op(self, "SigmoidBackward", UnaryOp::Sigmoid)
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_sigmoid() {
        gradcheck(
            |x| x[0].sigmoid(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        let y = Tensor::from_vec(vec![-200.0, 0.0, 200.0], [3])
            .unwrap()
            .sigmoid()
            .unwrap();
        assert_eq!(y.to_vec(), vec![0.0, 0.5, 1.0]);
    }
}
