//! Binary cross-entropy.
//!
//! - `bce_loss(p, y)`: `−(y·ln p + (1−y)·ln(1−p))` for probabilities p; the
//!   logs are clamped at −100 as in PyTorch, so p = 0 or 1 gives a finite loss.
//! - `bce_with_logits(x, y)`: the same on logits, computed stably as
//!   `max(x, 0) − x·y + ln(1 + e^(−|x|))`, gradient `σ(x) − y`.

use nabla_core::{no_grad, Error, Result, Tensor};

use super::{reduce, same_shape, Reduction};

/// `input` holds probabilities: a value outside [0, 1] (or NaN) is an
/// error, as in PyTorch (logits belong in [`bce_with_logits`]).
pub fn bce_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("bce_loss", input, target)?;
    if let Some(p) = input
        .to_vec()
        .into_iter()
        .find(|p| !(0.0..=1.0).contains(p))
    {
        return Err(Error::Arg {
            op: "bce_loss",
            msg: format!(
                "input values must be probabilities in [0, 1], got {p} (for logits use bce_with_logits)"
            ),
        });
    }
    let log_p = input.log()?.clamp(-100.0, f32::INFINITY)?;
    let log_q = input
        .neg()?
        .add_scalar(1.0)?
        .log()?
        .clamp(-100.0, f32::INFINITY)?;
    let one_minus_y = target.neg()?.add_scalar(1.0)?;
    let l = target.mul(&log_p)?.add(&one_minus_y.mul(&log_q)?)?.neg()?;
    reduce(l, reduction)
}

pub fn bce_with_logits(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("bce_with_logits", input, target)?;
    // Value without a graph, then the exact gradient σ(x) − y as one rule.
    let per_element = no_grad(|| -> Result<Tensor> {
        let softplus = input.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
        input.relu()?.sub(&input.mul(target)?)?.add(&softplus)
    })?;
    let (x, y) = (input.detach(), target.detach());
    let l = per_element.attach(
        "BinaryCrossEntropyWithLogitsBackward",
        &[input],
        move |g, _| Ok(vec![Some(x.sigmoid()?.sub(&y)?.mul(g)?)]),
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
}
