//! Gaussian error linear unit.
//!
//! Exact (PyTorch's default): `y = x·Φ(x) = ½x(1 + erf(x/√2))`,
//! `dx = dy · (Φ(x) + x·φ(x))` with `φ(x) = e^(−x²/2)/√(2π)`.
//! Tanh approximation (`approximate='tanh'`):
//! `y = ½x(1 + tanh(u))`, `u = √(2/π)(x + 0.044715x³)`,
//! `dx = dy · (½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²))`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    /// GELU, exact form (`nn.GELU()`).
    pub fn gelu(&self) -> Result<Tensor> {
        unary_op(self, "GeluBackward", UnaryOp::Gelu)
    }

    /// GELU, tanh approximation (`nn.GELU(approximate='tanh')`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        unary_op(self, "GeluBackward", UnaryOp::GeluTanh)
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::cpu::math::erf;
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
            (3.5, 0.999_999_3),
        ] {
            assert!(
                (erf(x) - want).abs() < 2e-7,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn gradcheck_gelu() {
        let x = rand_input(&[3, 4], 1).mul_scalar(2.0).unwrap();
        gradcheck(|x| x[0].gelu(), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].gelu_tanh(), &[x], Default::default()).unwrap();
    }

    #[test]
    fn gelu_values() {
        // torch.nn.functional.gelu(torch.tensor([-1., 0.5, 2.]))
        let y = Tensor::from_vec(vec![-1.0, 0.5, 2.0], [3])
            .unwrap()
            .gelu()
            .unwrap()
            .to_vec();
        for (a, b) in y.iter().zip([-0.158_655_3, 0.345_731_4, 1.954_5]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
