//! Elementwise maximum and minimum of two tensors, with broadcasting.
//!
//! `y = max(a, b)`: the gradient goes to the larger input; on ties it is
//! split evenly (PyTorch's rule), so `da = dy·[a>b] + dy/2·[a=b]`; the
//! input that lost gets 0 even for an infinite or NaN dy.

use super::binary_map;
use crate::{Result, Tensor};

/// The gradients of `a` and `b`: `g · share`, where `share(a, b)` is 1,
/// ½ (a tie) or 0, and a share of 0 *selects* 0, so that an infinite or
/// NaN `g` does not reach the input that lost (PyTorch's `masked_fill`).
fn select_grads(
    g: &Tensor,
    inputs: &[Tensor],
    share_a: fn(f32, f32) -> f32,
    share_b: fn(f32, f32) -> f32,
) -> Result<Vec<Option<Tensor>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    let pick = |s: f32, g: f32| if s == 0.0 { 0.0 } else { g * s };
    let da = binary_map("maximum", a, b, share_a)?;
    let db = binary_map("maximum", a, b, share_b)?;
    let da = binary_map("maximum", &da, g, pick)?.sum_to_shape(a.shape())?;
    let db = binary_map("maximum", &db, g, pick)?.sum_to_shape(b.shape())?;
    Ok(vec![Some(da), Some(db)])
}

/// The share of the gradient that goes to the first of (x, y) when the
/// output is the larger one: none if y is larger, half on a tie, else all
/// (a NaN on either side gives both all of it, as in PyTorch).
fn share_of_larger(x: f32, y: f32) -> f32 {
    if x < y {
        0.0
    } else if x == y {
        0.5
    } else {
        1.0
    }
}

impl Tensor {
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("maximum", self, rhs, |a, b| {
            if a.is_nan() || a > b {
                a
            } else {
                b
            }
        })?;
        Ok(y.attach("MaximumBackward", &[self, rhs], |g, inputs| {
            select_grads(g, inputs, share_of_larger, |a, b| share_of_larger(b, a))
        }))
    }

    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("minimum", self, rhs, |a, b| {
            if a.is_nan() || a < b {
                a
            } else {
                b
            }
        })?;
        Ok(y.attach("MinimumBackward", &[self, rhs], |g, inputs| {
            select_grads(g, inputs, |a, b| share_of_larger(b, a), share_of_larger)
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
