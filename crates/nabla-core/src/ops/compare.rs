//! Elementwise comparisons with broadcasting: 1.0 where true, 0.0 where
//! false. Not differentiable (their outputs never require grad); used for
//! masks and accuracy.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("eq", self, rhs, BinaryOp::Eq)
    }
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("ne", self, rhs, BinaryOp::Ne)
    }
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("gt", self, rhs, BinaryOp::Gt)
    }
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("ge", self, rhs, BinaryOp::Ge)
    }
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("lt", self, rhs, BinaryOp::Lt)
    }
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        binary_map("le", self, rhs, BinaryOp::Le)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn comparisons() {
        let a = Tensor::from_vec(vec![1., 2., 3.], [3])
            .unwrap()
            .requires_grad_(true);
        let b = Tensor::scalar(2.0);
        assert_eq!(a.eq(&b).unwrap().to_vec(), vec![0., 1., 0.]);
        assert_eq!(a.gt(&b).unwrap().to_vec(), vec![0., 0., 1.]);
        assert_eq!(a.le(&b).unwrap().to_vec(), vec![1., 1., 0.]);
        assert!(!a.lt(&b).unwrap().requires_grad());
    }
}
