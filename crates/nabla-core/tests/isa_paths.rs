//! The kernels' paths (`NABLA_ISA`) against each other, each in a process
//! of its own (the path is chosen once per process): the AVX-512 path
//! promises AVX2's bits for every kernel that sums in the same order (the
//! recurrent layers' forward pass, convolutions, elementwise maths,
//! transposes, max pooling, an int8 LSTM) and
//! only rounding differences in the matrix product; the scalar path the
//! same values to rounding; every path the same int8 products, bit for
//! bit, and the same bf16 products to rounding. A path this CPU lacks is
//! skipped, saying so.

use std::process::Command;

use nabla_core::{no_grad, Conv2dParams, Isa, Tensor};

/// Set in the child processes: which part to print.
const CHILD: &str = "NABLA_ISA_PATHS_CHILD";

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000)
        .map(|v| v as f32 / 500.0 - 1.0)
        .collect()
}

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// The outputs whose bits the paths share: the recurrent layers without
/// gradients, a convolution, elementwise maths.
fn same_order_outputs() -> Vec<f32> {
    no_grad(|| {
        let (t, n, i, h) = (7, 5, 11, 20);
        let x = tensor(&[t, n, i], 1);
        let lstm = x
            .lstm_sequence(
                &tensor(&[4 * h, i], 2).mul_scalar(0.3).unwrap(),
                &tensor(&[4 * h, h], 3).mul_scalar(0.3).unwrap(),
                &tensor(&[4 * h], 4),
                &tensor(&[4 * h], 5),
                &tensor(&[n, h], 6),
                &tensor(&[n, h], 7),
                None,
                false,
            )
            .unwrap();
        let gru = x
            .gru_sequence(
                &tensor(&[3 * h, i], 8).mul_scalar(0.3).unwrap(),
                &tensor(&[3 * h, h], 9).mul_scalar(0.3).unwrap(),
                &tensor(&[3 * h], 10),
                &tensor(&[3 * h], 11),
                &tensor(&[n, h], 12),
                None,
                true,
            )
            .unwrap();
        let images = tensor(&[2, 3, 13, 13], 13);
        let conv = images
            .conv2d(
                &tensor(&[7, 3, 5, 5], 14),
                Some(&tensor(&[7], 15)),
                Conv2dParams {
                    padding: (2, 2),
                    ..Default::default()
                },
            )
            .unwrap();
        let int8_lstm = Tensor::from_vec(int8_lstm(), [60 * 4 * 12]).unwrap();
        let maths = [
            x.tanh().unwrap(),
            x.sigmoid().unwrap(),
            x.gelu().unwrap(),
            x.exp().unwrap(),
            // data movement: 16×16 register blocks on AVX-512, 8×8 on AVX2
            tensor(&[37, 50], 18).t().unwrap().contiguous().unwrap(),
            // 2×2 max pooling, 16 outputs at a time on AVX-512
            tensor(&[2, 3, 22, 70], 19).max_pool2d(2).unwrap(),
        ];
        [lstm, gru, conv, int8_lstm]
            .iter()
            .chain(&maths)
            .flat_map(|t| t.to_vec())
            .collect()
    })
}

/// int8 products (VNNI on the AVX-512 path, widened to 16 bits on AVX2,
/// plain loops on the scalar one), activations quantized on each path's
/// vectors: exact sums, the same epilogue, so the same bits everywhere.
fn int8_product() -> Vec<f32> {
    use nabla_core::quant::{QTensor, QuantizedLinearWeight};
    let w = QTensor::quantize(&tensor(&[37, 90], 20), true).unwrap();
    let layer = QuantizedLinearWeight::new(w).unwrap();
    let bias = values(37, 21);
    layer
        .forward(&tensor(&[50, 90], 22), Some(&bias))
        .unwrap()
        .to_vec()
}

/// An int8 LSTM direction: its products as [`int8_product`]'s, its cells
/// on the path's vectors (the same bits on AVX2 and AVX-512).
fn int8_lstm() -> Vec<f32> {
    use nabla_core::backend::Cell;
    use nabla_core::quant::recurrent::{run_direction, DirectionWeights};
    use nabla_core::quant::{QTensor, QuantizedLinearWeight};
    let (n, t, i, h) = (60, 4, 9, 12);
    let weight = |rows: usize, cols: usize, seed: u32| {
        let w = QTensor::quantize(&tensor(&[rows, cols], seed), false).unwrap();
        QuantizedLinearWeight::new(w).unwrap()
    };
    let (ih, hh) = (weight(4 * h, i, 23), weight(4 * h, h, 24));
    let bias = values(4 * h, 25);
    let w = DirectionWeights {
        ih: &ih,
        ih_bias: &[],
        hh: &hh,
        hh_bias: &bias,
    };
    run_direction(Cell::Lstm, &values(n * t * i, 26), (n, t), &w, false).0
}

/// A product that takes nabla's own kernel on the AVX-512 path.
fn product() -> Vec<f32> {
    tensor(&[70, 300], 16)
        .matmul(&tensor(&[300, 90], 17))
        .unwrap()
        .to_vec()
}

/// bf16 products (`autocast`): a linear layer, an LSTM and a convolution on
/// `VDPBF16PS` (or its emulation) on the AVX-512 path, through rounded f32
/// copies on the others: the same rounded operands, the same values to
/// the sums' rounding.
fn bf16_products() -> Vec<f32> {
    use nabla_core::autocast::{autocast, Precision};
    autocast(Precision::Bf16, || {
        let products = no_grad(|| {
            let (t, n, i, h) = (7, 5, 11, 20);
            let lstm = tensor(&[t, n, i], 30)
                .lstm_sequence(
                    &tensor(&[4 * h, i], 31).mul_scalar(0.3).unwrap(),
                    &tensor(&[4 * h, h], 32).mul_scalar(0.3).unwrap(),
                    &tensor(&[4 * h], 33),
                    &tensor(&[4 * h], 34),
                    &tensor(&[n, h], 35),
                    &tensor(&[n, h], 36),
                    None,
                    false,
                )
                .unwrap();
            let linear = tensor(&[70, 300], 37)
                .linear(&tensor(&[90, 300], 38), None)
                .unwrap();
            [lstm.to_vec(), linear.to_vec()].concat()
        });
        [products, bf16_convolution()].concat()
    })
}

/// LeNet's second convolution at bf16, its output and both gradients
/// (forward, input-gradient and weight-gradient products).
fn bf16_convolution() -> Vec<f32> {
    use nabla_core::Conv2dParams;
    let x = tensor(&[3, 6, 14, 14], 40).requires_grad_(true);
    let w = tensor(&[16, 6, 5, 5], 41).requires_grad_(true);
    let y = x.conv2d(&w, None, Conv2dParams::default()).unwrap();
    let r = tensor(y.shape(), 42);
    y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    [
        y.to_vec(),
        x.grad().unwrap().to_vec(),
        w.grad().unwrap().to_vec(),
    ]
    .concat()
}

/// Runs this test in a child with `NABLA_ISA=isa`: its lists of values.
fn on_path(isa: Isa) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "every_path_gives_its_promised_values",
            "--nocapture",
        ])
        .env("NABLA_ISA", isa.name())
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let list = |key: &str| -> Vec<f32> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{isa}: no {key} line in {text}"));
        line.split(',')
            .map(|v| f32::from_bits(v.parse().unwrap()))
            .collect()
    };
    (
        list("same-order="),
        list("product="),
        list("int8="),
        list("bf16="),
    )
}

#[test]
fn every_path_gives_its_promised_values() {
    if std::env::var(CHILD).is_ok() {
        let bits = |v: Vec<f32>| {
            v.iter()
                .map(|x| x.to_bits().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        println!("same-order={}", bits(same_order_outputs()));
        println!("product={}", bits(product()));
        println!("int8={}", bits(int8_product()));
        println!("bf16={}", bits(bf16_products()));
        return;
    }
    let mut runs = Vec::new();
    for isa in Isa::ALL {
        if !isa.supported() {
            eprintln!("{isa} path skipped: this CPU lacks it");
            continue;
        }
        runs.push((isa, on_path(isa)));
    }
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len());
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}: value {k}: {x} vs {y}"
            );
        }
    };
    for (isa, run) in &runs {
        assert!(
            run.2 == runs[0].1 .2,
            "int8 products differ: {isa} against {}",
            runs[0].0
        );
    }
    let find = |isa| runs.iter().find(|(i, _)| *i == isa).map(|(_, r)| r);
    if let (Some(avx2), Some(avx512)) = (find(Isa::Avx2), find(Isa::Avx512)) {
        assert!(avx2.0 == avx512.0, "AVX-512 changed bits AVX2 has");
        close(&avx512.1, &avx2.1, "product, AVX-512 against AVX2");
    }
    let (_, widest) = runs.last().expect("the scalar path at least");
    for (isa, run) in &runs {
        close(
            &run.3,
            &widest.3,
            &format!("bf16 products, {isa} against the widest path"),
        );
    }
    if let (Some(scalar), Some((_, widest))) = (find(Isa::Scalar), runs.last()) {
        close(&scalar.0, &widest.0, "scalar against the widest path");
        close(
            &scalar.1,
            &widest.1,
            "product, scalar against the widest path",
        );
    }
}
