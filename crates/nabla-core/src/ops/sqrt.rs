//! `y = √x`. Backward: `dx = dy / (2y)`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn sqrt(&self) -> Result<Tensor> {
        unary_op(self, "SqrtBackward", UnaryOp::Sqrt)
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_sqrt() {
        let x = rand_input(&[3, 4], 1)
            .abs()
            .unwrap()
            .add_scalar(0.2)
            .unwrap();
        gradcheck(|x| x[0].sqrt(), &[x], Default::default()).unwrap();
    }
}
