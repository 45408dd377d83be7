//! Tensor operations, one file each: the doc comment gives the formula and
//! shapes, then the forward, the backward rule, and the tests.
//!
//! Shared plumbing for elementwise ops lives here: broadcasting binary
//! forwards, unary forwards with a fused derivative, and `sum_to_shape`,
//! which undoes broadcasting in a backward pass.

mod abs;
mod add;
mod affine;
mod argmax;
mod cat;
mod clamp;
mod compare;
mod conv2d;
mod div;
mod dropout;
mod elu;
mod exp;
mod expand;
mod expm1;
mod gather;
mod gelu;
mod gru_sequence;
mod index_select;
mod linear;
mod log;
mod log1p;
mod log_softmax;
mod lstm_sequence;
mod matmul;
mod max;
mod maximum;
mod mean;
mod mul;
mod narrow;
mod permute;
mod pool2d;
mod pow;
mod relu;
mod reshape;
mod rnn_cells;
mod rnn_sequence;
mod sequence;
mod sigmoid;
mod silu;
mod softmax;
mod softplus;
mod sqrt;
mod sub;
mod sum;
mod tanh;
mod var;
mod where_;

pub use conv2d::Conv2dParams;
pub use pool2d::Pool2d;

use crate::backend::cpu;
use crate::layout::broadcast_shapes;
use crate::{Error, Result, Tensor};

/// `f(a, b)` elementwise with broadcasting; no graph recorded.
pub(crate) fn binary_map(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Result<Tensor> {
    same_device(op, a, b)?;
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let out = a.with_cpu(|da, la| {
        b.with_cpu(|db, lb| cpu::elementwise::binary(da, la, db, lb, &shape, f))
    });
    Ok(Tensor::from_cpu(out, &shape))
}

/// `f(x)` elementwise; no graph recorded.
pub(crate) fn unary_map(x: &Tensor, f: impl Fn(f32) -> f32 + Sync + Send) -> Tensor {
    let out = x.with_cpu(|d, l| cpu::elementwise::unary(d, l, f));
    Tensor::from_cpu(out, x.shape())
}

/// An elementwise unary op `y = f(x)` whose backward is `dx = dy · df(x, y)`,
/// computed in one fused pass.
pub(crate) fn unary_op(
    x: &Tensor,
    name: &'static str,
    f: impl Fn(f32) -> f32 + Sync + Send,
    df: impl Fn(f32, f32) -> f32 + Sync + Send + Copy + 'static,
) -> Result<Tensor> {
    unary_with_backward(x, name, f, move |g, x, y| g * df(x, y))
}

/// An elementwise unary op whose gradient passes where `passes(x)` and is
/// 0 elsewhere — selected, not multiplied by 0, so that an infinite or NaN
/// upstream gradient stops there (PyTorch's rule for relu and clamp: a
/// `sqrt` after a `relu` must not put NaN into the inputs that were cut).
pub(crate) fn unary_select_op(
    x: &Tensor,
    name: &'static str,
    f: impl Fn(f32) -> f32 + Sync + Send,
    passes: impl Fn(f32) -> bool + Sync + Send + Copy + 'static,
) -> Result<Tensor> {
    unary_with_backward(x, name, f, move |g, x, _| if passes(x) { g } else { 0.0 })
}

/// `y = f(x)`, and `dx = grad(dy, x, y)` in one fused pass.
fn unary_with_backward(
    x: &Tensor,
    name: &'static str,
    f: impl Fn(f32) -> f32 + Sync + Send,
    grad: impl Fn(f32, f32, f32) -> f32 + Sync + Send + Copy + 'static,
) -> Result<Tensor> {
    let y = unary_map(x, f);
    if !(crate::is_grad_enabled() && x.requires_grad()) {
        return Ok(y);
    }
    let (xs, ys) = (x.contiguous()?.detach(), y.detach());
    Ok(y.attach(name, &[x], move |g, _| {
        let g = g.contiguous()?;
        let out = g.with_cpu(|dg, lg| {
            xs.with_cpu(|dx, lx| {
                ys.with_cpu(|dy, ly| {
                    let n = lg.numel();
                    let (dg, dx, dy) = (
                        &dg[lg.offset()..lg.offset() + n],
                        &dx[lx.offset()..lx.offset() + n],
                        &dy[ly.offset()..ly.offset() + n],
                    );
                    cpu::elementwise::map3(dg, dx, dy, grad)
                })
            })
        });
        Ok(vec![Some(Tensor::from_cpu(out, g.shape()))])
    }))
}

pub(crate) fn same_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device() != b.device() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: a.device().to_string(),
            rhs: b.device().to_string(),
        });
    }
    Ok(())
}

impl Tensor {
    /// Sums a (broadcast) gradient down to `shape`: over leading dims that
    /// `shape` lacks and over dims where `shape` has size 1. The adjoint of
    /// `broadcast_to(shape → self.shape())`.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let extra = self.rank().checked_sub(shape.len()).ok_or_else(|| {
            Error::shape(
                "sum_to_shape",
                format!("cannot sum {:?} down to {shape:?}", self.shape()),
            )
        })?;
        let mut dims: Vec<isize> = (0..extra as isize).collect();
        for (i, &s) in shape.iter().enumerate() {
            let have = self.shape()[extra + i];
            if s == 1 && have != 1 {
                dims.push((extra + i) as isize);
            } else if s != have {
                return Err(Error::shape(
                    "sum_to_shape",
                    format!("cannot sum {:?} down to {shape:?}", self.shape()),
                ));
            }
        }
        let summed = if dims.is_empty() {
            self.clone()
        } else {
            self.sum_keepdim(&dims)?
        };
        summed.reshape(shape)
    }
}
