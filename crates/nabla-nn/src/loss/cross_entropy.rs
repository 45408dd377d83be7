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
//!
//! Targets of the logits' own shape are class probabilities (soft labels,
//! `loss/soft_targets.rs`).
//!
//! Logits `[N, C, d1, …]` with targets `[N, d1, …]` (a class per position:
//! a sequence's tokens, an image's pixels) are the `N·d1·…` samples
//! `[·, C]`, as in PyTorch; `Reduction::None` gives `[N, d1, …]`.
//!
//! A sample whose target is `ignore_index` (−100 by default, PyTorch's, as
//! for padding) adds nothing to the loss, its gradient or the mean's
//! divisor; when every sample is ignored the mean is 0/0 = NaN, as in
//! PyTorch.

use nabla_core::{Error, HostData, Result, Tensor};

use super::Reduction;

/// Options of [`cross_entropy_with`] (PyTorch's `weight`, `label_smoothing`,
/// `reduction`, `ignore_index`), PyTorch's defaults in `default()`.
#[derive(Clone, Debug)]
pub struct CrossEntropyOptions {
    pub weight: Option<Tensor>,
    pub label_smoothing: f32,
    pub reduction: Reduction,
    /// Targets with this value are skipped (`None`: none are).
    pub ignore_index: Option<i64>,
}

/// PyTorch's `ignore_index` default.
pub const IGNORE_INDEX: i64 = -100;

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            weight: None,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
            ignore_index: Some(IGNORE_INDEX),
        }
    }
}

/// Mean cross-entropy of `logits [N, C]` against class indices `targets [N]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    cross_entropy_with(logits, targets, &CrossEntropyOptions::default())
}

/// `[N, C]`, and each target's class (None for an ignored one).
fn check_targets(
    op: &'static str,
    input: &Tensor,
    targets: &Tensor,
    ignore: Option<i64>,
) -> Result<(usize, usize, Vec<Option<usize>>)> {
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
    // i64 targets are read as they are; float ones must hold integers
    let values: Vec<f64> = match targets.to_host_data() {
        HostData::I64(v) => v.into_iter().map(|i| i as f64).collect(),
        floats => floats.into_f32().into_iter().map(f64::from).collect(),
    };
    let ids = values
        .into_iter()
        .map(|v| {
            if ignore.is_some_and(|i| v == i as f64) {
                Ok(None)
            } else if v >= 0.0 && v.fract() == 0.0 && (v as usize) < c {
                Ok(Some(v as usize))
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

/// Logits `[N, C, d…]` and targets `[N, d…]` as samples `[N·d…, C]` and
/// `[N·d…]` (the classes moved last), and the shape `[N, d…]` of the
/// per-sample losses; `[N, C]` and `[N]` pass through.
fn positions_as_samples(
    op: &'static str,
    input: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, Tensor, Vec<usize>)> {
    let shape = input.shape();
    if shape.len() <= 2 {
        return Ok((input.clone(), targets.clone(), targets.shape().to_vec()));
    }
    let mut per_sample = vec![shape[0]];
    per_sample.extend(&shape[2..]);
    if targets.shape() != per_sample {
        return Err(Error::Shape {
            op,
            msg: format!(
                "targets must be [N, d1, …] = {per_sample:?} class indices for input {shape:?} ([N, C, d1, …]), got {:?}",
                targets.shape()
            ),
        });
    }
    let m = targets.numel();
    Ok((classes_last(input)?, targets.reshape([m])?, per_sample))
}

/// `[N, C, d…]` as `[N·d…, C]`: every position a sample (the classes moved
/// last); `[N, C]` as it is.
pub(super) fn classes_last(x: &Tensor) -> Result<Tensor> {
    let shape = x.shape();
    if shape.len() <= 2 {
        return Ok(x.clone());
    }
    let mut perm = vec![0];
    perm.extend(2..shape.len());
    perm.push(1);
    x.permute(&perm)?.reshape([x.numel() / shape[1], shape[1]])
}

pub fn cross_entropy_with(
    logits: &Tensor,
    targets: &Tensor,
    opts: &CrossEntropyOptions,
) -> Result<Tensor> {
    let op = "cross_entropy";
    if logits.rank() == 1 && targets.rank() <= 1 {
        // one unbatched example: logits [C], its class (0-d) or its
        // probabilities [C], as PyTorch takes them
        let t = match targets.rank() {
            0 => targets.reshape([1])?,
            _ => targets.unsqueeze(0)?,
        };
        let loss = cross_entropy_with(&logits.unsqueeze(0)?, &t, opts)?;
        return match opts.reduction {
            Reduction::None => loss.reshape(Vec::<usize>::new()),
            _ => Ok(loss),
        };
    }
    if logits.rank() >= 2 && targets.shape() == logits.shape() {
        return super::soft_targets::cross_entropy_probabilities(logits, targets, opts);
    }
    let (logits, targets, per_sample) = positions_as_samples(op, logits, targets)?;
    let (logits, targets) = (&logits, &targets);
    let (_, c, ids) = check_targets(op, logits, targets, opts.ignore_index)?;
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
    // the weight of the samples that count: the mean's divisor
    let denom: f32 = ids.iter().flatten().map(|&y| w[y]).sum();
    let reduction = opts.reduction;
    let total = reduction != Reduction::None;
    let y = logits.cross_entropy_rows(ids, w, eps, total)?;
    let y = match reduction {
        Reduction::Mean => y.div_scalar(denom)?,
        _ => y,
    };
    match reduction {
        Reduction::None => y.reshape(per_sample),
        _ => Ok(y),
    }
}

/// Negative log-likelihood of log-probabilities `[N, C]` (as from
/// `log_softmax`): `loss_i = −w_{y_i}·logp_{i,y_i}`, mean over `Σ w_{y_i}`;
/// targets of −100 ([`IGNORE_INDEX`]) are skipped, as in PyTorch.
pub fn nll_loss(
    log_probs: &Tensor,
    targets: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    if log_probs.rank() == 1 && targets.rank() == 0 {
        // one unbatched example, as cross_entropy (and PyTorch) take it:
        // log-probabilities [C] and a 0-d class
        let loss = nll_loss(
            &log_probs.unsqueeze(0)?,
            &targets.reshape([1])?,
            weight,
            reduction,
        )?;
        return match reduction {
            Reduction::None => loss.reshape(Vec::<usize>::new()),
            _ => Ok(loss),
        };
    }
    let (log_probs, targets, sample_shape) = positions_as_samples("nll_loss", log_probs, targets)?;
    let (log_probs, targets) = (&log_probs, &targets);
    let (n, c, ids) = check_targets("nll_loss", log_probs, targets, Some(IGNORE_INDEX))?;
    let wv = match weight {
        Some(w) if w.shape() != [c] => {
            return Err(Error::Shape {
                op: "nll_loss",
                msg: format!("weight must be [{c}], got {:?}", w.shape()),
            })
        }
        Some(w) => w.to_vec(),
        None => vec![1.0; c],
    };
    // an ignored sample picks class 0 and weighs 0, through `where` so
    // that an infinite log-probability there cannot make a NaN
    let index: Vec<f32> = ids.iter().map(|y| y.unwrap_or(0) as f32).collect();
    let keep: Vec<f32> = ids.iter().map(|y| y.is_some() as u8 as f32).collect();
    let wy: Vec<f32> = ids.iter().map(|y| y.map_or(0.0, |y| wv[y])).collect();
    let denom = wy.iter().sum::<f32>();
    let device = log_probs.device();
    let picked = log_probs
        .gather(1, &Tensor::from_vec(index, [n, 1])?)?
        .reshape([n])?
        .neg()?
        .mul(&Tensor::from_vec_on(wy, [n], device)?)?;
    let keep = Tensor::from_vec_on(keep, [n], device)?;
    let per_sample = Tensor::where_cond(&keep, &picked, &Tensor::zeros_on([n], device))?;
    match reduction {
        Reduction::Mean => per_sample.sum_all()?.div_scalar(denom),
        Reduction::Sum => per_sample.sum_all(),
        Reduction::None => per_sample.reshape(sample_shape),
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
                ..Default::default()
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
        // (a class per position of [N, C, d1]: the targets must say so)
        assert_eq!(
            e.unwrap_err().to_string(),
            "cross_entropy: targets must be [N, d1, …] = [64, 40] class indices for input [64, 40, 40] ([N, C, d1, …]), got [64]"
        );
        // one unbatched example: [C] with its class, or with probabilities
        let x = Tensor::from_vec(vec![0.5, -1.0, 2.0], [3]).unwrap();
        let logp = x.log_softmax(0).unwrap();
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            let one = nll_loss(&logp, &Tensor::scalar(2.0), None, r).unwrap();
            assert_eq!(one.shape(), &[] as &[usize]);
            assert_eq!(one.item().unwrap(), -logp.to_vec()[2]);
        }
        let one = cross_entropy(&x, &Tensor::scalar(2.0)).unwrap();
        let batch = cross_entropy(&x.unsqueeze(0).unwrap(), &Tensor::full([1], 2.0)).unwrap();
        assert_eq!(one.shape(), &[] as &[usize]);
        assert_eq!(one.item().unwrap(), batch.item().unwrap());
        let p = Tensor::from_vec(vec![0.0, 0.0, 1.0], [3]).unwrap();
        assert!(
            (cross_entropy(&x, &p).unwrap().item().unwrap() - one.item().unwrap()).abs() < 1e-6
        );
        assert!(cross_entropy(&x, &Tensor::zeros([2])).is_err());
    }

    #[test]
    fn ignored_targets_count_for_nothing() {
        let x = rand_input(&[4, 3], 2);
        let y = Tensor::from_vec(vec![2., -100., 0., -100.], [4]).unwrap();
        let kept = Tensor::from_vec(vec![2., 0.], [2]).unwrap();
        let rows = x.index_select(0, &Tensor::from_vec(vec![0., 2.], [2]).unwrap());
        let (all, some) = (
            cross_entropy(&x, &y).unwrap().item().unwrap(),
            cross_entropy(&rows.unwrap(), &kept)
                .unwrap()
                .item()
                .unwrap(),
        );
        assert!((all - some).abs() < 1e-6, "{all} vs {some}");
        // an infinite log-probability in an ignored row does not leak in
        let lp = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, -1.0, -2.0], [2, 2]).unwrap();
        let y2 = Tensor::from_vec(vec![-100., 1.], [2]).unwrap();
        let l = nll_loss(&lp, &y2, None, Reduction::Mean).unwrap();
        assert_eq!(l.item().unwrap(), 2.0);
        // all ignored: 0/0 as PyTorch; with ignore_index off, −100 is a bad index
        let none = Tensor::full([4], -100.0);
        assert!(cross_entropy(&x, &none).unwrap().item().unwrap().is_nan());
        let opts = CrossEntropyOptions {
            ignore_index: None,
            ..Default::default()
        };
        assert!(cross_entropy_with(&x, &y, &opts).is_err());
        let f = |t: &[Tensor]| cross_entropy(&t[0], &y);
        gradcheck(f, &[x], Default::default()).unwrap();
    }

    #[test]
    fn stable_for_huge_logits() {
        let x = Tensor::from_vec(vec![1000.0, 0.0, -1000.0, 0.0], [2, 2]).unwrap();
        let l = cross_entropy(&x, &Tensor::from_vec(vec![0., 1.], [2]).unwrap()).unwrap();
        assert!(l.item().unwrap().abs() < 1e-6);
    }

    /// A target whose logit is −∞ has an infinite loss, not NaN (PyTorch).
    #[test]
    fn a_minus_infinity_logit_gives_an_infinite_loss() {
        let x = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 1.0], [1, 3]).unwrap();
        let l = cross_entropy(&x, &Tensor::from_vec(vec![0.0], [1]).unwrap()).unwrap();
        assert_eq!(l.item().unwrap(), f32::INFINITY);
    }
}
