//! Gradient checking: analytic gradients from `backward()` against central
//! finite differences.
//!
//! The forward passes run in f32 (the engine's type); the check projects the
//! output onto a fixed random direction `r` and differences the scalar
//! `L = Σ y·r` in f64: `∂L/∂x_j ≈ (L(x + ε e_j) − L(x − ε e_j)) / 2ε`.
//! With ε = 1e-2 and inputs of order 1, truncation error is ~1e-5 and
//! rounding error ~1e-4, well inside the default tolerances, while a wrong
//! rule is off by O(1). Non-smooth ops must be checked at inputs further than
//! ε from their kinks.

use crate::{no_grad, Generator, Result, Tensor};

/// Step and tolerances of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-2,
            atol: 5e-3,
            rtol: 1e-2,
        }
    }
}

fn project(y: &Tensor, r: &[f32]) -> f64 {
    y.to_vec()
        .iter()
        .zip(r)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Checks `f`'s gradients with respect to every input. Returns a message
/// naming the input, the element and both values at the first mismatch.
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> std::result::Result<(), String> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            Tensor::from_vec(t.to_vec(), t.shape())
                .unwrap()
                .requires_grad_(true)
        })
        .collect();
    let y = f(&leaves).map_err(|e| format!("forward failed: {e}"))?;
    let mut gen = Generator::new(0x5eed);
    let r: Vec<f32> = (0..y.numel()).map(|_| gen.uniform() * 2.0 - 1.0).collect();
    let rt = Tensor::from_vec(r.clone(), y.shape()).unwrap();
    y.mul(&rt)
        .and_then(|l| l.sum_all())
        .and_then(|l| l.backward())
        .map_err(|e| format!("backward failed: {e}"))?;

    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = match leaf.grad() {
            Some(g) => g.to_vec(),
            None => vec![0.0; leaf.numel()],
        };
        let base = leaf.to_vec();
        for j in 0..base.len() {
            let eval = |delta: f64| -> std::result::Result<f64, String> {
                let mut v = base.clone();
                v[j] = (v[j] as f64 + delta) as f32;
                let mut args = leaves.iter().map(|t| t.detach()).collect::<Vec<_>>();
                args[i] = Tensor::from_vec(v, leaf.shape()).unwrap();
                let y = no_grad(|| f(&args)).map_err(|e| e.to_string())?;
                Ok(project(&y, &r))
            };
            // Use the step actually representable in f32.
            let plus = (base[j] as f64 + opts.eps) as f32 as f64 - base[j] as f64;
            let minus = base[j] as f64 - (base[j] as f64 - opts.eps) as f32 as f64;
            let numeric = (eval(plus)? - eval(-minus)?) / (plus + minus);
            let a = analytic[j] as f64;
            if (a - numeric).abs() > opts.atol + opts.rtol * numeric.abs() {
                return Err(format!(
                    "input {i} (shape {:?}), element {j}: analytic {a:.6} vs numeric {numeric:.6}",
                    leaf.shape()
                ));
            }
        }
    }
    Ok(())
}

/// Random test input in ±[0.1, 1.1): non-zero, of order one, from a seed.
pub fn rand_input(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    let n = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            let m = 0.1 + g.uniform();
            if g.uniform() < 0.5 {
                -m
            } else {
                m
            }
        })
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// Values `0..n` shuffled, scaled to be spread apart by `gap` (for max-like
/// ops, whose ties and kinks a finite difference must not cross).
pub fn distinct_input(shape: &[usize], seed: u64, gap: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * gap).collect();
    Generator::new(seed).shuffle(&mut v);
    Tensor::from_vec(v, shape).unwrap()
}
