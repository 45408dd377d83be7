//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

use nabla_core::{Error, Result, Tensor};

/// Scales all gradients by `max_norm / (total_norm + 1e-6)` when the global
/// norm `‖(g₁, g₂, …)‖_p` exceeds `max_norm`. Returns the norm before
/// clipping (`p = ∞` takes the largest |g|).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f32, norm_type: f32) -> Result<f32> {
    if norm_type <= 0.0 || norm_type.is_nan() {
        return Err(Error::Arg {
            op: "clip_grad_norm",
            msg: format!("norm type must be positive, got {norm_type}"),
        });
    }
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    // each gradient's part on its device, then the total: one value read
    let parts = grads
        .iter()
        .filter(|g| g.numel() > 0)
        .map(|g| match norm_type.is_infinite() {
            true => g.abs()?.max_all(),
            false => g.abs()?.powf(norm_type)?.sum_all(),
        })
        .collect::<Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Ok(0.0);
    }
    let parts = Tensor::stack(&parts, 0)?;
    let total = match norm_type.is_infinite() {
        true => parts.max_all()?.item()?,
        false => parts.sum_all()?.powf(1.0 / norm_type)?.item()?,
    };
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for p in params {
            if let Some(g) = p.grad() {
                p.set_grad(Some(g.mul_scalar(coef)?));
            }
        }
    }
    Ok(total)
}

/// Clamps every gradient element into `[−clip, clip]`.
pub fn clip_grad_value(params: &[Tensor], clip: f32) -> Result<()> {
    for p in params {
        if let Some(g) = p.grad() {
            p.set_grad(Some(g.clamp(-clip, clip)?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_the_global_norm() {
        let a = Tensor::zeros([2]).requires_grad_(true);
        let b = Tensor::zeros([1]).requires_grad_(true);
        a.set_grad(Some(Tensor::from_vec(vec![3.0, 0.0], [2]).unwrap()));
        b.set_grad(Some(Tensor::from_vec(vec![4.0], [1]).unwrap()));
        let n = clip_grad_norm(&[a.clone(), b.clone()], 1.0, 2.0).unwrap();
        assert_eq!(n, 5.0);
        let ga = a.grad().unwrap().to_vec();
        assert!((ga[0] - 0.6).abs() < 1e-5);
        clip_grad_value(&[b.clone()], 0.5).unwrap();
        assert!(b.grad().unwrap().to_vec()[0] <= 0.5);
    }
}
