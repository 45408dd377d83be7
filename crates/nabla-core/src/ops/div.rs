//! Elementwise quotient with broadcasting.
//!
//! `y = a / b`. Backward: `da = sum_to(dy / b, a.shape)`,
//! `db = sum_to(−dy · (a / b) / b, b.shape)`.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("div", self, rhs, BinaryOp::Div)?;
        Ok(y.attach("DivBackward", &[self, rhs], |g, inputs| {
            let (a, b) = (&inputs[0], &inputs[1]);
            let da = match a.requires_grad() {
                true => Some(g.div(b)?.sum_to_shape(a.shape())?),
                false => None,
            };
            let db = match b.requires_grad() {
                // (−dy · ((a / b) / b), as PyTorch: neither a·dy nor b²
                // overflows or underflows on the way where the result fits)
                true => Some(g.mul(&a.div(b)?.div(b)?)?.neg()?.sum_to_shape(b.shape())?),
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

    /// The divisor's gradient stays finite where b² would overflow.
    #[test]
    fn divisor_gradient_without_overflow() {
        let a = Tensor::from_vec(vec![1e30], [1]).unwrap();
        let b = Tensor::from_vec(vec![1e20], [1])
            .unwrap()
            .requires_grad_(true);
        a.div(&b).unwrap().sum_all().unwrap().backward().unwrap();
        let g = b.grad().unwrap().to_vec()[0];
        assert!((g / -1e-10 - 1.0).abs() < 1e-6, "{g}");
    }
}
