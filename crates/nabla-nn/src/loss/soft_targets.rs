//! Cross-entropy against class probabilities (soft labels: mixup,
//! distillation), PyTorch's reading of a target with the logits' shape.
//!
//! Logits x and targets t `[N, C]` (or `[N, C, d…]`, every position a
//! sample), class weights w `[C]`, label smoothing ε, `t' = (1−ε)·t + ε/C`:
//!
//! `loss_i = −Σ_c w_c·t'_ic·log softmax(x_i)_c`; the mean divides by the
//! number of samples (not by a sum of weights, as with class indices).
//!
//! Composed from log_softmax, mul and sum, so both gradients come from
//! theirs: `∂/∂x_ic = p_ic·Σ_k w_k·t'_ik − w_c·t'_ic`,
//! `∂/∂t_ic = −(1−ε)·w_c·log p_ic`. `ignore_index` does not apply.

use nabla_core::{Error, Result, Tensor};

use super::cross_entropy::classes_last;
use super::{CrossEntropyOptions, Reduction};

pub(super) fn cross_entropy_probabilities(
    logits: &Tensor,
    targets: &Tensor,
    opts: &CrossEntropyOptions,
) -> Result<Tensor> {
    let c = logits.shape()[1];
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::Arg {
            op: "cross_entropy",
            msg: format!("label_smoothing must be in [0, 1], got {eps}"),
        });
    }
    let logp = classes_last(logits)?.log_softmax(1)?;
    let mut t = classes_last(targets)?;
    if eps > 0.0 {
        t = t.mul_scalar(1.0 - eps)?.add_scalar(eps / c as f32)?;
    }
    let mut terms = t.mul(&logp)?;
    if let Some(w) = &opts.weight {
        if w.shape() != [c] {
            return Err(Error::Shape {
                op: "cross_entropy",
                msg: format!("weight must be [{c}], got {:?}", w.shape()),
            });
        }
        terms = terms.mul(w)?;
    }
    let per_sample = terms.sum(&[1], false)?.neg()?;
    match opts.reduction {
        Reduction::Mean => per_sample.mean_all(),
        Reduction::Sum => per_sample.sum_all(),
        Reduction::None => {
            let mut shape = vec![logits.shape()[0]];
            shape.extend(&logits.shape()[2..]);
            per_sample.reshape(shape)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::loss::{cross_entropy, cross_entropy_with, CrossEntropyOptions, Reduction};
    use nabla_core::gradcheck::{gradcheck, rand_input};
    use nabla_core::Tensor;

    #[test]
    fn one_hot_probabilities_equal_class_indices() {
        let x = rand_input(&[4, 3], 1);
        let y = Tensor::from_vec(vec![2., 0., 1., 2.], [4]).unwrap();
        let one_hot =
            Tensor::from_vec(vec![0., 0., 1., 1., 0., 0., 0., 1., 0., 0., 0., 1.], [4, 3]).unwrap();
        let a = cross_entropy(&x, &y).unwrap().item().unwrap();
        let b = cross_entropy(&x, &one_hot).unwrap().item().unwrap();
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn gradients_of_logits_and_probabilities() {
        let w = Tensor::from_vec(vec![0.5, 2.0, 1.0], [3]).unwrap();
        for (weight, smoothing, reduction) in
            [(None, 0.0, Reduction::Mean), (Some(w), 0.2, Reduction::Sum)]
        {
            let opts = CrossEntropyOptions {
                weight,
                label_smoothing: smoothing,
                reduction,
                ..Default::default()
            };
            let f = |t: &[Tensor]| cross_entropy_with(&t[0], &t[1].softmax(1)?, &opts);
            let (x, t) = (rand_input(&[2, 3, 2], 2), rand_input(&[2, 3, 2], 3));
            gradcheck(f, &[x, t], Default::default()).unwrap();
        }
    }
}
