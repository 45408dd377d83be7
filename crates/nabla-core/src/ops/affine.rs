//! Scalar arithmetic: `y = mul · x + add`, and the shortcuts built on it
//! (`add_scalar`, `sub_scalar`, `mul_scalar`, `div_scalar`, `neg`).
//! Backward: `dx = mul · dy`.

use super::unary_map;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    /// `x·mul + add` (exactly `x·mul` when add is 0: a `+ 0.0` would turn
    /// −0 into +0, and 1/−0 = −∞ downstream into +∞).
    pub fn affine(&self, mul: f32, add: f32) -> Result<Tensor> {
        let y = unary_map(self, "affine", UnaryOp::Affine { mul, add })?;
        Ok(y.attach("AffineBackward", &[self], move |g, _| {
            let dx = unary_map(g, "AffineBackward", UnaryOp::Affine { mul, add: 0.0 })?;
            Ok(vec![Some(dx)])
        }))
    }

    pub fn add_scalar(&self, v: f32) -> Result<Tensor> {
        self.affine(1.0, v)
    }

    pub fn sub_scalar(&self, v: f32) -> Result<Tensor> {
        self.affine(1.0, -v)
    }

    pub fn mul_scalar(&self, v: f32) -> Result<Tensor> {
        self.affine(v, 0.0)
    }

    /// `x / v`, divided (not multiplied by 1/v) so results match PyTorch bit for bit.
    pub fn div_scalar(&self, v: f32) -> Result<Tensor> {
        let y = unary_map(self, "div_scalar", UnaryOp::DivScalar(v))?;
        Ok(y.attach("DivBackward", &[self], move |g, _| {
            Ok(vec![Some(unary_map(
                g,
                "DivBackward",
                UnaryOp::DivScalar(v),
            )?)])
        }))
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.affine(-1.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};

    #[test]
    fn gradcheck_affine() {
        gradcheck(
            |x| x[0].affine(-2.5, 0.3),
            &[rand_input(&[2, 3], 1)],
            Default::default(),
        )
        .unwrap();
        gradcheck(|x| x[0].neg(), &[rand_input(&[4], 2)], Default::default()).unwrap();
    }

    /// `neg` and `mul_scalar` keep the sign of zero, as PyTorch's do.
    #[test]
    fn signed_zeros_survive() {
        let x = crate::Tensor::from_vec(vec![0.0, -0.0], [2]).unwrap();
        let n = x.neg().unwrap().to_vec();
        assert!(n[0].is_sign_negative() && n[1].is_sign_positive());
        let m = x.mul_scalar(3.0).unwrap().to_vec();
        assert!(m[0].is_sign_positive() && m[1].is_sign_negative());
    }
}
