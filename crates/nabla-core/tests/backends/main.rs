//! Every op, forward and backward, on the CPU backend against the reference
//! backend (plain loops, f64 accumulation): the same program runs on
//! `Device::Cpu` and on `Device::Reference` from the same inputs, and the
//! outputs and the gradients of every input must agree. Shapes include 0-d
//! and empty tensors, broadcasting and strided views. A new backend joins
//! by adding its device to `DEVICES`. The products at bf16: `bf16.rs`.

mod bf16;

use nabla_core::autocast::{autocast, Precision};
use nabla_core::{
    manual_seed, AttentionParams, Conv2dParams, ConvTranspose2dParams, Device, Generator, Pool2d,
    Result, Tensor,
};

/// The devices checked against the reference.
const DEVICES: &[Device] = &[Device::Cpu];

type Program<'a> = dyn Fn(&[Tensor]) -> Result<Tensor> + 'a;

/// Deterministic upstream-gradient weights in [−1, 1).
fn weights(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 + 11) % 23) as f32 / 11.5 - 1.0)
        .collect()
}

struct Run {
    out: Vec<f32>,
    shape: Vec<usize>,
    grads: Vec<Option<Vec<f32>>>,
}

fn run(name: &str, device: Device, inputs: &[Tensor], f: &Program<'_>) -> Run {
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|x| x.detach().to(device).unwrap().requires_grad_(true))
        .collect();
    let y = f(&xs).unwrap_or_else(|e| panic!("{name} on {device}: {e}"));
    assert_eq!(y.device(), device, "{name}: the output left {device}");
    let r = Tensor::from_vec_on(weights(y.numel()), y.shape(), device).unwrap();
    let loss = y.mul(&r).unwrap().sum_all().unwrap();
    if loss.requires_grad() {
        loss.backward()
            .unwrap_or_else(|e| panic!("{name} backward on {device}: {e}"));
    }
    let grads = xs
        .iter()
        .map(|x| {
            x.grad().map(|g| {
                assert_eq!(g.device(), device, "{name}: a gradient left {device}");
                g.to_vec()
            })
        })
        .collect();
    Run {
        out: y.to_vec(),
        shape: y.shape().to_vec(),
        grads,
    }
}

fn close(name: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: {what} lengths differ");
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(1f32, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok =
            (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 2e-5 * scale + 1e-4 * w.abs();
        assert!(
            ok,
            "{name}: {what}[{i}] is {g} on the backend, {w} on the reference"
        );
    }
}

/// Runs `f` on every device and on the reference; outputs and gradients agree.
fn agree(name: &str, inputs: &[Tensor], f: &Program<'_>) {
    let want = run(name, Device::Reference, inputs, f);
    for &device in DEVICES {
        let got = run(name, device, inputs, f);
        assert_eq!(got.shape, want.shape, "{name}: shapes differ on {device}");
        close(name, "output", &got.out, &want.out);
        for (k, (g, w)) in got.grads.iter().zip(&want.grads).enumerate() {
            match (g, w) {
                (Some(g), Some(w)) => close(name, &format!("grad {k}"), g, w),
                (None, None) => {}
                _ => panic!("{name}: input {k} has a gradient on one side only ({device})"),
            }
        }
    }
}

/// Standard normal values from a generator of their own (the global one
/// is shared by the tests running at the same time).
fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, &mut Generator::new(seed))
}

/// Positive values, for log, sqrt and fractional powers.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    randn(shape, seed)
        .abs()
        .unwrap()
        .add_scalar(0.1)
        .unwrap()
        .detach()
}

/// Values on a grid of halves: ties for max, min and comparisons.
fn coarse(shape: &[usize], seed: u64) -> Tensor {
    let x = randn(shape, seed).mul_scalar(2.0).unwrap().to_vec();
    Tensor::from_vec(x.iter().map(|v| v.round() / 2.0).collect(), shape).unwrap()
}

#[test]
fn unary_ops_agree() {
    type Unary = fn(&Tensor) -> Result<Tensor>;
    let ops: &[(&str, Unary)] = &[
        ("abs", |x| x.abs()),
        ("exp", |x| x.exp()),
        ("expm1", |x| x.expm1()),
        ("tanh", |x| x.tanh()),
        ("sigmoid", |x| x.sigmoid()),
        ("relu", |x| x.relu()),
        ("leaky_relu", |x| x.leaky_relu(0.1)),
        ("elu", |x| x.elu(0.7)),
        ("selu", |x| x.selu()),
        ("gelu", |x| x.gelu()),
        ("gelu_tanh", |x| x.gelu_tanh()),
        ("silu", |x| x.silu()),
        ("mish", |x| x.mish()),
        ("softplus", |x| x.softplus(1.0, 20.0)),
        ("softplus_beta", |x| x.softplus(2.0, 1.0)),
        ("clamp", |x| x.clamp(-0.5, 0.5)),
        ("square", |x| x.powf(2.0)),
        ("cube", |x| x.powf(3.0)),
        ("pow0", |x| x.powf(0.0)),
        ("affine", |x| x.affine(2.0, 1.0)),
        ("mul_scalar", |x| x.mul_scalar(-3.0)),
        ("div_scalar", |x| x.div_scalar(3.0)),
        ("neg", |x| x.neg()),
    ];
    let positive_ops: &[(&str, Unary)] = &[
        ("log", |x| x.log()),
        ("log1p", |x| x.log1p()),
        ("sqrt", |x| x.sqrt()),
        ("pow_half", |x| x.powf(0.5)),
        ("pow_frac", |x| x.powf(-1.5)),
        ("reciprocal", |x| x.powf(-1.0)),
    ];
    for (k, shape) in [&[][..], &[0], &[7], &[3, 4], &[2, 3, 5]]
        .into_iter()
        .enumerate()
    {
        for &(name, f) in ops {
            agree(name, &[coarse(shape, k as u64)], &|x| f(&x[0]));
            agree(name, &[randn(shape, k as u64)], &|x| f(&x[0]));
        }
        for &(name, f) in positive_ops {
            agree(name, &[positive(shape, k as u64)], &|x| f(&x[0]));
        }
    }
    // strided inputs: a transposed and a narrowed view
    for &(name, f) in ops {
        agree(name, &[randn(&[4, 6], 9)], &|x| f(&x[0].t()?));
        agree(name, &[randn(&[4, 6], 9)], &|x| f(&x[0].narrow(1, 1, 3)?));
    }
}

#[test]
fn binary_ops_agree() {
    type Binary = fn(&Tensor, &Tensor) -> Result<Tensor>;
    let ops: &[(&str, Binary)] = &[
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(&b.abs()?.add_scalar(0.5)?)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
        ("pow", |a, b| a.abs()?.add_scalar(0.2)?.pow(b)),
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("where", |a, b| Tensor::where_cond(&a.gt(b)?, a, b)),
        ("masked_fill", |a, b| {
            a.masked_fill(&b.gt(&Tensor::scalar(0.0))?, -2.0)
        }),
        ("scalar_rhs", |a, _| a.mul(&Tensor::scalar(1.5))),
    ];
    let pairs: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[2, 3]),
        (&[2, 3], &[3]),
        (&[2, 1, 3], &[4, 1]),
        (&[], &[2, 2]),
        (&[0, 3], &[3]),
        (&[3, 1], &[]),
    ];
    for (k, &(sa, sb)) in pairs.iter().enumerate() {
        for &(name, f) in ops {
            let (a, b) = (coarse(sa, k as u64), coarse(sb, 50 + k as u64));
            agree(name, &[a, b], &|x| f(&x[0], &x[1]));
        }
    }
    for &(name, f) in ops {
        agree(name, &[randn(&[3, 4], 1), randn(&[4, 3], 2)], &|x| {
            f(&x[0], &x[1].t()?)
        });
    }
}

#[test]
fn reductions_and_normalizations_agree() {
    let dims: &[&[isize]] = &[&[], &[0], &[1], &[-1], &[0, 2], &[1, 2]];
    for (k, &d) in dims.iter().enumerate() {
        let x = || randn(&[3, 4, 5], k as u64);
        agree("sum", &[x()], &|x| x[0].sum(d, false));
        agree("sum_keepdim", &[x()], &|x| x[0].sum(d, true));
        agree("mean", &[x()], &|x| x[0].mean(d, false));
        agree("max", &[coarse(&[3, 4, 5], k as u64)], &|x| {
            x[0].max(d, true)
        });
        agree("min", &[coarse(&[3, 4, 5], k as u64)], &|x| {
            x[0].min(d, false)
        });
        agree("var", &[x()], &|x| x[0].var(d, 1, false));
        agree("std", &[x()], &|x| x[0].std(d, 0, true));
        agree("sum_of_view", &[x()], &|x| {
            x[0].permute(&[2, 0, 1])?.sum(d, false)
        });
    }
    for dim in [0, 1, -1] {
        let x = || randn(&[3, 4, 5], 7).mul_scalar(3.0).unwrap().detach();
        agree("softmax", &[x()], &|x| x[0].softmax(dim));
        agree("log_softmax", &[x()], &|x| x[0].log_softmax(dim));
        agree("argmax", &[coarse(&[3, 4, 5], 3)], &|x| {
            x[0].argmax(dim, false)
        });
        agree("argmin", &[coarse(&[3, 4, 5], 3)], &|x| {
            x[0].argmin(dim, true)
        });
    }
    agree("sum_all_empty", &[randn(&[0, 4], 1)], &|x| x[0].sum_all());
    agree("sum_rows_empty", &[randn(&[3, 0], 1)], &|x| {
        x[0].sum(&[1], false)
    });
    agree("sum_scalar", &[randn(&[], 1)], &|x| x[0].sum_all());
}

#[test]
fn products_agree() {
    let mm = |a: &[usize], b: &[usize], seed: u64| [randn(a, seed), randn(b, seed + 1)];
    agree("matmul", &mm(&[3, 4], &[4, 5], 1), &|x| x[0].matmul(&x[1]));
    agree("matmul_batched", &mm(&[2, 3, 4], &[4, 5], 2), &|x| {
        x[0].matmul(&x[1])
    });
    agree(
        "matmul_broadcast",
        &mm(&[2, 1, 3, 4], &[3, 4, 2], 3),
        &|x| x[0].matmul(&x[1]),
    );
    agree("matmul_vectors", &mm(&[4], &[4], 4), &|x| {
        x[0].matmul(&x[1])
    });
    agree("matmul_vec_mat", &mm(&[4], &[2, 4, 3], 5), &|x| {
        x[0].matmul(&x[1])
    });
    agree("matmul_transposed", &mm(&[4, 3], &[5, 4], 6), &|x| {
        x[0].t()?.matmul(&x[1].t()?)
    });
    agree("matmul_empty", &mm(&[0, 4], &[4, 3], 7), &|x| {
        x[0].matmul(&x[1])
    });
    agree("matmul_empty_inner", &mm(&[2, 0], &[0, 3], 7), &|x| {
        x[0].matmul(&x[1])
    });
    let lin = [randn(&[5, 4], 8), randn(&[3, 4], 9), randn(&[3], 10)];
    agree("linear", &lin, &|x| x[0].linear(&x[1], Some(&x[2])));
    agree("linear_no_bias", &lin, &|x| x[0].linear(&x[1], None));
    let lin3 = [randn(&[2, 5, 4], 11), randn(&[3, 4], 12), randn(&[3], 13)];
    agree("linear_3d", &lin3, &|x| x[0].linear(&x[1], Some(&x[2])));
}

#[test]
fn convolution_and_pooling_agree() {
    let cases: &[(&str, [usize; 4], [usize; 4], Conv2dParams)] = &[
        ("conv", [2, 3, 7, 6], [4, 3, 3, 3], Conv2dParams::default()),
        (
            "conv_stride_pad",
            [2, 3, 8, 7],
            [4, 3, 3, 2],
            Conv2dParams::default().stride(2).padding(1),
        ),
        (
            "conv_dilation",
            [1, 2, 9, 9],
            [3, 2, 3, 3],
            Conv2dParams::default().dilation(2).padding(2),
        ),
        (
            "conv_groups",
            [2, 4, 6, 6],
            [6, 2, 3, 3],
            Conv2dParams::default().groups(2).padding(1),
        ),
        (
            "conv_same",
            [1, 2, 6, 5],
            [2, 2, 4, 3],
            Conv2dParams::default().same(),
        ),
        (
            "conv_1x1",
            [3, 5, 4, 4],
            [2, 5, 1, 1],
            Conv2dParams::default(),
        ),
        (
            "conv_lenet",
            [2, 1, 28, 28],
            [6, 1, 5, 5],
            Conv2dParams::default().padding(2),
        ),
        (
            "conv_of_padding",
            [1, 2, 0, 3],
            [2, 2, 1, 1],
            Conv2dParams::default().padding(1),
        ),
    ];
    for (k, &(name, xs, ws, p)) in cases.iter().enumerate() {
        let inputs = [
            randn(&xs, k as u64),
            randn(&ws, 40 + k as u64),
            randn(&[ws[0]], 80 + k as u64),
        ];
        agree(name, &inputs, &move |x| x[0].conv2d(&x[1], Some(&x[2]), p));
        agree(name, &inputs[..2], &move |x| x[0].conv2d(&x[1], None, p));
    }
    let transposed: &[([usize; 4], [usize; 4], ConvTranspose2dParams)] = &[
        ([2, 3, 4, 5], [3, 2, 3, 3], ConvTranspose2dParams::default()),
        (
            [1, 4, 5, 5],
            [4, 3, 4, 4],
            ConvTranspose2dParams::default().stride(2).padding(1),
        ),
        (
            [2, 2, 3, 4],
            [2, 2, 3, 2],
            ConvTranspose2dParams::default().stride(2).output_padding(1),
        ),
        (
            [1, 4, 3, 3],
            [4, 1, 3, 3],
            ConvTranspose2dParams::default()
                .groups(2)
                .dilation(2)
                .padding(1),
        ),
    ];
    for (k, &(xs, ws, p)) in transposed.iter().enumerate() {
        let b = randn(&[ws[1] * p.groups], 60 + k as u64);
        let inputs = [randn(&xs, k as u64), randn(&ws, 50 + k as u64), b];
        agree("conv_transpose2d", &inputs, &move |x| {
            x[0].conv_transpose2d(&x[1], Some(&x[2]), p)
        });
    }
    let pools: &[(&str, Pool2d)] = &[
        ("pool2", Pool2d::new(2)),
        ("pool3_s2_p1", Pool2d::new(3).stride(2).padding(1)),
        ("pool3_ceil", Pool2d::new(3).stride(2).ceil_mode(true)),
        (
            "pool2_pad_excluded",
            Pool2d::new(2).padding(1).count_include_pad(false),
        ),
    ];
    for &(name, p) in pools {
        agree(name, &[coarse(&[2, 3, 7, 8], 3)], &move |x| {
            x[0].max_pool2d(p)
        });
        agree(name, &[randn(&[2, 3, 7, 8], 4)], &move |x| {
            x[0].max_pool2d(p)
        });
        agree(name, &[randn(&[2, 3, 7, 8], 5)], &move |x| {
            x[0].avg_pool2d(p)
        });
    }
}

#[test]
fn indexing_and_views_agree() {
    let x = || randn(&[4, 5, 3], 1);
    let ids = || Tensor::from_vec(vec![2.0, 0.0, 2.0, 4.0], [4]).unwrap();
    agree("index_select", &[x(), ids()], &|x| {
        x[0].index_select(1, &x[1])
    });
    agree("index_select_0", &[x(), ids()], &|x| {
        x[0].index_select(0, &x[1].narrow(0, 0, 3)?)
    });
    let at = Tensor::from_vec(vec![1.0, 0.0, 2.0, 2.0, 0.0, 1.0], [2, 3, 1]).unwrap();
    agree("gather", &[x(), at], &|x| x[0].gather(2, &x[1]));
    agree("cat", &[x(), randn(&[4, 2, 3], 2)], &|x| {
        Tensor::cat(&[x[0].clone(), x[1].clone()], 1)
    });
    agree("cat_views", &[x()], &|x| {
        Tensor::cat(
            &[
                x[0].transpose(0, 2)?,
                x[0].narrow(0, 1, 2)?.transpose(0, 2)?,
            ],
            2,
        )
    });
    agree("stack", &[x(), randn(&[4, 5, 3], 3)], &|x| {
        Tensor::stack(&[x[0].clone(), x[1].clone()], 0)
    });
    agree("narrow", &[x()], &|x| x[0].narrow(1, 1, 3));
    agree("permute_contiguous", &[x()], &|x| {
        x[0].permute(&[2, 0, 1])?.contiguous()
    });
    agree("reshape_view", &[x()], &|x| {
        x[0].transpose(0, 1)?.reshape([15, 4])
    });
    agree("broadcast", &[randn(&[3, 1], 4)], &|x| {
        x[0].broadcast_to([2, 3, 4])?.mul_scalar(2.0)
    });
    agree("squeeze", &[randn(&[3, 1], 4)], &|x| {
        x[0].squeeze(1)?.unsqueeze(0)
    });
    agree("dropout_eval", &[x()], &|x| x[0].dropout(0.5, false));
}

#[test]
fn fused_cross_entropy_agrees() {
    let ids = vec![Some(2), None, Some(0), Some(4), Some(4)];
    let weight = vec![0.5, 1.0, 2.0, 1.5, 1.0];
    for (eps, total) in [(0.0, true), (0.0, false), (0.3, true), (0.3, false)] {
        let (ids, weight) = (ids.clone(), weight.clone());
        let x = randn(&[5, 5], 3).mul_scalar(4.0).unwrap();
        agree("cross_entropy", &[x], &move |x| {
            x[0].cross_entropy_rows(ids.clone(), weight.clone(), eps, total)
        });
    }
}

#[test]
fn seeded_dropout_masks_agree() {
    // one generator on the host: a seed drops the same elements everywhere
    let f: &Program<'_> = &|x| {
        manual_seed(3);
        x[0].dropout(0.3, true)
    };
    agree("dropout_train", &[randn(&[6, 7], 1)], f);
}

#[test]
fn recurrent_ops_agree() {
    recurrent_sequences_agree(Precision::F32);
    let cell = [randn(&[3, 8], 1), randn(&[3, 2], 2)];
    agree("lstm_cell", &cell, &|x| x[0].lstm_cell(&x[1]));
    let gru = [randn(&[3, 6], 1), randn(&[3, 6], 2), randn(&[3, 2], 3)];
    agree("gru_cell", &gru, &|x| x[0].gru_cell(&x[1], &x[2]));
}

/// The LSTM, GRU and RNNs, masked or not, forwards or backwards, from a
/// state or from zeros, at `precision`.
fn recurrent_sequences_agree(precision: Precision) {
    let (t, n, i, h) = (5, 3, 4, 6);
    let cases = [(4, "lstm"), (3, "gru"), (1, "rnn_tanh"), (1, "rnn_relu")];
    for ((gates, kind), zero_state) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let state = |seed| match zero_state {
            true => Tensor::zeros([n, h]),
            false => randn(&[n, h], seed).mul_scalar(0.5).unwrap(),
        };
        let inputs = [
            randn(&[t, n, i], 1).mul_scalar(0.5).unwrap(),
            randn(&[gates * h, i], 2).mul_scalar(0.3).unwrap(),
            randn(&[gates * h, h], 3).mul_scalar(0.3).unwrap(),
            randn(&[gates * h], 4).mul_scalar(0.1).unwrap(),
            randn(&[gates * h], 5).mul_scalar(0.1).unwrap(),
            state(6),
            state(7),
        ];
        // the last sequence ends after three steps
        let mask: Vec<f32> = (0..t)
            .flat_map(|s| (0..n).map(move |r| (r < 2 || s < 3) as u8 as f32))
            .collect();
        for (masked, reverse) in [(false, false), (false, true), (true, false), (true, true)] {
            let mask = masked.then(|| mask.clone());
            let name =
                format!("{kind} {precision} masked={masked} reverse={reverse} zero={zero_state}");
            let layer = move |x: &[Tensor]| {
                let [x, wi, wh, bi, bh, h0, c0] = x else {
                    unreachable!()
                };
                match kind {
                    "lstm" => x.lstm_sequence(wi, wh, bi, bh, h0, c0, mask.clone(), reverse),
                    "gru" => x.gru_sequence(wi, wh, bi, bh, h0, mask.clone(), reverse),
                    _ => x.rnn_sequence(
                        wi,
                        wh,
                        bi,
                        bh,
                        h0,
                        mask.clone(),
                        kind == "rnn_relu",
                        reverse,
                    ),
                }
            };
            let at_precision = |x: &[Tensor]| autocast(precision, || layer(x));
            agree(&name, &inputs, &at_precision);
            if precision != Precision::F32 {
                let ours = run(&name, Device::Cpu, &inputs, &at_precision);
                let f32 = run(&name, Device::Cpu, &inputs, &layer);
                assert_ne!(ours.out, f32.out, "{name}: the output is f32's");
                assert_ne!(ours.grads, f32.grads, "{name}: the gradients are f32's");
            }
        }
    }
}

#[test]
fn devices_do_not_mix() {
    let (a, b) = (Tensor::ones([2]), Tensor::ones_on([2], Device::Reference));
    let e = a.add(&b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("cpu") && e.contains("reference"),
        "{e}"
    );
    let e = a.matmul(&b).unwrap_err().to_string();
    assert!(e.contains("matmul"), "{e}");
    // a 0-d CPU tensor meets any device, as in PyTorch
    assert_eq!(
        b.mul(&Tensor::scalar(3.0)).unwrap().device(),
        Device::Reference
    );
    // and gradients flow back across `to`
    let x = Tensor::ones([3]).requires_grad_(true);
    x.to(Device::Reference)
        .unwrap()
        .mul_scalar(2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = x.grad().unwrap();
    assert_eq!((g.device(), g.to_vec()), (Device::Cpu, vec![2.0; 3]));
}

/// Attention: the CPU's fused kernel against the reference's composed ops,
/// over several blocks of rows and keys, with every kind of mask and
/// grouped heads.
#[test]
fn attention_agrees() {
    let qkv = |hk: usize, s: usize| {
        [
            randn(&[2, 2, 70, 8], 1),
            randn(&[2, hk, s, 8], 2),
            randn(&[2, hk, s, 4], 3),
        ]
    };
    let keep: Vec<f32> = (0..70 * 90).map(|x| (x % 7 != 2) as u8 as f32).collect();
    let add = randn(&[70, 90], 4).to_vec();
    let cases: [(&str, usize, usize); 5] = [
        ("plain", 2, 90),
        ("causal", 2, 90),
        ("keep", 2, 90),
        ("add", 2, 90),
        ("gqa causal", 1, 70),
    ];
    for (name, hk, s) in cases {
        agree(&format!("attention {name}"), &qkv(hk, s), &|x| {
            let on = |v: &[f32]| Tensor::from_vec_on(v.to_vec(), [70, 90], x[0].device());
            let p = match name {
                "causal" => AttentionParams::default().causal(),
                "keep" => AttentionParams::default().keep_mask(&on(&keep)?),
                "add" => AttentionParams::default().add_mask(&on(&add)?),
                "gqa causal" => AttentionParams::default().gqa().causal(),
                _ => AttentionParams::default(),
            };
            x[0].scaled_dot_product_attention(&x[1], &x[2], &p)
        });
    }
}

/// Layer norm: the CPU's kernel against the reference's composed ops.
#[test]
fn layer_norm_agrees() {
    let inputs = [
        randn(&[70, 3, 20], 1),
        randn(&[3, 20], 2),
        randn(&[3, 20], 3),
    ];
    agree("layer_norm", &inputs, &|x| {
        x[0].layer_norm(&[3, 20], Some(&x[1]), Some(&x[2]), 1e-5)
    });
    agree("layer_norm plain", &inputs[..1], &|x| {
        x[0].layer_norm(&[20], None, None, 1e-5)
    });
}
