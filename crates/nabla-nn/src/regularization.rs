//! Explicit penalty terms, added to the loss before `backward()`.
//!
//! - L2: `λ·Σ w²` (gradient `2λw`). Note that PyTorch's `weight_decay = d`
//!   in SGD adds `d·w` to the gradient, which is this penalty with λ = d/2.
//! - L1: `λ·Σ |w|` (gradient `λ·sign(w)`): pushes weights to exactly zero.
//!   PyTorch has no built-in L1; this is it.
//!
//! Dropout, the third regularizer, is the [`Dropout`](crate::Dropout) layer;
//! gradient clipping lives in [`optim`](crate::optim).

use nabla_core::{Result, Tensor};

/// `λ·Σ_p Σ w²` over the given parameters.
pub fn l2_penalty(params: &[Tensor], lambda: f32) -> Result<Tensor> {
    let mut total = Tensor::scalar(0.0);
    for p in params {
        total = total.add(&p.mul(p)?.sum_all()?)?;
    }
    total.mul_scalar(lambda)
}

/// `λ·Σ_p Σ |w|` over the given parameters.
pub fn l1_penalty(params: &[Tensor], lambda: f32) -> Result<Tensor> {
    let mut total = Tensor::scalar(0.0);
    for p in params {
        total = total.add(&p.abs()?.sum_all()?)?;
    }
    total.mul_scalar(lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_and_their_gradients() {
        let w = Tensor::from_vec(vec![1.0, -2.0], [2])
            .unwrap()
            .requires_grad_(true);
        let l = l2_penalty(&[w.clone()], 0.5)
            .unwrap()
            .add(&l1_penalty(&[w.clone()], 0.1).unwrap())
            .unwrap();
        assert!((l.item().unwrap() - (2.5 + 0.3)).abs() < 1e-6);
        l.backward().unwrap();
        let g = w.grad().unwrap().to_vec();
        assert!((g[0] - 1.1).abs() < 1e-6 && (g[1] + 2.1).abs() < 1e-6);
    }
}
