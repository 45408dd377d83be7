//! Broadcasting view: `broadcast_to(shape)` (PyTorch's `expand`) repeats
//! size-1 dims and adds leading dims with stride 0, without copying.
//! Backward: `dx = sum_to(dy, x.shape)`.

use crate::layout::{broadcast_shapes, broadcast_strides, Layout};
use crate::tensor::ShapeArg;
use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn broadcast_to(&self, shape: impl ShapeArg) -> Result<Tensor> {
        let spec = shape.to_dims();
        if spec.iter().any(|&d| d < 0) {
            return Err(Error::shape(
                "broadcast_to",
                format!("negative size in {spec:?}"),
            ));
        }
        let target: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
        if target == self.shape() {
            return Ok(self.clone());
        }
        let ok = target.len() >= self.rank()
            && broadcast_shapes("broadcast_to", self.shape(), &target)
                .ok()
                .as_deref()
                == Some(&target[..]);
        if !ok {
            return Err(Error::shape(
                "broadcast_to",
                format!("cannot broadcast shape {:?} to {target:?}", self.shape()),
            ));
        }
        let strides = broadcast_strides(self.layout(), &target);
        let y = self.view_with(Layout::new(target, strides, self.layout().offset()));
        Ok(y.attach("ExpandBackward", &[self], |g, inputs| {
            Ok(vec![Some(g.sum_to_shape(inputs[0].shape())?)])
        }))
    }

    /// Alias of [`broadcast_to`](Self::broadcast_to).
    pub fn expand(&self, shape: impl ShapeArg) -> Result<Tensor> {
        self.broadcast_to(shape)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn expand_values() {
        let x = Tensor::from_vec(vec![1., 2.], [2, 1]).unwrap();
        assert_eq!(
            x.broadcast_to([2, 3]).unwrap().to_vec(),
            vec![1., 1., 1., 2., 2., 2.]
        );
        assert!(x.broadcast_to([3, 3]).is_err());
    }

    #[test]
    fn gradcheck_expand() {
        gradcheck(
            |x| x[0].broadcast_to([2, 3, 4]),
            &[rand_input(&[3, 1], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
