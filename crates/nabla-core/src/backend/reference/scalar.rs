//! The reference backend's scalar formulas, in f64: each unary op and its
//! derivative, each binary op, and one element's optimizer update.

use crate::backend::{BinaryOp, UnaryOp, UpdateRule};

/// erf in f64: its Maclaurin series below 3, the continued fraction of
/// erfc above (both to about 1e-15).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let r = if z < 3.0 {
        // erf z = 2/√π Σ (−1)ⁿ z^(2n+1) / (n! (2n+1))
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc z = e^(−z²)/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …))))
        let mut f = z;
        for k in (1..60).rev() {
            f = z + (k as f64 / 2.0) / f;
        }
        1.0 - (-z * z).exp() / std::f64::consts::PI.sqrt() / f
    };
    r.copysign(x)
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln(1 + eˣ) without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
const GELU_C: f64 = 0.797_884_560_802_865_4; // √(2/π)

pub(super) fn unary(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    match op {
        Abs => x.abs(),
        Exp => x.exp(),
        Expm1 => x.exp_m1(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sqrt => x.sqrt(),
        Tanh => x.tanh(),
        Sigmoid => sigmoid(x),
        Relu if x < 0.0 => 0.0,
        Relu => x,
        LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                x * s as f64
            }
        }
        Elu(a) => {
            if x > 0.0 {
                x
            } else {
                a as f64 * x.exp_m1()
            }
        }
        Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
        Gelu => x * normal_cdf(x),
        GeluTanh => 0.5 * x * (1.0 + (GELU_C * (x + 0.044715 * x.powi(3))).tanh()),
        Silu => x * sigmoid(x),
        Mish => x * softplus(x).tanh(),
        Softplus { beta, threshold } => {
            let bx = beta as f64 * x;
            if bx > threshold as f64 {
                x
            } else {
                softplus(bx) / beta as f64
            }
        }
        Clamp { .. } if x.is_nan() => x,
        Clamp { min, max } => x.max(min as f64).min(max as f64),
        // PyTorch's 1/√x for −½ (so (−0)^−½ = −∞), 1/x for −1, …
        Powf(-0.5) => 1.0 / x.sqrt(),
        Powf(0.5) => x.sqrt(),
        Powf(-1.0) => 1.0 / x,
        Powf(-2.0) => 1.0 / (x * x),
        Powf(e) => x.powf(e as f64),
        Affine { mul, add: 0.0 } => x * mul as f64,
        Affine { mul, add } => x * mul as f64 + add as f64,
        DivScalar(v) => x / v as f64,
    }
}

/// `dy/dx` of a unary op, or None where the gradient is selected to 0.
pub(super) fn derivative(op: UnaryOp, x: f64, y: f64) -> Option<f64> {
    use UnaryOp::*;
    let d = match op {
        Abs => x.signum() * (x != 0.0) as u8 as f64,
        Exp => y,
        Expm1 => x.exp(),
        Log => 1.0 / x,
        Log1p => 1.0 / (1.0 + x),
        Sqrt => 0.5 / y,
        Tanh => 1.0 - y * y,
        Sigmoid => y * (1.0 - y),
        Relu => return (x > 0.0 || x.is_nan()).then_some(1.0),
        LeakyRelu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s as f64
            }
        }
        Elu(a) => {
            if x > 0.0 {
                1.0
            } else {
                a as f64 * x.exp()
            }
        }
        Selu => SELU_SCALE * if x > 0.0 { 1.0 } else { SELU_ALPHA * x.exp() },
        Gelu => normal_cdf(x) + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt(),
        GeluTanh => {
            let t = (GELU_C * (x + 0.044715 * x.powi(3))).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x)
        }
        Silu => sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))),
        Mish => {
            let t = softplus(x).tanh();
            t + x * sigmoid(x) * (1.0 - t * t)
        }
        Softplus { beta, threshold } => {
            let bx = beta as f64 * x;
            if bx > threshold as f64 {
                1.0
            } else {
                sigmoid(bx)
            }
        }
        Clamp { min, max } => return (x > min as f64 && x < max as f64).then_some(1.0),
        Powf(0.0) => return None,
        Powf(e) => e as f64 * unary(Powf(e - 1.0), x),
        Affine { mul, .. } => mul as f64,
        DivScalar(v) => 1.0 / v as f64,
    };
    Some(d)
}

pub(super) fn binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    use BinaryOp::*;
    let flag = |c: bool| c as u8 as f64;
    match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div => a / b,
        Maximum => {
            if a.is_nan() || a > b {
                a
            } else {
                b
            }
        }
        Minimum => {
            if a.is_nan() || a < b {
                a
            } else {
                b
            }
        }
        Pow => a.powf(b),
        Eq => flag(a == b),
        Ne => flag(a != b),
        Gt => flag(a > b),
        Ge => flag(a >= b),
        Lt => flag(a < b),
        Le => flag(a <= b),
        PowGradBase if b == 0.0 => 0.0,
        PowGradBase => b * a.powf(b - 1.0),
        PowGradExponent if a == 0.0 && b >= 0.0 => 0.0,
        PowGradExponent => a.powf(b) * a.ln(),
        ShareOfLarger if a < b => 0.0,
        ShareOfLarger if a == b => 0.5,
        ShareOfLarger => 1.0,
        ScaleByShare if a == 0.0 => 0.0,
        ScaleByShare => a * b,
        HalfQuotientOrZero if b == 0.0 => 0.0,
        HalfQuotientOrZero => a / (2.0 * b),
    }
}

/// One element's optimizer update, in f64 (the formulas as PyTorch's
/// documentation writes them).
pub(super) fn step(rule: &UpdateRule, w: &mut f64, g: f64, b: &mut [f64]) {
    match *rule {
        UpdateRule::Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            first_step,
        } => {
            let g = g + weight_decay as f64 * *w;
            let d = match b {
                [] => g,
                [buf] => {
                    let (mu, damp) = (momentum as f64, dampening as f64);
                    *buf = if first_step {
                        g
                    } else {
                        mu * *buf + (1.0 - damp) * g
                    };
                    if nesterov {
                        g + mu * *buf
                    } else {
                        *buf
                    }
                }
                _ => unreachable!("one buffer at most"),
            };
            *w -= lr as f64 * d;
        }
        UpdateRule::Adam {
            lr,
            step_size,
            bc2_sqrt,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
        } => {
            let (b1, b2, wd) = (beta1 as f64, beta2 as f64, weight_decay as f64);
            let mut g = g;
            match decoupled {
                true => *w *= 1.0 - lr as f64 * wd,
                false => g += wd * *w,
            }
            b[0] = b1 * b[0] + (1.0 - b1) * g;
            b[1] = b2 * b[1] + (1.0 - b2) * g * g;
            if b.len() == 3 {
                b[2] = b[2].max(b[1]);
            }
            let v_hat = b[b.len() - 1];
            *w -= step_size as f64 * b[0] / (v_hat.sqrt() / bc2_sqrt as f64 + eps as f64);
        }
        UpdateRule::RmsProp {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
        } => {
            let (a, g) = (alpha as f64, g + weight_decay as f64 * *w);
            b[0] = a * b[0] + (1.0 - a) * g * g;
            let mut d = b[0];
            if centered {
                b[1] = a * b[1] + (1.0 - a) * g;
                d -= b[1] * b[1];
            }
            let d = d.sqrt() + eps as f64;
            match momentum > 0.0 {
                true => {
                    let buf = b.last_mut().expect("momentum_buffer");
                    *buf = momentum as f64 * *buf + g / d;
                    *w -= lr as f64 * *buf;
                }
                false => *w -= lr as f64 * g / d,
            }
        }
        UpdateRule::Adadelta {
            lr,
            rho,
            eps,
            weight_decay,
        } => {
            let (rho, eps, g) = (rho as f64, eps as f64, g + weight_decay as f64 * *w);
            b[0] = rho * b[0] + (1.0 - rho) * g * g;
            let delta = (b[1] + eps).sqrt() / (b[0] + eps).sqrt() * g;
            b[1] = rho * b[1] + (1.0 - rho) * delta * delta;
            *w -= lr as f64 * delta;
        }
        UpdateRule::Adagrad {
            lr,
            eps,
            weight_decay,
        } => {
            let g = g + weight_decay as f64 * *w;
            b[0] += g * g;
            *w -= lr as f64 * g / (b[0].sqrt() + eps as f64);
        }
    }
}
