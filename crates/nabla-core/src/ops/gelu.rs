//! Gaussian error linear unit.
//!
//! Exact (PyTorch's default): `y = x·Φ(x) = ½x(1 + erf(x/√2))`,
//! `dx = dy · (Φ(x) + x·φ(x))` with `φ(x) = e^(−x²/2)/√(2π)`.
//! Tanh approximation (`approximate='tanh'`):
//! `y = ½x(1 + tanh(u))`, `u = √(2/π)(x + 0.044715x³)`,
//! `dx = dy · (½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²))`.

use super::unary_op;
use crate::{Result, Tensor};

const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// erf(x) with relative error below 1.2e-7 (Numerical Recipes' erfc
/// Chebyshev fit, evaluated in f64).
pub(crate) fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let r = 1.0 - erfc;
    (if x >= 0.0 { r } else { -r }) as f32
}

fn cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn pdf(x: f32) -> f32 {
    (-0.5 * x * x).exp() * 0.398_942_3
}

impl Tensor {
    /// GELU, exact form (`nn.GELU()`).
    pub fn gelu(&self) -> Result<Tensor> {
        unary_op(
            self,
            "GeluBackward",
            |x| x * cdf(x),
            |x, _| cdf(x) + x * pdf(x),
        )
    }

    /// GELU, tanh approximation (`nn.GELU(approximate='tanh')`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        unary_op(
            self,
            "GeluBackward",
            |x| 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()),
            |x, _| {
                let t = (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh();
                0.5 * (1.0 + t)
                    + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::erf;
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
