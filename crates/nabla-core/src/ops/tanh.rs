//! Hyperbolic tangent. Backward: `dx = dy · (1 − y²)`.
//! Computed through one `exp` (libm's `tanhf` costs several times more,
//! and recurrent layers compute millions): `(1 − e)/(1 + e)` with
//! `e = e^(−2|x|)`, sign restored; absolute error below 2e-7.

use super::unary_op;
use crate::{Result, Tensor};

pub(crate) fn fast_tanh(x: f32) -> f32 {
    let e = (-2.0 * x.abs()).exp();
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

impl Tensor {
    pub fn tanh(&self) -> Result<Tensor> {
        unary_op(self, "TanhBackward", fast_tanh, |_, y| 1.0 - y * y)
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
