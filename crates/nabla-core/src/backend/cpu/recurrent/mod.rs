//! The fused recurrent kernels: a whole direction over a sequence (RNN,
//! LSTM, GRU) as one engine generic over the cell, and single fused cells.
//!
//! - [`engine`]: the one backpropagation-through-time engine: blocks of
//!   batch rows (one per thread, each through every step), the buffers kept
//!   from each step, the mask, the sweep back;
//! - [`lstm`], [`gru`], [`rnn`]: each cell's forward and backward for a
//!   block of rows at one step, and its final weight products;
//! - [`joined`]: what the RNN and the LSTM share (one product per step
//!   against `[W_ih | b | W_hh]ᵀ`);
//! - [`blocks`]: how buffers are laid out and cut between threads;
//! - [`cells`]: one LSTM or GRU step's elementwise part.

mod blocks;
mod cells;
mod engine;
mod gru;
mod joined;
mod lstm;
mod rnn;

use crate::backend::{Cell, Recurrence, Saved, View};
use engine::{Dims, Kept};

/// What a direction keeps for its backward pass.
struct Direction {
    cell: Cell,
    dims: Dims,
    kept: Kept,
}

/// A direction's output `[T + S, N, H]` and what its backward needs.
pub(super) fn forward(
    r: &Recurrence,
    x: View,
    weights: [&[f32]; 4],
    states: Vec<Vec<f32>>,
    keep: bool,
) -> (Vec<f32>, Saved) {
    let dims = Dims {
        t: r.t,
        n: r.n,
        i: r.i,
        h: r.h,
        // read here, on the op's thread (the scope is per thread)
        precision: crate::autocast::product_precision(),
    };
    let opts = (r.mask, r.reverse, keep);
    let (out, kept) = blocks::with_rows(x, |rows| match r.cell {
        Cell::Lstm => engine::forward(&lstm::Lstm(dims), rows, weights, states, opts),
        Cell::Gru => engine::forward(&gru::Gru(dims), rows, weights, states, opts),
        Cell::Rnn { relu } => {
            engine::forward(&rnn::Rnn { dims, relu }, rows, weights, states, opts)
        }
    });
    let cell = r.cell;
    (out, Box::new(Direction { cell, dims, kept }))
}

/// The gradients of x, W_ih, W_hh, b_ih, b_hh and the initial states (each
/// when `want`ed) from the output's gradient `dy`.
pub(super) fn backward(
    saved: &Saved,
    dy: &[f32],
    (x, w_ih, w_hh): (View, &[f32], &[f32]),
    want: &[bool],
) -> Vec<Option<Vec<f32>>> {
    let d: &Direction = saved
        .downcast_ref()
        .expect("a recurrent direction's values");
    let (kept, args) = (&d.kept, (x, w_ih, w_hh));
    match d.cell {
        Cell::Lstm => engine::backward(&lstm::Lstm(d.dims), kept, dy, args, want),
        Cell::Gru => engine::backward(&gru::Gru(d.dims), kept, dy, args, want),
        Cell::Rnn { relu } => {
            let rnn = rnn::Rnn { dims: d.dims, relu };
            engine::backward(&rnn, kept, dy, args, want)
        }
    }
}

/// One LSTM step's elementwise part: `[N, 2H]` from `z [N, 4H]`, `c [N, H]`.
pub(super) fn lstm_cell(z: &[f32], c: &[f32], h: usize) -> (Vec<f32>, Saved) {
    let (out, saved) = cells::lstm_cell(z, c, h);
    (out, Box::new(saved))
}

/// dz and dc from the gradient of [`lstm_cell`]'s output.
pub(super) fn lstm_cell_backward(saved: &Saved, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let s = saved.downcast_ref().expect("an LSTM cell's values");
    cells::lstm_cell_backward(s, dy)
}

/// One GRU step's elementwise part: `h' [N, H]`.
pub(super) fn gru_cell(a: &[f32], b: &[f32], h: &[f32], hs: usize) -> (Vec<f32>, Saved) {
    let (out, saved) = cells::gru_cell(a, b, h, hs);
    (out, Box::new(saved))
}

/// da, db and dh from the gradient of [`gru_cell`]'s output.
pub(super) fn gru_cell_backward(saved: &Saved, dy: &[f32]) -> [Vec<f32>; 3] {
    let s = saved.downcast_ref().expect("a GRU cell's values");
    cells::gru_cell_backward(s, dy)
}
