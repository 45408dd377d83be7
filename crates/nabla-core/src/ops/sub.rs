//! Subtraction with broadcasting.
//!
//! `y = a − b`. Backward: `da = sum_to(dy, a.shape)`, `db = −sum_to(dy, b.shape)`.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("sub", self, rhs, BinaryOp::Sub)?;
        Ok(y.attach("SubBackward", &[self, rhs], |g, inputs| {
            Ok(vec![
                Some(g.sum_to_shape(inputs[0].shape())?),
                Some(g.sum_to_shape(inputs[1].shape())?.neg()?),
            ])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_sub() {
        let f = |x: &[Tensor]| x[0].sub(&x[1]);
        gradcheck(
            f,
            &[rand_input(&[3, 4], 1), rand_input(&[3, 1], 2)],
            Default::default(),
        )
        .unwrap();
    }
}
