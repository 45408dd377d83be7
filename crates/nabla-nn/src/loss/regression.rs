//! Regression losses, elementwise then reduced; input and target of the
//! same shape.
//!
//! - MSE: `(x − y)²`; gradient `2(x − y)`.
//! - L1: `|x − y|`; gradient `sign(x − y)`.
//! - Huber(δ): `½d²` where `|d| < δ`, else `δ(|d| − ½δ)`, `d = x − y`;
//!   gradient `d` inside, `δ·sign(d)` outside.

use nabla_core::{no_grad, Result, Tensor};

use super::{reduce, same_shape, Reduction};

pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse_loss", input, target)?;
    let d = input.sub(target)?;
    reduce(d.mul(&d)?, reduction)
}

pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("l1_loss", input, target)?;
    reduce(input.sub(target)?.abs()?, reduction)
}

pub fn huber_loss(
    input: &Tensor,
    target: &Tensor,
    delta: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("huber_loss", input, target)?;
    let per_element = no_grad(|| -> Result<Tensor> {
        let d = input.sub(target)?;
        let a = d.abs()?;
        let inside = d.mul(&d)?.mul_scalar(0.5)?;
        let outside = a.sub_scalar(0.5 * delta)?.mul_scalar(delta)?;
        let small = a.lt(&Tensor::scalar(delta))?;
        Tensor::where_cond(&small, &inside, &outside)
    })?;
    // ∂l/∂x = clamp(d, −δ, δ) = −∂l/∂y, as one rule: through the composed
    // branches an infinite d made 0 · ∞ = NaN in the branch not taken
    let d = no_grad(|| input.sub(target)?.clamp(-delta, delta))?;
    let l = per_element.attach("HuberLossBackward", &[input, target], move |g, inputs| {
        let dx = d.mul(g)?;
        let dy = match inputs[1].requires_grad() {
            true => Some(dx.neg()?),
            false => None,
        };
        Ok(vec![inputs[0].requires_grad().then_some(dx), dy])
    });
    reduce(l, reduction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

    #[test]
    fn values_and_gradients() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 5.0], [3]).unwrap();
        let y = Tensor::from_vec(vec![0.0, 2.5, 1.0], [3]).unwrap();
        let m = |t: Tensor| t.item().unwrap();
        assert!(
            (m(mse_loss(&x, &y, Reduction::Mean).unwrap()) - (1.0 + 0.25 + 16.0) / 3.0).abs()
                < 1e-6
        );
        assert_eq!(m(l1_loss(&x, &y, Reduction::Sum).unwrap()), 5.5);
        // huber δ=1: 0.5, 0.125, 3.5
        assert!((m(huber_loss(&x, &y, 1.0, Reduction::Sum).unwrap()) - 4.125).abs() < 1e-6);
        assert!(mse_loss(&x, &Tensor::zeros([2]), Reduction::Mean).is_err());
        let t = rand_input(&[3, 4], 9);
        let f = |x: &[Tensor]| huber_loss(&x[0], &t, 0.5, Reduction::Mean);
        gradcheck(f, &[rand_input(&[3, 4], 1)], Default::default()).unwrap();
    }
}
