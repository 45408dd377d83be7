//! Binary cross-entropy.
//!
//! - `bce_loss(p, y)`: `−(y·ln p + (1−y)·ln(1−p))` for probabilities p; the
//!   logs are clamped at −100 as in PyTorch, so p = 0 or 1 gives a finite loss;
//!   gradients `(p − y) / max(p(1 − p), 10⁻¹²)` for p and `ln(1 − p) − ln p`
//!   for y (PyTorch's: finite at p = 0 or 1 for p, unclamped for y).
//! - `bce_with_logits(x, y)`: the same on logits, computed stably as
//!   `(1 − y)·x − min(x, 0) + ln(1 + e^(−|x|))`, gradients `σ(x) − y` for the
//!   logits and `−x` for the targets.

use nabla_core::{no_grad, Error, Result, Tensor};

use super::{reduce, same_shape, Reduction};

/// `input` holds probabilities: a value outside [0, 1] (or NaN) is an
/// error, as in PyTorch (logits belong in [`bce_with_logits`]).
pub fn bce_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("bce_loss", input, target)?;
    // one value read to check them all (NaN fails both comparisons);
    // the offending value only on the error path
    let inside = input
        .ge(&Tensor::scalar(0.0))?
        .mul(&input.le(&Tensor::scalar(1.0))?)?;
    let all_inside = inside.numel() == 0 || inside.min_all()?.item()? == 1.0;
    if let Some(p) = (!all_inside)
        .then(|| {
            input
                .to_vec()
                .into_iter()
                .find(|p| !(0.0..=1.0).contains(p))
        })
        .flatten()
    {
        return Err(Error::Arg {
            op: "bce_loss",
            msg: format!(
                "input values must be probabilities in [0, 1], got {p} (for logits use bce_with_logits)"
            ),
        });
    }
    let per_element = no_grad(|| -> Result<Tensor> {
        let log_p = input.log()?.maximum(&Tensor::scalar(-100.0))?;
        // ln(1 − p) as log1p(−p): exact for tiny p, where 1 − p rounds to 1
        let log_q = input.neg()?.log1p()?.maximum(&Tensor::scalar(-100.0))?;
        let one_minus_y = target.neg()?.add_scalar(1.0)?;
        target.mul(&log_p)?.add(&one_minus_y.mul(&log_q)?)?.neg()
    })?;
    // PyTorch's gradients, not those of the clamped logs (which are
    // ∞ · 0 = NaN where p is exactly 0 or 1, as a saturated sigmoid gives):
    // ∂l/∂p = (p − y) / max(p(1 − p), 1e-12), ∂l/∂y = ln(1 − p) − ln p.
    let (p, y) = (input.detach(), target.detach());
    let l = per_element.attach(
        "BinaryCrossEntropyBackward",
        &[input, target],
        move |g, inputs| {
            let dp = match inputs[0].requires_grad() {
                true => {
                    let spread = p
                        .mul(&p.neg()?.add_scalar(1.0)?)?
                        .maximum(&Tensor::scalar(1e-12))?;
                    Some(p.sub(&y)?.div(&spread)?.mul(g)?)
                }
                false => None,
            };
            let dy = match inputs[1].requires_grad() {
                true => Some(p.neg()?.log1p()?.sub(&p.log()?)?.mul(g)?),
                false => None,
            };
            Ok(vec![dp, dy])
        },
    );
    reduce(l, reduction)
}

pub fn bce_with_logits(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("bce_with_logits", input, target)?;
    // Value without a graph, then the exact gradient σ(x) − y as one rule.
    // PyTorch's form, (1 − y)·x − min(x, 0) + ln(1 + e^(−|x|)): exact where
    // the loss is tiny (ln_1p, no cancellation of x against x·y), and
    // infinite, not NaN, for an infinite logit
    let per_element = no_grad(|| -> Result<Tensor> {
        let log1p_exp = input.abs()?.neg()?.softplus(1.0, f32::INFINITY)?;
        let min0 = input.minimum(&Tensor::scalar(0.0))?;
        target
            .neg()?
            .add_scalar(1.0)?
            .mul(input)?
            .sub(&min0)?
            .add(&log1p_exp)
    })?;
    let (x, y) = (input.detach(), target.detach());
    let l = per_element.attach(
        "BinaryCrossEntropyWithLogitsBackward",
        &[input, target],
        move |g, inputs| {
            // ∂l/∂x = σ(x) − y, ∂l/∂y = −x (a target can be learned too:
            // distillation, label smoothing schemes)
            let dx = match inputs[0].requires_grad() {
                true => Some(x.sigmoid()?.sub(&y)?.mul(g)?),
                false => None,
            };
            let dy = match inputs[1].requires_grad() {
                true => Some(x.neg()?.mul(g)?),
                false => None,
            };
            Ok(vec![dx, dy])
        },
    );
    reduce(l, reduction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        let y = Tensor::from_vec(vec![1.0, 0.0], [2]).unwrap();
        for bad in [1.5, -0.1, f32::NAN] {
            let p = Tensor::from_vec(vec![0.5, bad], [2]).unwrap();
            let e = bce_loss(&p, &y, Reduction::Mean).unwrap_err().to_string();
            assert!(
                e.starts_with("bce_loss: input values must be probabilities in [0, 1], got"),
                "{e}"
            );
        }
        // the ends themselves are fine (the logs are clamped at −100)
        let p = Tensor::from_vec(vec![0.0, 1.0], [2]).unwrap();
        let l = bce_loss(&p, &y, Reduction::Mean).unwrap().item().unwrap();
        assert_eq!(l, 100.0);
    }

    #[test]
    fn logits_form_matches_the_probability_form() {
        let x = rand_input(&[2, 3], 1).mul_scalar(3.0).unwrap();
        let y = Tensor::from_vec(vec![1., 0., 1., 0., 0., 1.], [2, 3]).unwrap();
        let a = bce_with_logits(&x, &y, Reduction::Mean)
            .unwrap()
            .item()
            .unwrap();
        let b = bce_loss(&x.sigmoid().unwrap(), &y, Reduction::Mean)
            .unwrap()
            .item()
            .unwrap();
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let huge = Tensor::from_vec(vec![1000.0, -1000.0], [2]).unwrap();
        let v = bce_with_logits(
            &huge,
            &Tensor::from_vec(vec![0.0, 1.0], [2]).unwrap(),
            Reduction::Sum,
        )
        .unwrap();
        assert_eq!(v.item().unwrap(), 2000.0);
        let f = |x: &[Tensor]| bce_with_logits(&x[0], &y, Reduction::Mean);
        gradcheck(f, &[x.clone()], Default::default()).unwrap();
        let f = |x: &[Tensor]| bce_loss(&x[0].sigmoid()?, &y, Reduction::Sum);
        gradcheck(f, &[x], Default::default()).unwrap();
    }

    /// PyTorch: logits [0.5, −1, 2], targets [0.2, 0.7, 0.9], sum
    /// reduction; the targets' gradient is −x.
    #[test]
    fn targets_of_the_logits_form_get_a_gradient() {
        let x = Tensor::from_vec(vec![0.5, -1.0, 2.0], [3]).unwrap();
        let t = Tensor::from_vec(vec![0.2, 0.7, 0.9], [3])
            .unwrap()
            .requires_grad_(true);
        bce_with_logits(&x, &t, Reduction::Sum)
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(t.grad().unwrap().to_vec(), vec![-0.5, 1.0, -2.0]);
        let f = |v: &[Tensor]| bce_with_logits(&v[0], &v[1], Reduction::Mean);
        let y = rand_input(&[2, 3], 4).sigmoid().unwrap();
        gradcheck(f, &[rand_input(&[2, 3], 3), y], Default::default()).unwrap();
    }

    /// A saturated sigmoid gives p = 1 exactly: the gradient is PyTorch's
    /// (p − y) / 1e-12, not the NaN of the clamped log's ∞ · 0; and the
    /// targets' gradient is ln(1 − p) − ln p.
    #[test]
    fn probabilities_of_exactly_zero_or_one_keep_a_finite_gradient() {
        let p = Tensor::from_vec(vec![1.0, 0.0, 0.25], [3])
            .unwrap()
            .requires_grad_(true);
        let y = Tensor::from_vec(vec![0.5, 0.5, 1.0], [3])
            .unwrap()
            .requires_grad_(true);
        bce_loss(&p, &y, Reduction::Sum)
            .unwrap()
            .backward()
            .unwrap();
        let g = p.grad().unwrap().to_vec();
        assert_eq!(&g[..2], &[0.5e12, -0.5e12]);
        assert!((g[2] + 4.0).abs() < 1e-5, "{g:?}");
        let gy = y.grad().unwrap().to_vec();
        assert_eq!(&gy[..2], &[f32::NEG_INFINITY, f32::INFINITY]);
        assert!((gy[2] - (0.75f32.ln() - 0.25f32.ln())).abs() < 1e-6);
        let f = |v: &[Tensor]| bce_loss(&v[0].sigmoid()?, &v[1], Reduction::Mean);
        let t = rand_input(&[2, 3], 6).sigmoid().unwrap();
        gradcheck(f, &[rand_input(&[2, 3], 5), t], Default::default()).unwrap();
    }
}
