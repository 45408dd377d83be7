//! Sum over dimensions.
//!
//! `y = Σ_{dims} x`, shape of x without `dims` (or with size 1 there when
//! `keepdim`). An empty `dims` list means all dims. Backward: `dx = dy`
//! broadcast back over the summed dims.

use crate::backend::cpu::reduce::{reduce_rows, sum_columns, ReduceOp};
use crate::layout::normalize_dims;
use crate::{Result, Tensor};

/// Reduces `x` over `dims` with `op`; returns the keepdim-shaped result.
/// Reduced dims are moved last so each output reduces one contiguous row.
pub(crate) fn reduce_dims(
    op_name: &'static str,
    x: &Tensor,
    dims: &[isize],
    op: ReduceOp,
) -> Result<(Tensor, Vec<usize>)> {
    let shape = x.shape();
    let dims = normalize_dims(op_name, dims, shape)?;
    let kept: Vec<usize> = (0..shape.len()).filter(|d| !dims.contains(d)).collect();
    let perm: Vec<usize> = kept.iter().chain(dims.iter()).copied().collect();
    let rows: usize = kept.iter().map(|&d| shape[d]).product();
    let len: usize = dims.iter().map(|&d| shape[d]).product();
    let keep_shape: Vec<usize> = (0..shape.len())
        .map(|d| if dims.contains(&d) { 1 } else { shape[d] })
        .collect();
    let leading = dims.iter().enumerate().all(|(i, &d)| i == d);
    let out = if op == ReduceOp::Sum && leading && rows > 1 && x.is_contiguous() {
        // over leading dims (a bias's gradient: the sum over the batch):
        // add whole rows instead of transposing first (a full sum, one
        // output, keeps the blocked parallel path)
        let o = x.layout().offset();
        x.with_cpu(|data, _| sum_columns(&data[o..o + rows * len], len, rows))
    } else {
        x.detach().permute(&perm)?.with_cpu(|data, layout| {
            if layout.is_contiguous() {
                let o = layout.offset();
                reduce_rows(&data[o..o + rows * len], rows, len, op)
            } else {
                reduce_rows(
                    &crate::backend::cpu::copy::contiguous(data, layout),
                    rows,
                    len,
                    op,
                )
            }
        })
    };
    Ok((Tensor::from_cpu(out, &keep_shape), dims))
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
