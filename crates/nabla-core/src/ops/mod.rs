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
mod attention;
mod cat;
mod clamp;
mod compare;
mod conv2d;
mod conv_transpose2d;
mod cross_entropy;
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
mod layer_norm;
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
mod multinomial;
mod narrow;
mod permute;
mod pool2d;
mod pow;
mod relu;
mod reshape;
mod rnn_cells;
mod rnn_sequence;
mod sequence;
mod sequence_steps;
mod sigmoid;
mod silu;
mod softmax;
mod softplus;
mod sqrt;
mod sub;
mod sum;
mod tanh;
mod to_dtype;
mod topk;
mod update;
mod var;
mod where_;

pub use attention::{AttentionMask, AttentionParams};
pub use conv2d::Conv2dParams;
pub use conv_transpose2d::ConvTranspose2dParams;
pub use pool2d::Pool2d;

use crate::backend::{BinaryOp, UnaryOp};
use crate::layout::broadcast_shapes;
use crate::{DType, Device, Error, Result, Tensor};

/// `op(a, b)` elementwise with broadcasting; no graph recorded.
pub(crate) fn binary_map(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    op: BinaryOp,
) -> Result<Tensor> {
    let (a, b) = on_one_device(name, a, b)?;
    let shape = broadcast_shapes(name, a.shape(), b.shape())?;
    let out = with_views(name, &[&a, &b], |v| {
        a.backend().binary(op, v[0], v[1], &shape)
    })?;
    Ok(Tensor::from_storage(out, &shape))
}

/// `op(x)` elementwise; no graph recorded (`name` is the op's, for a
/// refused dtype).
pub(crate) fn unary_map(x: &Tensor, name: &'static str, op: UnaryOp) -> Result<Tensor> {
    let out = x.with_view(name, |v| x.backend().unary(op, v))?;
    Ok(Tensor::from_storage(out, x.shape()))
}

/// An elementwise unary op `y = f(x)` whose backward, `dx = dy · f'(x)`
/// (or selected: relu, clamp), is the backend's fused `unary_grad`.
pub(crate) fn unary_op(x: &Tensor, name: &'static str, op: UnaryOp) -> Result<Tensor> {
    let y = unary_map(x, op.name(), op)?;
    if !(crate::is_grad_enabled() && x.requires_grad()) {
        return Ok(y);
    }
    let (xs, ys) = (x.contiguous()?.detach(), y.detach());
    Ok(y.attach(name, &[x], move |g, _| {
        let g = g.contiguous()?;
        let dx = with_views(name, &[&g, &xs, &ys], |v| {
            g.backend().unary_grad(op, v[0], v[1], v[2])
        })?;
        Ok(vec![Some(Tensor::from_storage(dx, g.shape()))])
    }))
}

/// The result of an op that moves values without computing new ones
/// (`cat`, `stack`, `gather`, `where_cond`,
/// `masked_fill`): in its inputs' dtype when they share one other than
/// f32, as PyTorch keeps it. The kernels moved each value's exact f32
/// widening, so the conversion back is exact.
pub(crate) fn keep_dtype(y: Tensor, inputs: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = inputs.first() else {
        return Ok(y);
    };
    let dtype = first.dtype();
    if dtype == DType::F32 || inputs.iter().any(|t| t.dtype() != dtype) {
        return Ok(y);
    }
    y.to_dtype(dtype)
}

/// Checks that `op`'s two inputs live on one device, or moves a 0-d CPU
/// tensor (a scalar) to the other's device, as PyTorch allows.
pub(crate) fn on_one_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let (da, db) = (a.device(), b.device());
    if da == db {
        return Ok((a.clone(), b.clone()));
    }
    if a.rank() == 0 && da == Device::Cpu {
        return Ok((a.to(db)?, b.clone()));
    }
    if b.rank() == 0 && db == Device::Cpu {
        return Ok((a.clone(), b.to(da)?));
    }
    same_device(op, a, b).map(|_| (a.clone(), b.clone()))
}

/// Runs `f` on the views (storage as f32, and layout) of several tensors
/// at once, for a backend primitive that takes them together; `op` names
/// the refusal of a dtype f32 cannot hold.
pub(crate) fn with_views<R>(
    op: &'static str,
    ts: &[&Tensor],
    f: impl FnOnce(&[crate::backend::View]) -> R,
) -> Result<R> {
    let guards = ts
        .iter()
        .map(|t| t.f32_storage(op))
        .collect::<Result<Vec<_>>>()?;
    let views: Vec<crate::backend::View> = guards
        .iter()
        .zip(ts)
        .map(|(g, t)| (&**g, t.layout()))
        .collect();
    Ok(f(&views))
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
