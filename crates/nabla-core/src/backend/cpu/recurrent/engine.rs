//! One backpropagation-through-time engine for every cell.
//!
//! The engine owns what the three cells share: the blocks of batch rows
//! (one per thread, each taken through every step), the buffers kept from
//! each step and where a block's rows of them lie, the mask, the direction,
//! the output `[T + S, N, H]` and the sweep back. A cell ([`Kernel`]) says
//! which buffers it keeps and how wide they are, and computes one block of
//! rows at one step: forward (its products and its cell) and backward (its
//! cell's gradients and the recurrent product into dh), then the final
//! products of the weight and input gradients.

use std::ops::Range;

use super::blocks::{
    self, block_major, block_regions, block_regions_ref, mask_rows, row_blocks, row_blocks_ref,
    RowsAt,
};
use crate::autocast::Precision;
use crate::backend::cpu::packed_gemm::PackedRhs;
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, spare, write_copy, Slots};
use crate::backend::View;

/// Steps, batch rows, input features, hidden units, and the precision of
/// the products (the forward's [`autocast`](crate::autocast), which its
/// backward keeps).
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub t: usize,
    pub n: usize,
    pub i: usize,
    pub h: usize,
    pub precision: Precision,
}

/// Where a buffer of every step keeps a block's rows (see [`blocks`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// `[steps, n, w]`.
    Time,
    /// `[blocks][steps][rows][w]`: each block's rows of all steps together.
    Block,
}

/// A buffer of every step, `width` values a row.
#[derive(Clone, Copy)]
pub(super) struct Buffer {
    pub width: usize,
    pub order: Order,
}

/// One block of batch rows at one step, forward. Every slot of `saved`
/// (this step's piece of each kept buffer) and of `out` must be written.
pub(super) struct Forward<'a> {
    /// The step's input rows, `x_rs` apart (where the input lies: a
    /// batch-first input is read in place).
    pub x: &'a [f32],
    pub x_rs: usize,
    pub saved: Vec<Slots<'a>>,
    /// The cell's scratch for this step (its own small buffer, in cache).
    pub scratch: &'a mut [f32],
    /// h (and c), updated in place.
    pub state: Vec<&'a mut [f32]>,
    pub out: Slots<'a>,
    pub m: Option<&'a [f32]>,
    /// The first step from an all-zero h: products with h may be skipped.
    pub from_zero: bool,
}

/// One block of batch rows at one step, backward: `dstate` holds the
/// gradients of the states after the step and leaves those before it;
/// every slot of `grads` must be written.
pub(super) struct Backward<'a> {
    pub saved: Vec<&'a [f32]>,
    pub dout: &'a [f32],
    pub grads: Vec<Slots<'a>>,
    pub dstate: Vec<&'a mut [f32]>,
    pub m: Option<&'a [f32]>,
}

/// What the final products read: the whole buffers, the blocks' shares of
/// the weight gradients (when blocks computed them), the input and W_ih,
/// and which of x, W_ih, W_hh, b_ih, b_hh need a gradient.
pub(super) struct Finish<'a> {
    pub rb: usize,
    pub saved: &'a [Vec<f32>],
    pub grads: &'a [Vec<f32>],
    pub shares: Vec<Vec<f32>>,
    pub x: View<'a>,
    pub w_ih: &'a [f32],
    pub want: &'a [bool],
}

/// A cell as the engine runs it.
pub(super) trait Kernel: Sync {
    /// The weights as the forward steps use them (packed once).
    type Weights: Sync;
    fn dims(&self) -> Dims;
    /// The states the cell carries (h, and c for the LSTM).
    fn states(&self) -> usize;
    /// The gates G: W_hh is `[G·H, H]`.
    fn gates(&self) -> usize;
    /// The buffers kept from each step for the backward pass.
    fn saved(&self) -> Vec<Buffer>;
    /// Scratch values a row of one forward step uses.
    fn scratch(&self) -> usize;
    /// The gradient buffers the backward steps write.
    fn grads(&self) -> Vec<Buffer>;
    /// `(K, G·H)` of a step's product, which sizes the blocks.
    fn work(&self) -> (usize, usize);
    fn pack(&self, weights: [&[f32]; 4]) -> Self::Weights;
    fn forward(&self, w: &Self::Weights, s: &mut Forward);
    /// The step's gradients, then dh ← … + grad·W_hh unless `whh` is None
    /// (the last step back when nothing reads dh after it).
    fn backward(&self, s: &mut Backward, whh: Option<&PackedRhs>);
    /// A block's share of the weight gradients from its regions of the
    /// Block-ordered buffers (others empty), right after its sweep; None
    /// leaves the weight gradients to [`gradients`](Self::gradients).
    fn block_share(&self, _saved: &[&[f32]], _grads: &[&[f32]]) -> Option<Vec<f32>> {
        None
    }
    /// dx, dW_ih, dW_hh, db_ih, db_hh (those wanted).
    fn gradients(&self, f: Finish) -> [Option<Vec<f32>>; 5];
}

/// What a forward pass keeps for its backward one.
pub(super) struct Kept {
    pub rb: usize,
    pub order: Vec<usize>,
    pub mask: Option<Vec<f32>>,
    pub saved: Vec<Vec<f32>>,
}

/// `cuts[buffer][block]` regrouped as `[block][buffer]`.
fn by_block<T>(cuts: Vec<Vec<T>>, blocks: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..blocks).map(|_| Vec::new()).collect();
    for per_block in cuts {
        for (b, piece) in per_block.into_iter().enumerate() {
            out[b].push(piece);
        }
    }
    out
}

/// A buffer of `steps` steps cut into each block's piece of every step.
fn cut<T>(buf: &mut [T], steps: usize, n: usize, b: Buffer, rb: usize) -> Vec<Vec<&mut [T]>> {
    match b.order {
        Order::Time => row_blocks(buf, steps, n, b.width, rb),
        Order::Block => block_major(buf, steps, n, b.width, rb),
    }
}

/// One block of rows through the whole sequence, forward: its piece of
/// each buffer at every step (`[buffer][kept step]` for the saved ones).
struct Block<'a> {
    rows: Range<usize>,
    x: Vec<&'a [f32]>,
    saved: Vec<Vec<Slots<'a>>>,
    scratch: &'a mut [f32],
    state: Vec<&'a mut [f32]>,
    out: Vec<Slots<'a>>,
}

/// The forward pass: the output `[T + S, N, H]` (every step's output, then
/// the final states) and what the backward pass needs. With `keep` every
/// step's values are kept; without, buffers of one step serve all steps (an
/// evaluation batch stays in cache).
pub(super) fn forward<K: Kernel>(
    k: &K,
    x: RowsAt,
    weights: [&[f32]; 4],
    mut states: Vec<Vec<f32>>,
    (mask, reverse, keep): (Option<&[f32]>, bool, bool),
) -> (Vec<f32>, Kept) {
    let Dims { t, n, h, .. } = k.dims();
    let threads = crate::threads::num_threads();
    let kept = if keep { t } else { t.min(1) };
    let specs = k.saved();
    let mut saved: Vec<Vec<f32>> = specs.iter().map(|_| Vec::new()).collect();
    let from_zero = states[0].iter().all(|&v| v == 0.0);
    let mut out = Vec::new();
    let out_s = spare(&mut out, (t + states.len()) * n * h);
    let mut scratch = vec![0f32; n * k.scratch()];
    let order: Vec<usize> = match reverse {
        true => (0..t).rev().collect(),
        false => (0..t).collect(),
    };
    let w = k.pack(weights);
    // Each thread takes a block of rows through all the steps (rows are
    // independent): one hand-off per sequence, not one per step.
    let (kk, g) = k.work();
    let rb = n.div_ceil(blocks::row_block_count(t, n, kk, g, threads));
    let count = n.div_ceil(rb.max(1));
    let saved_cut = saved
        .iter_mut()
        .zip(&specs)
        .map(|(v, b)| cut(spare(v, kept * n * b.width), kept, n, *b, rb))
        .collect();
    let state_cut = states
        .iter_mut()
        .map(|v| row_blocks(v, 1, n, h, rb).into_iter().flatten().collect())
        .collect();
    let mut work: Vec<Block> = x
        .blocks(t, n, rb)
        .into_iter()
        .zip(by_block(saved_cut, count))
        .zip(row_blocks(&mut scratch, 1, n, k.scratch(), rb))
        .zip(by_block(state_cut, count))
        .zip(row_blocks(&mut out_s[..t * n * h], t, n, h, rb))
        .enumerate()
        .map(|(b, ((((x, saved), mut scratch), state), out))| Block {
            rows: b * rb..n.min((b + 1) * rb),
            x,
            saved,
            scratch: scratch.pop().expect("one step"),
            state,
            out,
        })
        .collect();
    let run = |blk: &mut Block| {
        for &s in &order {
            let at = if keep { s } else { 0 }; // the step's place in the buffers
            let mut step = Forward {
                x: blk.x[s],
                x_rs: x.row,
                saved: blk.saved.iter_mut().map(|b| &mut *b[at]).collect(),
                scratch: &mut *blk.scratch,
                state: blk.state.iter_mut().map(|v| &mut **v).collect(),
                out: &mut *blk.out[s],
                m: mask_rows(mask, s, n, &blk.rows),
                from_zero: from_zero && s == order[0],
            };
            k.forward(&w, &mut step);
        }
    };
    blocks::run_blocks(&mut work, run);
    drop(work);
    for (j, v) in states.iter().enumerate() {
        write_copy(&mut out_s[(t + j) * n * h..(t + j + 1) * n * h], v);
    }
    // SAFETY: every step wrote its slots of each saved buffer and of the
    // output (all rows; with buffers of one step, t ≥ 1 steps wrote them),
    // and the final states were just written.
    unsafe {
        out.set_len((t + states.len()) * n * h);
        for (v, b) in saved.iter_mut().zip(&specs) {
            v.set_len(kept * n * b.width);
        }
    }
    let mask = mask.map(<[f32]>::to_vec);
    (
        out,
        Kept {
            rb,
            order,
            mask,
            saved,
        },
    )
}

/// A block's piece of a gradient buffer at every step.
enum Steps<'a> {
    /// Block order: the block's region, `piece` slots a step.
    Region(Slots<'a>, usize),
    Pieces(Vec<Slots<'a>>),
}

impl Steps<'_> {
    fn at(&mut self, s: usize) -> Slots<'_> {
        match self {
            Steps::Region(r, piece) => &mut r[s * *piece..(s + 1) * *piece],
            Steps::Pieces(p) => &mut *p[s],
        }
    }

    /// The block's region once every step has written it (empty for a
    /// time-major buffer).
    fn written(&mut self) -> &[f32] {
        match self {
            // SAFETY: called after the sweep, which wrote every step's slots.
            Steps::Region(r, _) => unsafe { assume_init(r) },
            Steps::Pieces(_) => &[],
        }
    }
}

/// One block of rows through the whole sequence, backward.
struct BackBlock<'a> {
    rows: Range<usize>,
    /// `[buffer][step]`, and each Block-ordered buffer's whole region.
    saved: Vec<Vec<&'a [f32]>>,
    regions: Vec<&'a [f32]>,
    grads: Vec<Steps<'a>>,
    dout: Vec<&'a [f32]>,
    dstate: Vec<&'a mut [f32]>,
    share: Option<Vec<f32>>,
}

/// The backward pass from the output's gradient `dy` `[T + S, N, H]`: the
/// gradients of x, W_ih, W_hh, b_ih, b_hh and the initial states, each when
/// `want`ed. Each block of rows walks back through the steps as forward.
pub(super) fn backward<K: Kernel>(
    k: &K,
    kept: &Kept,
    dy: &[f32],
    (x, w_ih, w_hh): (View, &[f32], &[f32]),
    want: &[bool],
) -> Vec<Option<Vec<f32>>> {
    let Dims { t, n, h, .. } = k.dims();
    let (rb, order, mask) = (kept.rb, &kept.order, kept.mask.as_deref());
    let count = n.div_ceil(rb.max(1));
    let mut dstate: Vec<Vec<f32>> = (0..k.states())
        .map(|j| dy[(t + j) * n * h..(t + j + 1) * n * h].to_vec())
        .collect();
    let specs = k.grads();
    let mut grads: Vec<Vec<f32>> = specs.iter().map(|_| Vec::new()).collect();
    // W_hh packed once for all steps (the weights as they are now, as every
    // op's backward reads its inputs)
    let g = k.gates() * h;
    let whh_packed = PackedRhs::new(
        Strided {
            data: w_hh,
            rs: h,
            cs: 1,
        },
        g,
        h,
    )
    .with_precision(k.dims().precision);
    let need_dh0 = want[5];
    // with several blocks each adds up its own share of the weight
    // gradients right after its sweep (no wait for the others, values its
    // own core wrote)
    let shares = want[1..5].iter().any(|&w| w) && count > 1;
    let grad_cut = grads
        .iter_mut()
        .zip(&specs)
        .map(|(v, b)| {
            let slots = spare(v, t * n * b.width);
            match b.order {
                Order::Block => block_regions(slots, t, n, b.width, rb)
                    .into_iter()
                    .enumerate()
                    .map(|(j, r)| Steps::Region(r, rb.min(n - j * rb) * b.width))
                    .collect(),
                Order::Time => row_blocks(slots, t, n, b.width, rb)
                    .into_iter()
                    .map(Steps::Pieces)
                    .collect(),
            }
        })
        .collect();
    let (saved_cut, region_cut) = kept
        .saved
        .iter()
        .zip(k.saved())
        .map(|(v, b)| match b.order {
            Order::Time => (row_blocks_ref(v, t, n, b.width, rb), vec![&[][..]; count]),
            Order::Block => {
                let regions = block_regions_ref(v, t, n, b.width, rb);
                let pieces = regions
                    .iter()
                    .enumerate()
                    .map(|(j, r)| match rb.min(n - j * rb) * b.width {
                        0 => vec![&[][..]; t],
                        piece => r.chunks(piece).collect(),
                    })
                    .collect();
                (pieces, regions)
            }
        })
        .unzip();
    let dstate_cut = dstate
        .iter_mut()
        .map(|v| row_blocks(v, 1, n, h, rb).into_iter().flatten().collect())
        .collect();
    let mut work: Vec<BackBlock> = by_block(saved_cut, count)
        .into_iter()
        .zip(by_block(region_cut, count))
        .zip(by_block(grad_cut, count))
        .zip(row_blocks_ref(dy, t, n, h, rb))
        .zip(by_block(dstate_cut, count))
        .enumerate()
        .map(
            |(b, ((((saved, regions), grads), dout), dstate))| BackBlock {
                rows: b * rb..n.min((b + 1) * rb),
                saved,
                regions,
                grads,
                dout,
                dstate,
                share: None,
            },
        )
        .collect();
    let run = |blk: &mut BackBlock| {
        for &s in order.iter().rev() {
            let mut step = Backward {
                saved: blk.saved.iter().map(|b| b[s]).collect(),
                dout: blk.dout[s],
                grads: blk.grads.iter_mut().map(|g| g.at(s)).collect(),
                dstate: blk.dstate.iter_mut().map(|v| &mut **v).collect(),
                m: mask_rows(mask, s, n, &blk.rows),
            };
            let whh = (s != order[0] || need_dh0).then_some(&whh_packed);
            k.backward(&mut step, whh);
        }
        if shares {
            let grads: Vec<&[f32]> = blk.grads.iter_mut().map(Steps::written).collect();
            blk.share = k.block_share(&blk.regions, &grads);
        }
    };
    blocks::run_blocks(&mut work, run);
    let shares: Vec<Vec<f32>> = work.into_iter().filter_map(|b| b.share).collect();
    // SAFETY: every step wrote the gradients of all its rows.
    unsafe {
        for (v, b) in grads.iter_mut().zip(&specs) {
            v.set_len(t * n * b.width);
        }
    }
    let finish = Finish {
        rb,
        saved: &kept.saved,
        grads: &grads,
        shares,
        x,
        w_ih,
        want,
    };
    let mut out = k.gradients(finish).to_vec();
    out.extend(
        dstate
            .into_iter()
            .enumerate()
            .map(|(j, v)| want[5 + j].then_some(v)),
    );
    out
}
