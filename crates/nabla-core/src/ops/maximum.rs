//! Elementwise maximum and minimum of two tensors, with broadcasting.
//!
//! `y = max(a, b)`: the gradient goes to the larger input; on ties it is
//! split evenly (PyTorch's rule), so `da = dy·[a>b] + dy/2·[a=b]`; the
//! input that lost gets 0 even for an infinite or NaN dy.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

/// The gradients of `a` and `b`: `g · share`, where the share of the
/// first of (x, y) is 1, ½ (a tie) or 0 (`ShareOfLarger(x, y)`), and a
/// share of 0 *selects* 0, so that an infinite or NaN `g` does not reach
/// the input that lost (PyTorch's `masked_fill`). `larger` says whether
/// the output is the larger input.
fn select_grads(g: &Tensor, inputs: &[Tensor], larger: bool) -> Result<Vec<Option<Tensor>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    // for the minimum, a's share is that of the larger of (−a, −b): b vs a
    let (first, second) = if larger { (a, b) } else { (b, a) };
    let share_a = binary_map("maximum", first, second, BinaryOp::ShareOfLarger)?;
    let share_b = binary_map("maximum", second, first, BinaryOp::ShareOfLarger)?;
    let da = binary_map("maximum", &share_a, g, BinaryOp::ScaleByShare)?.sum_to_shape(a.shape())?;
    let db = binary_map("maximum", &share_b, g, BinaryOp::ScaleByShare)?.sum_to_shape(b.shape())?;
    Ok(vec![Some(da), Some(db)])
}

impl Tensor {
    /// The larger of `self` and `rhs` (a NaN on either side wins).
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("maximum", self, rhs, BinaryOp::Maximum)?;
        Ok(y.attach("MaximumBackward", &[self, rhs], |g, inputs| {
            select_grads(g, inputs, true)
        }))
    }

    /// The smaller of `self` and `rhs` (a NaN on either side wins).
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("minimum", self, rhs, BinaryOp::Minimum)?;
        Ok(y.attach("MinimumBackward", &[self, rhs], |g, inputs| {
            select_grads(g, inputs, false)
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{distinct_input, gradcheck};
    use crate::Tensor;

    #[test]
    fn gradcheck_maximum_minimum() {
        let (a, b) = (
            distinct_input(&[3, 4], 1, 0.1),
            distinct_input(&[4], 2, 0.13),
        );
        gradcheck(
            |x| x[0].maximum(&x[1]),
            &[a.clone(), b.clone()],
            Default::default(),
        )
        .unwrap();
        gradcheck(|x| x[0].minimum(&x[1]), &[a, b], Default::default()).unwrap();
    }

    #[test]
    fn ties_split_the_gradient() {
        let a = Tensor::from_vec(vec![1.0], [1])
            .unwrap()
            .requires_grad_(true);
        let b = Tensor::from_vec(vec![1.0], [1])
            .unwrap()
            .requires_grad_(true);
        a.maximum(&b)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![0.5]);
        assert_eq!(b.grad().unwrap().to_vec(), vec![0.5]);
    }
}
