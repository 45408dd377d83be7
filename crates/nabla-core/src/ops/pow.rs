//! Powers.
//!
//! `powf`: `y = x^e` for a scalar exponent; `dx = dy · e · x^(e−1)`.
//! `pow`: `y = a^b` elementwise with broadcasting;
//! `da = dy · b · a^(b−1)`, `db = dy · a^b · ln a` (for a > 0).

use super::{binary_map, unary_op};
use crate::{Result, Tensor};

impl Tensor {
    pub fn powf(&self, e: f32) -> Result<Tensor> {
        unary_op(
            self,
            "PowBackward",
            move |x| x.powf(e),
            move |x, _| e * x.powf(e - 1.0),
        )
    }

    pub fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        let y = binary_map("pow", self, exponent, f32::powf)?;
        let ys = y.detach();
        Ok(
            y.attach("PowBackward", &[self, exponent], move |g, inputs| {
                let (a, b) = (&inputs[0], &inputs[1]);
                let da = match a.requires_grad() {
                    true => {
                        let d = binary_map("pow", a, b, |a, b| b * a.powf(b - 1.0))?;
                        Some(g.mul(&d)?.sum_to_shape(a.shape())?)
                    }
                    false => None,
                };
                let db = match b.requires_grad() {
                    true => Some(g.mul(&ys)?.mul(&a.log()?)?.sum_to_shape(b.shape())?),
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
}
