//! Maximum and minimum over dimensions (`amax`, `amin`).
//!
//! `y = max_{dims} x`. Backward: the gradient is shared evenly by the
//! elements equal to the maximum: `dx = dy · [x = y] / #{x = y}`
//! (PyTorch's rule for `amax`).

use super::sum::{reduce_dims, squeeze_dims};
use crate::backend::ReduceOp;
use crate::{Error, Result, Tensor};

fn extreme(
    x: &Tensor,
    name: &'static str,
    dims: &[isize],
    keepdim: bool,
    op: ReduceOp,
) -> Result<Tensor> {
    // (as PyTorch: an empty set has no largest value)
    let reduced = crate::layout::normalize_dims(name, dims, x.shape())?;
    if let Some(&d) = reduced.iter().find(|&&d| x.shape()[d] == 0) {
        return Err(Error::Arg {
            op: name,
            msg: format!(
                "cannot reduce dimension {d} of size 0 (shape {:?}): no elements",
                x.shape()
            ),
        });
    }
    let (y_keep, reduced) = reduce_dims(name, x, dims, op)?;
    let keep_shape = y_keep.shape().to_vec();
    let y = if keepdim {
        y_keep.clone()
    } else {
        y_keep.reshape(squeeze_dims(&keep_shape, &reduced))?
    };
    let dims: Vec<isize> = reduced.iter().map(|&d| d as isize).collect();
    let backward = if op == ReduceOp::Max {
        "MaxBackward"
    } else {
        "MinBackward"
    };
    Ok(y.attach(backward, &[x], move |g, inputs| {
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
        extreme(self, "max", dims, keepdim, ReduceOp::Max)
    }

    /// Smallest value over `dims` (all when empty).
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        extreme(self, "min", dims, keepdim, ReduceOp::Min)
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
    fn an_empty_reduction_is_an_error() {
        let x = Tensor::zeros([0, 3]);
        let e = x.max(&[0], false).unwrap_err().to_string();
        assert_eq!(
            e,
            "max: cannot reduce dimension 0 of size 0 (shape [0, 3]): no elements"
        );
        assert!(x.min_all().is_err());
        assert!(Tensor::zeros([0]).max_all().is_err());
        // reducing the other dimension leaves an empty result, which is fine
        assert_eq!(x.max(&[1], false).unwrap().shape(), &[0]);
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
