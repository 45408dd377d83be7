//! Kernel benchmarks: matmul GFLOP/s at 256³, 512³, 1024³, conv2d
//! forward+backward at the reference CNN's shapes (batch 64), causal
//! attention forward+backward at L = 256, 1,024, 4,096 (4 heads of 64).
//!
//!     NABLA_NUM_THREADS=1 cargo bench -p nabla-core --bench kernels
//!
//! Prints one `name value unit` line per case (best of several timed
//! repetitions after a warm-up), the format `bench/compare_kernels.sh` reads.
//! `bench/pytorch_kernels.py` times the same cases in PyTorch. The
//! bf16 and int8 cases (f32 against the lower precision) are in
//! `precision.rs`.

use std::time::Instant;

mod precision;

use nabla_core::backend::cpu::conv::{
    conv_backward_input, conv_backward_params, conv_forward, ConvGeom,
};
use nabla_core::{in_pool, manual_seed, num_threads, AttentionParams, Conv2dParams, Tensor};

/// Best seconds per call of `f` over repetitions filling about `budget` seconds.
fn best_time(budget: f64, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: page in buffers, pack weights once
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut reps = 0;
    while reps < 5 || start.elapsed().as_secs_f64() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    best
}

/// `A[m,k]` and `B[k,n]` over `a` and `b`, each read through a transposed
/// view when asked (a weight gradient's `xᵀ`, a layer's `Wᵀ`).
fn views<'a>(
    a: &'a [f32],
    b: &'a [f32],
    (m, k, n): (usize, usize, usize),
    (lhs_t, rhs_t): (bool, bool),
) -> (
    nabla_core::backend::cpu::matmul::MatRef<'a>,
    nabla_core::backend::cpu::matmul::MatRef<'a>,
) {
    use nabla_core::backend::cpu::matmul::MatRef;
    let lhs = match lhs_t {
        true => MatRef::row_major(a, k, m).t(),
        false => MatRef::row_major(a, m, k),
    };
    let rhs = match rhs_t {
        true => MatRef::row_major(b, n, k).t(),
        false => MatRef::row_major(b, k, n),
    };
    (lhs, rhs)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    manual_seed(0);
    println!("# nabla kernels, {} threads", num_threads());
    for n in [256usize, 512, 1024] {
        let name = format!("matmul_{n}");
        if !wanted(&name) {
            continue;
        }
        let (a, b) = (Tensor::randn([n, n]), Tensor::randn([n, n]));
        let t = best_time(1.0, || {
            a.matmul(&b).unwrap();
        });
        println!("{name} {:.1} GFLOP/s", 2.0 * (n * n * n) as f64 / t / 1e9);
    }
    if wanted("mlp_products") {
        // the MLP 784-256-128-10's products at batch 64, as a training step
        // runs them (on the pool): (name, m, k, n, lhs transposed, rhs transposed)
        use nabla_core::backend::cpu::matmul::gemm_into;
        for (name, m, k, n, lhs_t, rhs_t) in [
            ("fc1_forward", 64, 784, 256, false, true),
            ("fc2_forward", 64, 256, 128, false, true),
            ("fc1_weight_grad", 256, 64, 784, true, false),
            ("fc2_weight_grad", 128, 64, 256, true, false),
            ("fc2_input_grad", 64, 128, 256, false, false),
        ] {
            let (a, b) = (
                Tensor::randn([m * k]).to_vec(),
                Tensor::randn([k * n]).to_vec(),
            );
            let mut dst = vec![0f32; m * n];
            let (lhs, rhs) = views(&a, &b, (m, k, n), (lhs_t, rhs_t));
            // timed inside one hand-over to the pool (a hand-over per call
            // would add a thread wake-up, ~15 µs, to every product)
            let t =
                in_pool(|| best_time(0.3, || gemm_into(&mut dst, false, lhs, rhs, num_threads())));
            println!(
                "mlp_products_{name} {:.1} us ({:.1} GFLOP/s)",
                t * 1e6,
                2.0 * (m * k * n) as f64 / t / 1e9
            );
        }
    }
    precision::run(&wanted);
    if wanted("orient") {
        use nabla_core::backend::cpu::matmul::{gemm_into, MatRef};
        // y = x·Wᵀ (x [m,k], W [n,k]) into a row-major y, as matmul returns
        // it (for short, wide products through (W·xᵀ)ᵀ and a transpose),
        // against W·xᵀ alone: the product written column-major
        for (m, k, n) in [
            (64, 784, 256),
            (64, 256, 128),
            (64, 128, 10),
            (64, 400, 120),
            (64, 120, 84),
            (64, 84, 10),
            (1000, 784, 256),
            (64, 128, 256),
        ] {
            let (x, w) = (
                Tensor::randn([m * k]).to_vec(),
                Tensor::randn([n * k]).to_vec(),
            );
            let mut dst = vec![0f32; m * n];
            let t1 = in_pool(|| {
                best_time(0.3, || {
                    gemm_into(
                        &mut dst,
                        false,
                        MatRef::row_major(&x, m, k),
                        MatRef::row_major(&w, n, k).t(),
                        num_threads(),
                    )
                })
            });
            let t2 = in_pool(|| {
                best_time(0.3, || {
                    gemm_into(
                        &mut dst,
                        false,
                        MatRef::row_major(&w, n, k),
                        MatRef::row_major(&x, m, k).t(),
                        num_threads(),
                    )
                })
            });
            println!(
                "orient_{m}x{k}x{n} {:.1} us, the product alone column-major {:.1} us",
                t1 * 1e6,
                t2 * 1e6
            );
        }
    }
    if wanted("lstm_step") {
        // one step of the row-by-row LSTM (batch 64, 128 hidden units):
        // forward z += h·W_hhᵀ, backward dh += dz·W_hh; gemm (packing W
        // every call) against W packed once (one thread, as each row block
        // of a step runs)
        use nabla_core::backend::cpu::matmul::{gemm_into, MatRef};
        use nabla_core::backend::cpu::packed_gemm::{gemm_packed, PackedRhs};
        use nabla_core::backend::cpu::small_gemm::Strided;
        let h = 128usize;
        let w = Tensor::randn([4 * h * h]).to_vec();
        // 64 rows (one thread's block) and 32 (each of two threads' blocks)
        let cases = [64usize, 32].into_iter().flat_map(|m| {
            [("forward", h, 4 * h, true), ("backward", 4 * h, h, false)]
                .map(|(name, k, n, w_t)| (format!("{name}_{m}"), m, k, n, w_t))
        });
        for (name, m, k, n, w_t) in cases {
            let a = Tensor::randn([m * k]).to_vec();
            let mut dst = vec![0f32; m * n];
            let (rhs, b) = match w_t {
                true => (
                    MatRef::row_major(&w, n, k).t(),
                    Strided {
                        data: &w,
                        rs: 1,
                        cs: k,
                    },
                ),
                false => (
                    MatRef::row_major(&w, k, n),
                    Strided {
                        data: &w,
                        rs: n,
                        cs: 1,
                    },
                ),
            };
            let flop = 2.0 * (m * k * n) as f64;
            let t = best_time(0.3, || {
                gemm_into(&mut dst, true, MatRef::row_major(&a, m, k), rhs, 1)
            });
            println!(
                "lstm_step_{name}_gemm {:.1} us ({:.1} GFLOP/s)",
                t * 1e6,
                flop / t / 1e9
            );
            let packed = PackedRhs::new(b, k, n);
            let a = Strided {
                data: &a,
                rs: k,
                cs: 1,
            };
            let t = best_time(0.3, || gemm_packed(m, a, &packed, &mut dst, n, true));
            println!(
                "lstm_step_{name}_packed {:.1} us ({:.1} GFLOP/s)",
                t * 1e6,
                flop / t / 1e9
            );
        }
    }
    if wanted("lstm_whole") {
        // the row-by-row LSTM's products over all 28 steps at once (batch
        // 64: 1792 rows): input projection, and the weight gradients
        use nabla_core::backend::cpu::matmul::{gemm_new, MatRef};
        let (rows, i, g, h) = (28 * 64usize, 28usize, 512usize, 128usize);
        let x = Tensor::randn([rows * i]).to_vec();
        let w_ih = Tensor::randn([g * i]).to_vec();
        let dz = Tensor::randn([rows * g]).to_vec();
        let h_prev = Tensor::randn([rows * h]).to_vec();
        let xh = Tensor::randn([rows * (i + h)]).to_vec();
        let dz_t = MatRef::row_major(&dz, rows, g).t();
        for (name, lhs, rhs) in [
            (
                "projection",
                MatRef::row_major(&x, rows, i),
                MatRef::row_major(&w_ih, g, i).t(),
            ),
            ("weight_grad_ih", dz_t, MatRef::row_major(&x, rows, i)),
            ("weight_grad_hh", dz_t, MatRef::row_major(&h_prev, rows, h)),
            // [dW_ih | dW_hh] as the op computes it, transposed: [x | h]ᵀ·dz
            (
                "weight_grad_both_transposed",
                MatRef::row_major(&xh, rows, i + h).t(),
                MatRef::row_major(&dz, rows, g),
            ),
        ] {
            let t = in_pool(|| best_time(0.3, || drop(gemm_new(lhs, rhs, num_threads()))));
            let flop = 2.0 * (lhs.rows * lhs.cols * rhs.cols) as f64;
            println!(
                "lstm_whole_{name} {:.1} us ({:.1} GFLOP/s)",
                t * 1e6,
                flop / t / 1e9
            );
        }
    }
    if wanted("lstm_dw_split") {
        // the LSTM's weight gradients [x | h | 1]ᵀ·dz (K = 28·64 rows):
        // gemm's own split of M and N against K cut between the threads
        use nabla_core::backend::cpu::matmul::{gemm_new, gemm_new_split_k, MatRef};
        let (rows, k, g) = (28 * 64usize, 157usize, 512usize);
        let dz = Tensor::randn([rows * g]).to_vec();
        let xh = Tensor::randn([rows * k]).to_vec();
        let (lhs, rhs) = (
            MatRef::row_major(&xh, rows, k).t(),
            MatRef::row_major(&dz, rows, g),
        );
        let flop = 2.0 * (rows * k * g) as f64;
        let t = in_pool(|| best_time(0.5, || drop(gemm_new(lhs, rhs, num_threads()))));
        println!(
            "lstm_dw_split_gemm {:.1} us ({:.1} GFLOP/s)",
            t * 1e6,
            flop / t / 1e9
        );
        let t = in_pool(|| {
            best_time(0.5, || {
                drop(gemm_new_split_k(
                    nabla_core::autocast::Precision::F32,
                    lhs,
                    rhs,
                    num_threads(),
                ))
            })
        });
        println!(
            "lstm_dw_split_k {:.1} us ({:.1} GFLOP/s)",
            t * 1e6,
            flop / t / 1e9
        );
    }
    if wanted("pool_region") {
        // What a parallel region costs beyond its work (two halves of 20 µs),
        // after a serial stretch of 0 to 200 µs: a pool thread that has gone
        // to sleep is slow to start (in_pool keeps them spinning instead)
        use rayon::prelude::*;
        let busy = |us: u128| {
            let t = Instant::now();
            while t.elapsed().as_micros() < us {
                std::hint::spin_loop();
            }
        };
        for gap_us in [0u128, 5, 20, 50, 200] {
            // a mean over 200 regions (a best single one would hide the
            // wake-ups), the best of 10 such means
            let per_region = in_pool(|| {
                best_time(0.3, || {
                    for _ in 0..200 {
                        busy(gap_us);
                        (0..2).into_par_iter().for_each(|_| busy(20));
                    }
                })
            }) / 200.0;
            let overhead = per_region * 1e6 - gap_us as f64 - 20.0;
            println!("pool_region_after_{gap_us}us_serial {overhead:.1} us");
        }
    }
    for l in [256usize, 1024, 4096] {
        // causal self-attention, 4 heads of 64, forward and backward
        let name = format!("attention_causal_{l}_fwd_bwd");
        if !wanted(&name) {
            continue;
        }
        let qkv: Vec<Tensor> = (0..3)
            .map(|_| Tensor::randn([1, 4, l, 64]).requires_grad_(true))
            .collect();
        let p = AttentionParams::default().causal();
        let t = best_time(1.0, || {
            let y = qkv[0]
                .scaled_dot_product_attention(&qkv[1], &qkv[2], &p)
                .unwrap();
            y.sum_all().unwrap().backward().unwrap();
            qkv.iter().for_each(Tensor::zero_grad);
        });
        println!("{name} {:.3} ms", t * 1e3);
    }
    if wanted("conv2d_lenet") {
        // conv1: [64,1,28,28] * [6,1,5,5] pad 2 (images need no gradient);
        // conv2: [64,6,14,14] * [16,6,5,5] (an activation: its gradient is needed).
        let x1 = Tensor::randn([64, 1, 28, 28]);
        let w1 = Tensor::randn([6, 1, 5, 5]).requires_grad_(true);
        let b1 = Tensor::randn([6]).requires_grad_(true);
        let x2 = Tensor::randn([64, 6, 14, 14]).requires_grad_(true);
        let w2 = Tensor::randn([16, 6, 5, 5]).requires_grad_(true);
        let b2 = Tensor::randn([16]).requires_grad_(true);
        let (g1, g2) = (
            Tensor::randn([64, 6, 28, 28]),
            Tensor::randn([64, 16, 10, 10]),
        );
        // on the pool, as `nabla train` runs its steps (see in_pool)
        let t = best_time(1.0, || {
            in_pool(|| {
                let y1 = x1
                    .conv2d(&w1, Some(&b1), Conv2dParams::default().padding(2))
                    .unwrap();
                y1.backward_with_grad(&g1).unwrap();
                let y2 = x2.conv2d(&w2, Some(&b2), Conv2dParams::default()).unwrap();
                y2.backward_with_grad(&g2).unwrap();
                for p in [&w1, &b1, &x2, &w2, &b2] {
                    p.zero_grad();
                }
            })
        });
        println!("conv2d_lenet_fwd_bwd {:.3} ms", t * 1e3);
    }
    if wanted("conv_parts") {
        // The passes of the two LeNet convolutions (and a wider one),
        // timed one by one.
        use nabla_core::autocast::{autocast, Precision};
        let geom = |c, h, w, k, p| ConvGeom {
            n: 64,
            c,
            h,
            w,
            kh: k,
            kw: k,
            sh: 1,
            sw: 1,
            ph: p,
            pw: p,
            dh: 1,
            dw: 1,
            oh: h + 2 * p - k + 1,
            ow: w + 2 * p - k + 1,
        };
        for (name, g, o) in [
            ("conv1", geom(1, 28, 28, 5, 2), 6),
            ("conv2", geom(6, 14, 14, 5, 0), 16),
            // the second convolution of PyTorch's mnist example (32 → 64)
            ("mnist_conv2", geom(32, 26, 26, 3, 0), 64),
        ] {
            let x = Tensor::randn([64, g.c, g.h, g.w]).to_vec();
            let w = Tensor::randn([o, g.c, g.kh, g.kw]).to_vec();
            let dy = Tensor::randn([64, o, g.oh, g.ow]).to_vec();
            // each pass at f32 and with bf16 operands (`autocast`)
            let passes = |precision| {
                autocast(precision, || {
                    let (_, cols) = conv_forward(&x, &w, None, &g, o, 1, true);
                    let forward =
                        best_time(0.5, || drop(conv_forward(&x, &w, None, &g, o, 1, true)));
                    let weight_grad = best_time(0.5, || {
                        drop(conv_backward_params(&dy, cols.as_deref(), &g, o, 1))
                    });
                    let input_grad =
                        best_time(0.5, || drop(conv_backward_input(&dy, &w, &g, o, 1)));
                    [forward, weight_grad, input_grad]
                })
            };
            let (f32_t, bf16_t) = (passes(Precision::F32), passes(Precision::Bf16));
            for (k, pass) in ["forward", "weight_grad", "input_grad"].iter().enumerate() {
                println!(
                    "{name}_{pass} f32 {:.3} ms, bf16 {:.3} ms, {:.2}×",
                    f32_t[k] * 1e3,
                    bf16_t[k] * 1e3,
                    f32_t[k] / bf16_t[k]
                );
            }
        }
    }
    if wanted("lstm_64") || wanted("lstm_1000") {
        // the row-by-row LSTM: 28 steps, 28 features, 128 hidden units;
        // a training batch (64, forward+backward) and an evaluation batch (1000)
        let (t, i, h) = (28, 28, 128);
        let w_ih = Tensor::randn([4 * h, i])
            .mul_scalar(0.1)
            .unwrap()
            .requires_grad_(true);
        let w_hh = Tensor::randn([4 * h, h])
            .mul_scalar(0.1)
            .unwrap()
            .requires_grad_(true);
        let b_ih = Tensor::zeros([4 * h]).requires_grad_(true);
        let b_hh = Tensor::zeros([4 * h]).requires_grad_(true);
        for n in [64usize, 1000] {
            if !wanted(&format!("lstm_{n}")) {
                continue;
            }
            let x = Tensor::randn([t, n, i]);
            let (h0, c0) = (Tensor::zeros([n, h]), Tensor::zeros([n, h]));
            let run = || {
                x.lstm_sequence(&w_ih, &w_hh, &b_ih, &b_hh, &h0, &c0, None, false)
                    .unwrap()
            };
            let fwd = best_time(0.5, || drop(nabla_core::no_grad(run)));
            // forward+backward: 4·H·(I+H)·2 FLOP per row and step, 3× with the gradients
            let flop = (t * n * 4 * h * (i + h) * 2) as f64;
            println!(
                "lstm_{n}_forward {:.3} ms ({:.1} GFLOP/s)",
                fwd * 1e3,
                flop / fwd / 1e9
            );
            if n == 64 {
                let both = best_time(0.5, || run().sum_all().unwrap().backward().unwrap());
                println!(
                    "lstm_{n}_forward_backward {:.3} ms ({:.1} GFLOP/s)",
                    both * 1e3,
                    3.0 * flop / both / 1e9
                );
            }
        }
    }
    if wanted("gru_64") || wanted("gru_1000") {
        // the row-by-row GRU: 28 steps, 28 features, 128 hidden units
        let (t, i, h) = (28, 28, 128);
        let w_ih = Tensor::randn([3 * h, i])
            .mul_scalar(0.1)
            .unwrap()
            .requires_grad_(true);
        let w_hh = Tensor::randn([3 * h, h])
            .mul_scalar(0.1)
            .unwrap()
            .requires_grad_(true);
        let b_ih = Tensor::zeros([3 * h]).requires_grad_(true);
        let b_hh = Tensor::zeros([3 * h]).requires_grad_(true);
        for n in [64usize, 1000] {
            if !wanted(&format!("gru_{n}")) {
                continue;
            }
            let x = Tensor::randn([t, n, i]);
            let h0 = Tensor::zeros([n, h]);
            let run = || {
                x.gru_sequence(&w_ih, &w_hh, &b_ih, &b_hh, &h0, None, false)
                    .unwrap()
            };
            let fwd = best_time(0.5, || drop(nabla_core::no_grad(run)));
            let flop = (t * n * 3 * h * (i + h) * 2) as f64;
            println!(
                "gru_{n}_forward {:.3} ms ({:.1} GFLOP/s)",
                fwd * 1e3,
                flop / fwd / 1e9
            );
            if n == 64 {
                let both = best_time(0.5, || run().sum_all().unwrap().backward().unwrap());
                println!(
                    "gru_{n}_forward_backward {:.3} ms ({:.1} GFLOP/s)",
                    both * 1e3,
                    3.0 * flop / both / 1e9
                );
            }
        }
    }
    if wanted("pool") {
        // the reference CNN's two poolings at batch 64, forward and backward
        for shape in [[64usize, 6, 28, 28], [64, 16, 10, 10]] {
            let x = Tensor::randn(shape).requires_grad_(true);
            let fwd = best_time(0.5, || {
                drop(nabla_core::no_grad(|| x.max_pool2d(2).unwrap()))
            });
            let both = best_time(0.5, || {
                x.max_pool2d(2)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            });
            println!(
                "max_pool2d_{:?}_forward {:.3} ms, with backward {:.3} ms",
                shape,
                fwd * 1e3,
                both * 1e3
            );
        }
    }
}
