//! The attention modules, the Transformer layers and the GPT against
//! PyTorch (fixtures from `tools/gen_fixtures.py`): parameters loaded by
//! their PyTorch names, outputs and every gradient to 1e-5 absolute +
//! 1e-4 relative.

mod common;

use common::{close_tensors, load, params};
use nabla_core::Tensor;
use nabla_nn::loss;
use nabla_nn::state_dict::load_state_dict;
use nabla_nn::{Module, Parameters};

/// `nn.MultiheadAttention` with PyTorch's parameters (loaded by name):
/// outputs, weights and every gradient (inputs and parameters). Tolerance
/// 1e-5 absolute + 1e-4 relative.
#[test]
fn multihead_attention_matches_pytorch() {
    use nabla_nn::{MhaArgs, MhaMask, MhaOptions, MultiheadAttention};
    for name in [
        "mha_self_weights",
        "mha_cross_kpm_bool",
        "mha_attn_float_per_head",
        "mha_kdim_vdim_attn_bool",
        "mha_unbatched_kpm_float",
    ] {
        let (t, meta) = load(name);
        let num = |k: &str| meta.get(k).map(|v| v.parse::<usize>().unwrap());
        let on = |k: &str| meta.get(k).is_some_and(|v| v == "1");
        let opts = MhaOptions {
            kdim: num("kdim"),
            vdim: num("vdim"),
            batch_first: on("batch_first"),
            ..Default::default()
        };
        let m =
            MultiheadAttention::with_options(num("E").unwrap(), num("H").unwrap(), opts).unwrap();
        let params: Vec<(String, Tensor)> = t
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone())))
            .collect();
        load_state_dict(&m, &params).unwrap();
        let leaf = |k: &str| t[k].detach().requires_grad_(true);
        let q = leaf("q");
        let (k, v) = match on("self_attn") {
            true => (q.clone(), q.clone()),
            false => (leaf("k"), leaf("v")),
        };
        let mask = |key: &str| {
            meta.get(key).map(|kind| match kind.as_str() {
                "bool" => MhaMask::Ignore(t[key].clone()),
                _ => MhaMask::Add(t[key].clone()),
            })
        };
        let args = MhaArgs {
            key_padding_mask: mask("kpm"),
            attn_mask: mask("attn"),
            need_weights: on("need_weights"),
            average_attn_weights: on("average"),
            is_causal: false,
        };
        let (out, w) = m.forward_with(&q, &k, &v, &args).unwrap();
        let close =
            |what: &str, a: &Tensor, b: &Tensor| close_tensors(&format!("{name} {what}"), a, b);
        close("out", &out, &t["out"]);
        let mut loss = out.mul(&t["grad_out"]).unwrap().sum_all().unwrap();
        assert_eq!(w.is_some(), t.contains_key("weights"), "{name}: weights");
        if let Some(w) = &w {
            close("weights", w, &t["weights"]);
            loss = loss
                .add(&w.mul(&t["grad_weights"]).unwrap().sum_all().unwrap())
                .unwrap();
        }
        loss.backward().unwrap();
        close("grad_q", &q.grad().unwrap(), &t["grad_q"]);
        if !on("self_attn") {
            close("grad_k", &k.grad().unwrap(), &t["grad_k"]);
            close("grad_v", &v.grad().unwrap(), &t["grad_v"]);
        }
        for (pname, p) in m.named_parameters() {
            close(
                &format!("grad {pname}"),
                &p.grad().unwrap(),
                &t[&format!("grad_param.{pname}")],
            );
        }
    }
}

/// The Transformer modules with PyTorch's parameters (loaded by name):
/// encoder and decoder layers in both norm orders, ReLU and GELU, a whole
/// `nn.Transformer` with masks; outputs and every gradient to 1e-5
/// absolute + 1e-4 relative.
#[test]
fn transformer_modules_match_pytorch() {
    use nabla_nn::{
        Activation, Masks, MhaMask, Transformer, TransformerConfig, TransformerDecoderLayer,
        TransformerEncoderLayer, TransformerMasks,
    };
    for name in [
        "encoder_layer_post_relu",
        "encoder_layer_post_gelu",
        "encoder_layer_pre_relu",
        "encoder_layer_pre_gelu",
        "decoder_layer_post",
        "decoder_layer_pre",
        "transformer_small",
    ] {
        let (t, meta) = load(name);
        let num = |k: &str| meta[k].parse::<usize>().unwrap();
        let on = |k: &str| meta.get(k).is_some_and(|v| v == "1");
        let activation = match meta["act"].as_str() {
            "gelu" => Activation::Gelu,
            _ => Activation::Relu,
        };
        let c = TransformerConfig::new(num("d"), num("h"))
            .dim_feedforward(num("ff"))
            .dropout(0.0)
            .activation(activation)
            .norm_first(on("norm_first"))
            .batch_first(on("batch_first"));
        let mask = |key: &str| {
            meta.get(key).map(|kind| match kind.as_str() {
                "bool" => MhaMask::Ignore(t[key].clone()),
                _ => MhaMask::Add(t[key].clone()),
            })
        };
        let leaf = |k: &str| t[k].detach().requires_grad_(true);
        let inputs: Vec<&str> = ["src", "tgt", "memory"]
            .into_iter()
            .filter(|k| t.contains_key(*k))
            .collect();
        let leaves: Vec<Tensor> = inputs.iter().map(|k| leaf(k)).collect();
        let (model, out): (Box<dyn Module>, Tensor) = if name.starts_with("encoder") {
            let m = TransformerEncoderLayer::new(&c).unwrap();
            let masks = Masks {
                key_padding_mask: mask("src_kpm"),
                ..Default::default()
            };
            let p = params(&t);
            load_state_dict(&m, &p).unwrap();
            let y = m.forward_with(&leaves[0], &masks).unwrap();
            (Box::new(m), y)
        } else if name.starts_with("decoder") {
            let m = TransformerDecoderLayer::new(&c).unwrap();
            let masks = Masks {
                mask: mask("tgt_mask"),
                ..Default::default()
            };
            load_state_dict(&m, &params(&t)).unwrap();
            let y = m
                .forward_with(&leaves[0], &leaves[1], &masks, &Masks::default())
                .unwrap();
            (Box::new(m), y)
        } else {
            let m = Transformer::new(&c, num("enc"), num("dec")).unwrap();
            load_state_dict(&m, &params(&t)).unwrap();
            let padding = Masks {
                key_padding_mask: mask("src_kpm"),
                ..Default::default()
            };
            let masks = TransformerMasks {
                src: padding.clone(),
                tgt: Masks {
                    mask: mask("tgt_mask"),
                    ..Default::default()
                },
                memory: padding,
            };
            let y = m.forward_with(&leaves[0], &leaves[1], &masks).unwrap();
            (Box::new(m), y)
        };
        let close =
            |what: &str, a: &Tensor, b: &Tensor| close_tensors(&format!("{name} {what}"), a, b);
        close("out", &out, &t["out"]);
        out.mul(&t["grad_out"])
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (k, l) in inputs.iter().zip(&leaves) {
            close(
                &format!("grad_{k}"),
                &l.grad().unwrap(),
                &t[&format!("grad_{k}")],
            );
        }
        for (pname, p) in model.named_parameters() {
            close(
                &format!("grad {pname}"),
                &p.grad().unwrap(),
                &t[&format!("grad_param.{pname}")],
            );
        }
    }
}

/// The GPT against a PyTorch model of nanoGPT's architecture with the same
/// weights (loaded by name, `lm_head.weight` tied to `transformer.wte`):
/// logits, loss and every parameter's gradient.
#[test]
fn gpt_matches_a_nanogpt_model() {
    use nabla_nn::{Gpt, GptConfig, Positions};
    let (t, meta) = load("gpt_tiny");
    let num = |k: &str| meta[k].parse::<usize>().unwrap();
    let config = GptConfig {
        vocab_size: num("V"),
        block_size: num("T"),
        n_layer: num("L"),
        n_head: num("H"),
        n_embd: num("C"),
        dropout: 0.0,
        positions: Positions::Learned,
    };
    let m = Gpt::new(config).unwrap();
    load_state_dict(&m, &params(&t)).unwrap();
    let logits = m.forward(&t["ids"]).unwrap();
    let close = close_tensors;
    close("logits", &logits, &t["logits"]);
    let v = num("V");
    let loss = loss::cross_entropy(
        &logits.reshape([12, v]).unwrap(),
        &t["targets"].reshape([12]).unwrap(),
    )
    .unwrap();
    close("loss", &loss.reshape([1]).unwrap(), &t["loss"]);
    loss.backward().unwrap();
    for (name, p) in m.named_parameters() {
        close(
            &format!("grad {name}"),
            &p.grad().unwrap(),
            &t[&format!("grad_param.{name}")],
        );
    }
}
