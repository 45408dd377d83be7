//! The graph is freed after each backward: over 10,000 training steps the
//! number of live tensor buffers does not grow; and a bf16 tensor holds two
//! bytes a value. (Its own test binary with one test, so no other test
//! allocates tensors at the same time.)

use nabla_core::{live_buffers, live_bytes, manual_seed, no_grad, DType, Tensor};

#[test]
fn live_buffers_stay_flat_over_10000_steps() {
    manual_seed(1);
    let x = Tensor::randn([16, 8]);
    let target = Tensor::randn([16, 1]);
    let w1 = Tensor::randn([8, 32])
        .mul_scalar(0.3)
        .unwrap()
        .requires_grad_(true);
    let w2 = Tensor::randn([32, 1])
        .mul_scalar(0.3)
        .unwrap()
        .requires_grad_(true);
    let step = || {
        let h = x.matmul(&w1).unwrap().tanh().unwrap();
        let err = h.matmul(&w2).unwrap().sub(&target).unwrap();
        let loss = err.mul(&err).unwrap().mean_all().unwrap();
        loss.backward().unwrap();
        no_grad(|| {
            for w in [&w1, &w2] {
                let g = w.grad().unwrap().mul_scalar(0.05).unwrap().to_vec();
                w.update_data(|d| d.iter_mut().zip(&g).for_each(|(p, g)| *p -= g))
                    .unwrap();
                w.zero_grad();
            }
        });
        loss.item().unwrap()
    };
    let first = step();
    for _ in 0..99 {
        step();
    }
    let (buffers, bytes) = (live_buffers(), live_bytes());
    let mut last = 0.0;
    for _ in 0..9_900 {
        last = step();
    }
    assert_eq!(live_buffers(), buffers, "tensor buffers leaked");
    assert_eq!(live_bytes(), bytes);
    assert!(last < first * 0.5, "loss did not fall: {first} -> {last}");
    half_buffers_hold_half_the_bytes();
}

/// Counted by `live_bytes`: a bf16 copy adds 2 bytes a value, an i64 one 8.
fn half_buffers_hold_half_the_bytes() {
    let x = Tensor::zeros([1 << 16]);
    for (dtype, size) in [(DType::BF16, 2), (DType::F16, 2), (DType::I64, 8)] {
        let before = live_bytes();
        let h = x.to_dtype(dtype).unwrap();
        assert_eq!(live_bytes() - before, size << 16, "{dtype}");
        drop(h);
        assert_eq!(live_bytes(), before, "{dtype}");
    }
}
