//! The graph is freed after each backward: over 10,000 training steps the
//! number of live tensor buffers does not grow. (Its own test binary, so no
//! other test allocates tensors at the same time.)

use nabla_core::{live_buffers, live_bytes, manual_seed, no_grad, Tensor};

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
}
