//! Row lookup: `index_select(dim, idx)` picks the entries `idx` (a 1-d
//! tensor of integer values) along `dim` — embeddings, label lookup.
//! `y[.., i, ..] = x[.., idx[i], ..]`. Backward: `dx[.., idx[i], ..] += dy[.., i, ..]`
//! (repeated indices accumulate).

use crate::layout::existing_dim;
use crate::{Error, Result, Tensor};

/// Index values as usize, checked against `size`. Index tensors hold
/// integers in f32 (exact up to 2^24).
pub(crate) fn indices(op: &'static str, idx: &Tensor, size: usize) -> Result<Vec<usize>> {
    idx.to_vec()
        .into_iter()
        .map(|v| {
            if v >= 0.0 && v.fract() == 0.0 && (v as usize) < size {
                Ok(v as usize)
            } else {
                Err(Error::Index { op, index: v, size })
            }
        })
        .collect()
}

impl Tensor {
    pub fn index_select(&self, dim: isize, idx: &Tensor) -> Result<Tensor> {
        let d = existing_dim("index_select", dim, self.shape())?;
        if idx.rank() != 1 {
            return Err(Error::shape(
                "index_select",
                format!("index must be 1-d, got shape {:?}", idx.shape()),
            ));
        }
        let shape = self.shape();
        let ids = indices("index_select", idx, shape[d])?;
        let outer: usize = shape[..d].iter().product();
        let inner: usize = shape[d + 1..].iter().product();
        // Read the selected rows straight from storage: copying the whole
        // source first would cost a full data set per batch.
        let src = self.contiguous()?;
        let size = shape[d];
        let out = src.with_view(|(x, _)| src.backend().index_select(x, outer, size, inner, &ids));
        let mut out_shape = shape.to_vec();
        out_shape[d] = ids.len();
        let y = Tensor::from_storage(out, &out_shape);
        Ok(y.attach("IndexSelectBackward", &[self], move |g, inputs| {
            let g = g.contiguous()?;
            let dx = g.with_view(|(s, _)| g.backend().index_add(s, outer, size, inner, &ids));
            Ok(vec![Some(Tensor::from_storage(dx, inputs[0].shape()))])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn selects_rows_and_rejects_bad_indices() {
        let x = Tensor::arange(0.0, 6.0, 1.0)
            .unwrap()
            .reshape([3, 2])
            .unwrap();
        let idx = Tensor::from_vec(vec![2., 0., 2.], [3]).unwrap();
        assert_eq!(
            x.index_select(0, &idx).unwrap().to_vec(),
            vec![4., 5., 0., 1., 4., 5.]
        );
        let bad = Tensor::from_vec(vec![3.], [1]).unwrap();
        let e = x.index_select(0, &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "index_select: index 3 out of range for a dimension of size 3"
        );
    }

    #[test]
    fn gradcheck_index_select_with_repeats() {
        let idx = Tensor::from_vec(vec![1., 1., 3.], [3]).unwrap();
        gradcheck(
            move |x| x[0].index_select(1, &idx),
            &[rand_input(&[2, 4, 2], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
