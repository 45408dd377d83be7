//! `y = eˣ − 1`, exact for small x (`torch.expm1`), where `eˣ − 1`
//! cancels: e^(1e-5) − 1 keeps two digits in f32.
//! Backward: `dx = dy · eˣ = dy · (y + 1)`.

use super::unary_op;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

impl Tensor {
    pub fn expm1(&self) -> Result<Tensor> {
        unary_op(self, "Expm1Backward", UnaryOp::Expm1)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn small_inputs_keep_their_digits_and_gradcheck() {
        let x = Tensor::from_vec(vec![1e-10, -2e-5, 1.0], [3]).unwrap();
        let y = x.expm1().unwrap().to_vec();
        assert_eq!(y[0], 1e-10);
        assert!(((y[1] as f64 - (-2e-5f64).exp_m1()) / 2e-5).abs() < 1e-6);
        assert!((y[2] - (1f32.exp() - 1.0)).abs() < 1e-6);
        gradcheck(
            |x| x[0].expm1(),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
