//! Sum over dimensions.
//!
//! `y = Σ_{dims} x`, shape of x without `dims` (or with size 1 there when
//! `keepdim`). An empty `dims` list means all dims. Backward: `dx = dy`
//! broadcast back over the summed dims.

use crate::backend::ReduceOp;
use crate::layout::normalize_dims;
use crate::{Result, Tensor};

/// Reduces `x` over `dims` with `op`; returns the keepdim-shaped result
/// and the reduced dims.
pub(crate) fn reduce_dims(
    op_name: &'static str,
    x: &Tensor,
    dims: &[isize],
    op: ReduceOp,
) -> Result<(Tensor, Vec<usize>)> {
    let shape = x.shape();
    let dims = normalize_dims(op_name, dims, shape)?;
    let keep_shape: Vec<usize> = (0..shape.len())
        .map(|d| if dims.contains(&d) { 1 } else { shape[d] })
        .collect();
    let out = x.with_view(op_name, |v| x.backend().reduce(op, v, &dims))?;
    Ok((Tensor::from_storage(out, &keep_shape), dims))
}

/// The output shape without the reduced dims.
pub(crate) fn squeeze_dims(keep_shape: &[usize], dims: &[usize]) -> Vec<usize> {
    (0..keep_shape.len())
        .filter(|d| !dims.contains(d))
        .map(|d| keep_shape[d])
        .collect()
}

impl Tensor {
    /// Sum over `dims` (all dims when empty), keeping them as size 1 if `keepdim`.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let (y, reduced) = reduce_dims("sum", self, dims, ReduceOp::Sum)?;
        let keep_shape = y.shape().to_vec();
        let y = if keepdim {
            y
        } else {
            y.reshape(squeeze_dims(&keep_shape, &reduced))?
        };
        Ok(y.attach("SumBackward", &[self], move |g, inputs| {
            Ok(vec![Some(
                g.reshape(&keep_shape)?.broadcast_to(inputs[0].shape())?,
            )])
        }))
    }

    /// Sum over `dims`, keeping them as size 1.
    pub fn sum_keepdim(&self, dims: &[isize]) -> Result<Tensor> {
        self.sum(dims, true)
    }

    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn sums_over_dims() {
        let x = Tensor::arange(0.0, 24.0, 1.0)
            .unwrap()
            .reshape([2, 3, 4])
            .unwrap();
        assert_eq!(
            x.sum(&[1], false).unwrap().to_vec(),
            vec![12., 15., 18., 21., 48., 51., 54., 57.]
        );
        assert_eq!(x.sum(&[0, 2], true).unwrap().shape(), &[1, 3, 1]);
        assert_eq!(
            x.sum(&[-1], false).unwrap().to_vec(),
            vec![6., 22., 38., 54., 70., 86.]
        );
        assert_eq!(x.sum_all().unwrap().item().unwrap(), 276.0);
        assert!(x.sum(&[3], false).is_err());
    }

    #[test]
    fn gradcheck_sum() {
        gradcheck(
            |x| x[0].sum(&[0, 2], false),
            &[rand_input(&[2, 3, 4], 1)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].sum(&[1], true),
            &[rand_input(&[2, 3, 4], 2)],
            Default::default(),
        )
        .unwrap();
    }
}
