//! `y = |x|`. Backward: `dx = dy · sign(x)` (0 at x = 0, as PyTorch).

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn abs(&self) -> Result<Tensor> {
        unary_op(self, "AbsBackward", UnaryOp::Abs)
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_abs() {
        gradcheck(
            |x| x[0].abs(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
