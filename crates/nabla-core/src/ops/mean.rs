//! Mean over dimensions: `y = (1/n) Σ_{dims} x` with n the number of
//! elements reduced. Backward: `dx = dy / n` broadcast back.

use crate::{Result, Tensor};

impl Tensor {
    /// Mean over `dims` (all when empty).
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let dims_n = crate::layout::normalize_dims("mean", dims, self.shape())?;
        let n: usize = dims_n.iter().map(|&d| self.shape()[d]).product();
        self.sum(dims, keepdim)?.div_scalar(n as f32)
    }

    /// Mean of all elements, as a 0-d tensor.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn mean_values_and_gradcheck() {
        let x = Tensor::arange(0.0, 6.0, 1.0)
            .unwrap()
            .reshape([2, 3])
            .unwrap();
        assert_eq!(x.mean(&[1], false).unwrap().to_vec(), vec![1.0, 4.0]);
        assert_eq!(x.mean_all().unwrap().item().unwrap(), 2.5);
        gradcheck(
            |x| x[0].mean(&[0], true),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
