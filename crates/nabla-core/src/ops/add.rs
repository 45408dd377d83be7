//! Addition with broadcasting.
//!
//! `y = a + b`; shapes broadcast (align right, size 1 stretches).
//! Backward: `da = sum_to(dy, a.shape)`, `db = sum_to(dy, b.shape)`.

use super::binary_map;
use crate::backend::BinaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        let y = binary_map("add", self, rhs, BinaryOp::Add)?;
        Ok(y.attach("AddBackward", &[self, rhs], |g, inputs| {
            Ok(vec![
                Some(g.sum_to_shape(inputs[0].shape())?),
                Some(g.sum_to_shape(inputs[1].shape())?),
            ])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn broadcasts_like_pytorch() {
        let a = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], [2, 3]).unwrap();
        let b = Tensor::from_vec(vec![10., 20., 30.], [3]).unwrap();
        assert_eq!(
            a.add(&b).unwrap().to_vec(),
            vec![11., 22., 33., 14., 25., 36.]
        );
        let c = Tensor::from_vec(vec![100., 200.], [2, 1]).unwrap();
        assert_eq!(
            a.add(&c).unwrap().to_vec(),
            vec![101., 102., 103., 204., 205., 206.]
        );
        let e = a.add(&Tensor::zeros([2])).unwrap_err().to_string();
        assert_eq!(
            e,
            "add: shapes cannot be broadcast together: lhs [2, 3], rhs [2]"
        );
    }

    #[test]
    fn gradcheck_add_broadcast() {
        let f = |x: &[Tensor]| x[0].add(&x[1]);
        gradcheck(
            f,
            &[rand_input(&[3, 4], 1), rand_input(&[4], 2)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[2, 1, 3], 3), rand_input(&[4, 1], 4)],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn one_tensor_used_twice_gets_both_gradients() {
        let x = Tensor::from_vec(vec![1., 2.], [2])
            .unwrap()
            .requires_grad_(true);
        let y = x.add(&x).unwrap().mul(&x).unwrap().sum_all().unwrap(); // 2x²
        y.backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![4., 8.]);
    }
}
