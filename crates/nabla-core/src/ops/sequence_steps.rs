//! The recurrent directions composed of ordinary ops, one step at a time:
//! the fallback of [`rnn_sequence`](Tensor::rnn_sequence),
//! [`lstm_sequence`](Tensor::lstm_sequence) and
//! [`gru_sequence`](Tensor::gru_sequence) on backends without their fused
//! kernels, and of the fused cells. One engine for the three kinds: the
//! step is generic over the cell, the mask and the output layout are shared.
//! Its gradients come from the ops' own rules (autograd builds the
//! backpropagation through time).

use crate::backend::Cell;
use crate::{Result, Tensor};

/// One LSTM cell from its gate pre-activations `z [N, 4H]` and `c [N, H]`:
/// `(h', c')`.
pub(crate) fn lstm_cell(z: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
    let h = c.shape()[1];
    let gate = |k: usize| z.narrow(1, k * h, h);
    let (i, f, g, o) = (
        gate(0)?.sigmoid()?,
        gate(1)?.sigmoid()?,
        gate(2)?.tanh()?,
        gate(3)?.sigmoid()?,
    );
    let c_new = f.mul(c)?.add(&i.mul(&g)?)?;
    Ok((o.mul(&c_new.tanh()?)?, c_new))
}

/// One GRU cell from `a = W_ih·x + b_ih`, `b = W_hh·h + b_hh` (both
/// `[N, 3H]`) and `h [N, H]`: `h' = (1 − u)·n + u·h`.
pub(crate) fn gru_cell(a: &Tensor, b: &Tensor, h: &Tensor) -> Result<Tensor> {
    let w = h.shape()[1];
    let (ga, gb) = (
        |k: usize| a.narrow(1, k * w, w),
        |k: usize| b.narrow(1, k * w, w),
    );
    let r = ga(0)?.add(&gb(0)?)?.sigmoid()?;
    let u = ga(1)?.add(&gb(1)?)?.sigmoid()?;
    let n = ga(2)?.add(&r.mul(&gb(2)?)?)?.tanh()?;
    u.affine(-1.0, 1.0)?.mul(&n)?.add(&u.mul(h)?)
}

/// One direction over `x [T, N, I]` from `h0` (and `c0` for the LSTM):
/// `[T + 1, N, H]` (outputs, h_n) or, for the LSTM, `[T + 2, N, H]`
/// (outputs, h_n, c_n); masked steps keep the state and output 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn direction(
    cell: Cell,
    x: &Tensor,
    [w_ih, w_hh, b_ih, b_hh]: [&Tensor; 4],
    h0: &Tensor,
    c0: Option<&Tensor>,
    mask: Option<&[f32]>,
    reverse: bool,
) -> Result<Tensor> {
    let (t, n, i) = x.dims3()?;
    let (mut h, mut c) = (h0.clone(), c0.cloned());
    let mut outs: Vec<Option<Tensor>> = vec![None; t];
    let order: Vec<usize> = match reverse {
        true => (0..t).rev().collect(),
        false => (0..t).collect(),
    };
    for s in order {
        let xt = x.narrow(0, s, 1)?.reshape([n, i])?;
        let (h_new, c_new) = match cell {
            Cell::Rnn { relu } => {
                let z = xt
                    .linear(w_ih, Some(b_ih))?
                    .add(&h.linear(w_hh, Some(b_hh))?)?;
                (if relu { z.relu()? } else { z.tanh()? }, None)
            }
            Cell::Lstm => {
                let z = xt
                    .linear(w_ih, Some(b_ih))?
                    .add(&h.linear(w_hh, Some(b_hh))?)?;
                let c = c.as_ref().expect("an LSTM carries a cell state");
                let (h_new, c_new) = lstm_cell(&z, c)?;
                (h_new, Some(c_new))
            }
            Cell::Gru => {
                let (a, b) = (xt.linear(w_ih, Some(b_ih))?, h.linear(w_hh, Some(b_hh))?);
                (gru_cell(&a, &b, &h)?, None)
            }
        };
        match mask {
            Some(m) => {
                // h ← m·h' + (1 − m)·h, out = m·h
                let m = Tensor::from_vec_on(m[s * n..(s + 1) * n].to_vec(), [n, 1], x.device())?;
                let keep = |new: &Tensor, old: &Tensor| -> Result<Tensor> {
                    m.mul(new)?.add(&m.affine(-1.0, 1.0)?.mul(old)?)
                };
                h = keep(&h_new, &h)?;
                if let (Some(new), Some(old)) = (&c_new, &c) {
                    c = Some(keep(new, old)?);
                }
                outs[s] = Some(m.mul(&h)?);
            }
            None => {
                (h, c) = (h_new, c_new);
                outs[s] = Some(h.clone());
            }
        }
    }
    let mut parts: Vec<Tensor> = outs
        .into_iter()
        .map(|o| o.expect("every step ran"))
        .collect();
    parts.push(h);
    parts.extend(c);
    Tensor::stack(&parts, 0)
}
