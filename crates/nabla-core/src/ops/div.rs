//! Elementwise quotient with broadcasting.
//!
//! `y = a / b`. Backward: `da = sum_to(dy / b, a.shape)`,
//! `db = sum_to(−dy · a / b², b.shape)`.

use super::binary_map;
use crate::{Result, Tensor};

impl Tensor {
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("div", self, rhs, |a, b| a / b)?;
        Ok(y.attach("DivBackward", &[self, rhs], |g, inputs| {
            let (a, b) = (&inputs[0], &inputs[1]);
            let da = match a.requires_grad() {
                true => Some(g.div(b)?.sum_to_shape(a.shape())?),
                false => None,
            };
            let db = match b.requires_grad() {
                true => Some(g.mul(a)?.div(&b.mul(b)?)?.neg()?.sum_to_shape(b.shape())?),
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
    fn gradcheck_div() {
        let f = |x: &[Tensor]| x[0].div(&x[1]);
        // Keep the divisor away from zero: |b| ≥ 0.6.
        let b = rand_input(&[4], 2).abs().unwrap().add_scalar(0.5).unwrap();
        gradcheck(f, &[rand_input(&[3, 4], 1), b], Default::default()).unwrap();
    }
}
