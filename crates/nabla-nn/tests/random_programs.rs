//! Random programs against PyTorch.
//!
//! `tools/gen_random_programs.py` draws chains of ops (views, elementwise,
//! reductions, softmax, matmul, conv2d, pooling, cat/gather, every loss),
//! runs them in PyTorch in float32 and float64 and writes
//! `tests/fixtures/random_programs.txt.gz` (its docstring gives the format).
//! This test replays every program here and compares every intermediate
//! value and every input's gradient with the float64 reference.
//!
//! Tolerance, per tensor: `|got − want| ≤ 16·err + 1e-4·|want| + 1e-6·scale`,
//! where `err` is the largest deviation from float64 of PyTorch's float32
//! run and of float64 runs with float32-sized noise in every step's value
//! and gradient (how ill-conditioned this value is), and `scale` the largest magnitude in the
//! reference, plus 1e-15 (float64's own resolution near 1). Where float64's value
//! is NaN or infinite, nabla must give the same; where only PyTorch's
//! float32 run went non-finite (an overflow), nabla may give any non-finite
//! value or the finite one.
//!
//! `NABLA_RANDOM_PROGRAMS=FILE` replays another set (a new seed, more
//! programs) instead of the committed one; `NABLA_RANDOM_PROGRAM_SHOW=N`
//! prints program N's values and gradients.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use nabla_core::{Conv2dParams, Pool2d, Result, Tensor};
use nabla_nn::loss::{self, CrossEntropyOptions, Reduction};

/// What a tensor must hold.
struct Expected {
    /// how far PyTorch's float32 run strayed from float64
    err: f64,
    /// positions where float32 overflowed and float64 did not: any
    /// non-finite answer, or the finite one, is right
    either: Vec<usize>,
    values: Vec<f32>,
}

fn expected<'a>(mut w: impl Iterator<Item = &'a str>) -> Expected {
    let err = w.next().unwrap().parse().unwrap();
    let either = match w.next().unwrap() {
        "-" => vec![],
        v => v.split(',').map(|i| i.parse().unwrap()).collect(),
    };
    Expected {
        err,
        either,
        values: floats(w),
    }
}

/// (id, op, input ids, parameters)
type Step = (usize, String, Vec<usize>, HashMap<String, String>);

/// One program as read from the file.
#[derive(Default)]
struct Program {
    number: usize,
    /// id → (takes a gradient, shape, values)
    inputs: Vec<(usize, bool, Vec<usize>, Vec<f32>)>,
    steps: Vec<Step>,
    /// id → (shape, expected)
    values: Vec<(usize, Vec<usize>, Expected)>,
    upstream: Vec<f32>,
    /// id → expected
    grads: Vec<(usize, Expected)>,
}

fn shape(s: &str) -> Vec<usize> {
    match s {
        "-" => vec![],
        _ => s.split('x').map(|d| d.parse().unwrap()).collect(),
    }
}

fn floats<'a>(it: impl Iterator<Item = &'a str>) -> Vec<f32> {
    it.map(|v| v.parse().unwrap_or_else(|_| panic!("bad number {v}")))
        .collect()
}

fn read_programs(path: &str) -> Vec<Program> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines();
    let mut all = Vec::new();
    let mut p = Program::default();
    for line in lines {
        let line = line.unwrap();
        let mut w = line.split(' ');
        let tag = w.next().unwrap();
        match tag {
            "P" => p.number = w.next().unwrap().parse().unwrap(),
            "I" => {
                let id = w.next().unwrap().parse().unwrap();
                let grad = w.next().unwrap() == "g";
                let s = shape(w.next().unwrap());
                p.inputs.push((id, grad, s, floats(w)));
            }
            "S" => {
                let id = w.next().unwrap().parse().unwrap();
                let op = w.next().unwrap().to_string();
                let ids = w
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|v| v.parse().unwrap())
                    .collect();
                let params = w
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                p.steps.push((id, op, ids, params));
            }
            "V" => {
                let id = w.next().unwrap().parse().unwrap();
                let s = shape(w.next().unwrap());
                p.values.push((id, s, expected(w)));
            }
            "U" => p.upstream = floats(w),
            "G" => {
                let id = w.next().unwrap().parse().unwrap();
                p.grads.push((id, expected(w)));
            }
            "E" => all.push(std::mem::take(&mut p)),
            _ => panic!("{path}: unknown line {line:.40}"),
        }
    }
    all
}

/// Parameter accessors.
struct Params<'a>(&'a HashMap<String, String>);

impl Params<'_> {
    fn get(&self, k: &str) -> &str {
        self.0
            .get(k)
            .unwrap_or_else(|| panic!("missing parameter {k}"))
    }
    fn f(&self, k: &str) -> f32 {
        self.get(k).parse().unwrap()
    }
    fn i(&self, k: &str) -> isize {
        self.get(k).parse().unwrap()
    }
    fn ints(&self, k: &str) -> Vec<isize> {
        match self.get(k) {
            "" => vec![],
            v => v.split(',').map(|d| d.parse().unwrap()).collect(),
        }
    }
    fn pair(&self, k: &str) -> (usize, usize) {
        let v = self.ints(k);
        (v[0] as usize, v[1] as usize)
    }
    fn usizes(&self, k: &str) -> Vec<usize> {
        self.ints(k).into_iter().map(|d| d as usize).collect()
    }
    fn flag(&self, k: &str) -> bool {
        self.get(k) == "1"
    }
    fn reduction(&self) -> Reduction {
        match self.0.get("reduction").map(String::as_str) {
            Some("sum") => Reduction::Sum,
            Some("none") => Reduction::None,
            _ => Reduction::Mean,
        }
    }
}

/// Runs one step: the same table as `apply` in the generator.
fn apply(op: &str, xs: &[Tensor], p: &Params) -> Result<Tensor> {
    let x = &xs[0];
    let dims = || p.ints("dims");
    Ok(match op {
        "relu" => x.relu()?,
        "sigmoid" => x.sigmoid()?,
        "tanh" => x.tanh()?,
        "exp" => x.exp()?,
        "abs" => x.abs()?,
        "neg" => x.neg()?,
        "log" => x.log()?,
        "log1p" => x.log1p()?,
        "expm1" => x.expm1()?,
        "sqrt" => x.sqrt()?,
        "gelu" => x.gelu()?,
        "gelu_tanh" => x.gelu_tanh()?,
        "silu" => x.silu()?,
        "mish" => x.mish()?,
        "selu" => x.selu()?,
        "elu" => x.elu(p.f("alpha"))?,
        "leaky_relu" => x.leaky_relu(p.f("slope"))?,
        "softplus" => x.softplus(p.f("beta"), p.f("threshold"))?,
        "clamp" => x.clamp(p.f("lo"), p.f("hi"))?,
        "powf" => x.powf(p.f("e"))?,
        "affine" => x.mul_scalar(p.f("mul"))?.add_scalar(p.f("add"))?,
        "add" => x.add(&xs[1])?,
        "sub" => x.sub(&xs[1])?,
        "mul" => x.mul(&xs[1])?,
        "div" => x.div(&xs[1])?,
        "maximum" => x.maximum(&xs[1])?,
        "minimum" => x.minimum(&xs[1])?,
        "pow" => x.pow(&xs[1])?,
        "where" => Tensor::where_cond(&xs[0], &xs[1], &xs[2])?,
        "masked_fill" => x.masked_fill(&xs[1], p.f("value"))?,
        "permute" => x.permute(&p.usizes("perm"))?,
        "transpose" => x.transpose(p.i("d0"), p.i("d1"))?,
        "reshape" => x.reshape(p.usizes("shape"))?,
        "narrow" => x.narrow(p.i("dim"), p.i("start") as usize, p.i("len") as usize)?,
        "unsqueeze" => x.unsqueeze(p.i("dim"))?,
        "expand" => x.expand(p.usizes("shape"))?,
        "flatten" => x.flatten(p.i("start"), p.i("end"))?,
        "sum" => x.sum(&dims(), p.flag("keepdim"))?,
        "mean" => x.mean(&dims(), p.flag("keepdim"))?,
        "max" => x.max(&dims(), p.flag("keepdim"))?,
        "min" => x.min(&dims(), p.flag("keepdim"))?,
        "var" => x.var(&dims(), p.i("correction") as usize, p.flag("keepdim"))?,
        "std" => x.std(&dims(), p.i("correction") as usize, p.flag("keepdim"))?,
        "softmax" => x.softmax(p.i("dim"))?,
        "log_softmax" => x.log_softmax(p.i("dim"))?,
        "matmul" => x.matmul(&xs[1])?,
        "linear" => x.linear(&xs[1], xs.get(2))?,
        "conv2d" => {
            let params = Conv2dParams {
                stride: p.pair("stride"),
                padding: p.pair("padding"),
                dilation: p.pair("dilation"),
                groups: p.i("groups") as usize,
                same: false,
            };
            x.conv2d(&xs[1], xs.get(2), params)?
        }
        "max_pool2d" | "avg_pool2d" => {
            let window = Pool2d {
                kernel: p.pair("kernel"),
                stride: p.pair("stride"),
                padding: p.pair("padding"),
                ceil_mode: p.flag("ceil"),
                count_include_pad: op == "avg_pool2d" && p.flag("count_pad"),
            };
            match op {
                "max_pool2d" => x.max_pool2d(window)?,
                _ => x.avg_pool2d(window)?,
            }
        }
        "cat" => Tensor::cat(xs, p.i("dim"))?,
        "stack" => Tensor::stack(xs, p.i("dim"))?,
        "gather" => x.gather(p.i("dim"), &xs[1])?,
        "index_select" => x.index_select(p.i("dim"), &xs[1])?,
        "cross_entropy" | "soft_cross_entropy" => {
            let opts = CrossEntropyOptions {
                weight: xs.get(2).cloned(),
                label_smoothing: p.f("smoothing"),
                reduction: p.reduction(),
                ..Default::default()
            };
            loss::cross_entropy_with(x, &xs[1], &opts)?
        }
        "nll_loss" => loss::nll_loss(x, &xs[1], xs.get(2), p.reduction())?,
        "mse_loss" => loss::mse_loss(x, &xs[1], p.reduction())?,
        "l1_loss" => loss::l1_loss(x, &xs[1], p.reduction())?,
        "huber_loss" => loss::huber_loss(x, &xs[1], p.f("delta"), p.reduction())?,
        "bce_loss" => loss::bce_loss(x, &xs[1], p.reduction())?,
        "bce_with_logits" => loss::bce_with_logits(x, &xs[1], p.reduction())?,
        _ => panic!("unknown op {op}"),
    })
}

/// The first element outside the tolerance, as a message.
fn compare(what: &str, got: &[f32], want: &Expected) -> Option<String> {
    let Expected {
        err,
        either,
        values: want,
    } = want;
    if got.len() != want.len() {
        return Some(format!("{what}: {} values, want {}", got.len(), want.len()));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f64, |m, &v| m.max(v.abs() as f64));
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        // (1e-15, about float64's epsilon: PyTorch's float64 reference
        // itself gives 0 for ln(1 + 1e-17), 1 + erf(−7), … where nabla's
        // float32 ln_1p and erfc keep those digits)
        let tol = 16.0 * err + 1e-4 * (w.abs() as f64) + 1e-6 * scale + 1e-15;
        let ok = if !g.is_finite() && either.contains(&k) {
            true
        } else if !w.is_finite() {
            (w.is_nan() && g.is_nan()) || g == w
        } else if !g.is_finite() {
            false
        } else {
            ((g as f64) - (w as f64)).abs() <= tol
        };
        if !ok {
            return Some(format!(
                "{what}[{k}]: nabla {g:e}, PyTorch (f64) {w:e}, err {err:e}, scale {scale:e}"
            ));
        }
    }
    None
}

/// Replays `p`; the mismatches (empty when it agrees).
fn replay(p: &Program) -> Vec<String> {
    let mut env: HashMap<usize, Tensor> = HashMap::new();
    let mut leaves = Vec::new();
    for (id, grad, s, v) in &p.inputs {
        let t = Tensor::from_vec(v.clone(), s.clone())
            .unwrap()
            .requires_grad_(*grad);
        if *grad {
            leaves.push((*id, t.clone()));
        }
        env.insert(*id, t);
    }
    let mut bad = Vec::new();
    for (id, op, ids, params) in &p.steps {
        let xs: Vec<Tensor> = ids.iter().map(|i| env[i].clone()).collect();
        match apply(op, &xs, &Params(params)) {
            Ok(y) => {
                env.insert(*id, y);
            }
            Err(e) => return vec![format!("step {id} ({op}) failed: {e}")],
        }
    }
    if show(p) {
        for (id, op, _, _) in &p.steps {
            eprintln!("step {id} {op}: {:?}", env[id].to_vec());
        }
    }
    let step_op = |id: usize| &p.steps.iter().find(|s| s.0 == id).unwrap().1;
    for (id, s, want) in &p.values {
        let y = &env[id];
        if y.shape() != s.as_slice() {
            bad.push(format!(
                "step {id} ({}): shape {:?}, want {s:?}",
                step_op(*id),
                y.shape()
            ));
        } else if let Some(m) = compare(&format!("step {id} ({})", step_op(*id)), &y.to_vec(), want)
        {
            bad.push(m);
        }
    }
    if !bad.is_empty() {
        return bad;
    }
    let last = &env[&p.steps.last().unwrap().0];
    if last.requires_grad() {
        let up = Tensor::from_vec(p.upstream.clone(), last.shape()).unwrap();
        if let Err(e) = last
            .mul(&up)
            .and_then(|l| l.sum_all())
            .and_then(|l| l.backward())
        {
            return vec![format!("backward failed: {e}")];
        }
    }
    for (id, want) in &p.grads {
        let t = &leaves.iter().find(|l| l.0 == *id).unwrap().1;
        let got = t.grad().map_or(vec![0.0; t.numel()], |g| g.to_vec());
        if show(p) {
            eprintln!("grad of input {id}: {got:?}");
        }
        if let Some(m) = compare(&format!("grad of input {id}"), &got, want) {
            bad.push(m);
        }
    }
    bad
}

/// Whether `NABLA_RANDOM_PROGRAM_SHOW` names this program: its values
/// and gradients are then printed, to set beside PyTorch's.
fn show(p: &Program) -> bool {
    std::env::var("NABLA_RANDOM_PROGRAM_SHOW").is_ok_and(|v| v == p.number.to_string())
}

/// A program as the generator wrote its steps, for a failure message.
fn describe(p: &Program) -> String {
    let mut s = String::new();
    for (id, grad, shape, _) in &p.inputs {
        s += &format!(
            "  input {id} {shape:?}{}\n",
            if *grad { " (grad)" } else { "" }
        );
    }
    for (id, op, ids, params) in &p.steps {
        let mut kv: Vec<_> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv.sort();
        s += &format!("  {id} = {op}({ids:?}) {}\n", kv.join(" "));
    }
    s
}

#[test]
fn random_programs_agree_with_pytorch() {
    let path = std::env::var("NABLA_RANDOM_PROGRAMS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/random_programs.txt.gz"
        )
        .to_string()
    });
    let programs = read_programs(&path);
    assert!(!programs.is_empty(), "{path}: no programs");
    let mut failures = Vec::new();
    for p in &programs {
        // (a panic is a failure of that program, reported with the rest)
        let bad = std::panic::catch_unwind(|| replay(p))
            .unwrap_or_else(|e| vec![format!("panicked: {:?}", e.downcast_ref::<String>())]);
        if !bad.is_empty() {
            failures.push(format!(
                "program {}:\n{}  {}",
                p.number,
                describe(p),
                bad.join("\n  ")
            ));
        }
    }
    let ops: std::collections::BTreeSet<&str> = programs
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.1.as_str()))
        .collect();
    eprintln!("{} programs, {} ops: {ops:?}", programs.len(), ops.len());
    assert!(
        failures.is_empty(),
        "{} of {} programs disagree with PyTorch:\n{}",
        failures.len(),
        programs.len(),
        failures[..failures.len().min(50)].join("\n")
    );
}
