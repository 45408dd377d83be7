//! Softmax and cross-entropy fused over rows of logits x `[N, C]` with a
//! class per row (nabla-nn's `cross_entropy` checks the targets and calls
//! this). With `p = softmax(x)`, class weights w and label smoothing ε:
//!
//! `loss_i = (1−ε)·w_{y_i}·(−log p_{i,y_i}) + (ε/C)·Σ_c w_c·(−log p_{i,c})`,
//! 0 for an ignored row.
//!
//! Backward: `∂loss_i/∂x_ic = (1−ε)·w_{y_i}·(p_ic − [c = y_i]) + (ε/C)·(W·p_ic − w_c)`
//! with `W = Σ_c w_c`, times the row's upstream gradient.
//!
//! The backend's fused kernel computes the losses and keeps p in one
//! pass; a backend without one gets the same values from log_softmax,
//! gather and sums.

use crate::backend::CrossEntropyRows;
use crate::{Error, Result, Tensor};

/// The targets of the rows, owned by the graph node.
struct Targets {
    ids: Vec<Option<usize>>,
    weight: Vec<f32>,
    smoothing: f32,
}

impl Targets {
    fn rows(&self) -> CrossEntropyRows<'_> {
        CrossEntropyRows {
            ids: &self.ids,
            weight: &self.weight,
            smoothing: self.smoothing,
        }
    }
}

impl Tensor {
    /// Cross-entropy of each row of `self` `[N, C]` against its class
    /// `ids[i]` (None: ignored, loss 0), with class `weight` `[C]` and
    /// label `smoothing`: the losses `[N]`, or with `total` their sum (0-d).
    pub fn cross_entropy_rows(
        &self,
        ids: Vec<Option<usize>>,
        weight: Vec<f32>,
        smoothing: f32,
        total: bool,
    ) -> Result<Tensor> {
        let (n, c) = self.dims2()?;
        if ids.len() != n || weight.len() != c || ids.iter().flatten().any(|&y| y >= c) {
            return Err(Error::shape(
                "cross_entropy",
                format!(
                    "{} targets and {} weights (classes below {c}) for logits {:?}",
                    ids.len(),
                    weight.len(),
                    self.shape()
                ),
            ));
        }
        let t = Targets {
            ids,
            weight,
            smoothing,
        };
        let x = self.contiguous()?;
        let be = self.backend();
        let Some((losses, probs)) = x.with_view("cross_entropy", |(s, _)| {
            be.cross_entropy(s, &t.rows(), total)
        })?
        else {
            return composed(self, &t, total);
        };
        let shape: &[usize] = if total { &[] } else { &[n] };
        let y = Tensor::from_storage(losses, shape);
        Ok(y.attach("CrossEntropyBackward", &[self], move |g, _| {
            // the upstream gradient of each row
            let scale = g.broadcast_to([n])?.contiguous()?;
            let dx = scale
                .with_view("cross_entropy", |(s, _)| {
                    be.cross_entropy_backward(&probs, &t.rows(), s)
                })?
                .expect("a backend with the fused forward has its backward");
            Ok(vec![Some(Tensor::from_storage(dx, &[n, c]))])
        }))
    }
}

/// The same losses from ordinary ops.
fn composed(x: &Tensor, t: &Targets, total: bool) -> Result<Tensor> {
    let (n, c) = x.dims2()?;
    let device = x.device();
    let on = |v: Vec<f32>, shape: &[usize]| Tensor::from_vec_on(v, shape, device);
    let log_p = x.log_softmax(1)?;
    let class = on(
        t.ids.iter().map(|y| y.unwrap_or(0) as f32).collect(),
        &[n, 1],
    )?;
    let w_y = on(
        t.ids
            .iter()
            .map(|y| y.map_or(0.0, |y| t.weight[y]))
            .collect(),
        &[n],
    )?;
    let nll = log_p.gather(1, &class)?.reshape([n])?.neg()?.mul(&w_y)?;
    let mut loss = nll;
    if t.smoothing > 0.0 {
        let smooth = log_p
            .mul(&on(t.weight.clone(), &[c])?)?
            .sum(&[1], false)?
            .neg()?;
        let eps = t.smoothing;
        loss = loss
            .mul_scalar(1.0 - eps)?
            .add(&smooth.mul_scalar(eps / c as f32)?)?;
    }
    // an ignored row is 0 by selection: its −∞ log-probabilities times 0
    // would be NaN
    let keep = on(
        t.ids.iter().map(|y| y.is_some() as u8 as f32).collect(),
        &[n],
    )?;
    let loss = Tensor::where_cond(&keep, &loss, &Tensor::scalar(0.0))?;
    if total {
        loss.sum_all()
    } else {
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::{composed, Targets};
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    fn targets(smoothing: f32) -> Targets {
        Targets {
            ids: vec![Some(2), None, Some(0), Some(3)],
            weight: vec![0.5, 1.0, 2.0, 1.5],
            smoothing,
        }
    }

    #[test]
    fn fused_agrees_with_composed() {
        for eps in [0.0, 0.2] {
            for total in [false, true] {
                let x = rand_input(&[4, 4], 3)
                    .mul_scalar(3.0)
                    .unwrap()
                    .detach()
                    .requires_grad_(true);
                let t = targets(eps);
                let fused = x
                    .cross_entropy_rows(t.ids.clone(), t.weight.clone(), eps, total)
                    .unwrap();
                let slow = composed(&x, &t, total).unwrap();
                let (a, b) = (fused.to_vec(), slow.to_vec());
                for (a, b) in a.iter().zip(&b) {
                    assert!((a - b).abs() < 1e-5, "{a} against {b}");
                }
                let r = Tensor::from_vec(vec![0.3, -1.0, 0.7, 1.1], [4]).unwrap();
                let grads = |y: &Tensor| {
                    x.zero_grad();
                    let y = if total { y.clone() } else { y.mul(&r).unwrap() };
                    y.sum_all().unwrap().backward().unwrap();
                    x.grad().unwrap().to_vec()
                };
                let (ga, gb) = (grads(&fused), grads(&slow));
                for (a, b) in ga.iter().zip(&gb) {
                    assert!((a - b).abs() < 1e-5, "{a} against {b}");
                }
            }
        }
    }

    #[test]
    fn gradcheck_cross_entropy_rows() {
        let x = rand_input(&[4, 4], 5);
        let t = targets(0.1);
        let f = |v: &[Tensor]| v[0].cross_entropy_rows(t.ids.clone(), t.weight.clone(), 0.1, true);
        gradcheck(f, &[x], Default::default()).unwrap();
    }

    #[test]
    fn rejects_targets_that_do_not_fit() {
        let x = Tensor::zeros([2, 3]);
        assert!(x
            .cross_entropy_rows(vec![Some(3), None], vec![1.0; 3], 0.0, true)
            .is_err());
        assert!(x
            .cross_entropy_rows(vec![Some(0)], vec![1.0; 3], 0.0, true)
            .is_err());
    }
}
