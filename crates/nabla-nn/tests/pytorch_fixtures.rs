//! Optimizers, losses and the reference CNN against PyTorch (fixtures from
//! `tools/gen_fixtures.py`).
//!
//! Tolerances: optimizers 1e-6 relative to the parameters' scale
//! (|ours − torch| ≤ 1e-6·max(1, max|torch|)) after 5 steps — an element
//! that passes near zero carries the rounding of its larger neighbours;
//! losses and their gradients 1e-5 relative + 1e-6 absolute; the LeNet SGD
//! step 1e-5 absolute on every updated weight, and the logits 1e-4 relative.

mod common;

use std::collections::HashMap;

use common::{assert_close, load, path};
use nabla_core::Tensor;
use nabla_nn::loss::{self, CrossEntropyOptions, Reduction};
use nabla_nn::optim::{Adadelta, Adagrad, Adam, Lbfgs, LineSearch, Optimizer, RMSprop, Sgd};
use nabla_nn::state_dict::{load_safetensors, load_state_dict, state_dict};
use nabla_nn::zoo::LeNet;
use nabla_nn::{Module, Parameters};

fn optimizer(meta: &HashMap<String, String>, p: Tensor) -> Box<dyn Optimizer> {
    let f = |k: &str| meta.get(k).map(|v| v.parse::<f32>().unwrap());
    let on = |k: &str| meta.get(k).is_some_and(|v| v == "1");
    let lr = f("lr").unwrap();
    match meta["kind"].as_str() {
        "SGD" => Box::new(
            Sgd::new(vec![p], lr)
                .momentum(f("momentum").unwrap_or(0.0))
                .dampening(f("dampening").unwrap_or(0.0))
                .weight_decay(f("weight_decay").unwrap_or(0.0))
                .nesterov(on("nesterov"))
                .maximize(on("maximize")),
        ),
        kind @ ("Adam" | "AdamW") => {
            let mut o = if kind == "Adam" {
                Adam::new(vec![p], lr)
            } else {
                Adam::adamw(vec![p], lr)
            };
            if let Some(wd) = f("weight_decay") {
                o = o.weight_decay(wd);
            }
            if let Some(b) = meta.get("betas") {
                let b: Vec<f32> = b.split(',').map(|v| v.parse().unwrap()).collect();
                o = o.betas(b[0], b[1]);
            }
            if let Some(e) = f("eps") {
                o = o.eps(e);
            }
            Box::new(o.amsgrad(on("amsgrad")).maximize(on("maximize")))
        }
        "RMSprop" => {
            let mut o = RMSprop::new(vec![p], lr)
                .momentum(f("momentum").unwrap_or(0.0))
                .weight_decay(f("weight_decay").unwrap_or(0.0))
                .centered(on("centered"));
            if let Some(a) = f("alpha") {
                o = o.alpha(a);
            }
            Box::new(o)
        }
        "Adagrad" => Box::new(
            Adagrad::new(vec![p], lr)
                .lr_decay(f("lr_decay").unwrap_or(0.0))
                .weight_decay(f("weight_decay").unwrap_or(0.0))
                .initial_accumulator_value(f("initial_accumulator_value").unwrap_or(0.0)),
        ),
        "Adadelta" => {
            let mut o = Adadelta::new(vec![p], lr)
                .weight_decay(f("weight_decay").unwrap_or(0.0))
                .maximize(on("maximize"));
            if let Some(r) = f("rho") {
                o = o.rho(r);
            }
            if let Some(e) = f("eps") {
                o = o.eps(e);
            }
            Box::new(o)
        }
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn optimizers_match_pytorch_after_five_steps() {
    let dir = format!("{}/../../tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("optim_"))
        .map(|n| n.trim_end_matches(".safetensors").to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 22, "optimizer fixtures missing: {names:?}");
    for name in names {
        let (t, meta) = load(&name);
        let p = t["p0"].detach().requires_grad_(true);
        let mut opt = optimizer(&meta, p.clone());
        for _ in 0..5 {
            let g = t["a"].mul(&p.detach()).unwrap().add(&t["b"]).unwrap();
            p.set_grad(Some(g));
            opt.step().unwrap();
        }
        let want = t["p5"].to_vec();
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert_close(&name, &p.to_vec(), &want, 0.0, 1e-6 * scale);
    }
}

#[test]
fn optimizer_state_round_trips() {
    let p = Tensor::ones([2]).requires_grad_(true);
    let mut a = Adam::new(vec![p.clone()], 0.1).amsgrad(true);
    p.set_grad(Some(Tensor::from_vec(vec![0.5, -1.0], [2]).unwrap()));
    a.step().unwrap();
    let q = p.detach().contiguous().unwrap().requires_grad_(true);
    let mut b = Adam::new(vec![q.clone()], 0.1).amsgrad(true);
    b.load_state(&a.state()).unwrap();
    for (p, o) in [
        (&p, &mut a as &mut dyn Optimizer),
        (&q, &mut b as &mut dyn Optimizer),
    ] {
        p.set_grad(Some(Tensor::from_vec(vec![0.25, 2.0], [2]).unwrap()));
        o.step().unwrap();
    }
    assert_eq!(p.to_vec(), q.to_vec());
    let bad = vec![("state.0.exp_avg".to_string(), Tensor::zeros([3]))];
    assert!(b
        .load_state(&bad)
        .unwrap_err()
        .to_string()
        .contains("has shape [3]"));
}

#[test]
fn losses_match_pytorch() {
    type LossFn = fn(&Tensor, &HashMap<String, Tensor>) -> Tensor;
    // each form of call, and the fixtures it is checked on (a target of
    // −100 is skipped: ignore_index's default)
    let ce_weight_smoothing: LossFn = |x, t| {
        let opts = CrossEntropyOptions {
            weight: Some(t["weight"].clone()),
            label_smoothing: 0.1,
            ..Default::default()
        };
        loss::cross_entropy_with(x, &t["target"], &opts).unwrap()
    };
    let ce_none: LossFn = |x, t| {
        let opts = CrossEntropyOptions {
            reduction: Reduction::None,
            ..Default::default()
        };
        loss::cross_entropy_with(x, &t["target"], &opts).unwrap()
    };
    let nll_weight: LossFn = |x, t| {
        let logp = x.log_softmax(1).unwrap();
        loss::nll_loss(&logp, &t["target"], Some(&t["weight"]), Reduction::Mean).unwrap()
    };
    let cases: [(&str, LossFn); 16] = [
        ("loss_mse", |x, t| {
            loss::mse_loss(x, &t["target"], Reduction::Mean).unwrap()
        }),
        ("loss_l1_sum", |x, t| {
            loss::l1_loss(x, &t["target"], Reduction::Sum).unwrap()
        }),
        ("loss_huber", |x, t| {
            loss::huber_loss(x, &t["target"], 0.5, Reduction::Mean).unwrap()
        }),
        ("loss_bce", |x, t| {
            loss::bce_loss(x, &t["target"], Reduction::Mean).unwrap()
        }),
        ("loss_bce_logits", |x, t| {
            loss::bce_with_logits(x, &t["target"], Reduction::Mean).unwrap()
        }),
        ("loss_ce", |x, t| {
            loss::cross_entropy(x, &t["target"]).unwrap()
        }),
        ("loss_ce_weight_smoothing", ce_weight_smoothing),
        ("loss_ce_ignore_smoothing", ce_weight_smoothing),
        ("loss_ce_probs", ce_weight_smoothing),
        ("loss_ce_probs_positions_none", ce_none),
        ("loss_ce_positions", |x, t| {
            let opts = CrossEntropyOptions {
                label_smoothing: 0.1,
                ..Default::default()
            };
            loss::cross_entropy_with(x, &t["target"], &opts).unwrap()
        }),
        ("loss_ce_none", ce_none),
        ("loss_ce_positions_none", ce_none),
        ("loss_nll_weight", nll_weight),
        ("loss_nll_ignore", nll_weight),
        ("loss_nll_positions", |x, t| {
            let logp = x.log_softmax(1).unwrap();
            loss::nll_loss(&logp, &t["target"], None, Reduction::Sum).unwrap()
        }),
    ];
    for (name, f) in cases {
        let (t, _) = load(name);
        let x = t["x"].detach().requires_grad_(true);
        let y = f(&x, &t);
        assert_close(name, &y.to_vec(), &t["out"].to_vec(), 1e-5, 1e-6);
        y.backward_with_grad(&t["grad_out"].reshape(y.shape()).unwrap())
            .unwrap();
        assert_close(
            &format!("{name} grad"),
            &x.grad().unwrap().to_vec(),
            &t["grad_x"].to_vec(),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn lenet_state_dict_from_pytorch_reproduces_its_logits() {
    let model = LeNet::new();
    let sd = load_safetensors(path("lenet_state_dict")).unwrap();
    load_state_dict(&model, &sd).unwrap();
    let (t, _) = load("lenet_step");
    let logits = nabla_core::no_grad(|| model.forward(&t["test_x"])).unwrap();
    assert_eq!(logits.shape(), &[100, 10]);
    assert_close(
        "logits",
        &logits.to_vec(),
        &t["logits"].to_vec(),
        1e-4,
        1e-5,
    );
}

#[test]
fn one_sgd_step_of_lenet_matches_pytorch() {
    let model = LeNet::new();
    load_state_dict(&model, &load_safetensors(path("lenet_state_dict")).unwrap()).unwrap();
    let (t, _) = load("lenet_step");
    let mut opt = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    opt.zero_grad();
    let l = loss::cross_entropy(&model.forward(&t["train_x"]).unwrap(), &t["train_y"]).unwrap();
    assert_close(
        "loss",
        &[l.item().unwrap()],
        &t["loss"].to_vec(),
        1e-5,
        1e-6,
    );
    l.backward().unwrap();
    opt.step().unwrap();
    for (name, p) in state_dict(&model) {
        let want = &t[&format!("after.{name}")];
        let worst = p
            .to_vec()
            .iter()
            .zip(want.to_vec())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: max abs diff {worst}");
    }
}

#[test]
fn schedules_match_pytorch() {
    use nabla_nn::scheduler::{LrScheduler, ReduceLrOnPlateau, Schedule};
    let (t, _) = load("schedulers");
    let cases = [
        (
            "step",
            Schedule::Step {
                step_size: 7,
                gamma: 0.5,
            },
        ),
        (
            "multistep",
            Schedule::MultiStep {
                milestones: vec![3, 10, 20],
                gamma: 0.3,
            },
        ),
        ("exponential", Schedule::Exponential { gamma: 0.9 }),
        (
            "cosine",
            Schedule::CosineAnnealing {
                t_max: 30,
                eta_min: 0.001,
            },
        ),
        (
            "linear",
            Schedule::Linear {
                start_factor: 0.1,
                end_factor: 1.0,
                total_iters: 8,
            },
        ),
        (
            "onecycle",
            Schedule::OneCycle {
                max_lr: 1.0,
                total_steps: 31,
                pct_start: 0.3,
                div_factor: 25.0,
                final_div_factor: 1e4,
                momentum: None,
            },
        ),
    ];
    for (name, schedule) in cases {
        let mut opt = Sgd::new(vec![Tensor::zeros([1]).requires_grad_(true)], 0.1);
        let mut s = LrScheduler::new(schedule, &mut opt);
        let mut lrs = vec![];
        for _ in 0..30 {
            lrs.push(opt.lr());
            s.step(&mut opt);
        }
        assert_close(name, &lrs, &t[name].to_vec(), 1e-5, 1e-8);
    }
    // OneCycleLR's default cycle_momentum: SGD's momentum, Adam's β1
    let one_cycle = Schedule::OneCycle {
        max_lr: 1.0,
        total_steps: 31,
        pct_start: 0.3,
        div_factor: 25.0,
        final_div_factor: 1e4,
        momentum: Some((0.85, 0.95)),
    };
    let param = || vec![Tensor::zeros([1]).requires_grad_(true)];
    let mut sgd = Sgd::new(param(), 0.1).momentum(0.9);
    let mut adam = Adam::new(param(), 0.1);
    for (name, opt) in [("sgd", &mut sgd as &mut dyn Optimizer), ("adam", &mut adam)] {
        let mut s = LrScheduler::new(one_cycle.clone(), opt);
        let (mut lrs, mut moms) = (vec![], vec![]);
        for _ in 0..30 {
            lrs.push(opt.lr());
            moms.push(opt.momentum().expect("SGD and Adam have a momentum"));
            s.step(opt);
        }
        assert_close(
            name,
            &lrs,
            &t[&format!("onecycle_{name}_lr")].to_vec(),
            1e-5,
            1e-8,
        );
        assert_close(
            name,
            &moms,
            &t[&format!("onecycle_{name}_momentum")].to_vec(),
            1e-6,
            0.0,
        );
    }
    let mut opt = Sgd::new(vec![Tensor::zeros([1]).requires_grad_(true)], 0.1);
    let mut plateau = ReduceLrOnPlateau::new();
    (plateau.factor, plateau.patience, plateau.cooldown) = (0.5, 2, 1);
    let lrs: Vec<f32> = t["plateau_metrics"]
        .to_vec()
        .into_iter()
        .map(|m| {
            plateau.step(m, &mut opt);
            opt.lr()
        })
        .collect();
    assert_close("plateau", &lrs, &t["plateau"].to_vec(), 1e-6, 0.0);
}

#[test]
fn norm_layers_match_pytorch() {
    use nabla_nn::{BatchNorm2d, LayerNorm};
    let (t, _) = load("batchnorm2d");
    let bn = BatchNorm2d::new_2d(3);
    bn.weight.copy_from(&t["weight"]).unwrap();
    bn.bias.copy_from(&t["bias"]).unwrap();
    let x = t["x"].detach().requires_grad_(true);
    let y = bn.forward(&x).unwrap();
    assert_close("bn out", &y.to_vec(), &t["out"].to_vec(), 1e-4, 1e-5);
    y.backward_with_grad(&t["grad_out"]).unwrap();
    assert_close(
        "bn grad_x",
        &x.grad().unwrap().to_vec(),
        &t["grad_x"].to_vec(),
        1e-4,
        1e-5,
    );
    assert_close(
        "bn grad_weight",
        &bn.weight.grad().unwrap().to_vec(),
        &t["grad_weight"].to_vec(),
        1e-4,
        1e-5,
    );
    assert_close(
        "bn grad_bias",
        &bn.bias.grad().unwrap().to_vec(),
        &t["grad_bias"].to_vec(),
        1e-4,
        1e-5,
    );
    assert_close(
        "running_mean",
        &bn.running_mean.to_vec(),
        &t["running_mean"].to_vec(),
        1e-5,
        1e-6,
    );
    assert_close(
        "running_var",
        &bn.running_var.to_vec(),
        &t["running_var"].to_vec(),
        1e-5,
        1e-6,
    );
    bn.eval();
    let y = bn.forward(&t["x"].mul_scalar(2.0).unwrap()).unwrap();
    assert_close("bn eval", &y.to_vec(), &t["out_eval"].to_vec(), 1e-4, 1e-5);

    let (t, _) = load("layernorm");
    let ln = LayerNorm::new(&[4, 6]);
    ln.weight.copy_from(&t["w"]).unwrap();
    ln.bias.copy_from(&t["b"]).unwrap();
    let x = t["x"].detach().requires_grad_(true);
    let y = ln.forward(&x).unwrap();
    assert_close("ln out", &y.to_vec(), &t["out"].to_vec(), 1e-4, 1e-5);
    y.backward_with_grad(&t["grad_out"]).unwrap();
    assert_close(
        "ln grad_x",
        &x.grad().unwrap().to_vec(),
        &t["grad_x"].to_vec(),
        1e-4,
        1e-5,
    );
    assert_close(
        "ln grad_w",
        &ln.weight.grad().unwrap().to_vec(),
        &t["grad_w"].to_vec(),
        1e-4,
        1e-5,
    );
}

/// A recurrent stack with the fixture's weights against PyTorch: outputs,
/// final states, and the gradients of the input and every parameter of
/// `out·grad_out + h_n·grad_h_n` (+ `c_n·grad_c_n` where the fixture has it).
fn check_recurrent(
    name: &str,
    kind: nabla_nn::rnn::RnnKind,
    cfg: nabla_nn::rnn::RnnConfig,
    lengths: Option<&[usize]>,
) {
    use nabla_nn::rnn::Recurrent;
    let (t, _) = load(name);
    let r = Recurrent::new(kind, cfg);
    for (pname, p) in r.named_parameters() {
        p.copy_from(&t[&pname]).unwrap();
    }
    let x = t["x"].detach().requires_grad_(true);
    let o = r.run(&x, Some(&t["h0"]), t.get("c0"), lengths).unwrap();
    let close = |what: &str, ours: &Tensor, key: &str| {
        assert_close(
            &format!("{name} {what}"),
            &ours.to_vec(),
            &t[key].to_vec(),
            1e-4,
            1e-5,
        )
    };
    close("out", &o.output, "out");
    close("h_n", &o.h_n, "h_n");
    if let Some(c) = &o.c_n {
        close("c_n", c, "c_n");
    }
    let term = |y: &Tensor, key: &str| y.mul(&t[key]).unwrap().sum_all().unwrap();
    let mut loss = term(&o.output, "grad_out")
        .add(&term(&o.h_n, "grad_h_n"))
        .unwrap();
    if let (Some(c), true) = (&o.c_n, t.contains_key("grad_c_n")) {
        loss = loss.add(&term(c, "grad_c_n")).unwrap();
    }
    loss.backward().unwrap();
    close("grad_x", &x.grad().unwrap(), "grad_x");
    for (pname, p) in r.named_parameters() {
        close(
            &format!("grad_{pname}"),
            &p.grad().unwrap(),
            &format!("grad_{pname}"),
        );
    }
}

#[test]
fn recurrent_layers_match_pytorch() {
    use nabla_nn::rnn::{RnnConfig, RnnKind};
    for (name, kind) in [
        ("rnn", RnnKind::RnnTanh),
        ("lstm", RnnKind::Lstm),
        ("gru", RnnKind::Gru),
    ] {
        let cfg = RnnConfig {
            num_layers: 2,
            bidirectional: true,
            batch_first: true,
            ..RnnConfig::new(3, 4)
        };
        check_recurrent(&format!("{name}_2layer_bidir"), kind, cfg, None);
    }
}

/// `nn.LSTMCell`, `nn.GRUCell` (no biases), `nn.RNNCell` (relu): one step
/// from given states, with the gradients of the input, the states and the
/// parameters.
#[test]
fn cells_match_pytorch() {
    use nabla_nn::rnn::{RecurrentCell, RnnKind};
    for (name, kind, bias) in [
        ("lstm", RnnKind::Lstm, true),
        ("gru", RnnKind::Gru, false),
        ("rnn_relu", RnnKind::RnnRelu, true),
    ] {
        let (t, _) = load(&format!("cell_{name}"));
        let cell = RecurrentCell::new(kind, 3, 4, bias);
        for (pname, p) in cell.named_parameters() {
            p.copy_from(&t[&pname]).unwrap();
        }
        let leaf = |k: &str| t.get(k).map(|v| v.detach().requires_grad_(true));
        let (x, h0, c0) = (leaf("x").unwrap(), leaf("h0").unwrap(), leaf("c0"));
        let (h, c) = cell.step(&x, Some(&h0), c0.as_ref()).unwrap();
        let close = |what: &str, ours: &Tensor| {
            let want = &t[what];
            assert_close(
                &format!("{name} {what}"),
                &ours.to_vec(),
                &want.to_vec(),
                1e-4,
                1e-5,
            )
        };
        close("h", &h);
        let mut loss = h.mul(&t["grad_h"]).unwrap().sum_all().unwrap();
        if let Some(c) = &c {
            close("c", c);
            loss = loss
                .add(&c.mul(&t["grad_c"]).unwrap().sum_all().unwrap())
                .unwrap();
        }
        loss.backward().unwrap();
        close("grad_x", &x.grad().unwrap());
        close("grad_h0", &h0.grad().unwrap());
        if let Some(c0) = &c0 {
            close("grad_c0", &c0.grad().unwrap());
        }
        for (pname, p) in cell.named_parameters() {
            close(&format!("grad_{pname}"), &p.grad().unwrap());
        }
    }
}

/// Relu RNNs, no biases, one and three layers, either batch order,
/// variable lengths (PyTorch's packed sequences), one step, a batch of one.
#[test]
fn more_recurrent_configurations_match_pytorch() {
    use nabla_nn::rnn::{RnnConfig, RnnKind};
    for k in 0..7 {
        let name = format!("rnn_cfg_{k}");
        let (_, meta) = load(&name);
        let num = |key: &str| meta[key].parse::<usize>().unwrap();
        let kind = match meta["kind"].as_str() {
            "rnn_relu" => RnnKind::RnnRelu,
            "rnn_tanh" => RnnKind::RnnTanh,
            "lstm" => RnnKind::Lstm,
            _ => RnnKind::Gru,
        };
        let cfg = RnnConfig {
            num_layers: num("layers"),
            bidirectional: num("bidirectional") == 1,
            batch_first: num("batch_first") == 1,
            bias: num("bias") == 1,
            ..RnnConfig::new(num("input"), num("hidden"))
        };
        let lengths: Vec<usize> = meta["lengths"]
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().unwrap())
            .collect();
        let lengths = (!lengths.is_empty()).then_some(&lengths[..]);
        check_recurrent(&name, kind, cfg, lengths);
    }
}

/// Three steps of L-BFGS (five iterations each, history 4) on
/// `0.5·Σ(a⊙p + b)² + 0.1·Σp⁴`, with fixed steps and with the strong
/// Wolfe line search: PyTorch's parameters, losses and evaluation count.
#[test]
fn lbfgs_matches_pytorch() {
    for (name, search) in [
        ("lbfgs", LineSearch::None),
        ("lbfgs_strong_wolfe", LineSearch::StrongWolfe),
    ] {
        let (t, meta) = load(name);
        let p = t["p0"].detach().requires_grad_(true);
        let lr: f32 = meta["lr"].parse().unwrap();
        let mut opt = Lbfgs::new(vec![p.clone()], lr)
            .max_iter(5)
            .history_size(4)
            .line_search(search);
        let (a, b) = (t["a"].clone(), t["b"].clone());
        let losses: Vec<f32> = (0..3)
            .map(|_| {
                opt.step_with(|| {
                    p.zero_grad();
                    let r = a.mul(&p)?.add(&b)?;
                    let loss = r
                        .mul(&r)?
                        .sum_all()?
                        .mul_scalar(0.5)?
                        .add(&p.powf(4.0)?.sum_all()?.mul_scalar(0.1)?)?;
                    loss.backward()?;
                    Ok(loss)
                })
                .unwrap()
            })
            .collect();
        assert_close(
            &format!("{name} losses"),
            &losses,
            &t["losses"].to_vec(),
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("{name} parameters"),
            &p.to_vec(),
            &t["p3"].to_vec(),
            1e-4,
            1e-4,
        );
        assert_eq!(
            opt.func_evals() as f32,
            t["func_evals"].to_vec()[0],
            "{name}: evaluations"
        );
    }
}
