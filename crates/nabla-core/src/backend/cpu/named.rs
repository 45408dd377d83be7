//! The named elementwise ops on the CPU: each [`UnaryOp`] and [`BinaryOp`]
//! turned into the closure its loop runs. The `match` sits outside the
//! loop, so every arm compiles to its own vectorized loop, as a closure
//! written at the call site did.

use super::elementwise::{binary as broadcast, map3, unary as map};
use super::math::{normal_cdf, normal_pdf, sigmoid, softplus, tanh};
use crate::backend::{BinaryOp, UnaryOp};
use crate::layout::Layout;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

/// `x^e`, with PyTorch's special exponents computed as it does (they are
/// faster, and differ from `powf` in the sign of an infinite result:
/// `(−0)^−½` is `1/√−0 = −∞` there, `+∞` for IEEE `pow`).
fn pow_scalar(x: f32, e: f32) -> f32 {
    match e {
        0.5 => x.sqrt(),
        2.0 => x * x,
        3.0 => x * x * x,
        -0.5 => 1.0 / x.sqrt(),
        -1.0 => 1.0 / x,
        -2.0 => 1.0 / (x * x),
        _ => x.powf(e),
    }
}

fn gelu_tanh_inner(x: f32) -> f32 {
    (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()
}

pub fn unary(op: UnaryOp, d: &[f32], l: &Layout) -> Vec<f32> {
    use UnaryOp::*;
    match op {
        Abs => map(d, l, f32::abs),
        Exp => map(d, l, f32::exp),
        Expm1 => map(d, l, f32::exp_m1),
        Log => map(d, l, f32::ln),
        Log1p => map(d, l, f32::ln_1p),
        Sqrt => map(d, l, f32::sqrt),
        // one polynomial exp, or a polynomial below |x| = 1/4 (libm's
        // tanhf costs several times more); relative error below 4e-7
        Tanh => map(d, l, tanh),
        Sigmoid => map(d, l, |x| {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            }
        }),
        // written so that a NaN passes through, as in PyTorch (f32::max
        // would turn it into 0 and hide a diverging network)
        Relu => map(d, l, |x| if x < 0.0 { 0.0 } else { x }),
        LeakyRelu(s) => map(d, l, move |x| if x > 0.0 { x } else { x * s }),
        Elu(a) => map(d, l, move |x| if x > 0.0 { x } else { a * x.exp_m1() }),
        Selu => map(d, l, |x| {
            SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() }
        }),
        Gelu => map(d, l, |x| x * normal_cdf(x)),
        GeluTanh => map(d, l, |x| 0.5 * x * (1.0 + gelu_tanh_inner(x))),
        Silu => map(d, l, |x| x * sigmoid(x)),
        Mish => map(d, l, |x| x * softplus(x).tanh()),
        Softplus { beta, threshold } => map(d, l, move |x| {
            let bx = beta * x;
            if bx > threshold {
                x
            } else {
                softplus(bx) / beta
            }
        }),
        // (f32::max would turn a NaN into min; PyTorch keeps it)
        Clamp { min, max } => map(
            d,
            l,
            move |x| {
                if x.is_nan() {
                    x
                } else {
                    x.max(min).min(max)
                }
            },
        ),
        Powf(e) => map(d, l, move |x| pow_scalar(x, e)),
        // (no `+ 0.0` for a plain product: it would turn −0 into +0)
        Affine { mul, add: 0.0 } => map(d, l, move |x| x * mul),
        Affine { mul, add } => map(d, l, move |x| x * mul + add),
        DivScalar(v) => map(d, l, move |x| x / v),
    }
}

/// `dx = g · f'(x)` (or selected) over contiguous slices of one length.
pub fn unary_grad(op: UnaryOp, g: &[f32], x: &[f32], y: &[f32]) -> Vec<f32> {
    use UnaryOp::*;
    // the gradient passes where `passes(x)` and is 0 elsewhere — selected,
    // not multiplied by 0, so an infinite or NaN upstream gradient stops
    fn select(
        g: &[f32],
        x: &[f32],
        y: &[f32],
        passes: impl Fn(f32) -> bool + Sync + Send,
    ) -> Vec<f32> {
        map3(g, x, y, |g, x, _| if passes(x) { g } else { 0.0 })
    }
    fn times(
        g: &[f32],
        x: &[f32],
        y: &[f32],
        df: impl Fn(f32, f32) -> f32 + Sync + Send,
    ) -> Vec<f32> {
        map3(g, x, y, |g, x, y| g * df(x, y))
    }
    match op {
        Abs => times(g, x, y, |x, _| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }),
        Exp => times(g, x, y, |_, y| y),
        Expm1 => times(g, x, y, |x, _| x.exp()),
        Log => times(g, x, y, |x, _| 1.0 / x),
        Log1p => times(g, x, y, |x, _| 1.0 / (1.0 + x)),
        Sqrt => times(g, x, y, |_, y| 0.5 / y),
        Tanh => times(g, x, y, |_, y| 1.0 - y * y),
        Sigmoid => times(g, x, y, |_, y| y * (1.0 - y)),
        Relu => select(g, x, y, |x| x > 0.0 || x.is_nan()),
        LeakyRelu(s) => times(g, x, y, move |x, _| if x > 0.0 { 1.0 } else { s }),
        Elu(a) => times(g, x, y, move |x, _| if x > 0.0 { 1.0 } else { a * x.exp() }),
        Selu => times(g, x, y, |x, _| {
            if x > 0.0 {
                SELU_SCALE
            } else {
                SELU_SCALE * SELU_ALPHA * x.exp()
            }
        }),
        Gelu => times(g, x, y, |x, _| normal_cdf(x) + x * normal_pdf(x)),
        GeluTanh => times(g, x, y, |x, _| {
            let t = gelu_tanh_inner(x);
            0.5 * (1.0 + t)
                + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
        }),
        Silu => times(g, x, y, |x, _| {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }),
        Mish => times(g, x, y, |x, _| {
            let t = softplus(x).tanh();
            t + x * sigmoid(x) * (1.0 - t * t)
        }),
        Softplus { beta, threshold } => times(g, x, y, move |x, _| {
            let bx = beta * x;
            if bx > threshold {
                1.0
            } else {
                sigmoid(bx)
            }
        }),
        Clamp { min, max } => select(g, x, y, move |x| x > min && x < max),
        // x⁰ = 1 has derivative 0 everywhere, whatever arrives from above
        Powf(0.0) => select(g, x, y, |_| false),
        Powf(e) => times(g, x, y, move |x, _| e * pow_scalar(x, e - 1.0)),
        Affine { mul, .. } => map3(g, x, y, move |g, _, _| g * mul),
        DivScalar(v) => map3(g, x, y, move |g, _, _| g / v),
    }
}

/// The share of the gradient that goes to the first of (x, y) when the
/// output is the larger one: none if y is larger, half on a tie, else all
/// (a NaN on either side gives both all of it, as in PyTorch).
fn share_of_larger(x: f32, y: f32) -> f32 {
    if x < y {
        0.0
    } else if x == y {
        0.5
    } else {
        1.0
    }
}

pub fn binary(
    op: BinaryOp,
    a: &[f32],
    la: &Layout,
    b: &[f32],
    lb: &Layout,
    shape: &[usize],
) -> Vec<f32> {
    use BinaryOp::*;
    // (a macro, not a helper taking `fn` pointers: each arm's closure must
    // be inlined into its own loop)
    macro_rules! f {
        ($f:expr) => {
            broadcast(a, la, b, lb, shape, $f)
        };
    }
    match op {
        Add => f!(|a, b| a + b),
        Sub => f!(|a, b| a - b),
        Mul => f!(|a, b| a * b),
        Div => f!(|a, b| a / b),
        Maximum => f!(|a, b| if a.is_nan() || a > b { a } else { b }),
        Minimum => f!(|a, b| if a.is_nan() || a < b { a } else { b }),
        Pow => f!(f32::powf),
        Eq => f!(|a, b| (a == b) as u8 as f32),
        Ne => f!(|a, b| (a != b) as u8 as f32),
        Gt => f!(|a, b| (a > b) as u8 as f32),
        Ge => f!(|a, b| (a >= b) as u8 as f32),
        Lt => f!(|a, b| (a < b) as u8 as f32),
        Le => f!(|a, b| (a <= b) as u8 as f32),
        PowGradBase => f!(|a, b| if b == 0.0 { 0.0 } else { b * a.powf(b - 1.0) }),
        // the limit 0 where a = 0 and b ≥ 0 (0 · −∞ would be NaN), as PyTorch
        PowGradExponent => f!(|a, b| {
            if a == 0.0 && b >= 0.0 {
                0.0
            } else {
                a.powf(b) * a.ln()
            }
        }),
        ShareOfLarger => f!(share_of_larger),
        ScaleByShare => f!(|s, g| if s == 0.0 { 0.0 } else { g * s }),
        HalfQuotientOrZero => f!(|g, s| if s == 0.0 { 0.0 } else { g / (2.0 * s) }),
    }
}
