//! Elementwise maximum and minimum of two tensors, with broadcasting.
//!
//! `y = max(a, b)`: the gradient goes to the larger input; on ties it is
//! split evenly (PyTorch's rule), so `da = dy·[a>b] + dy/2·[a=b]`.

use super::binary_map;
use crate::{Result, Tensor};

fn select_grads(
    g: &Tensor,
    inputs: &[Tensor],
    wins: fn(f32, f32) -> f32,
) -> Result<Vec<Option<Tensor>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    // share of the gradient that goes to `a`: 1, 0 or 1/2 on ties
    let share = binary_map("maximum", a, b, wins)?;
    let da = g.mul(&share)?.sum_to_shape(a.shape())?;
    let db = g
        .mul(&share.neg()?.add_scalar(1.0)?)?
        .sum_to_shape(b.shape())?;
    Ok(vec![Some(da), Some(db)])
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
            select_grads(g, inputs, |a, b| {
                if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                }
            })
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
            select_grads(g, inputs, |a, b| {
                if a < b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                }
            })
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
