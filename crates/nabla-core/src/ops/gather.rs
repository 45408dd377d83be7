//! `gather(dim, index)`: `y[i][j][k] = x[i][index[i][j][k]][k]` for dim = 1
//! (and likewise for any dim). `index` has the rank of `x`, sizes no larger
//! than `x`'s outside `dim`; `y` has `index`'s shape. Picking the log
//! probability of each label is `logp.gather(1, labels.unsqueeze(1))`.
//! Backward: scatter-add `dy` into zeros at the gathered positions.

use super::index_select::indices;
use crate::layout::{contiguous_strides, existing_dim};
use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = existing_dim("gather", dim, self.shape())?;
        let (xs, is) = (self.shape(), index.shape());
        let fits = is.len() == xs.len() && (0..xs.len()).all(|k| k == d || is[k] <= xs[k]);
        if !fits {
            return Err(Error::shape(
                "gather",
                format!("index shape {is:?} does not fit input shape {xs:?} outside dim {d}"),
            ));
        }
        let ids = indices("gather", index, xs[d])?;
        // Storage offset in x of every output element.
        let (x_strides, i_strides) = (contiguous_strides(xs), contiguous_strides(is));
        let offsets: Vec<usize> = ids
            .iter()
            .enumerate()
            .map(|(p, &id)| {
                (0..is.len())
                    .map(|k| {
                        if k == d {
                            id * x_strides[k]
                        } else {
                            (p / i_strides[k]) % is[k] * x_strides[k]
                        }
                    })
                    .sum()
            })
            .collect();
        let src = self.contiguous()?;
        let picked = src.with_view("gather", |(x, _)| src.backend().gather(x, &offsets))?;
        let y = Tensor::from_storage(picked, is);
        let y = y.attach("GatherBackward", &[self], move |g, inputs| {
            let g = g.contiguous()?;
            let n = inputs[0].numel();
            let dx = g.with_view("GatherBackward", |(s, _)| {
                g.backend().scatter_add(s, &offsets, n)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, inputs[0].shape()))])
        });
        super::keep_dtype(y, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gathers_labels() {
        let x = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], [2, 3]).unwrap();
        let idx = Tensor::from_vec(vec![2., 0.], [2, 1]).unwrap();
        assert_eq!(x.gather(1, &idx).unwrap().to_vec(), vec![3., 4.]);
        assert!(x
            .gather(1, &Tensor::from_vec(vec![3., 0.], [2, 1]).unwrap())
            .is_err());
        assert!(x.gather(1, &Tensor::zeros([2])).is_err());
    }

    #[test]
    fn gradcheck_gather() {
        let idx = Tensor::from_vec(vec![0., 2., 2., 1., 0., 0.], [3, 2]).unwrap();
        gradcheck(
            move |x| x[0].gather(1, &idx),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
