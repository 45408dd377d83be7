//! Row lookup: `index_select(dim, idx)` picks the entries `idx` (a 1-d
//! tensor of integer values) along `dim` — embeddings, label lookup.
//! `y[.., i, ..] = x[.., idx[i], ..]`. Backward: `dx[.., idx[i], ..] += dy[.., i, ..]`
//! (repeated indices accumulate).

use crate::backend::HostData;
use crate::layout::existing_dim;
use crate::DType;
use crate::{Error, Result, Tensor};

/// Index values as usize, checked against `size`. An index tensor is
/// i64 (exact at any size) or holds integers in a float dtype (exact up
/// to 2^24 in f32).
pub(crate) fn indices(op: &'static str, idx: &Tensor, size: usize) -> Result<Vec<usize>> {
    let bad = |index: f64| Error::Index { op, index, size };
    match idx.to_host_data() {
        HostData::I64(ids) => ids
            .into_iter()
            .map(|i| match usize::try_from(i) {
                Ok(u) if u < size => Ok(u),
                _ => Err(bad(i as f64)),
            })
            .collect(),
        floats => floats
            .into_f32()
            .into_iter()
            .map(
                |v| match v >= 0.0 && v.fract() == 0.0 && (v as usize) < size {
                    true => Ok(v as usize),
                    false => Err(bad(f64::from(v))),
                },
            )
            .collect(),
    }
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
        let mut out_shape = shape.to_vec();
        out_shape[d] = ids.len();
        let y = if src.dtype() == DType::F32 {
            let out = src.with_view("index_select", |(x, _)| {
                src.backend().index_select(x, outer, size, inner, &ids)
            })?;
            Tensor::from_storage(out, &out_shape)
        } else {
            // rows of another dtype are picked in it: widening a bf16
            // embedding table to f32 for a batch's rows would cost the
            // whole table at every call (and i64 stays exact)
            let at = src.layout().offset();
            let rows = src
                .storage()
                .data()
                .select_rows(at, (outer, size, inner), &ids);
            Tensor::from_host_data(rows, &out_shape, src.device())?
        };
        Ok(y.attach("IndexSelectBackward", &[self], move |g, inputs| {
            let g = g.contiguous()?;
            let dx = g.with_view("index_select", |(s, _)| {
                g.backend().index_add(s, outer, size, inner, &ids)
            })?;
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
