//! Elementwise product with broadcasting.
//!
//! `y = a · b`. Backward: `da = sum_to(dy · b, a.shape)`, `db = sum_to(dy · a, b.shape)`.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("mul", self, rhs, BinaryOp::Mul)?;
        Ok(y.attach("MulBackward", &[self, rhs], |g, inputs| {
            let (a, b) = (&inputs[0], &inputs[1]);
            let da = match a.requires_grad() {
                true => Some(g.mul(b)?.sum_to_shape(a.shape())?),
                false => None,
            };
            let db = match b.requires_grad() {
                true => Some(g.mul(a)?.sum_to_shape(b.shape())?),
                false => None,
            };
            Ok(vec![da, db])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_mul() {
        let f = |x: &[Tensor]| x[0].mul(&x[1]);
        gradcheck(
            f,
            &[rand_input(&[3, 4], 1), rand_input(&[4], 2)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[2, 3], 3), rand_input(&[2, 3], 4)],
            Default::default(),
        )
        .unwrap();
    }
}
