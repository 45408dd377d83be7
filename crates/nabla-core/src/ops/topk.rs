//! The `k` largest (or smallest) values along a dim and their indices
//! (PyTorch's `topk`, sorted): values `[.., k, ..]` and indices of the same
//! shape (i64). Equal values come in index order; NaN counts as larger
//! than every number. Backward: the values are a gather, so `dx` is `dy`
//! scattered back to the chosen places (0 elsewhere).

use super::softmax::along_dim;
use crate::layout::existing_dim;
use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// `(values, indices)` of the `k` largest values along `dim` (the
    /// smallest with `largest = false`), the extreme first.
    pub fn topk(&self, k: usize, dim: isize, largest: bool) -> Result<(Tensor, Tensor)> {
        let d = existing_dim("topk", dim, self.shape())?;
        let len = self.shape().get(d).copied().unwrap_or(1);
        if k > len {
            return Err(Error::arg(
                "topk",
                format!(
                    "k = {k} is more than dim {d} holds (shape {:?})",
                    self.shape()
                ),
            ));
        }
        let x = self.detach();
        let indices = along_dim(&x, "topk", dim, |t| {
            let idx = t.with_view("topk", |v| t.backend().topk_indices(v, k, largest))?;
            let mut shape = t.shape().to_vec();
            if let Some(l) = shape.last_mut() {
                *l = k;
            }
            Ok(Tensor::from_storage(idx, &shape))
        })?
        .to_dtype(DType::I64)?;
        let values = self.gather(d as isize, &indices)?;
        Ok((values, indices))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{distinct_input, gradcheck};
    use crate::Tensor;

    #[test]
    fn picks_the_extremes_in_order() {
        let x =
            Tensor::from_vec(vec![1., 5., 3., 5., f32::NAN, -2., 0., 7., 7., 1.], [2, 5]).unwrap();
        let (v, i) = x.topk(3, 1, true).unwrap();
        assert_eq!(i.to_vec(), vec![4., 1., 3., 2., 3., 4.]);
        assert_eq!(i.dtype(), crate::DType::I64);
        let v = v.to_vec();
        assert!(v[0].is_nan() && v[1..] == [5., 5., 7., 7., 1.]);
        let (v, i) = x.topk(2, 1, false).unwrap();
        assert_eq!(
            (v.to_vec(), i.to_vec()),
            (vec![1., 3., -2., 0.], vec![0., 2., 0., 1.])
        );
        let (v, i) = x.topk(1, 0, true).unwrap();
        assert_eq!(v.shape(), [1, 5]);
        assert_eq!(i.to_vec(), vec![0., 0., 1., 1., 0.]);
        assert!(x.topk(6, 1, true).is_err());
        assert!(x.topk(1, 2, true).is_err());
    }

    #[test]
    fn gradcheck_topk() {
        let x = distinct_input(&[3, 6], 2, 0.05);
        gradcheck(
            |v: &[Tensor]| Ok(v[0].topk(3, 1, true)?.0),
            &[x.clone()],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |v: &[Tensor]| Ok(v[0].topk(2, 0, false)?.0),
            &[x],
            Default::default(),
        )
        .unwrap();
    }
}
