//! Hyperbolic tangent. Backward: `dx = dy · (1 − y²)`.
//! On the CPU computed with `backend::cpu::math::tanh` (one polynomial exp, or a polynomial
//! below |x| = 1/4; libm's `tanhf` costs several times more); relative
//! error below 4e-7.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn tanh(&self) -> Result<Tensor> {
        unary_op(self, "TanhBackward", UnaryOp::Tanh)
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_tanh() {
        gradcheck(
            |x| x[0].tanh(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }

    /// Small inputs keep their relative precision (tanh x ≈ x): the
    /// `(1 − e)/(1 + e)` form alone was 0.3% off at 1e-5.
    #[test]
    fn small_values_are_accurate() {
        let xs = vec![1e-7f32, -1e-5, 3e-4, -0.01, 0.2499, 0.2501, 3.0];
        let y = Tensor::from_vec(xs.clone(), [xs.len()])
            .unwrap()
            .tanh()
            .unwrap();
        for (x, y) in xs.iter().zip(y.to_vec()) {
            let want = (*x as f64).tanh();
            assert!(
                (y as f64 - want).abs() <= 4e-7 * want.abs(),
                "tanh({x}) = {y}, want {want}"
            );
        }
    }
}
