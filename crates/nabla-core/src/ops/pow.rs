//! Powers.
//!
//! `powf`: `y = x^e` for a scalar exponent; `dx = dy · e · x^(e−1)`.
//! `pow`: `y = a^b` elementwise with broadcasting;
//! `da = dy · b · a^(b−1)`, `db = dy · a^b · ln a` (for a > 0).
//! Where the formulas give 0 · ∞ at a limit whose value is 0 (an exponent
//! of 0; a base of 0 for db), the gradient is 0, as in PyTorch.

use super::{binary_map, unary_op};
use crate::backend::{BinaryOp, UnaryOp};
use crate::{Result, Tensor};

impl Tensor {
    /// `x^e`. PyTorch's special exponents are computed as it does (½, 2, 3,
    /// −½, −1, −2: faster, and `(−0)^−½ = 1/√−0 = −∞` where IEEE `pow`
    /// gives +∞). `x⁰ = 1` (NaN⁰ too) and its gradient is 0 whatever
    /// arrives from above, ∞ and NaN included.
    pub fn powf(&self, e: f32) -> Result<Tensor> {
        unary_op(self, "PowBackward", UnaryOp::Powf(e))
    }

    /// `aᵇ` elementwise with broadcasting. Backward: `da = dy·b·aᵇ⁻¹` (0
    /// where b = 0), `db = dy·aᵇ·ln a` (0 where a = 0 and b ≥ 0, the limit
    /// PyTorch takes; 0·−∞ would be NaN).
    pub fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        let y = binary_map("pow", self, exponent, BinaryOp::Pow)?;
        Ok(
            y.attach("PowBackward", &[self, exponent], move |g, inputs| {
                let (a, b) = (&inputs[0], &inputs[1]);
                let grad = |op, shape: &[usize]| -> Result<Tensor> {
                    g.mul(&binary_map("pow", a, b, op)?)?.sum_to_shape(shape)
                };
                let da = a
                    .requires_grad()
                    .then(|| grad(BinaryOp::PowGradBase, a.shape()))
                    .transpose()?;
                let db = b
                    .requires_grad()
                    .then(|| grad(BinaryOp::PowGradExponent, b.shape()))
                    .transpose()?;
                Ok(vec![da, db])
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};

    #[test]
    fn gradcheck_powers() {
        let pos = rand_input(&[3, 4], 1)
            .abs()
            .unwrap()
            .add_scalar(0.2)
            .unwrap();
        gradcheck(|x| x[0].powf(2.5), &[pos.clone()], Default::default()).unwrap();
        gradcheck(
            |x| x[0].powf(3.0),
            &[rand_input(&[5], 3)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].pow(&x[1]),
            &[pos, rand_input(&[4], 2)],
            Default::default(),
        )
        .unwrap();
    }

    /// PyTorch: `x = [0, 2]`, `x.pow(0.0).sum()` gives gradient `[0, 0]`;
    /// `pow` with a zero base gives its exponent a zero gradient.
    #[test]
    fn zero_exponents_and_zero_bases_give_zero_not_nan() {
        use crate::Tensor;
        let x = Tensor::from_vec(vec![0.0, 2.0], [2])
            .unwrap()
            .requires_grad_(true);
        x.powf(0.0).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.0]);
        let a = Tensor::from_vec(vec![0.0, 0.0, 2.0], [3])
            .unwrap()
            .requires_grad_(true);
        let b = Tensor::from_vec(vec![0.0, 2.0, 0.0], [3])
            .unwrap()
            .requires_grad_(true);
        a.pow(&b).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![0.0, 0.0, 0.0]);
        let db = b.grad().unwrap().to_vec();
        assert_eq!(&db[..2], &[0.0, 0.0]);
        assert!((db[2] - 2f32.ln()).abs() < 1e-6);
    }

    /// x⁰'s gradient is 0 even under an infinite upstream gradient.
    #[test]
    fn zero_exponent_stops_infinite_gradients() {
        use crate::Tensor;
        let x = Tensor::from_vec(vec![0.0, 3.0], [2])
            .unwrap()
            .requires_grad_(true);
        let g = Tensor::from_vec(vec![f32::INFINITY, f32::NAN], [2]).unwrap();
        x.powf(0.0)
            .unwrap()
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.0]);
    }
}
