//! Exponential linear units.
//!
//! `elu(α)`: `y = x` for x > 0, `α·(eˣ − 1)` otherwise; `dx = dy` for x > 0,
//! `dy·α·eˣ` otherwise (computed as such: `y + α` is the same number but
//! cancels to 0 for very negative x, where α·eˣ is tiny but not 0).
//! `selu`: `scale·elu(x, α)` with PyTorch's constants α ≈ 1.6733,
//! scale ≈ 1.0507 (self-normalizing networks).

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    /// `nn.ELU(alpha)` (PyTorch's default alpha is 1).
    pub fn elu(&self, alpha: f32) -> Result<Tensor> {
        unary_op(self, "EluBackward", UnaryOp::Elu(alpha))
    }

    /// `nn.SELU()`.
    pub fn selu(&self) -> Result<Tensor> {
        unary_op(self, "SeluBackward", UnaryOp::Selu)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn values_and_gradcheck() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0], [3]).unwrap();
        let y = x.elu(0.5).unwrap().to_vec();
        assert!((y[0] - 0.5 * ((-2f32).exp() - 1.0)).abs() < 1e-7);
        assert_eq!(y[1..], [0.0, 3.0]);
        let y = x.selu().unwrap().to_vec();
        assert!((y[2] - 3.152_103).abs() < 1e-5 && (y[0] + 1.520_166_2).abs() < 1e-5);
        let x = rand_input(&[3, 4], 1).mul_scalar(2.0).unwrap();
        gradcheck(|x| x[0].elu(1.3), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].selu(), &[x], Default::default()).unwrap();
    }

    /// PyTorch: ELU's gradient at x = −20 is α·e⁻²⁰ ≈ 2.06e-9, not 0.
    #[test]
    fn gradient_of_very_negative_inputs_does_not_cancel() {
        let x = Tensor::from_vec(vec![-20.0], [1])
            .unwrap()
            .requires_grad_(true);
        x.elu(1.0).unwrap().sum_all().unwrap().backward().unwrap();
        let g = x.grad().unwrap().to_vec()[0];
        assert!((g - 2.061_153_6e-9).abs() < 1e-15, "{g}");
        let x = Tensor::from_vec(vec![-20.0], [1])
            .unwrap()
            .requires_grad_(true);
        x.selu().unwrap().sum_all().unwrap().backward().unwrap();
        let g = x.grad().unwrap().to_vec()[0];
        let want = 1.050_701 * 1.673_263_2 * (-20f32).exp();
        assert!((g - want).abs() < 1e-15, "{g}");
    }
}
