//! Weight initialization, PyTorch's defaults and the usual helpers. All draw
//! from the global seeded generator (`nabla::manual_seed`).
//!
//! fan_in = in_features (Linear) or in_channels/groups·kh·kw (Conv2d);
//! fan_out likewise with the output side.
//! - `kaiming_uniform(a)`: U(±b), b = gain·√(3/fan_in), gain = √(2/(1+a²)).
//!   PyTorch initializes Linear and Conv weights with a = √5, which gives
//!   b = 1/√fan_in; their biases get U(±1/√fan_in).
//! - `kaiming_normal(a)`: N(0, gain/√fan_in).
//! - `xavier_uniform`: U(±√(6/(fan_in+fan_out))); `xavier_normal`:
//!   N(0, √(2/(fan_in+fan_out))).

use nabla_core::Tensor;

/// (fan_in, fan_out) of a weight of this shape (`[out, in, k…]`).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    let receptive: usize = shape.iter().skip(2).product();
    let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = shape.first().copied().unwrap_or(1) * receptive;
    (fan_in.max(1), fan_out.max(1))
}

pub fn uniform(shape: &[usize], bound: f32) -> Tensor {
    Tensor::uniform(shape, -bound, bound)
}

pub fn normal(shape: &[usize], std: f32) -> Tensor {
    Tensor::randn(shape)
        .mul_scalar(std)
        .expect("scaling a fresh tensor")
}

pub fn kaiming_uniform(shape: &[usize], a: f32) -> Tensor {
    let (fan_in, _) = fans(shape);
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    uniform(shape, gain * (3.0 / fan_in as f32).sqrt())
}

pub fn kaiming_normal(shape: &[usize], a: f32) -> Tensor {
    let (fan_in, _) = fans(shape);
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    normal(shape, gain / (fan_in as f32).sqrt())
}

pub fn xavier_uniform(shape: &[usize]) -> Tensor {
    let (fan_in, fan_out) = fans(shape);
    uniform(shape, (6.0 / (fan_in + fan_out) as f32).sqrt())
}

pub fn xavier_normal(shape: &[usize]) -> Tensor {
    let (fan_in, fan_out) = fans(shape);
    normal(shape, (2.0 / (fan_in + fan_out) as f32).sqrt())
}

/// PyTorch's default weight and bias of a Linear or Conv layer.
pub fn default_weight_and_bias(
    weight_shape: &[usize],
    with_bias: bool,
) -> (Tensor, Option<Tensor>) {
    let w = kaiming_uniform(weight_shape, 5f32.sqrt()).requires_grad_(true);
    let (fan_in, _) = fans(weight_shape);
    let bound = 1.0 / (fan_in as f32).sqrt();
    let b = with_bias.then(|| uniform(&[weight_shape[0]], bound).requires_grad_(true));
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_match_pytorch() {
        nabla_core::manual_seed(0);
        assert_eq!(fans(&[6, 1, 5, 5]), (25, 150));
        let (w, b) = default_weight_and_bias(&[120, 400], true);
        let bound = 1.0 / 20.0;
        assert!(w.to_vec().iter().all(|v| v.abs() <= bound));
        assert!(b.unwrap().to_vec().iter().all(|v| v.abs() <= bound));
        // the spread fills the range: max close to the bound
        assert!(w.max_all().unwrap().item().unwrap() > 0.95 * bound);
        let x = xavier_normal(&[200, 300]).to_vec();
        let var = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        assert!((var - 2.0 / 500.0).abs() < 2e-4, "{var}");
    }
}
