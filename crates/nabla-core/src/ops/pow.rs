//! Powers.
//!
//! `powf`: `y = x^e` for a scalar exponent; `dx = dy · e · x^(e−1)`.
//! `pow`: `y = a^b` elementwise with broadcasting;
//! `da = dy · b · a^(b−1)`, `db = dy · a^b · ln a` (for a > 0).
//! Where the formulas give 0 · ∞ at a limit whose value is 0 (an exponent
//! of 0; a base of 0 for db), the gradient is 0, as in PyTorch.

use super::{binary_map, unary_op, unary_select_op};
use crate::{Result, Tensor};

/// `x^e`, with PyTorch's special exponents computed as it does (they are
/// faster, and differ from `powf` in the sign of an infinite result:
/// `(−0)^−½` is `1/√−0 = −∞` there, `+∞` for IEEE `pow`).
fn pow_scalar(x: f32, e: f32) -> f32 {
    match e {
        0.5 => x.sqrt(),
        2.0 => x * x,
        3.0 => x * x * x,
        -0.5 => 1.0 / x.sqrt(),
        -1.0 => 1.0 / x,
        -2.0 => 1.0 / (x * x),
        _ => x.powf(e),
    }
}

impl Tensor {
    pub fn powf(&self, e: f32) -> Result<Tensor> {
        if e == 0.0 {
            // x⁰ = 1 (NaN⁰ too, as IEEE and PyTorch have it), and its
            // gradient is 0 whatever arrives from above, ∞ and NaN included
            return unary_select_op(self, "PowBackward", |_| 1.0, |_| false);
        }
        unary_op(
            self,
            "PowBackward",
            move |x| pow_scalar(x, e),
            // x⁰ = 1 has derivative 0 everywhere, x = 0 included (where
            // e · x^(e−1) would be 0 · ∞ = NaN); PyTorch agrees
            move |x, _| {
                if e == 0.0 {
                    0.0
                } else {
                    e * pow_scalar(x, e - 1.0)
                }
            },
        )
    }

    pub fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        let y = binary_map("pow", self, exponent, f32::powf)?;
        Ok(
            y.attach("PowBackward", &[self, exponent], move |g, inputs| {
                let (a, b) = (&inputs[0], &inputs[1]);
                let da = match a.requires_grad() {
                    true => {
                        // 0 where b = 0 (as for powf(0))
                        let d = binary_map("pow", a, b, |a, b| {
                            if b == 0.0 {
                                0.0
                            } else {
                                b * a.powf(b - 1.0)
                            }
                        })?;
                        Some(g.mul(&d)?.sum_to_shape(a.shape())?)
                    }
                    false => None,
                };
                let db = match b.requires_grad() {
                    true => {
                        // aᵇ · ln a, taken as 0 where a = 0 and b ≥ 0 (the
                        // limit; 0 · −∞ would be NaN), as PyTorch does
                        let d = binary_map("pow", a, b, |a, b| {
                            if a == 0.0 && b >= 0.0 {
                                0.0
                            } else {
                                a.powf(b) * a.ln()
                            }
                        })?;
                        Some(g.mul(&d)?.sum_to_shape(b.shape())?)
                    }
                    false => None,
                };
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
