//! Structured pruning of a model file: whole output channels of
//! convolutions and neurons of Linear layers removed, so the model that is
//! left is dense and really smaller (its products shrink), not masked.
//!
//! Each prunable layer keeps the `round((1 − amount) · n)` outputs (at
//! least one) whose weights have the largest L1 norm (PyTorch's
//! `prune.ln_structured(n=1, dim=0)` ranking), in their order. What reads
//! those outputs follows: a BatchNorm keeps the same channels, the next
//! convolution the same input channels, the next Linear the same inputs
//! (after a flatten, each channel's `H·W` features). The last layer with
//! weights, whose outputs are the classes, keeps them all.
//!
//! Handled: chains of `conv2d` (without groups) and `linear`, with
//! activations, pooling, dropout, batchnorm and flatten between them. A
//! layer that mixes channels otherwise (recurrent, patches, encoder) is
//! refused by name.

use std::collections::HashMap;

use nabla_core::Tensor;

use super::{plan, LayerKind, ModelFile, Result};
use crate::modelfile::ModelFileError;

/// A pruned model: its model file (TOML) and its weights, and what each
/// pruned layer kept.
pub struct StructuredPruning {
    pub toml: String,
    pub state: Vec<(String, Tensor)>,
    /// (layer, the outputs it kept, how many it had)
    pub kept: Vec<(String, Vec<usize>, usize)>,
}

/// What a layer does to the channels (or features) it passes on.
enum Role {
    /// Has weights whose rows are its outputs.
    Producer,
    /// Keeps channels as they are (activations, pooling, dropout).
    Through,
    /// Keeps channels, with per-channel parameters and statistics.
    Norm,
    /// `[C, H, W]` → `C·H·W` features, channel after channel.
    Flatten,
}

fn role(kind: &LayerKind) -> Option<Role> {
    Some(match kind {
        LayerKind::Conv2d { groups: 1, .. } | LayerKind::Linear { .. } => Role::Producer,
        LayerKind::Batchnorm => Role::Norm,
        LayerKind::Flatten => Role::Flatten,
        LayerKind::Conv2d { .. } => return None,
        LayerKind::Maxpool2d { .. }
        | LayerKind::Avgpool2d { .. }
        | LayerKind::Relu
        | LayerKind::Sigmoid
        | LayerKind::Tanh
        | LayerKind::Gelu
        | LayerKind::Leakyrelu { .. }
        | LayerKind::Silu
        | LayerKind::Mish
        | LayerKind::Selu
        | LayerKind::Elu { .. }
        | LayerKind::Softplus { .. }
        | LayerKind::Dropout { .. } => Role::Through,
        _ => return None,
    })
}

fn err(msg: String) -> ModelFileError {
    ModelFileError(msg)
}

/// `spec` (read from `text`, named `source` in errors) with the `amount`
/// share of its channels and neurons removed, and `state` (its weights by
/// PyTorch name) cut to match.
pub fn prune_structured(
    spec: &ModelFile,
    text: &str,
    source: &str,
    state: &[(String, Tensor)],
    amount: f32,
) -> Result<StructuredPruning> {
    if !(0.0..1.0).contains(&amount) {
        return Err(err(format!(
            "structured pruning: the amount is a share from 0 to below 1, not {amount}"
        )));
    }
    let planned = plan(spec, source, None)?;
    let infos: Vec<_> = planned.layers.iter().map(|p| p.info.clone()).collect();
    let mut roles = Vec::with_capacity(infos.len());
    for (l, info) in spec.layers.iter().zip(&infos) {
        roles.push(role(&l.kind).ok_or_else(|| {
            err(format!(
                "{source}: layer {} ({}): structured pruning handles chains of conv2d (without groups) and linear layers",
                info.name, info.kind
            ))
        })?);
    }
    let producers: Vec<usize> = (0..roles.len())
        .filter(|&i| matches!(roles[i], Role::Producer))
        .collect();
    let mut weights: HashMap<String, Tensor> = state.iter().cloned().collect();
    let take = |w: &HashMap<String, Tensor>, name: &str| -> Result<Tensor> {
        w.get(name)
            .cloned()
            .ok_or_else(|| err(format!("{source}: the weights have no {name}")))
    };
    let mut doc: toml::Table = text.parse().map_err(|e| err(format!("{source}: {e}")))?;
    let mut kept_report = Vec::new();
    // every producer but the last (the classes) feeds the next one
    for pair in producers.windows(2) {
        let (p, c) = (pair[0], pair[1]);
        let name = &infos[p].name;
        let w = take(&weights, &format!("{name}.weight"))?;
        let outputs = w.shape()[0];
        let keep_n = (((1.0 - amount) as f64 * outputs as f64).round() as usize).clamp(1, outputs);
        // L1 norm of each output's weights
        let norms: Vec<f32> = w
            .reshape([outputs, w.numel() / outputs.max(1)])?
            .abs()?
            .sum(&[1], false)?
            .to_vec();
        let mut order: Vec<usize> = (0..outputs).collect();
        order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
        let mut keep: Vec<usize> = order[..keep_n].to_vec();
        keep.sort_unstable();
        let index = Tensor::from_vec(keep.iter().map(|&k| k as f32).collect(), [keep_n])?;
        weights.insert(format!("{name}.weight"), w.index_select(0, &index)?);
        if let Some(b) = weights.get(&format!("{name}.bias")).cloned() {
            weights.insert(format!("{name}.bias"), b.index_select(0, &index)?);
        }
        set(&mut doc, p, out_key(&spec.layers[p].kind), keep_n);
        // what lies between: normalizations keep the channels (or, after a
        // flatten, the features); a flatten turns each channel into its
        // H·W features, channel after channel
        let mut features: Option<Vec<f32>> = None;
        for between in p + 1..c {
            match roles[between] {
                Role::Norm => {
                    let which = match &features {
                        Some(f) => Tensor::from_vec(f.clone(), [f.len()])?,
                        None => index.clone(),
                    };
                    let n = &infos[between].name;
                    for stat in ["weight", "bias", "running_mean", "running_var"] {
                        let key = format!("{n}.{stat}");
                        let t = take(&weights, &key)?;
                        weights.insert(key, t.index_select(0, &which)?);
                    }
                }
                Role::Flatten if features.is_none() => {
                    let per: usize = infos[between - 1].out_shape[1..].iter().product();
                    features = Some(
                        keep.iter()
                            .flat_map(|&k| (k * per..(k + 1) * per).map(|v| v as f32))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        let consumer = &infos[c].name;
        let cw = take(&weights, &format!("{consumer}.weight"))?;
        let reads_features = features.is_some() || infos[p].out_shape.len() == 1;
        let (cw, inputs) = match spec.layers[c].kind {
            LayerKind::Conv2d { .. } if features.is_none() && cw.rank() == 4 => {
                (cw.index_select(1, &index)?, keep_n)
            }
            LayerKind::Linear { .. } if cw.rank() == 2 && reads_features => {
                let columns = features.unwrap_or_else(|| keep.iter().map(|&k| k as f32).collect());
                let n = columns.len();
                (cw.index_select(1, &Tensor::from_vec(columns, [n])?)?, n)
            }
            _ => {
                return Err(err(format!(
                    "{source}: layer {consumer} ({}) does not read layer {name}'s outputs as channels or features",
                    infos[c].kind
                )))
            }
        };
        weights.insert(format!("{consumer}.weight"), cw);
        set(&mut doc, c, in_key(&spec.layers[c].kind), inputs);
        kept_report.push((name.clone(), keep, outputs));
    }
    if kept_report.is_empty() {
        return Err(err(format!(
            "{source}: no layer to prune (only the last layer has weights)"
        )));
    }
    if let Some(toml::Value::String(n)) = doc.get("name").cloned() {
        doc.insert("name".into(), toml::Value::String(format!("{n}-pruned")));
    }
    // in the order of the original state dict
    let state = state
        .iter()
        .map(|(n, _)| (n.clone(), weights[n].clone()))
        .collect();
    Ok(StructuredPruning {
        toml: toml::to_string(&doc).map_err(|e| err(e.to_string()))?,
        state,
        kept: kept_report,
    })
}

fn out_key(kind: &LayerKind) -> &'static str {
    match kind {
        LayerKind::Conv2d { .. } => "out_channels",
        _ => "out_features",
    }
}

fn in_key(kind: &LayerKind) -> &'static str {
    match kind {
        LayerKind::Conv2d { .. } => "in_channels",
        _ => "in_features",
    }
}

/// Sets `key` of layer `i` of the model file to `value`; an input size
/// is set only where the file states it (it is inferred otherwise).
fn set(doc: &mut toml::Table, i: usize, key: &str, value: usize) {
    let Some(toml::Value::Array(layers)) = doc.get_mut("layers") else {
        return;
    };
    if let Some(toml::Value::Table(layer)) = layers.get_mut(i) {
        if key.starts_with("out_") || layer.contains_key(key) {
            layer.insert(key.into(), toml::Value::Integer(value as i64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modelfile::{build, load_spec};
    use crate::state_dict::{load_state_dict, state_dict};
    use crate::{Module, Parameters};

    /// LeNet pruned by half: the pruned model file builds, its weights
    /// load into it, and it computes what the full model computes with the
    /// removed channels' outputs forced to zero.
    #[test]
    fn lenet_loses_half_its_channels_and_neurons() {
        let (spec, source) = load_spec("lenet").unwrap();
        let text = crate::zoo::MODEL_FILES[0].1;
        let full = build(&spec, &source, None).unwrap();
        let sd = state_dict(&full);
        let pruned = prune_structured(&spec, text, &source, &sd, 0.5).unwrap();
        let kept: Vec<(&str, usize, usize)> = pruned
            .kept
            .iter()
            .map(|(n, k, o)| (n.as_str(), k.len(), *o))
            .collect();
        assert_eq!(
            kept,
            [
                ("conv1", 3, 6),
                ("conv2", 8, 16),
                ("fc1", 60, 120),
                ("fc2", 42, 84)
            ]
        );
        let new_spec: ModelFile = toml::from_str(&pruned.toml).unwrap();
        let small = build(&new_spec, "pruned", None).unwrap();
        load_state_dict(&small, &pruned.state).unwrap();
        assert_eq!(small.name, "lenet-pruned");
        assert!(small.num_parameters() * 3 < full.num_parameters());

        // the full model with the dropped outputs' weights and biases
        // zeroed (ReLU then passes nothing on) computes the same function
        let zeroed: Vec<(String, Tensor)> = sd
            .iter()
            .map(|(n, t)| {
                let (layer, _) = n.split_once('.').unwrap();
                let Some((_, keep, rows)) = pruned.kept.iter().find(|(l, _, _)| l == layer) else {
                    return (n.clone(), t.clone());
                };
                let per = t.numel() / rows;
                let mut v = t.to_vec();
                for r in (0..*rows).filter(|r| !keep.contains(r)) {
                    v[r * per..(r + 1) * per].fill(0.0);
                }
                (n.clone(), Tensor::from_vec(v, t.shape().to_vec()).unwrap())
            })
            .collect();
        load_state_dict(&full, &zeroed).unwrap();
        let x = Tensor::randn([3, 1, 28, 28]);
        let (a, b) = (
            small.forward(&x).unwrap().to_vec(),
            full.forward(&x).unwrap().to_vec(),
        );
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
        // kept by weight: the largest L1 norms
        let conv1 = &sd[0].1;
        let norms = conv1
            .reshape([6, 25])
            .unwrap()
            .abs()
            .unwrap()
            .sum(&[1], false)
            .unwrap()
            .to_vec();
        let smallest_kept = pruned.kept[0]
            .1
            .iter()
            .map(|&k| norms[k])
            .fold(f32::INFINITY, f32::min);
        let largest_dropped = (0..6)
            .filter(|r| !pruned.kept[0].1.contains(r))
            .map(|r| norms[r])
            .fold(0.0, f32::max);
        assert!(smallest_kept >= largest_dropped);
    }

    /// BatchNorm before and after a flatten, and a flatten of 1×1 maps:
    /// the pruned model computes the full one with the dropped outputs
    /// silenced (their weights and biases zero, the norms' shift zero).
    #[test]
    fn norms_and_flattens_follow_the_kept_channels() {
        let text = r#"
            name = "small"
            input = [1, 6, 6]
            [[layers]]
            type = "conv2d"
            name = "a"
            out_channels = 4
            kernel = 3
            [[layers]]
            type = "batchnorm"
            name = "bn"
            [[layers]]
            type = "relu"
            [[layers]]
            type = "conv2d"
            name = "b"
            out_channels = 6
            kernel = 4
            [[layers]]
            type = "relu"
            [[layers]]
            type = "flatten"
            [[layers]]
            type = "batchnorm"
            name = "bnf"
            [[layers]]
            type = "linear"
            name = "out"
            out_features = 3
        "#;
        let spec: ModelFile = toml::from_str(text).unwrap();
        let full = build(&spec, "small", None).unwrap();
        // statistics and shifts that are not the defaults
        for (n, t) in state_dict(&full) {
            if n.starts_with("bn") {
                let v: Vec<f32> = (0..t.numel()).map(|i| 0.5 + 0.1 * i as f32).collect();
                t.copy_from(&Tensor::from_vec(v, t.shape().to_vec()).unwrap())
                    .unwrap();
            }
        }
        full.eval();
        let sd = state_dict(&full);
        let pruned = prune_structured(&spec, text, "small", &sd, 0.5).unwrap();
        assert_eq!(
            pruned
                .kept
                .iter()
                .map(|(_, k, _)| k.len())
                .collect::<Vec<_>>(),
            [2, 3]
        );
        let small = build(&toml::from_str(&pruned.toml).unwrap(), "pruned", None).unwrap();
        load_state_dict(&small, &pruned.state).unwrap();
        small.eval();
        // silence the dropped outputs in the full model: zero weights and
        // biases, and each norm's shift made to map zero to zero
        let dropped = |layer: &str| -> Vec<usize> {
            let (_, keep, n) = pruned.kept.iter().find(|(l, _, _)| l == layer).unwrap();
            (0..*n).filter(|r| !keep.contains(r)).collect()
        };
        let set = |name: &str, f: &dyn Fn(&mut Vec<f32>)| {
            let t = &sd.iter().find(|(n, _)| n == name).unwrap().1;
            let mut v = t.to_vec();
            f(&mut v);
            t.copy_from(&Tensor::from_vec(v, t.shape().to_vec()).unwrap())
                .unwrap();
        };
        for r in dropped("a") {
            set("a.weight", &|v| v[r * 9..(r + 1) * 9].fill(0.0));
            set("a.bias", &|v| v[r] = 0.0);
            // bn(0) = bias − mean·w/√var: zero with bias = mean·w/√(var+eps)
            set("bn.bias", &|v| v[r] = 0.0);
            set("bn.running_mean", &|v| v[r] = 0.0);
        }
        for r in dropped("b") {
            set("b.weight", &|v| v[r * 64..(r + 1) * 64].fill(0.0));
            set("b.bias", &|v| v[r] = 0.0);
            set("bnf.bias", &|v| v[r] = 0.0); // (1×1 maps: a channel is a feature)
            set("bnf.running_mean", &|v| v[r] = 0.0);
        }
        let x = Tensor::randn([2, 1, 6, 6]);
        let (a, b) = (
            small.forward(&x).unwrap().to_vec(),
            full.forward(&x).unwrap().to_vec(),
        );
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    /// An MLP's neurons (features, no flatten of channels) and a layer it
    /// cannot follow.
    #[test]
    fn mlps_prune_and_recurrent_models_are_refused() {
        let (spec, source) = load_spec("mlp").unwrap();
        let text = crate::zoo::MODEL_FILES
            .iter()
            .find(|(n, _)| *n == "mlp")
            .unwrap()
            .1;
        let m = build(&spec, &source, None).unwrap();
        let pruned = prune_structured(&spec, text, &source, &state_dict(&m), 0.75).unwrap();
        let sizes: Vec<usize> = pruned.kept.iter().map(|(_, k, _)| k.len()).collect();
        assert_eq!(sizes, [64, 32]);
        let new_spec: ModelFile = toml::from_str(&pruned.toml).unwrap();
        let small = build(&new_spec, "pruned", None).unwrap();
        load_state_dict(&small, &pruned.state).unwrap();
        assert_eq!(
            small
                .forward(&Tensor::zeros([2, 1, 28, 28]))
                .unwrap()
                .shape(),
            [2, 10]
        );

        let (spec, source) = load_spec("lstm-rows").unwrap();
        let text = crate::zoo::MODEL_FILES
            .iter()
            .find(|(n, _)| *n == "lstm-rows")
            .unwrap()
            .1;
        let m = build(&spec, &source, None).unwrap();
        let e = prune_structured(&spec, text, &source, &state_dict(&m), 0.5)
            .err()
            .unwrap();
        assert!(e.to_string().contains("layer lstm (lstm)"), "{e}");
        let (spec, source) = load_spec("mlp").unwrap();
        assert!(prune_structured(&spec, text, &source, &[], 1.0).is_err());
    }
}
