//! Hyperbolic tangent. Backward: `dx = dy · (1 − y²)`.
//! Computed with `cpu::math::tanh` (one polynomial exp; libm's `tanhf`
//! costs several times more); absolute error below 3e-7.

use super::unary_op;
use crate::{Result, Tensor};

impl Tensor {
    pub fn tanh(&self) -> Result<Tensor> {
        unary_op(self, "TanhBackward", crate::cpu::math::tanh, |_, y| {
            1.0 - y * y
        })
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
}
