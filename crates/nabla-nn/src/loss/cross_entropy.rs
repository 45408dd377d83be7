//! Cross-entropy from logits, fused and numerically stable, and NLL.
//!
//! Logits x `[N, C]`, targets `[N]` (class indices), optional class weights
//! w `[C]` (default 1), label smoothing ε. With `p = softmax(x)` and
//! `log p_c = x_c − m − ln Σ e^(x_j − m)`, `m = max x`:
//!
//! `loss_i = (1−ε)·w_{y_i}·(−log p_{i,y_i}) + (ε/C)·Σ_c w_c·(−log p_{i,c})`;
//! mean reduction divides `Σ_i loss_i` by `Σ_i w_{y_i}` (PyTorch's rule).
//!
//! Gradient: `∂loss_i/∂x_ic = (1−ε)·w_{y_i}·(p_ic − [c = y_i]) + (ε/C)·(W·p_ic − w_c)`
//! with `W = Σ_c w_c`. One pass computes both, with no `[N, C]`
//! intermediates beyond p.

use nabla_core::{Error, Result, Tensor};

use super::Reduction;

/// Options of [`cross_entropy_with`] (PyTorch's `weight`, `label_smoothing`,
/// `reduction`).
#[derive(Clone, Debug, Default)]
pub struct CrossEntropyOptions {
    pub weight: Option<Tensor>,
    pub label_smoothing: f32,
    pub reduction: Reduction,
}

/// Mean cross-entropy of `logits [N, C]` against class indices `targets [N]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    cross_entropy_with(logits, targets, &CrossEntropyOptions::default())
}

fn check_targets(
    op: &'static str,
    input: &Tensor,
    targets: &Tensor,
) -> Result<(usize, usize, Vec<usize>)> {
    let (n, c) = input.dims2().map_err(|_| Error::Shape {
        op,
        msg: format!("expected input [N, C], got {:?}", input.shape()),
    })?;
    if targets.shape() != [n] {
        return Err(Error::Shape {
            op,
            msg: format!(
                "targets must be [N] = [{n}] class indices, got {:?} for input {:?}",
                targets.shape(),
                input.shape()
            ),
        });
    }
    let ids = targets
        .to_vec()
        .into_iter()
        .map(|v| {
            if v >= 0.0 && v.fract() == 0.0 && (v as usize) < c {
                Ok(v as usize)
            } else {
                Err(Error::Index {
                    op,
                    index: v,
                    size: c,
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((n, c, ids))
}

pub fn cross_entropy_with(
    logits: &Tensor,
    targets: &Tensor,
    opts: &CrossEntropyOptions,
) -> Result<Tensor> {
    let op = "cross_entropy";
    let (n, c, ids) = check_targets(op, logits, targets)?;
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::Arg {
            op,
            msg: format!("label_smoothing must be in [0, 1], got {eps}"),
        });
    }
    let w: Vec<f32> = match &opts.weight {
        Some(w) if w.shape() != [c] => {
            return Err(Error::Shape {
                op,
                msg: format!("weight must be [{c}], got {:?}", w.shape()),
            })
        }
        Some(w) => w.to_vec(),
        None => vec![1.0; c],
    };
    let w_total: f32 = w.iter().sum();
    let x = logits.to_vec();
    let mut probs = vec![0f32; n * c];
    let mut losses = vec![0f32; n];
    for i in 0..n {
        let row = &x[i * c..(i + 1) * c];
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let s: f32 = row.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + s.ln();
        let mut smooth = 0f32;
        for k in 0..c {
            let logp = row[k] - lse;
            probs[i * c + k] = logp.exp();
            smooth -= w[k] * logp;
        }
        let nll = -(row[ids[i]] - lse) * w[ids[i]];
        losses[i] = (1.0 - eps) * nll + eps / c as f32 * smooth;
    }
    let denom: f32 = ids.iter().map(|&y| w[y]).sum();
    let value = match opts.reduction {
        Reduction::Mean => Tensor::scalar(losses.iter().sum::<f32>() / denom),
        Reduction::Sum => Tensor::scalar(losses.iter().sum()),
        Reduction::None => Tensor::from_vec(losses, [n])?,
    };
    let reduction = opts.reduction;
    Ok(
        value.attach("CrossEntropyBackward", &[logits], move |g, _| {
            // upstream gradient per sample
            let gv = g.to_vec();
            let scale = |i: usize| match reduction {
                Reduction::Mean => gv[0] / denom,
                Reduction::Sum => gv[0],
                Reduction::None => gv[i],
            };
            let mut dx = vec![0f32; n * c];
            for i in 0..n {
                let s = scale(i);
                let wy = w[ids[i]];
                for k in 0..c {
                    let p = probs[i * c + k];
                    let hard = (1.0 - eps) * wy * (p - if k == ids[i] { 1.0 } else { 0.0 });
                    let soft = eps / c as f32 * (w_total * p - w[k]);
                    dx[i * c + k] = s * (hard + soft);
                }
            }
            Ok(vec![Some(Tensor::from_vec(dx, [n, c])?)])
        }),
    )
}

/// Negative log-likelihood of log-probabilities `[N, C]` (as from
/// `log_softmax`): `loss_i = −w_{y_i}·logp_{i,y_i}`, mean over `Σ w_{y_i}`.
pub fn nll_loss(
    log_probs: &Tensor,
    targets: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    let (n, c, ids) = check_targets("nll_loss", log_probs, targets)?;
    let picked = log_probs
        .gather(1, &targets.reshape([n, 1])?)?
        .reshape([n])?
        .neg()?;
    let (per_sample, denom) = match weight {
        Some(w) => {
            if w.shape() != [c] {
                return Err(Error::Shape {
                    op: "nll_loss",
                    msg: format!("weight must be [{c}], got {:?}", w.shape()),
                });
            }
            let wv = w.to_vec();
            let wy: Vec<f32> = ids.iter().map(|&y| wv[y]).collect();
            let denom = wy.iter().sum::<f32>();
            (picked.mul(&Tensor::from_vec(wy, [n])?)?, denom)
        }
        None => (picked, n as f32),
    };
    match reduction {
        Reduction::Mean => per_sample.sum_all()?.div_scalar(denom),
        Reduction::Sum => per_sample.sum_all(),
        Reduction::None => Ok(per_sample),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

    #[test]
    fn equals_nll_of_log_softmax_and_passes_gradcheck() {
        let x = rand_input(&[5, 4], 1).mul_scalar(3.0).unwrap();
        let y = Tensor::from_vec(vec![0., 3., 1., 1., 2.], [5]).unwrap();
        let a = cross_entropy(&x, &y).unwrap().item().unwrap();
        let b = nll_loss(&x.log_softmax(1).unwrap(), &y, None, Reduction::Mean)
            .unwrap()
            .item()
            .unwrap();
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        let w = Tensor::from_vec(vec![0.5, 2.0, 1.0, 3.0], [4]).unwrap();
        for (weight, smoothing, reduction) in [
            (None, 0.0, Reduction::Mean),
            (Some(w.clone()), 0.0, Reduction::Mean),
            (Some(w.clone()), 0.2, Reduction::Mean),
            (None, 0.1, Reduction::None),
            (Some(w), 0.3, Reduction::Sum),
        ] {
            let opts = CrossEntropyOptions {
                weight,
                label_smoothing: smoothing,
                reduction,
            };
            let f = |t: &[Tensor]| cross_entropy_with(&t[0], &y, &opts);
            gradcheck(f, &[x.clone()], Default::default()).unwrap();
        }
    }

    #[test]
    fn bad_targets_are_errors() {
        let x = Tensor::zeros([2, 3]);
        let e = cross_entropy(&x, &Tensor::from_vec(vec![0., 3.], [2]).unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cross_entropy: index 3 out of range for a dimension of size 3"
        );
        let e = cross_entropy(&x, &Tensor::zeros([3]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cross_entropy: targets must be [N] = [2] class indices, got [3] for input [2, 3]"
        );
        let e = cross_entropy(
            &Tensor::zeros([64, 1600]).reshape([64, 40, 40]).unwrap(),
            &Tensor::zeros([64]),
        );
        assert!(e.unwrap_err().to_string().contains("expected input [N, C]"));
    }

    #[test]
    fn stable_for_huge_logits() {
        let x = Tensor::from_vec(vec![1000.0, 0.0, -1000.0, 0.0], [2, 2]).unwrap();
        let l = cross_entropy(&x, &Tensor::from_vec(vec![0., 1.], [2]).unwrap()).unwrap();
        assert!(l.item().unwrap().abs() < 1e-6);
    }
}
