//! What the fused recurrent ops ([`lstm_sequence`](Tensor::lstm_sequence),
//! [`gru_sequence`](Tensor::gru_sequence)) share: the shape checks, the
//! input projection of many steps in one product, whether a backward pass
//! will come, and the products and sums that end their backward pass.

use crate::cpu::matmul::{gemm_into, gemm_new, MatRef};
use crate::{Error, Result, Tensor};

/// Steps, batch rows, input features, hidden units.
pub(super) struct Dims {
    pub t: usize,
    pub n: usize,
    pub i: usize,
    pub h: usize,
}

/// Checks x `[T, N, I]`, w_ih `[G·H, I]`, w_hh `[G·H, H]`, both biases
/// `[G·H]`, each initial state `[N, H]` and the mask (`T·N` values) of a
/// recurrent op with `gates` gates; errors name the op and the shapes.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    op: &'static str,
    x: &Tensor,
    gates: usize,
    w_ih: &Tensor,
    w_hh: &Tensor,
    biases: [&Tensor; 2],
    states: &[(&str, &Tensor)],
    mask: Option<&[f32]>,
) -> Result<Dims> {
    let (t, n, i) = x.dims3()?;
    let (gh, h) = w_hh.dims2()?;
    let bad = |what: &str, s: &[usize]| Error::Shape {
        op,
        msg: format!(
            "{what} has shape {s:?} for input {:?} and w_hh {:?}",
            x.shape(),
            w_hh.shape()
        ),
    };
    if gh != gates * h {
        return Err(bad("w_hh", w_hh.shape()));
    }
    if w_ih.shape() != [gh, i] {
        return Err(bad("w_ih", w_ih.shape()));
    }
    for (name, b) in [("b_ih", biases[0]), ("b_hh", biases[1])] {
        if b.shape() != [gh] {
            return Err(bad(name, b.shape()));
        }
    }
    for (name, s) in states {
        if s.shape() != [n, h] {
            return Err(bad(name, s.shape()));
        }
    }
    if mask.is_some_and(|m| m.len() != t * n) {
        return Err(Error::Arg {
            op,
            msg: format!("mask must have {} values", t * n),
        });
    }
    Ok(Dims { t, n, i, h })
}

/// `dst [rows, G·H] = x [rows, I]·W_ihᵀ + bias`, with `w_ih` `[G·H, I]`.
pub(super) fn project(
    dst: &mut [f32],
    x: &[f32],
    rows: usize,
    w_ih: &[f32],
    bias: &[f32],
    threads: usize,
) {
    let (lhs, rhs) = project_operands(x, rows, w_ih, bias.len());
    gemm_into(dst, false, lhs, rhs, threads);
    add_rows(dst, bias);
}

/// [`project`] into a new vector, written once (no zeroing first).
pub(super) fn projected(
    x: &[f32],
    rows: usize,
    w_ih: &[f32],
    bias: &[f32],
    threads: usize,
) -> Vec<f32> {
    let (lhs, rhs) = project_operands(x, rows, w_ih, bias.len());
    let mut dst = gemm_new(lhs, rhs, threads);
    add_rows(&mut dst, bias);
    dst
}

fn project_operands<'a>(
    x: &'a [f32],
    rows: usize,
    w_ih: &'a [f32],
    gh: usize,
) -> (MatRef<'a>, MatRef<'a>) {
    let i = w_ih.len() / gh;
    (
        MatRef::row_major(x, rows, i),
        MatRef::row_major(w_ih, gh, i).t(),
    )
}

fn add_rows(dst: &mut [f32], bias: &[f32]) {
    dst.chunks_mut(bias.len())
        .for_each(|r| r.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
}

/// Whether a backward pass can come, so the steps' values must be kept.
pub(super) fn needs_backward(inputs: &[&Tensor]) -> bool {
    crate::autograd::is_grad_enabled() && inputs.iter().any(|x| x.requires_grad())
}

/// The steps in processing order.
pub(super) fn steps(t: usize, reverse: bool) -> Vec<usize> {
    if reverse {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    }
}

/// `lhs·rhs` as a new tensor of `shape`.
pub(super) fn product(shape: &[usize], lhs: MatRef, rhs: MatRef, threads: usize) -> Tensor {
    Tensor::from_cpu(gemm_new(lhs, rhs, threads), shape)
}

/// The sums over the rows of `v`, each `width` long, as a `[width]` tensor.
pub(super) fn column_sums(v: &[f32], width: usize) -> Tensor {
    let mut s = vec![0f32; width];
    v.chunks(width)
        .for_each(|r| s.iter_mut().zip(r).for_each(|(a, b)| *a += b));
    Tensor::from_cpu(s, &[width])
}
