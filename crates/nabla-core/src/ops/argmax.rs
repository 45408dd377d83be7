//! Index of the largest (smallest) value along a dim, as i64 (the first
//! one on ties, as PyTorch). Not differentiable.

use super::softmax::along_dim;
use crate::backend::ArgOp;
use crate::{DType, Error, Result, Tensor};

fn arg_extreme(
    x: &Tensor,
    name: &'static str,
    dim: isize,
    keepdim: bool,
    op: ArgOp,
) -> Result<Tensor> {
    let x = x.detach();
    let keep = along_dim(&x, name, dim, |t| {
        if t.shape().last() == Some(&0) {
            return Err(Error::Arg {
                op: name,
                msg: format!(
                    "cannot reduce dimension {dim} of size 0 (shape {:?})",
                    x.shape()
                ),
            });
        }
        let idx = t.with_view(name, |v| t.backend().arg_reduce(op, v))?;
        let mut shape = t.shape().to_vec();
        if let Some(l) = shape.last_mut() {
            *l = 1;
        }
        Ok(Tensor::from_storage(idx, &shape))
    })?;
    let picked = if keepdim { keep } else { keep.squeeze(dim)? };
    picked.to_dtype(DType::I64)
}

impl Tensor {
    /// Index of the largest value along `dim` (the first of equals; a NaN
    /// counts as the largest), as i64.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        arg_extreme(self, "argmax", dim, keepdim, ArgOp::Max)
    }

    /// Index of the smallest value along `dim` (a NaN counts as the smallest).
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        arg_extreme(self, "argmin", dim, keepdim, ArgOp::Min)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn argmax_rows_and_columns() {
        let x = Tensor::from_vec(vec![1., 9., 3., 7., 2., 8.], [2, 3]).unwrap();
        assert_eq!(x.argmax(1, false).unwrap().to_vec(), vec![1., 2.]);
        let idx = x.argmax(1, false).unwrap();
        assert_eq!(
            (idx.dtype(), idx.to_vec_i64().unwrap()),
            (crate::DType::I64, vec![1, 2])
        );
        assert_eq!(x.argmax(0, true).unwrap().shape(), &[1, 3]);
        assert_eq!(x.argmax(0, false).unwrap().to_vec(), vec![1., 0., 1.]);
        assert_eq!(x.argmin(-1, false).unwrap().to_vec(), vec![0., 1.]);
    }

    #[test]
    fn an_empty_dimension_has_no_index() {
        let x = Tensor::zeros([2, 0]);
        let e = x.argmax(1, false).unwrap_err().to_string();
        assert_eq!(
            e,
            "argmax: cannot reduce dimension 1 of size 0 (shape [2, 0])"
        );
        assert!(x.argmin(-1, true).is_err());
        assert_eq!(x.argmax(0, false).unwrap().shape(), &[0]);
    }
}
