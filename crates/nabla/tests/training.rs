//! End to end: small models learn real tasks with the library's layers,
//! losses and optimizers.

use nabla::data::Mnist;
use nabla::nn::loss::cross_entropy;
use nabla::nn::zoo::LeNet;
use nabla::nn::{Linear, Sequential, Tanh};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::prelude::*;

#[test]
fn an_mlp_learns_xor() {
    manual_seed(0);
    let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], [4, 2]).unwrap();
    let y = Tensor::from_vec(vec![0., 1., 1., 0.], [4]).unwrap();
    let model = Sequential::new()
        .add(Linear::new(2, 8))
        .add(Tanh)
        .add(Linear::new(8, 2));
    let mut opt = Sgd::new(model.parameters(), 0.5).momentum(0.9);
    let mut loss = f32::INFINITY;
    for _ in 0..300 {
        opt.zero_grad();
        let l = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        l.backward().unwrap();
        opt.step().unwrap();
        loss = l.item().unwrap();
    }
    let pred = model.forward(&x).unwrap().argmax(1, false).unwrap();
    assert_eq!(pred.to_vec(), y.to_vec(), "final loss {loss}");
    assert!(loss < 0.05, "final loss {loss}");
}

#[test]
fn lenet_overfits_256_real_digits() {
    manual_seed(0);
    let data = Mnist::load(Mnist::shipped_dir()).unwrap();
    let (x, y) = data.train.to_tensors(0.1307, 0.3081).unwrap();
    // 256 images spread over all ten digits (the file is grouped by digit)
    let idx: Vec<f32> = (0..256).map(|i| (i * 31) as f32).collect();
    let idx = Tensor::from_slice(&idx, [256]).unwrap();
    let (x, y) = (
        x.index_select(0, &idx).unwrap(),
        y.index_select(0, &idx).unwrap(),
    );
    let model = LeNet::new();
    let mut opt = Adam::new(model.parameters(), 2e-3);
    let mut acc = 0.0;
    for epoch in 0..60 {
        for start in (0..256).step_by(64) {
            let (xb, yb) = (
                x.narrow(0, start, 64).unwrap(),
                y.narrow(0, start, 64).unwrap(),
            );
            opt.zero_grad();
            cross_entropy(&model.forward(&xb).unwrap(), &yb)
                .unwrap()
                .backward()
                .unwrap();
            opt.step().unwrap();
        }
        let pred = no_grad(|| model.forward(&x))
            .unwrap()
            .argmax(1, false)
            .unwrap();
        acc = pred.eq(&y).unwrap().mean_all().unwrap().item().unwrap();
        if acc == 1.0 {
            println!("100% training accuracy after {} epochs", epoch + 1);
            break;
        }
    }
    assert_eq!(acc, 1.0, "training accuracy {acc}");
}
