//! Concatenation and stacking.
//!
//! `cat(xs, dim)`: inputs of equal shape except along `dim`, joined along
//! it. `stack(xs, dim)`: equal shapes, joined along a new dim.
//! Backward: each input gets its slice of `dy` (`narrow`). The result
//! has the inputs' dtype when they share one (i64 joined exactly).

use super::narrow::narrowed;
use crate::layout::existing_dim;
use crate::{DType, Error, HostData, Result, Tensor};

/// `cat` of i64 tensors, joined on the host: exact past 2^24, which the
/// f32 kernels would refuse (an i64 takes no gradient).
fn cat_i64(xs: &[Tensor], d: usize, shape: &[usize]) -> Result<Tensor> {
    for x in xs {
        super::same_device("cat", &xs[0], x)?;
    }
    let outer: usize = shape[..d].iter().product();
    let parts = xs
        .iter()
        .map(Tensor::to_vec_i64)
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for p in &parts {
            let block = p.len() / outer;
            out.extend_from_slice(&p[o * block..(o + 1) * block]);
        }
    }
    Tensor::from_host_data(HostData::I64(out), shape, xs[0].device())
}

impl Tensor {
    pub fn cat(xs: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = xs
            .first()
            .ok_or_else(|| Error::arg("cat", "expected at least one tensor"))?;
        let d = existing_dim("cat", dim, first.shape())?;
        let mut total = 0;
        for x in xs {
            let same_rank = x.rank() == first.rank();
            let same_other =
                same_rank && (0..first.rank()).all(|k| k == d || x.shape()[k] == first.shape()[k]);
            if !same_other {
                return Err(Error::shape(
                    "cat",
                    format!(
                        "shapes must match except in dim {d}: {:?} and {:?}",
                        first.shape(),
                        x.shape()
                    ),
                ));
            }
            total += x.shape()[d];
        }
        let mut shape = first.shape().to_vec();
        shape[d] = total;
        if xs.iter().all(|x| x.dtype() == DType::I64) {
            return cat_i64(xs, d, &shape);
        }
        let be = first.backend();
        let mut out = be.full(shape.iter().product(), 0.0);
        let mut start = 0;
        let mut starts = Vec::with_capacity(xs.len());
        for x in xs {
            super::same_device("cat", first, x)?;
            let len = x.shape()[d];
            x.with_view("cat", |v| {
                be.write_view(&mut out, &narrowed(&shape, d, start, len), v)
            })?;
            starts.push((start, len));
            start += len;
        }
        let y = Tensor::from_storage(out, &shape);
        let refs: Vec<&Tensor> = xs.iter().collect();
        let y = y.attach("CatBackward", &refs, move |g, inputs| {
            inputs
                .iter()
                .zip(&starts)
                .map(|(x, &(s, l))| {
                    Ok(if x.requires_grad() {
                        Some(g.narrow(d as isize, s, l)?.contiguous()?)
                    } else {
                        None
                    })
                })
                .collect()
        });
        super::keep_dtype(y, &refs)
    }

    pub fn stack(xs: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = xs
            .first()
            .ok_or_else(|| Error::arg("stack", "expected at least one tensor"))?;
        if let Some(x) = xs.iter().find(|x| x.shape() != first.shape()) {
            return Err(Error::shape(
                "stack",
                format!(
                    "all tensors must have the same shape: {:?} and {:?}",
                    first.shape(),
                    x.shape()
                ),
            ));
        }
        let parts = xs
            .iter()
            .map(|x| x.unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, dim)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn cat_and_stack_values() {
        let a = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]).unwrap();
        let b = Tensor::from_vec(vec![5., 6.], [2, 1]).unwrap();
        assert_eq!(
            Tensor::cat(&[a.clone(), b.clone()], 1).unwrap().to_vec(),
            vec![1., 2., 5., 3., 4., 6.]
        );
        assert!(Tensor::cat(&[a.clone(), b], 0).is_err());
        let s = Tensor::stack(&[a.clone(), a], 0).unwrap();
        assert_eq!(s.shape(), &[2, 2, 2]);
    }

    #[test]
    fn gradcheck_cat_stack() {
        let (a, b) = (rand_input(&[2, 3], 1), rand_input(&[2, 2], 2));
        gradcheck(
            |x| Tensor::cat(&[x[0].clone(), x[1].clone()], 1),
            &[a.clone(), b],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| Tensor::stack(&[x[0].clone(), x[1].clone()], 1),
            &[a.clone(), a],
            Default::default(),
        )
        .unwrap();
    }
}
