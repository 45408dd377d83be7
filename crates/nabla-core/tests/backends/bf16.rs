//! The products inside `autocast(Bf16, ..)` — matmul, linear, the
//! convolutions, the recurrent layers, attention — on the CPU backend
//! against the reference backend at bf16 (operands rounded alike), and
//! unlike f32's.

use nabla_core::autocast::{autocast, Precision};
use nabla_core::{AttentionParams, Conv2dParams, ConvTranspose2dParams, Device, Tensor};

use super::{agree, randn, recurrent_sequences_agree, run, Program};

/// Inside `autocast(Bf16, ..)` products round their operands to bfloat16
/// on every backend alike, forward and backward — the backward run after
/// the scope has closed, at the precision the forward recorded — and the
/// results are not f32's.
#[test]
fn bf16_products_agree() {
    use Precision::Bf16;
    let mm = |a: &[usize], b: &[usize], seed: u64| [randn(a, seed), randn(b, seed + 1)];
    let cases: [(&str, [Tensor; 2], &Program<'_>); 4] = [
        ("bf16_matmul", mm(&[64, 100], &[100, 40], 21), &|x| {
            autocast(Bf16, || x[0].matmul(&x[1]))
        }),
        ("bf16_matmul_batched", mm(&[3, 13, 7], &[7, 37], 22), &|x| {
            autocast(Bf16, || x[0].matmul(&x[1]))
        }),
        (
            "bf16_matmul_transposed",
            mm(&[33, 17], &[40, 33], 23),
            &|x| autocast(Bf16, || x[0].t()?.matmul(&x[1].t()?)),
        ),
        ("bf16_linear", mm(&[2, 30, 65], &[50, 65], 24), &|x| {
            autocast(Bf16, || x[0].linear(&x[1], None))
        }),
    ];
    for (name, inputs, f) in cases {
        agree(name, &inputs, f);
        let bf16 = run(name, Device::Cpu, &inputs, f);
        let f32 = run(name, Device::Cpu, &inputs, &|x| match name {
            "bf16_linear" => x[0].linear(&x[1], None),
            "bf16_matmul_transposed" => x[0].t()?.matmul(&x[1].t()?),
            _ => x[0].matmul(&x[1]),
        });
        assert_ne!(bf16.out, f32.out, "{name}: the output is f32's");
        assert_ne!(bf16.grads, f32.grads, "{name}: the gradients are f32's");
    }
}

/// Convolutions inside `autocast(Bf16, ..)`: every layout of the CPU's
/// lowering (strips, wide with its in-place input gradient, im2col for
/// strides and dilation, groups) and the transposed convolution round
/// their operands as the reference does, forward and backward, bias in
/// f32; the values are not f32's.
#[test]
fn bf16_convolutions_agree() {
    use Precision::Bf16;
    let p = Conv2dParams::default;
    let cases: [(&str, [usize; 4], [usize; 4], Conv2dParams); 5] = [
        ("lenet conv1", [2, 1, 28, 28], [6, 1, 5, 5], p().padding(2)),
        ("lenet conv2", [2, 6, 14, 14], [16, 6, 5, 5], p()),
        ("wide", [2, 8, 9, 11], [12, 8, 3, 3], p().padding(1)),
        (
            "strided",
            [2, 3, 8, 7],
            [4, 3, 3, 2],
            p().stride(2).padding(1),
        ),
        (
            "groups",
            [1, 4, 9, 9],
            [6, 2, 3, 3],
            p().groups(2).dilation(2),
        ),
    ];
    for (k, (name, xs, ws, p)) in cases.into_iter().enumerate() {
        let inputs = [
            randn(&xs, k as u64),
            randn(&ws, 40 + k as u64),
            randn(&[ws[0]], 80 + k as u64),
        ];
        let f32_side = move |x: &[Tensor]| x[0].conv2d(&x[1], Some(&x[2]), p);
        let at_bf16 = move |x: &[Tensor]| autocast(Bf16, || f32_side(x));
        let name = format!("bf16 {name}");
        agree(&name, &inputs, &at_bf16);
        let (bf16, f32) = (
            run(&name, Device::Cpu, &inputs, &at_bf16),
            run(&name, Device::Cpu, &inputs, &f32_side),
        );
        assert_ne!(bf16.out, f32.out, "{name}: the output is f32's");
        assert_ne!(
            bf16.grads[..2],
            f32.grads[..2],
            "{name}: the gradients are f32's"
        );
    }
    let p = ConvTranspose2dParams::default().stride(2).padding(1);
    let inputs = [
        randn(&[2, 6, 5, 5], 7),
        randn(&[6, 3, 4, 4], 8),
        randn(&[3], 9),
    ];
    agree("bf16 conv_transpose2d", &inputs, &move |x| {
        autocast(Bf16, || x[0].conv_transpose2d(&x[1], Some(&x[2]), p))
    });
}

/// Inside `autocast(Bf16, ..)` the recurrent layers' products round
/// their operands on every backend alike (the CPU's joined products and
/// the reference's step-by-step ops), biases kept f32; the values are not
/// f32's.
#[test]
fn bf16_recurrent_ops_agree() {
    recurrent_sequences_agree(Precision::Bf16);
}

/// The fused attention inside `autocast(Bf16, ..)`: its products take
/// bf16 operands (the values are not f32's) and stay within bf16's error
/// of the reference's composed attention at bf16. Not to f32's tolerance:
/// the two round different things (the fused kernel its unnormalized
/// probabilities block by block, the composed one the softmax's output).
#[test]
fn bf16_attention_agrees_to_bf16_error() {
    use Precision::Bf16;
    let inputs = [
        randn(&[2, 2, 70, 16], 1),
        randn(&[2, 2, 150, 16], 2),
        randn(&[2, 2, 150, 24], 3),
    ];
    let f = |x: &[Tensor]| {
        x[0].scaled_dot_product_attention(&x[1], &x[2], &AttentionParams::default().causal())
    };
    let at_bf16 = |x: &[Tensor]| autocast(Bf16, || f(x));
    let fused = run("attention", Device::Cpu, &inputs, &at_bf16);
    let composed = run("attention", Device::Reference, &inputs, &at_bf16);
    let f32 = run("attention", Device::Cpu, &inputs, &f);
    assert_ne!(fused.out, f32.out, "the output is f32's");
    assert_ne!(fused.grads, f32.grads, "the gradients are f32's");
    let within = |what: &str, got: &[f32], want: &[f32], f32_side: &[f32]| {
        let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        // bf16 keeps 8 bits: a few of its steps of the tensor's scale
        let err = |a: &[f32]| {
            a.iter()
                .zip(want)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(err(got) <= 2e-2 * scale, "{what}: {} of {scale}", err(got));
        // and a bf16 run is about as far from f32 as the two bf16 runs are apart
        assert!(
            err(f32_side) <= 2e-2 * scale,
            "{what}: f32 {} of {scale}",
            err(f32_side)
        );
    };
    within("output", &fused.out, &composed.out, &f32.out);
    for (i, (g, w)) in fused.grads.iter().zip(&composed.grads).enumerate() {
        let (g, w) = (g.as_ref().unwrap(), w.as_ref().unwrap());
        within(
            &format!("gradient {i}"),
            g,
            w,
            f32.grads[i].as_ref().unwrap(),
        );
    }
}
