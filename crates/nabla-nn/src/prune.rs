//! Magnitude pruning (unstructured): the smallest weights set to zero, as
//! PyTorch's `prune.l1_unstructured` (a layer at a time) and
//! `prune.global_unstructured` with `L1Unstructured` (all layers ranked
//! together) do.
//!
//! The weights are the parameters named `….weight` of rank 2 or more:
//! Linear, convolution and recurrent matrices, not biases or normalization
//! scales. Exactly `round(amount · n)` values are zeroed, the smallest
//! magnitudes first (ties broken by position). The model stays dense, so it
//! is no faster; [structured pruning](crate::modelfile::prune) removes
//! whole channels and neurons instead. Fine-tuning keeps the zeros with
//! `nabla_train::callbacks::KeepZeros`.

use crate::Parameters;
use nabla_core::{Error, Result, Tensor};

/// How the smallest weights are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// All weights ranked together: layers lose different shares.
    Global,
    /// Each weight tensor loses the same share.
    PerLayer,
}

/// The weight tensors pruning applies to, with their names.
pub fn prunable_weights(model: &dyn Parameters) -> Vec<(String, Tensor)> {
    model
        .named_parameters()
        .into_iter()
        .filter(|(n, t)| (n == "weight" || n.ends_with(".weight")) && t.rank() >= 2)
        .collect()
}

/// What pruning left of one weight tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Pruned {
    pub name: String,
    pub zeros: usize,
    pub total: usize,
}

/// Zeroes the `amount` (0..=1) share of the model's weights with the
/// smallest magnitudes, in place; returns each tensor's zeros.
pub fn magnitude_prune(model: &dyn Parameters, amount: f32, scope: Scope) -> Result<Vec<Pruned>> {
    if !(0.0..=1.0).contains(&amount) {
        return Err(Error::Arg {
            op: "prune",
            msg: format!("the amount is a share from 0 to 1, not {amount}"),
        });
    }
    let weights = prunable_weights(model);
    if weights.is_empty() {
        return Err(Error::Arg {
            op: "prune",
            msg: "the model has no weight matrices to prune".into(),
        });
    }
    let values: Vec<Vec<f32>> = weights.iter().map(|(_, t)| t.to_vec()).collect();
    let mut keep: Vec<Vec<bool>> = values.iter().map(|v| vec![true; v.len()]).collect();
    // (magnitude, tensor, index) of the values ranked together
    let mut rank = |group: &[usize]| {
        let mut all: Vec<(f32, usize, usize)> = group
            .iter()
            .flat_map(|&g| {
                values[g]
                    .iter()
                    .enumerate()
                    .map(move |(i, v)| (v.abs(), g, i))
            })
            .collect();
        let k = (amount as f64 * all.len() as f64).round() as usize;
        if k == 0 {
            return;
        }
        let order = |a: &(f32, usize, usize), b: &(f32, usize, usize)| {
            a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2)))
        };
        if k < all.len() {
            all.select_nth_unstable_by(k, order);
        }
        for &(_, g, i) in &all[..k] {
            keep[g][i] = false;
        }
    };
    match scope {
        Scope::Global => rank(&(0..weights.len()).collect::<Vec<_>>()),
        Scope::PerLayer => (0..weights.len()).for_each(|g| rank(&[g])),
    }
    let mut report = Vec::with_capacity(weights.len());
    for (((name, t), v), k) in weights.iter().zip(&values).zip(&keep) {
        let pruned: Vec<f32> = v
            .iter()
            .zip(k)
            .map(|(&x, &k)| if k { x } else { 0.0 })
            .collect();
        let zeros = pruned.iter().filter(|x| **x == 0.0).count();
        nabla_core::no_grad(|| t.copy_from(&Tensor::from_vec(pruned, t.shape().to_vec())?))?;
        report.push(Pruned {
            name: name.clone(),
            zeros,
            total: v.len(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Linear, Parameters, ReLU, Sequential};

    fn net() -> Sequential {
        let s = Sequential::new()
            .add(Linear::new(4, 3))
            .add(ReLU)
            .add(Linear::new(3, 2));
        let w0: Vec<f32> = (1..=12)
            .map(|v| v as f32 * if v % 2 == 0 { -1.0 } else { 1.0 })
            .collect();
        let w2: Vec<f32> = (1..=6).map(|v| v as f32 * 0.5).collect();
        s.named_parameters()[0]
            .1
            .copy_from(&Tensor::from_vec(w0, [3, 4]).unwrap())
            .unwrap();
        s.named_parameters()[2]
            .1
            .copy_from(&Tensor::from_vec(w2, [2, 3]).unwrap())
            .unwrap();
        s
    }

    #[test]
    fn the_smallest_weights_go_globally_or_per_layer() {
        // globally, 6 of 18 values: |w| 0.5, 1, 1, 1.5, 2, 2 (the 1 and 2 of
        // both layers; ties by position: the first layer's first)
        let s = net();
        let report = magnitude_prune(&s, 1.0 / 3.0, Scope::Global).unwrap();
        assert_eq!(
            report.iter().map(|p| p.zeros).collect::<Vec<_>>(),
            [2, 4],
            "{report:?}"
        );
        assert_eq!(&s.named_parameters()[0].1.to_vec()[..3], [0.0, 0.0, 3.0]);
        assert_eq!(
            s.named_parameters()[2].1.to_vec(),
            [0.0, 0.0, 0.0, 0.0, 2.5, 3.0]
        );
        // biases are untouched
        assert!(s.named_parameters()[1].1.to_vec().iter().all(|v| *v != 0.0));
        // per layer: a third of each
        let s = net();
        let report = magnitude_prune(&s, 0.5, Scope::PerLayer).unwrap();
        assert_eq!(report.iter().map(|p| p.zeros).collect::<Vec<_>>(), [6, 3]);
        assert_eq!(
            s.named_parameters()[2].1.to_vec(),
            [0.0, 0.0, 0.0, 2.0, 2.5, 3.0]
        );
        assert!(magnitude_prune(&s, 1.5, Scope::Global).is_err());
        assert!(magnitude_prune(&ReLU, 0.5, Scope::Global).is_err());
    }
}
