//! The kernel benchmarks that set f32 against bf16 or int8: the MLP's
//! products with bf16 operands, a Linear layer with its weight stored as
//! bf16, int8 Linear layers and products, LeNet's
//! convolutions in int8, the MLP and the LSTM in int8.

use nabla_core::{in_pool, num_threads, Conv2dParams, Tensor};

use super::{best_time, views};

/// Runs the cases whose names `wanted` accepts.
pub fn run(wanted: &dyn Fn(&str) -> bool) {
    if wanted("bf16_products") {
        // the MLP's products at batch 64 (as a training step runs them) and
        // a square one, f32 against bf16 operands (`autocast`); the same
        // (name, m, k, n, lhs transposed, rhs transposed) as mlp_products
        use nabla_core::autocast::Precision;
        use nabla_core::backend::cpu::matmul::gemm_into_at;
        for (name, m, k, n, lhs_t, rhs_t) in [
            ("fc1_forward", 64, 784, 256, false, true),
            ("fc1_weight_grad", 256, 64, 784, true, false),
            ("fc2_forward", 64, 256, 128, false, true),
            ("fc2_input_grad", 64, 128, 256, false, false),
            ("square_512", 512, 512, 512, false, false),
            // attention's blocks (64 queries × 128 keys, heads of 32):
            // scores q·kᵀ and the output p·v
            ("attention_scores", 64, 32, 128, false, true),
            ("attention_output", 64, 128, 32, false, false),
        ] {
            let (a, b) = (
                Tensor::randn([m * k]).to_vec(),
                Tensor::randn([k * n]).to_vec(),
            );
            let mut dst = vec![0f32; m * n];
            let (lhs, rhs) = views(&a, &b, (m, k, n), (lhs_t, rhs_t));
            let mut times = [0f64; 2];
            for (t, precision) in times.iter_mut().zip(Precision::ALL) {
                *t = in_pool(|| {
                    best_time(0.3, || {
                        gemm_into_at(precision, &mut dst, false, lhs, rhs, num_threads())
                    })
                });
            }
            let gflops = |t: f64| 2.0 * (m * k * n) as f64 / t / 1e9;
            println!(
                "bf16_products_{name} f32 {:.1} us ({:.0} GFLOP/s), bf16 {:.1} us ({:.0} GFLOP/s), {:.2}×",
                times[0] * 1e6,
                gflops(times[0]),
                times[1] * 1e6,
                gflops(times[1]),
                times[0] / times[1]
            );
        }
    }
    if wanted("bf16_weights") {
        // a Linear layer whose weight is stored as bf16 (`to_dtype`,
        // `Module::to_dtype`): the kernels read it widened to f32, a copy
        // per call, against the same layer in f32
        use nabla_core::DType;
        for (m, k, n) in [(1000, 784, 256), (64, 784, 256), (1000, 128, 10)] {
            let x = Tensor::randn([m, k]);
            let w = Tensor::randn([n, k]);
            let b = Tensor::randn([n]);
            let w16 = w.to_dtype(DType::BF16).unwrap();
            let f32_t = in_pool(|| best_time(0.3, || drop(x.linear(&w, Some(&b)).unwrap())));
            let bf_t = in_pool(|| best_time(0.3, || drop(x.linear(&w16, Some(&b)).unwrap())));
            println!(
                "bf16_weights_linear_{m}x{k}x{n} f32 weight {:.1} us, bf16 weight {:.1} us ({:.2}× the time)",
                f32_t * 1e6,
                bf_t * 1e6,
                bf_t / f32_t
            );
        }
        // an embedding table of GPT-2's size (50,257 × 768) held as bf16:
        // a batch's 768 rows picked in bf16, against the f32 table
        let table = Tensor::randn([50_257, 768]);
        let table16 = table.to_dtype(DType::BF16).unwrap();
        let ids: Vec<i64> = (0..768).map(|i| (i * 65_537) % 50_257).collect();
        let ids = Tensor::from_vec_i64(ids, [768]).unwrap();
        let f32_t = best_time(0.3, || drop(table.index_select(0, &ids).unwrap()));
        let bf_t = best_time(0.3, || drop(table16.index_select(0, &ids).unwrap()));
        // what widening the whole table first would cost each call
        let widen_t = best_time(0.3, || drop(table16.to_dtype(DType::F32).unwrap()));
        println!(
            "bf16_weights_embedding_50257x768_768_rows f32 table {:.1} us, bf16 table {:.1} us ({:.2}× the time; widening the table {:.0} us)",
            f32_t * 1e6,
            bf_t * 1e6,
            bf_t / f32_t,
            widen_t * 1e6
        );
    }
    if wanted("int8_linear") {
        // the MLP's layers at an evaluation batch of 1,000: f32 x·Wᵀ + b
        // against the int8 layer (activations quantized per call), and
        // the int8 product alone (GMAC/s)
        use nabla_core::backend::cpu::int8_gemm::{gemm_u8s8, pad, Epilogue, PackedInt8, RowsA};
        use nabla_core::quant::{QTensor, QuantizedLinearWeight};
        for (m, k, n) in [
            (1000, 784, 256),
            (1000, 256, 128),
            (1000, 128, 10),
            (64, 784, 256),
        ] {
            let x = Tensor::randn([m, k]);
            let w = Tensor::randn([n, k]);
            let b = Tensor::randn([n]);
            let f32_t = in_pool(|| best_time(0.3, || drop(x.linear(&w, Some(&b)).unwrap())));
            let q = QuantizedLinearWeight::new(QTensor::quantize(&w, false).unwrap()).unwrap();
            let bias = b.to_vec();
            let q_t = in_pool(|| best_time(0.3, || drop(q.forward(&x, Some(&bias)).unwrap())));
            let qw = QTensor::quantize(&w, false).unwrap();
            let packed = PackedInt8::new(&qw.data, n, k, nabla_core::isa::int8_isa());
            let rows = RowsA::quantize(&x.to_vec(), m, &packed, 10.0, 128.0);
            let (sums, ones, zeros) = (pad([0; 0], n), pad(vec![1.0; n], n), pad([0.0; 0], n));
            let ep = Epilogue {
                zero_point: 0,
                scale: 1.0,
                row_sums: &sums,
                col_scales: &ones,
                bias: &zeros,
            };
            let mut c = vec![0f32; m * n];
            let g_t = in_pool(|| {
                best_time(0.3, || {
                    gemm_u8s8(m, &rows, &packed, &mut c, &ep, num_threads())
                })
            });
            println!(
                "int8_linear_{m}x{k}x{n} f32 {:.1} us, int8 {:.1} us ({:.2}×), product alone {:.1} us ({:.0} GMAC/s, {})",
                f32_t * 1e6,
                q_t * 1e6,
                f32_t / q_t,
                g_t * 1e6,
                (m * k * n) as f64 / g_t / 1e9,
                nabla_core::isa::int8_isa()
            );
        }
    }
    if wanted("int8_conv") {
        // LeNet's convolutions at an evaluation batch of 1,000: f32 against
        // the statically quantized convolution (fixed input parameters)
        use nabla_core::quant::{QParams, QTensor, QuantizedConv2dWeight};
        for (c, hw, o, pad) in [(1, 28, 6, 2), (6, 14, 16, 0)] {
            let x = Tensor::randn([1000, c, hw, hw]);
            let w = Tensor::randn([o, c, 5, 5]).mul_scalar(0.1).unwrap();
            let b = Tensor::randn([o]);
            let params = Conv2dParams::default().padding(pad);
            let f32_t =
                in_pool(|| best_time(0.5, || drop(x.conv2d(&w, Some(&b), params).unwrap())));
            let q = QuantizedConv2dWeight::new(
                QTensor::quantize(&w, true).unwrap(),
                params,
                QParams::for_activations(&x.to_vec()),
            )
            .unwrap();
            let bias = b.to_vec();
            let q_t = in_pool(|| best_time(0.5, || drop(q.forward(&x, Some(&bias)).unwrap())));
            println!(
                "int8_conv_{c}x{hw}x{hw}_to_{o} f32 {:.0} us, int8 {:.0} us ({:.2}×, {} threads)",
                f32_t * 1e6,
                q_t * 1e6,
                f32_t / q_t,
                num_threads()
            );
        }
    }
    if wanted("int8_mlp") {
        // the MLP 784-256-128-10's forward pass at a batch of 1,000, f32
        // against int8 Linear layers, each call from outside the pool (as
        // an evaluation loop makes them)
        use nabla_core::quant::{QTensor, QuantizedLinearWeight};
        let x = Tensor::randn([1000, 784]);
        let dims = [(784, 256), (256, 128), (128, 10)];
        let ws: Vec<(Tensor, Tensor)> = dims
            .iter()
            .map(|&(k, n)| {
                (
                    Tensor::randn([n, k]).mul_scalar(0.05).unwrap(),
                    Tensor::randn([n]),
                )
            })
            .collect();
        let qs: Vec<(QuantizedLinearWeight, Vec<f32>)> = ws
            .iter()
            .map(|(w, b)| {
                (
                    QuantizedLinearWeight::new(QTensor::quantize(w, false).unwrap()).unwrap(),
                    b.to_vec(),
                )
            })
            .collect();
        let f32_t = best_time(0.5, || {
            let mut h = x.clone();
            for (i, (w, b)) in ws.iter().enumerate() {
                h = h.linear(w, Some(b)).unwrap();
                if i < 2 {
                    h = h.relu().unwrap();
                }
            }
        });
        let q_t = best_time(0.5, || {
            let mut h = x.clone();
            for (i, (q, b)) in qs.iter().enumerate() {
                h = q.forward(&h, Some(b)).unwrap();
                if i < 2 {
                    h = h.relu().unwrap();
                }
            }
        });
        println!(
            "int8_mlp_1000 f32 {:.1} us, int8 {:.1} us ({:.2}×)",
            f32_t * 1e6,
            q_t * 1e6,
            f32_t / q_t
        );
    }
    if wanted("int8_lstm") {
        // lstm-rows' LSTM (28 steps of 28 inputs, 128 units) at an
        // evaluation batch of 1,000: the f32 engine's forward against the
        // int8 direction (each block of rows: both products, then cells)
        use nabla_core::backend::Cell;
        use nabla_core::quant::recurrent::{run_direction, DirectionWeights};
        use nabla_core::quant::{QTensor, QuantizedLinearWeight};
        let (n, t, i, h) = (1000, 28, 28, 128);
        let x = Tensor::randn([t, n, i]);
        let (w_ih, w_hh) = (
            Tensor::randn([4 * h, i]).mul_scalar(0.1).unwrap(),
            Tensor::randn([4 * h, h]).mul_scalar(0.1).unwrap(),
        );
        let (b_ih, b_hh) = (Tensor::randn([4 * h]), Tensor::randn([4 * h]));
        let zeros = Tensor::zeros([n, h]);
        let f32_t = in_pool(|| {
            best_time(1.0, || {
                nabla_core::no_grad(|| {
                    x.lstm_sequence(&w_ih, &w_hh, &b_ih, &b_hh, &zeros, &zeros, None, false)
                })
                .unwrap();
            })
        });
        let q =
            |w: &Tensor| QuantizedLinearWeight::new(QTensor::quantize(w, false).unwrap()).unwrap();
        let (ih, hh) = (q(&w_ih), q(&w_hh));
        let bias: Vec<f32> = b_ih
            .to_vec()
            .iter()
            .zip(b_hh.to_vec())
            .map(|(a, b)| a + b)
            .collect();
        let w = DirectionWeights {
            ih: &ih,
            ih_bias: &[],
            hh: &hh,
            hh_bias: &bias,
        };
        let xs = x.transpose(0, 1).unwrap().contiguous().unwrap().to_vec();
        let q_t = best_time(1.0, || {
            drop(run_direction(Cell::Lstm, &xs, (n, t), &w, false))
        });
        println!(
            "int8_lstm_1000x28x128 f32 {:.2} ms, int8 {:.2} ms ({:.2}×)",
            f32_t * 1e3,
            q_t * 1e3,
            f32_t / q_t
        );
    }
}
