//! Maximum and minimum over dimensions (`amax`, `amin`).
//!
//! `y = max_{dims} x`. Backward: the gradient is shared evenly by the
//! elements equal to the maximum: `dx = dy · [x = y] / #{x = y}`
//! (PyTorch's rule for `amax`).

use super::sum::{reduce_dims, squeeze_dims};
use crate::cpu::reduce::ReduceOp;
use crate::{Result, Tensor};

fn extreme(
    x: &Tensor,
    name: &'static str,
    dims: &[isize],
    keepdim: bool,
    op: ReduceOp,
) -> Result<Tensor> {
    let (y_keep, reduced) = reduce_dims(name, x, dims, op)?;
    let keep_shape = y_keep.shape().to_vec();
    let y = if keepdim {
        y_keep.clone()
    } else {
        y_keep.reshape(squeeze_dims(&keep_shape, &reduced))?
    };
    let dims: Vec<isize> = reduced.iter().map(|&d| d as isize).collect();
    Ok(y.attach(name, &[x], move |g, inputs| {
        let x = &inputs[0];
        let mask = x.eq(&y_keep)?;
        let count = mask.sum(&dims, true)?;
        let share = g.reshape(&keep_shape)?.div(&count)?;
        Ok(vec![Some(mask.mul(&share)?)])
    }))
}

impl Tensor {
    /// Largest value over `dims` (all when empty).
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        extreme(self, "MaxBackward", dims, keepdim, ReduceOp::Max)
    }

    /// Smallest value over `dims` (all when empty).
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        extreme(self, "MinBackward", dims, keepdim, ReduceOp::Min)
    }

    pub fn max_all(&self) -> Result<Tensor> {
        self.max(&[], false)
    }

    pub fn min_all(&self) -> Result<Tensor> {
        self.min(&[], false)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{distinct_input, gradcheck};
    use crate::Tensor;

    #[test]
    fn max_min_values() {
        let x = Tensor::from_vec(vec![1., 5., 3., 4., 2., 6.], [2, 3]).unwrap();
        assert_eq!(x.max(&[1], false).unwrap().to_vec(), vec![5., 6.]);
        assert_eq!(x.min(&[0], true).unwrap().to_vec(), vec![1., 2., 3.]);
        assert_eq!(x.max_all().unwrap().item().unwrap(), 6.);
    }

    #[test]
    fn gradcheck_max_min() {
        let x = distinct_input(&[3, 4, 2], 1, 0.1);
        gradcheck(|x| x[0].max(&[1], false), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].min(&[0, 2], true), &[x], Default::default()).unwrap();
    }

    #[test]
    fn ties_share_the_gradient() {
        let x = Tensor::from_vec(vec![2., 2., 1.], [3])
            .unwrap()
            .requires_grad_(true);
        x.max_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.5, 0.5, 0.0]);
    }
}
