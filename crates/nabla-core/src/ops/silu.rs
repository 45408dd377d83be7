//! Self-gated rectifiers.
//!
//! `silu` (swish): `y = x·σ(x)`; `dx = dy·σ(x)·(1 + x·(1 − σ(x)))`.
//! `mish`: `y = x·tanh(s)` with `s = softplus(x) = ln(1 + eˣ)`;
//! `dx = dy·(tanh s + x·σ(x)·(1 − tanh² s))` (`ds/dx = σ(x)`).

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    /// `nn.SiLU`: `x·σ(x)`.
    pub fn silu(&self) -> Result<Tensor> {
        unary_op(self, "SiluBackward", UnaryOp::Silu)
    }

    /// `nn.Mish`: `x·tanh(softplus(x))`.
    pub fn mish(&self) -> Result<Tensor> {
        unary_op(self, "MishBackward", UnaryOp::Mish)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn values_gradcheck_and_extremes() {
        let x = Tensor::from_vec(vec![-100.0, -1.0, 0.0, 2.0, 100.0], [5]).unwrap();
        let silu = x.silu().unwrap().to_vec();
        let want = [-0.0, -0.268_941_43, 0.0, 1.761_594_2, 100.0];
        let mish = x.mish().unwrap().to_vec();
        let want_mish = [-0.0, -0.303_401_54, 0.0, 1.943_959, 100.0];
        for k in 0..5 {
            assert!((silu[k] - want[k]).abs() < 1e-6, "silu {k}: {}", silu[k]);
            assert!(
                (mish[k] - want_mish[k]).abs() < 1e-5,
                "mish {k}: {}",
                mish[k]
            );
        }
        let x = rand_input(&[3, 4], 1).mul_scalar(3.0).unwrap();
        gradcheck(|x| x[0].silu(), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].mish(), &[x], Default::default()).unwrap();
    }
}
