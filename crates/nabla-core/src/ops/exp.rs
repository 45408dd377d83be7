//! `y = eˣ`. Backward: `dx = dy · y`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn exp(&self) -> Result<Tensor> {
        unary_op(self, "ExpBackward", UnaryOp::Exp)
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_exp() {
        gradcheck(
            |x| x[0].exp(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
