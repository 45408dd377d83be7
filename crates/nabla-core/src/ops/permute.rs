//! Dimension reordering views: `permute`, `transpose`, `t`.
//!
//! `y = x.permute(p)` has `y.shape[i] = x.shape[p[i]]`, no copy (strides
//! are permuted). Backward: `dx = dy.permute(p⁻¹)`.

use crate::layout::{normalize_dim, Layout};
use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::shape(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the dims of shape {:?}",
                    self.shape()
                ),
            ));
        }
        let l = self.layout();
        let shape = perm.iter().map(|&p| l.shape()[p]).collect();
        let strides = perm.iter().map(|&p| l.strides()[p]).collect();
        let y = self.view_with(Layout::new(shape, strides, l.offset()));
        let mut inverse = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(y.attach("PermuteBackward", &[self], move |g, _| {
            Ok(vec![Some(g.permute(&inverse)?)])
        }))
    }

    /// Swaps two dims.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = normalize_dim("transpose", d0, self.shape())?;
        let b = normalize_dim("transpose", d1, self.shape())?;
        if self.rank() == 0 {
            return Ok(self.clone()); // (PyTorch's transpose(0, 0) of a scalar)
        }
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a 2-d tensor.
    pub fn t(&self) -> Result<Tensor> {
        self.dims2()?;
        self.transpose(0, 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn permute_values() {
        let x = Tensor::arange(0.0, 6.0, 1.0)
            .unwrap()
            .reshape([2, 3])
            .unwrap();
        assert_eq!(x.t().unwrap().to_vec(), vec![0., 3., 1., 4., 2., 5.]);
        assert!(x.permute(&[0, 0]).is_err());
        let e = Tensor::zeros([2, 3, 4]).t().unwrap_err().to_string();
        assert_eq!(e, "dims2: expected a 2-d tensor, got shape [2, 3, 4]");
    }

    #[test]
    fn gradcheck_permute() {
        gradcheck(
            |x| x[0].permute(&[2, 0, 1]),
            &[rand_input(&[2, 3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }

    /// The views the strided copy used to scramble (issue 28), with
    /// PyTorch's values.
    #[test]
    fn permuted_views_copy_in_order() {
        let y = Tensor::arange(0., 8., 1.)
            .unwrap()
            .reshape([2, 2, 1, 2])
            .unwrap()
            .permute(&[1, 0, 3, 2])
            .unwrap();
        assert_eq!(y.to_vec(), vec![0., 1., 4., 5., 2., 3., 6., 7.]);
        let y = Tensor::arange(0., 4., 1.)
            .unwrap()
            .reshape([1, 2, 2, 1])
            .unwrap()
            .permute(&[2, 1, 3, 0])
            .unwrap();
        assert_eq!(y.to_vec(), vec![0., 2., 1., 3.]);
    }
}
