//! Whole models trained a few steps on each device — LeNet with SGD and
//! momentum, an MLP with BatchNorm and Adam, LSTM and GRU stacks with
//! RMSprop — against the same steps on the reference backend (plain loops,
//! f64 accumulation). The macro stamps every test for every device; a new
//! backend gets the suite with one line in it.

use std::sync::Mutex;

use nabla_core::{manual_seed, Device, Result, Tensor};
use nabla_nn::loss::cross_entropy;
use nabla_nn::optim::{Adadelta, Adagrad, Adam, Optimizer, RMSprop, Sgd};
use nabla_nn::rnn::RnnConfig;
use nabla_nn::zoo::LeNet;
use nabla_nn::{BatchNorm1d, Linear, Module, ReLU, Recurrent, Sequential};

/// Stamps each test function `f(device)` once per device.
macro_rules! on_every_device {
    ($($test:ident),* $(,)?) => {
        mod cpu {
            $(#[test] fn $test() { super::$test(nabla_core::Device::Cpu) })*
        }
        mod reference {
            $(#[test] fn $test() { super::$test(nabla_core::Device::Reference) })*
        }
    };
}

on_every_device!(
    lenet_sgd_steps,
    mlp_batchnorm_adam_steps,
    lstm_stack_steps,
    gru_stack_steps,
    every_update_rule,
);

/// Held by each run: the seeded initialization and data draw from the one
/// global generator, which the tests running at the same time share.
static GENERATOR: Mutex<()> = Mutex::new(());

/// What a few training steps leave: each step's loss, then every
/// parameter and buffer.
struct Trained {
    losses: Vec<f32>,
    state: Vec<(String, Vec<f32>)>,
}

/// Builds a model from seed 0, moves it to `device`, and takes one step
/// per batch with the optimizer `make` gives; everything must stay there.
fn train<M: Module>(
    device: Device,
    model: impl Fn() -> M,
    make: impl Fn(Vec<Tensor>) -> Box<dyn Optimizer>,
    batches: &[(Tensor, Tensor)],
    loss_of: impl Fn(&M, &Tensor, &Tensor) -> Result<Tensor>,
) -> Trained {
    let _alone = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(0);
    let model = model();
    model.to(device).unwrap();
    let mut opt = make(model.parameters());
    let mut losses = vec![];
    for (x, y) in batches {
        let (x, y) = (x.to(device).unwrap(), y.to(device).unwrap());
        model.zero_grad();
        let loss = loss_of(&model, &x, &y).unwrap();
        assert_eq!(loss.device(), device);
        loss.backward().unwrap();
        opt.step().unwrap();
        losses.push(loss.item().unwrap());
    }
    let state = model
        .named_parameters()
        .into_iter()
        .chain(model.named_buffers())
        .map(|(name, t)| {
            assert_eq!(t.device(), device, "{name} left {device}");
            (name, t.to_vec())
        })
        .collect();
    Trained { losses, state }
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} here, {w} on the reference"
        );
    }
}

/// The run on `device` against the same run on the reference.
fn agree(device: Device, tol: f32, run: impl Fn(Device) -> Trained) {
    let (got, want) = (run(device), run(Device::Reference));
    close("losses", &got.losses, &want.losses, tol);
    for ((name, g), (_, w)) in got.state.iter().zip(&want.state) {
        close(name, g, w, tol);
    }
}

/// `count` batches of inputs of `shape` and `n` class labels below `classes`.
fn batches(shape: &[usize], n: usize, classes: usize, count: usize) -> Vec<(Tensor, Tensor)> {
    let _alone = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(7);
    (0..count)
        .map(|_| {
            let y = Tensor::rand([n])
                .mul_scalar(classes as f32)
                .unwrap()
                .to_vec();
            let y = y.iter().map(|v| v.floor()).collect();
            (Tensor::randn(shape), Tensor::from_vec(y, [n]).unwrap())
        })
        .collect()
}

fn classify<M: Module>(model: &M, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    cross_entropy(&model.forward(x)?, y)
}

fn lenet_sgd_steps(device: Device) {
    let data = batches(&[8, 1, 28, 28], 8, 10, 3);
    let sgd = |p| Box::new(Sgd::new(p, 0.05).momentum(0.9)) as Box<dyn Optimizer>;
    agree(device, 1e-4, |d| train(d, LeNet::new, sgd, &data, classify));
}

fn mlp_batchnorm_adam_steps(device: Device) {
    let data = batches(&[16, 12], 16, 4, 4);
    let model = || {
        Sequential::new()
            .add(Linear::new(12, 20))
            .add(ReLU)
            // (after the ReLU: a bias just before a batch norm has a zero
            // gradient up to rounding, which Adam would blow up to steps)
            .add(BatchNorm1d::new_1d(20))
            .add(Linear::new(20, 4))
    };
    let adam = |p| Box::new(Adam::new(p, 0.01)) as Box<dyn Optimizer>;
    agree(device, 1e-4, |d| train(d, model, adam, &data, classify));
}

/// A two-layer stack over `[T, N, 3]` classified from its last output.
fn recurrent_steps(device: Device, make: fn(RnnConfig) -> Recurrent) {
    let data = batches(&[5, 4, 3], 4, 3, 3);
    let model = || {
        let mut cfg = RnnConfig::new(3, 6);
        cfg.num_layers = 2;
        cfg.bidirectional = true;
        Sequential::new().add(make(cfg))
    };
    let loss = |m: &Sequential, x: &Tensor, y: &Tensor| -> Result<Tensor> {
        let out = m.forward(x)?; // [T, N, 2·6]
        let last = out.narrow(0, 4, 1)?.reshape([4, 12])?;
        cross_entropy(&last.narrow(1, 0, 3)?, y)
    };
    let rmsprop = |p| Box::new(RMSprop::new(p, 0.01)) as Box<dyn Optimizer>;
    agree(device, 1e-4, |d| train(d, model, rmsprop, &data, loss));
}

fn lstm_stack_steps(device: Device) {
    recurrent_steps(device, Recurrent::lstm);
}

fn gru_stack_steps(device: Device) {
    recurrent_steps(device, Recurrent::gru);
}

/// Each optimizer's variants (momentum, Nesterov, weight decay, AdamW,
/// AMSGrad, centered RMSprop, maximize) for a few steps of a small
/// regression.
fn every_update_rule(device: Device) {
    let data = batches(&[8, 5], 8, 3, 4);
    type Make = fn(Vec<Tensor>) -> Box<dyn Optimizer>;
    let rules: &[Make] = &[
        |p| Box::new(Sgd::new(p, 0.1)),
        |p| {
            Box::new(
                Sgd::new(p, 0.1)
                    .momentum(0.9)
                    .dampening(0.1)
                    .weight_decay(0.01),
            )
        },
        |p| Box::new(Sgd::new(p, 0.1).momentum(0.9).nesterov(true)),
        |p| Box::new(Adam::new(p, 0.01).weight_decay(0.1)),
        |p| Box::new(Adam::adamw(p, 0.01).amsgrad(true)),
        |p| Box::new(RMSprop::new(p, 0.01).centered(true).momentum(0.5)),
        |p| Box::new(RMSprop::new(p, 0.01).weight_decay(0.1)),
        |p| Box::new(Adagrad::new(p, 0.1).lr_decay(0.01)),
        |p| Box::new(Adadelta::new(p, 1.0).weight_decay(0.01)),
        |p| Box::new(Sgd::new(p, 0.05).momentum(0.5).maximize(true)),
    ];
    for make in rules {
        agree(device, 1e-4, |d| {
            train(d, || Linear::new(5, 3), make, &data, classify)
        });
    }
}
