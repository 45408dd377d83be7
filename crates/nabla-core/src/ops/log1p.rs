//! `y = ln(1 + x)`, exact for small x (`torch.log1p`), where `ln(1 + x)`
//! rounds `1 + x` first and loses x below 6e-8 entirely.
//! Backward: `dx = dy / (1 + x)`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn log1p(&self) -> Result<Tensor> {
        unary_op(self, "Log1pBackward", UnaryOp::Log1p)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn small_inputs_keep_their_digits_and_gradcheck() {
        let x = Tensor::from_vec(vec![1e-10, -1e-9, 3.0], [3]).unwrap();
        let y = x.log1p().unwrap().to_vec();
        assert_eq!(y[0], 1e-10);
        assert!((y[1] + 1e-9).abs() < 1e-16);
        assert!((y[2] - 4f32.ln()).abs() < 1e-6);
        let x = rand_input(&[3, 4], 1).abs().unwrap();
        gradcheck(|x| x[0].log1p(), &[x], Default::default()).unwrap();
    }
}
