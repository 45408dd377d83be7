//! Variance (and standard deviation, its square root) over dimensions: `y = Σ (x − x̄)² / (n − correction)`
//! (`correction = 1` is the unbiased estimate, PyTorch's default; 0 is the
//! population variance that BatchNorm uses). Composed from mean, sub, mul
//! and sum, so its gradient `dx = dy · 2(x − x̄)/(n − correction)` comes from theirs.

use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        let dims_n = crate::layout::normalize_dims("var", dims, self.shape())?;
        let n: usize = dims_n.iter().map(|&d| self.shape()[d]).product();
        if n <= correction {
            return Err(Error::Arg {
                op: "var",
                msg: format!("{n} elements are too few for correction {correction}"),
            });
        }
        let centered = self.sub(&self.mean(dims, true)?)?;
        centered
            .mul(&centered)?
            .sum(dims, keepdim)?
            .div_scalar((n - correction) as f32)
    }

    /// Standard deviation, `√var` over the same dims (`torch.std`); its
    /// gradient `dy · (x − x̄) / ((n − correction)·y)` comes from sqrt's.
    pub fn std(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        self.var(dims, correction, keepdim)?.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn var_values_and_gradcheck() {
        let x = Tensor::from_vec(vec![1., 2., 3., 4.], [4]).unwrap();
        assert!((x.var(&[], 1, false).unwrap().item().unwrap() - 5.0 / 3.0).abs() < 1e-6);
        assert!((x.var(&[], 0, false).unwrap().item().unwrap() - 1.25).abs() < 1e-6);
        assert!((x.std(&[0], 0, true).unwrap().to_vec()[0] - 1.25f32.sqrt()).abs() < 1e-6);
        assert_eq!(x.std(&[0], 0, true).unwrap().shape(), &[1]);
        gradcheck(
            |x| x[0].std(&[0], 1, true),
            &[rand_input(&[3, 5], 2)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].var(&[1], 1, false),
            &[rand_input(&[3, 5], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
