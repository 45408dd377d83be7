//! Forward and backward values against PyTorch (fixtures written by
//! `tools/gen_fixtures.py`, committed under `tests/fixtures/`).
//!
//! Each fixture holds inputs, an upstream gradient `grad_out`, PyTorch's
//! output and input gradients. Tolerance, for every element:
//! |ours − torch| ≤ 1e-5·max(1, max|torch|) + 1e-4·|torch|.
//! f32 sums taken in another order differ by a few ulps of their largest
//! terms, so the absolute part scales with the tensor's magnitude (a weight
//! gradient of the LeNet conv1 sums 3,136 products); a wrong rule is off by
//! far more.

use std::collections::HashMap;

use nabla_core::{AttentionParams, Conv2dParams, ConvTranspose2dParams, Pool2d, Tensor};
use safetensors::SafeTensors;

struct Fixture {
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
}

fn load(name: &str) -> Fixture {
    let path = format!(
        "{}/../../tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors = HashMap::new();
    for name in st.names() {
        let view = st.tensor(name).unwrap();
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(
            name.to_string(),
            Tensor::from_vec(data, view.shape()).unwrap(),
        );
    }
    Fixture {
        tensors,
        meta: header.metadata().clone().unwrap_or_default(),
    }
}

impl Fixture {
    fn t(&self, k: &str) -> Tensor {
        self.tensors[k].clone()
    }
    fn leaf(&self, k: &str) -> Tensor {
        self.t(k).detach().requires_grad_(true)
    }
    fn p(&self, k: &str) -> usize {
        self.meta[k].parse().unwrap()
    }
}

fn assert_close(what: &str, ours: &Tensor, want: &Tensor) {
    assert_eq!(ours.shape(), want.shape(), "{what}: shape");
    let want = want.to_vec();
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.to_vec().iter().zip(&want).enumerate() {
        let tol = 1e-5 * scale + 1e-4 * b.abs();
        assert!(
            (a - b).abs() <= tol,
            "{what}: element {i}: ours {a} vs torch {b} (tolerance {tol})"
        );
    }
}

/// Runs `f` on the fixture's inputs `names`, checks output and gradients.
fn check(name: &str, names: &[&str], f: impl Fn(&Fixture, &[Tensor]) -> Tensor) {
    let fx = load(name);
    let leaves: Vec<Tensor> = names.iter().map(|n| fx.leaf(n)).collect();
    let out = f(&fx, &leaves);
    assert_close(&format!("{name} out"), &out, &fx.t("out"));
    out.backward_with_grad(&fx.t("grad_out")).unwrap();
    for (n, leaf) in names.iter().zip(&leaves) {
        assert_close(
            &format!("{name} grad_{n}"),
            &leaf.grad().unwrap(),
            &fx.t(&format!("grad_{n}")),
        );
    }
}

#[test]
fn matmul_matches_pytorch() {
    for name in ["matmul_2d", "matmul_batched"] {
        check(name, &["a", "b"], |_, x| x[0].matmul(&x[1]).unwrap());
    }
}

#[test]
fn conv2d_matches_pytorch() {
    for name in [
        "conv2d_lenet1",
        "conv2d_lenet2",
        "conv2d_s2p1",
        "conv2d_d2p2",
        "conv2d_g2",
    ] {
        check(name, &["x", "w", "b"], |fx, x| {
            let p = Conv2dParams::default()
                .stride(fx.p("stride"))
                .padding(fx.p("padding"))
                .dilation(fx.p("dilation"))
                .groups(fx.p("groups"));
            x[0].conv2d(&x[1], Some(&x[2]), p).unwrap()
        });
    }
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    for name in [
        "conv_transpose2d",
        "conv_transpose2d_dcgan",
        "conv_transpose2d_outpad",
        "conv_transpose2d_g2d2",
    ] {
        check(name, &["x", "w", "b"], |fx, x| {
            let p = ConvTranspose2dParams::default()
                .stride(fx.p("stride"))
                .padding(fx.p("padding"))
                .output_padding(fx.p("output_padding"))
                .dilation(fx.p("dilation"))
                .groups(fx.p("groups"));
            x[0].conv_transpose2d(&x[1], Some(&x[2]), p).unwrap()
        });
    }
}

#[test]
fn topk_matches_pytorch() {
    check("topk_largest", &["x"], |_, x| {
        x[0].topk(3, 1, true).unwrap().0
    });
    check("topk_smallest_dim0", &["x"], |_, x| {
        x[0].topk(2, 0, false).unwrap().0
    });
}

/// `padding='same'`, with odd totals of padding (one more row or column
/// after than before) and even ones.
#[test]
fn conv2d_same_padding_matches_pytorch() {
    for name in [
        "conv2d_same_k4",
        "conv2d_same_k2x3",
        "conv2d_same_k2_d3",
        "conv2d_same_k3_d2",
    ] {
        check(name, &["x", "w", "b"], |fx, x| {
            let p = Conv2dParams::default().dilation(fx.p("dilation")).same();
            let y = x[0].conv2d(&x[1], Some(&x[2]), p).unwrap();
            assert_eq!(y.shape()[2..], x[0].shape()[2..], "{name}");
            y
        });
    }
    let e = Tensor::zeros([1, 1, 5, 5])
        .conv2d(
            &Tensor::zeros([1, 1, 3, 3]),
            None,
            Conv2dParams::default().stride(2).same(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("padding 'same' needs stride 1"), "{e}");
}

#[test]
fn pooling_matches_pytorch() {
    for name in ["max_pool2d_k2", "max_pool2d_k3s2p1"] {
        check(name, &["x"], |fx, x| {
            let p = Pool2d::new(fx.p("kernel"))
                .stride(fx.p("stride"))
                .padding(fx.p("padding"));
            x[0].max_pool2d(p).unwrap()
        });
    }
    check("avg_pool2d_k3s2p1", &["x"], |_, x| {
        x[0].avg_pool2d(Pool2d::new(3).stride(2).padding(1))
            .unwrap()
    });
}

/// ceil_mode's partial last windows, max and average, with and without
/// padding in the average's divisor.
#[test]
fn pooling_with_ceil_mode_matches_pytorch() {
    for name in [
        "max_pool2d_k2_ceil",
        "max_pool2d_k3s2p1_ceil",
        "avg_pool2d_k2_ceil",
        "avg_pool2d_k3s2p1_ceil",
        "avg_pool2d_k3s2p1_ceil_nopad",
    ] {
        check(name, &["x"], |fx, x| {
            let p = Pool2d::new(fx.p("kernel"))
                .stride(fx.p("stride"))
                .padding(fx.p("padding"))
                .count_include_pad(fx.p("count_include_pad") == 1)
                .ceil_mode(true);
            match fx.meta["kind"].as_str() {
                "max" => x[0].max_pool2d(p).unwrap(),
                _ => x[0].avg_pool2d(p).unwrap(),
            }
        });
    }
}

/// Settings drawn by the fixture script (stride, padding, dilation,
/// groups, rectangular windows, ceil_mode, count_include_pad): 16
/// convolutions and 16 poolings no one picked by hand.
#[test]
fn drawn_convolutions_and_poolings_match_pytorch() {
    for k in 0..16 {
        check(&format!("rand_conv_{k}"), &["x", "w", "b"], |fx, x| {
            let p = Conv2dParams {
                stride: (fx.p("sh"), fx.p("sw")),
                padding: (fx.p("ph"), fx.p("pw")),
                dilation: (fx.p("dh"), fx.p("dw")),
                groups: fx.p("groups"),
                ..Default::default()
            };
            x[0].conv2d(&x[1], Some(&x[2]), p).unwrap()
        });
        check(&format!("rand_pool_{k}"), &["x"], |fx, x| {
            let p = Pool2d {
                kernel: (fx.p("kh"), fx.p("kw")),
                stride: (fx.p("sh"), fx.p("sw")),
                padding: (fx.p("ph"), fx.p("pw")),
                count_include_pad: fx.p("count_pad") == 1,
                ceil_mode: fx.p("ceil") == 1,
            };
            match fx.meta["kind"].as_str() {
                "max" => x[0].max_pool2d(p).unwrap(),
                _ => x[0].avg_pool2d(p).unwrap(),
            }
        });
    }
}

#[test]
fn softmax_family_matches_pytorch() {
    check("log_softmax_dim1", &["x"], |_, x| {
        x[0].log_softmax(1).unwrap()
    });
    check("log_softmax_dim0", &["x"], |_, x| {
        x[0].log_softmax(0).unwrap()
    });
    check("softmax_dim1", &["x"], |_, x| x[0].softmax(1).unwrap());
}

#[test]
fn unary_ops_match_pytorch() {
    type Op = fn(&Tensor) -> Tensor;
    let ops: [(&str, Op); 15] = [
        ("exp", |x| x.exp().unwrap()),
        ("log", |x| {
            x.abs().unwrap().add_scalar(0.1).unwrap().log().unwrap()
        }),
        ("sqrt", |x| {
            x.abs().unwrap().add_scalar(0.1).unwrap().sqrt().unwrap()
        }),
        ("sigmoid", |x| x.sigmoid().unwrap()),
        ("tanh", |x| x.tanh().unwrap()),
        ("gelu", |x| x.gelu().unwrap()),
        ("gelu_tanh", |x| x.gelu_tanh().unwrap()),
        ("relu", |x| x.relu().unwrap()),
        ("leaky_relu", |x| x.leaky_relu(0.1).unwrap()),
        ("silu", |x| x.silu().unwrap()),
        ("mish", |x| x.mish().unwrap()),
        ("elu", |x| x.elu(0.7).unwrap()),
        ("selu", |x| x.selu().unwrap()),
        ("softplus", |x| x.softplus(1.0, 20.0).unwrap()),
        ("softplus_b15_t2", |x| x.softplus(1.5, 2.0).unwrap()),
    ];
    for (name, op) in ops {
        check(&format!("unary_{name}"), &["x"], |_, x| op(&x[0]));
    }
}

#[test]
fn composed_mlp_with_cross_entropy_matches_pytorch() {
    let labels = load("mlp_cross_entropy_labels").t("labels");
    check(
        "mlp_cross_entropy",
        &["x", "w1", "b1", "w2", "b2"],
        |_, p| {
            let h = p[0]
                .matmul(&p[1].t().unwrap())
                .unwrap()
                .add(&p[2])
                .unwrap()
                .relu()
                .unwrap();
            let logits = h.matmul(&p[3].t().unwrap()).unwrap().add(&p[4]).unwrap();
            let logp = logits.log_softmax(1).unwrap();
            logp.gather(1, &labels.unsqueeze(1).unwrap())
                .unwrap()
                .mean_all()
                .unwrap()
                .neg()
                .unwrap()
        },
    );
}

#[test]
fn scaled_dot_product_attention_matches_pytorch() {
    for name in [
        "sdpa_plain",
        "sdpa_causal",
        "sdpa_bool_mask",
        "sdpa_float_mask",
        "sdpa_gqa",
        "sdpa_scale_3d",
        "sdpa_long_causal",
    ] {
        check(name, &["q", "k", "v"], |fx, x| {
            let mut p = AttentionParams::default();
            if fx.meta.get("is_causal").is_some_and(|v| v == "1") {
                p = p.causal();
            }
            if fx.meta.contains_key("enable_gqa") {
                p = p.gqa();
            }
            if let Some(s) = fx.meta.get("scale") {
                p = p.scale(s.parse().unwrap());
            }
            if fx.tensors.contains_key("mask") {
                p = match name {
                    "sdpa_bool_mask" => p.keep_mask(&fx.t("mask")),
                    _ => p.add_mask(&fx.t("mask")),
                };
            }
            x[0].scaled_dot_product_attention(&x[1], &x[2], &p).unwrap()
        });
    }
}

/// bf16 mixed precision against `torch.autocast("cpu", dtype=bfloat16)`:
/// a linear layer and a batched matmul, forward and backward (the backward
/// run after the scope, at the forward's precision). Ours equal the
/// products of the operands as PyTorch rounds them (to f32 sums), and,
/// rounded to bfloat16 as autocast rounds its results, PyTorch's own
/// outputs and gradients to within one bf16 step (its sums run in another
/// order before that rounding) — plus, for the linear layer's output, the
/// rounding of its bias, which autocast casts to bfloat16 too and nabla
/// keeps in f32.
#[test]
fn bf16_autocast_matches_pytorch() {
    use nabla_core::autocast::{autocast, Precision};
    let f = load("autocast");
    let check_with = |what: &str, ours: &Tensor, key: &str, allowance: &dyn Fn(usize) -> f32| {
        assert_close(
            &format!("{what} (exact)"),
            ours,
            &f.t(&format!("{key}_exact_{what}")),
        );
        let torch = f.t(&format!("{key}_{what}")).to_vec();
        for (i, (a, b)) in ours.to_vec().iter().zip(&torch).enumerate() {
            // one step of bfloat16 at b: 2^(exponent − 7)
            let step = 2f32.powi(b.abs().max(f32::MIN_POSITIVE).log2().floor() as i32 - 7);
            let rounded = nabla_core::half::Bf16::from_f32(*a).to_f32();
            assert!(
                (rounded - b).abs() <= step + allowance(i),
                "{key} {what}[{i}]: ours {a} (bf16 {rounded}) vs autocast's {b}"
            );
        }
    };
    let check = |what: &str, ours: &Tensor, key: &str| check_with(what, ours, key, &|_| 0.0);
    let (x, w, b) = (f.leaf("linear_x"), f.leaf("linear_w"), f.leaf("linear_b"));
    let y = autocast(Precision::Bf16, || x.linear(&w, Some(&b))).unwrap();
    y.backward_with_grad(&f.t("linear_grad_out")).unwrap();
    let bias = b.to_vec();
    let bias_rounding = |i: usize| {
        let v = bias[i % bias.len()];
        (v - nabla_core::half::Bf16::from_f32(v).to_f32()).abs()
    };
    check_with("out", &y, "linear", &bias_rounding);
    check("grad_x", &x.grad().unwrap(), "linear");
    check("grad_w", &w.grad().unwrap(), "linear");
    let (a, m) = (f.leaf("matmul_a"), f.leaf("matmul_b"));
    let y = autocast(Precision::Bf16, || a.matmul(&m)).unwrap();
    y.backward_with_grad(&f.t("matmul_grad_out")).unwrap();
    check("out", &y, "matmul");
    check("grad_a", &a.grad().unwrap(), "matmul");
    check("grad_b", &m.grad().unwrap(), "matmul");
    let (x, w, b) = (f.leaf("conv_x"), f.leaf("conv_w"), f.leaf("conv_b"));
    let p = nabla_core::Conv2dParams::default().padding(1);
    let y = autocast(Precision::Bf16, || x.conv2d(&w, Some(&b), p)).unwrap();
    y.backward_with_grad(&f.t("conv_grad_out")).unwrap();
    let (bias, plane) = (b.to_vec(), y.shape()[2] * y.shape()[3]);
    let bias_rounding = |i: usize| {
        let v = bias[i / plane % bias.len()];
        (v - nabla_core::half::Bf16::from_f32(v).to_f32()).abs()
    };
    check_with("out", &y, "conv", &bias_rounding);
    check("grad_x", &x.grad().unwrap(), "conv");
    check("grad_w", &w.grad().unwrap(), "conv");
}
