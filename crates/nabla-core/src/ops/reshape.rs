//! Reshaping views: `reshape`/`view`, `flatten`, `squeeze`, `unsqueeze`.
//!
//! A contiguous tensor is reshaped without copying (a new layout over the
//! same storage); otherwise it is copied first. Backward: `dx = dy`
//! reshaped to the input's shape.

use crate::layout::{normalize_dim, Layout};
use crate::tensor::{resolve_shape, ShapeArg};
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Same elements, new shape; one dim may be -1 (inferred):
    /// `x.reshape([64, -1])`.
    pub fn reshape(&self, shape: impl ShapeArg) -> Result<Tensor> {
        let spec = shape.to_dims();
        let dims = resolve_shape("reshape", &spec, self.numel())?;
        if dims.iter().product::<usize>() != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "shape {spec:?} is invalid for input of size {} (shape {:?})",
                    self.numel(),
                    self.shape()
                ),
            ));
        }
        if dims == self.shape() {
            return Ok(self.clone());
        }
        let src = if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous()?
        };
        let y = src.view_with(Layout::new(
            dims.clone(),
            crate::layout::contiguous_strides(&dims),
            src.layout().offset(),
        ));
        Ok(y.attach("ViewBackward", &[&src], |g, inputs| {
            Ok(vec![Some(g.reshape(inputs[0].shape())?)])
        }))
    }

    /// Alias of [`reshape`](Self::reshape) (`x.view(-1, 400)` in PyTorch).
    pub fn view(&self, shape: impl ShapeArg) -> Result<Tensor> {
        self.reshape(shape)
    }

    /// Merges dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1]);
        }
        let s = normalize_dim("flatten", start, self.shape())?;
        let e = normalize_dim("flatten", end, self.shape())?;
        if s > e {
            return Err(Error::arg(
                "flatten",
                format!("start dim {start} comes after end dim {end}"),
            ));
        }
        let mut shape: Vec<usize> = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(shape)
    }

    /// Removes dimension `dim` if it has size 1 (else returns the tensor unchanged, as PyTorch).
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = normalize_dim("squeeze", dim, self.shape())?;
        if self.rank() == 0 || self.shape()[d] != 1 {
            return Ok(self.clone());
        }
        let mut shape = self.shape().to_vec();
        shape.remove(d);
        self.reshape(shape)
    }

    /// Inserts a dimension of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 || d > rank {
            return Err(Error::Dim {
                op: "unsqueeze",
                dim,
                rank: self.rank(),
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = self.shape().to_vec();
        shape.insert(d as usize, 1);
        self.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn reshapes_share_storage_and_infer_one_dim() {
        let x = Tensor::arange(0.0, 12.0, 1.0).unwrap();
        let y = x.reshape([3, -1]).unwrap();
        assert_eq!(y.shape(), &[3, 4]);
        assert_eq!(x.flatten(0, -1).unwrap().shape(), &[12]);
        assert_eq!(y.unsqueeze(0).unwrap().shape(), &[1, 3, 4]);
        assert_eq!(
            y.unsqueeze(-1).unwrap().squeeze(-1).unwrap().shape(),
            &[3, 4]
        );
        let e = x.reshape([5, -1]).unwrap_err().to_string();
        assert_eq!(e, "reshape: shape [5, -1] is invalid for input of size 12");
        let e = x.reshape([2, 5]).unwrap_err().to_string();
        assert_eq!(
            e,
            "reshape: shape [2, 5] is invalid for input of size 12 (shape [12])"
        );
    }

    #[test]
    fn gradcheck_reshape_of_a_transposed_view() {
        gradcheck(
            |x| x[0].t()?.reshape([-1]),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
