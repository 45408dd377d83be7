//! What the fused recurrent ops ([`rnn_sequence`](Tensor::rnn_sequence),
//! [`lstm_sequence`](Tensor::lstm_sequence),
//! [`gru_sequence`](Tensor::gru_sequence)) share: the shape checks, the
//! input's rows where they lie, whether a backward pass will come, the
//! blocks of rows, and the products and sums that end their backward pass.

use std::ops::Range;

use crate::backend::cpu::matmul::{gemm_new, gemm_new_split_k, sum_parts, MatRef};
use crate::backend::cpu::uninit::{assume_init, write_copy, Slots};
use crate::{Error, Result, Tensor};

/// Steps, batch rows, input features, hidden units.
#[derive(Clone, Copy)]
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
    let shape_err = |msg: String| Error::Shape { op, msg };
    for other in [w_ih, w_hh, biases[0], biases[1]]
        .into_iter()
        .chain(states.iter().map(|s| s.1))
    {
        super::same_device(op, x, other)?;
    }
    let [t, n, i] = x.shape()[..] else {
        return Err(shape_err(format!(
            "expected an input of shape [T, N, I], got {:?}",
            x.shape()
        )));
    };
    let [gh, h] = w_hh.shape()[..] else {
        return Err(shape_err(format!(
            "expected w_hh of shape [{gates}·H, H], got {:?}",
            w_hh.shape()
        )));
    };
    if gh != gates * h {
        return Err(shape_err(format!(
            "w_hh has shape {:?}: with H = {h} (its columns) it must be [{}, {h}] ({gates} gates)",
            w_hh.shape(),
            gates * h
        )));
    }
    if h == 0 {
        return Err(Error::Arg {
            op,
            msg: format!("w_hh {:?} has no hidden units", w_hh.shape()),
        });
    }
    // the rest as x and w_hh say they must be
    let bad = |what: &str, s: &[usize], want: &[usize]| {
        shape_err(format!(
            "{what} has shape {s:?}, expected {want:?} (input {:?}, w_hh {:?})",
            x.shape(),
            w_hh.shape()
        ))
    };
    if w_ih.shape() != [gh, i] {
        return Err(bad("w_ih", w_ih.shape(), &[gh, i]));
    }
    for (name, b) in [("b_ih", biases[0]), ("b_hh", biases[1])] {
        if b.shape() != [gh] {
            return Err(bad(name, b.shape(), &[gh]));
        }
    }
    for (name, s) in states {
        if s.shape() != [n, h] {
            return Err(bad(name, s.shape(), &[n, h]));
        }
    }
    if mask.is_some_and(|m| m.len() != t * n) {
        return Err(Error::Arg {
            op,
            msg: format!(
                "mask must have T·N = {} values (one per step and row), got {}",
                t * n,
                mask.map_or(0, |m| m.len())
            ),
        });
    }
    Ok(Dims { t, n, i, h })
}

/// Writes the rows `[x_r | 1 | h_r]` of a step (`I + 1 + H` each) into
/// `xh`, the left operand of an op that multiplies them by
/// `[W_ih | b | W_hh]ᵀ` (the RNN's and the LSTM's), and returns them; x's
/// rows lie `x_rs` apart.
pub(super) fn joined_rows<'a>(
    xh: Slots<'a>,
    x: &[f32],
    x_rs: usize,
    h_rows: &[f32],
    (i, h): (usize, usize),
) -> &'a mut [f32] {
    let k = i + 1 + h;
    for (r, row) in xh.chunks_mut(k).enumerate() {
        let (xp, rest) = row.split_at_mut(i);
        write_copy(xp, &x[r * x_rs..][..i]);
        rest[0].write(1.0);
        write_copy(&mut rest[1..], &h_rows[r * h..(r + 1) * h]);
    }
    // SAFETY: every row's I + 1 + H slots were just written.
    unsafe { assume_init(xh) }
}

/// A block's share of `[dW_ih | db | dW_hh]ᵀ = Σ [x_t | 1 | h_{t−1}]ᵀ·dz_t`
/// over its rows of every step (`xh` `[rows, k]`, `dz` `[rows, g]`), on
/// the thread that wrote them.
pub(super) fn block_share(xh: &[f32], dz: &[f32], k: usize, g: usize) -> Vec<f32> {
    let rows = xh.len() / k;
    let xh = MatRef::row_major(xh, rows, k);
    gemm_new(xh.t(), MatRef::row_major(dz, rows, g), 1)
}

/// The gradients of x, W_ih, W_hh, b_ih and b_hh of an op that multiplies
/// `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` (G·H outputs a step), from its sweep
/// back: the gate gradients `dz` and the saved `[x_t | 1 | h_{t−1}]`
/// (`xh`), both block-major with blocks of `rb` rows, and the blocks'
/// shares of the weight gradients (none when one block left the product
/// to all the threads). `inputs` are the op's (x, w_ih, w_hh, b_ih, b_hh,
/// …); a gradient is computed when its input needs it.
pub(super) fn joined_gradients(
    inputs: &[Tensor],
    (dz, xh, shares): (&[f32], &[f32], Vec<Vec<f32>>),
    Dims { t, n, i, h }: Dims,
    g: usize,
    rb: usize,
) -> Result<[Option<Tensor>; 5]> {
    let threads = crate::threads::num_threads();
    let want = |k: usize| inputs[k].requires_grad();
    let k = i + 1 + h;
    let dz_all = MatRef::row_major(dz, t * n, g);
    let dx = want(0).then(|| {
        let dx = inputs[1].read_data(|wih| gemm_new(dz_all, MatRef::row_major(wih, g, i), threads));
        // (one block: already in time order)
        let dx = match rb >= n {
            true => dx,
            false => to_time_major(&dx, t, n, i, rb),
        };
        Tensor::from_cpu(dx, &[t, n, i])
    });
    // [dW_ih | db | dW_hh]ᵀ: the blocks' shares summed, or one product, its
    // K = T·N rows cut between the threads; its row I, from the column of
    // ones, is the bias gradient
    let dw_t = (1..=4).any(want).then(|| {
        let v = match shares.is_empty() {
            false => sum_parts(shares),
            true => gemm_new_split_k(MatRef::row_major(xh, t * n, k).t(), dz_all, threads),
        };
        Tensor::from_cpu(v, &[k, g])
    });
    // rows lo..lo + len of dw_t, transposed into a contiguous gradient
    let rows_t = |lo: usize, len: usize| {
        let dw_t = dw_t.as_ref().expect("computed when wanted");
        dw_t.narrow(0, lo, len)?.t()?.contiguous()
    };
    let dwih = want(1).then(|| rows_t(0, i)).transpose()?;
    let dwhh = want(2).then(|| rows_t(i + 1, h)).transpose()?;
    let db = (want(3) || want(4))
        .then(|| rows_t(i, 1)?.reshape([g]))
        .transpose()?;
    Ok([
        dx,
        dwih,
        dwhh,
        db.clone().filter(|_| want(3)),
        db.filter(|_| want(4)),
    ])
}

/// Whether a backward pass can come, so the steps' values must be kept.
pub(super) fn needs_backward(inputs: &[&Tensor]) -> bool {
    crate::autograd::is_grad_enabled() && inputs.iter().any(|x| x.requires_grad())
}

/// The rows of an input `[T, N, I]` where they lie in its storage: row
/// `(s, r)` starts at `offset + s·step + r·row`.
pub(super) struct RowsAt<'a> {
    data: &'a [f32],
    offset: usize,
    step: usize,
    pub row: usize,
}

impl<'a> RowsAt<'a> {
    /// The storage from row `(s, r)` on.
    pub fn rows_from(&self, s: usize, r: usize) -> &'a [f32] {
        &self.data[self.offset + s * self.step + r * self.row..]
    }

    /// For each block of `rb` of the `n` rows, the storage from its first
    /// row at each of the `t` steps, `blocks[b][s]`, as [`row_blocks`]
    /// cuts the op's own buffers (its rows `row` apart).
    pub fn blocks(&self, t: usize, n: usize, rb: usize) -> Vec<Vec<&'a [f32]>> {
        let rb = rb.max(1);
        (0..n.div_ceil(rb))
            .map(|b| (0..t).map(|s| self.rows_from(s, b * rb)).collect())
            .collect()
    }
}

/// Runs `f` on the rows of `x` `[T, N, I]` in place when each row is
/// contiguous (a batch-first input seen as `[T, N, I]` is), else on a
/// contiguous copy.
pub(super) fn with_rows<R>(x: &Tensor, f: impl FnOnce(RowsAt) -> R) -> R {
    let strides = x.layout().strides();
    if strides[2] == 1 && x.numel() > 0 {
        let (step, row) = (strides[0], strides[1]);
        return x.with_view(|(storage, layout)| {
            f(RowsAt {
                data: storage.host(),
                offset: layout.offset(),
                step,
                row,
            })
        });
    }
    let (n, i) = (x.shape()[1], x.shape()[2]);
    f(RowsAt {
        data: &x.to_vec(),
        offset: 0,
        step: n * i,
        row: i,
    })
}

/// The steps in processing order.
pub(super) fn steps(t: usize, reverse: bool) -> Vec<usize> {
    if reverse {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    }
}

/// `lhs·rhs` as a new tensor of `shape`; a weight gradient summed over all
/// T·N rows has its K cut between the threads (`gemm_new_split_k`).
pub(super) fn product(shape: &[usize], lhs: MatRef, rhs: MatRef, threads: usize) -> Tensor {
    Tensor::from_cpu(gemm_new_split_k(lhs, rhs, threads), shape)
}

/// The sums over the rows of `v`, each `width` long, as a `[width]` tensor
/// (eight lanes per column, as a bias gradient is summed elsewhere).
pub(super) fn column_sums(v: &[f32], width: usize) -> Tensor {
    let rows = v.len() / width.max(1);
    Tensor::from_cpu(
        crate::backend::cpu::reduce::sum_columns(v, rows, width),
        &[width],
    )
}

/// How many blocks of rows a batch of `n` is split into for `t` steps of a
/// `[n, k]·[k, g]` product: one per thread when there is enough work to pay
/// for the hand-off.
pub(super) fn row_block_count(t: usize, n: usize, k: usize, g: usize, threads: usize) -> usize {
    if t * n * k * g >= 1 << 20 {
        threads.min(n).max(1)
    } else {
        1
    }
}

/// Runs `run` on every block of rows, in parallel in the pool when there
/// is more than one.
pub(super) fn run_blocks<B: Send>(work: &mut [B], run: impl Fn(&mut B) + Sync + Send) {
    use rayon::prelude::*;
    crate::threads::in_pool(|| match work.len() > 1 {
        true => work.par_iter_mut().for_each(run),
        false => work.iter_mut().for_each(run),
    });
}

/// The mask values of step `s` for the batch rows `rows` (of `n`).
pub(super) fn mask_rows<'a>(
    mask: &'a Option<Vec<f32>>,
    s: usize,
    n: usize,
    rows: &Range<usize>,
) -> Option<&'a [f32]> {
    mask.as_ref()
        .map(|m| &m[s * n + rows.start..s * n + rows.end])
}

/// Rows of a batch are independent through a recurrence, so a thread can
/// take a block of rows through every step without waiting for the others.
/// This cuts a buffer laid out `[steps, n, w]` into, for each block of
/// `rb` rows, its piece of every step: `blocks[b][s]`.
pub(super) fn row_blocks<T>(
    buf: &mut [T],
    steps: usize,
    n: usize,
    w: usize,
    rb: usize,
) -> Vec<Vec<&mut [T]>> {
    assert_eq!(buf.len(), steps * n * w, "row_blocks: buffer size");
    let rb = rb.max(1);
    let mut blocks: Vec<Vec<&mut [T]>> = (0..n.div_ceil(rb)).map(|_| Vec::new()).collect();
    let mut rest = buf;
    for _ in 0..steps {
        for (b, pieces) in blocks.iter_mut().enumerate() {
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(rb.min(n - b * rb) * w);
            pieces.push(piece);
            rest = tail;
        }
    }
    blocks
}

/// The blocks of a buffer laid out block by block, `[blocks][steps][rows][w]`
/// (blocks of `rb` of the `n` rows): each block's rows of every step are
/// one `[steps·rows, w]` matrix, so its share of a weight gradient is one
/// product over values its own thread wrote.
pub(super) fn block_regions<T>(
    buf: &mut [T],
    steps: usize,
    n: usize,
    w: usize,
    rb: usize,
) -> Vec<&mut [T]> {
    assert_eq!(buf.len(), steps * n * w, "block_regions: buffer size");
    let rb = rb.max(1);
    let mut rest = buf;
    (0..n.div_ceil(rb))
        .map(|b| {
            let len = steps * rb.min(n - b * rb) * w;
            let (region, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            region
        })
        .collect()
}

/// [`block_regions`] cut into each block's piece of every step,
/// `blocks[b][s]`, as [`row_blocks`] cuts a `[steps, n, w]` buffer.
pub(super) fn block_major<T>(
    buf: &mut [T],
    steps: usize,
    n: usize,
    w: usize,
    rb: usize,
) -> Vec<Vec<&mut [T]>> {
    let rb = rb.max(1);
    block_regions(buf, steps, n, w, rb)
        .into_iter()
        .enumerate()
        .map(|(b, region)| {
            let piece = (rb.min(n - b * rb) * w).max(1);
            region.chunks_mut(piece).collect()
        })
        .collect()
}

/// The rows of a block-major `[blocks][steps][rows][w]` buffer put back in
/// time-major order, `[steps, n, w]`.
pub(super) fn to_time_major(v: &[f32], steps: usize, n: usize, w: usize, rb: usize) -> Vec<f32> {
    let rb = rb.max(1);
    let mut out = vec![0f32; steps * n * w];
    if w == 0 {
        return out;
    }
    let mut src = v.chunks(w);
    for r0 in (0..n).step_by(rb) {
        let rows = rb.min(n - r0);
        for s in 0..steps {
            for r in 0..rows {
                let row = src.next().expect("steps·n rows");
                out[(s * n + r0 + r) * w..][..w].copy_from_slice(row);
            }
        }
    }
    out
}

/// [`row_blocks`] of a buffer that is only read.
pub(super) fn row_blocks_ref<T>(
    buf: &[T],
    steps: usize,
    n: usize,
    w: usize,
    rb: usize,
) -> Vec<Vec<&[T]>> {
    assert!(buf.len() >= steps * n * w, "row_blocks_ref: buffer size");
    let rb = rb.max(1);
    let piece = |s: usize, b: usize| &buf[(s * n + b * rb) * w..(s * n + n.min((b + 1) * rb)) * w];
    (0..n.div_ceil(rb))
        .map(|b| (0..steps).map(|s| piece(s, b)).collect())
        .collect()
}

/// What the recurrent ops' tests share.
#[cfg(test)]
pub(super) mod testing {
    use crate::gradcheck::rand_input;
    use crate::Tensor;

    /// A recurrent op run on `(x, [w_ih, w_hh, b_ih, b_hh], states, mask,
    /// reverse)`.
    pub type Op<'a> =
        &'a dyn Fn(&Tensor, &[Tensor], &[Tensor], Option<Vec<f32>>, bool) -> crate::Result<Tensor>;

    /// w_ih `[G·H, I]`, w_hh `[G·H, H]`, b_ih, b_hh `[G·H]` of `gates`
    /// gates, small random values that need gradients.
    pub fn weights(gates: usize, i: usize, h: usize, seed: u64) -> [Tensor; 4] {
        let w = |shape: &[usize], k: u64| {
            let v = rand_input(shape, seed + k).mul_scalar(0.2).unwrap();
            v.requires_grad_(true)
        };
        let g = gates * h;
        [w(&[g, i], 0), w(&[g, h], 1), w(&[g], 2), w(&[g], 3)]
    }

    /// No rows, no steps or no input features give outputs (`extra` more
    /// steps than the input: the final states) and gradients of the right,
    /// possibly empty, shapes; no hidden units is an error.
    pub fn empty_dimensions(op: Op, gates: usize, n_states: usize, extra: usize) {
        let run = |t: usize, n: usize, i: usize, h: usize| {
            let x = Tensor::ones([t, n, i]).requires_grad_(true);
            let w = weights(gates, i, h, 70);
            let states: Vec<Tensor> = (0..n_states).map(|_| Tensor::zeros([n, h])).collect();
            let op_w = |x: &Tensor| op(x, &w, &states, None, false);
            let y = op_w(&x)?;
            assert_eq!(y.shape(), [t + extra, n, h]);
            y.sum_all()?.backward()?;
            assert_eq!(w[1].grad().expect("w_hh gradient").shape(), [gates * h, h]);
            assert_eq!(x.grad().expect("x gradient").shape(), [t, n, i]);
            Ok::<_, crate::Error>(())
        };
        for (t, n, i) in [(3, 0, 2), (0, 2, 2), (3, 2, 0)] {
            run(t, n, i, 2).unwrap_or_else(|e| panic!("{t} {n} {i}: {e}"));
        }
        let err = run(3, 2, 2, 0).unwrap_err().to_string();
        assert!(err.contains("hidden"), "{err}");
    }

    /// A batch large enough to be split into one block of rows per thread
    /// gives, row by row, what each row gives alone. `op(x, weights,
    /// states, mask, reverse)` runs the op; `states` are `[N, H]`. Checks
    /// the outputs bit for bit, with and without gradients, and the weight
    /// gradients (summed over the rows alone) to 1e-4.
    pub fn rows_alone(
        op: Op,
        gates: usize,
        (t, n, i, h): (usize, usize, usize, usize),
        n_states: usize,
    ) {
        let weights = &weights(gates, i, h, 50);
        let x = rand_input(&[t, n, i], 41);
        let states: Vec<Tensor> = (0..n_states)
            .map(|k| rand_input(&[n, h], 42 + k as u64))
            .collect();
        // row r is 1 + r mod t steps long
        let mask: Vec<f32> = (0..t * n)
            .map(|j| ((j / n) < 1 + (j % n) % t) as u8 as f32)
            .collect();
        for reverse in [false, true] {
            let alone = |r: usize| {
                let xr = x.narrow(1, r, 1).unwrap();
                let sr: Vec<Tensor> = states.iter().map(|s| s.narrow(0, r, 1).unwrap()).collect();
                let mr = (0..t).map(|s| mask[s * n + r]).collect();
                op(&xr, weights, &sr, Some(mr), reverse).unwrap()
            };
            let batch = |grad: bool| {
                let run = || op(&x, weights, &states, Some(mask.clone()), reverse).unwrap();
                match grad {
                    true => run(),
                    false => crate::no_grad(run),
                }
            };
            let with_grad = batch(true);
            for y in [&with_grad, &batch(false)] {
                for r in 0..n {
                    let want = alone(r).to_vec();
                    assert_eq!(y.narrow(1, r, 1).unwrap().to_vec(), want, "row {r}");
                }
            }
            // weight gradients of Σ y·c for a fixed c
            let c = rand_input(with_grad.shape(), 43);
            weights.iter().for_each(Tensor::zero_grad);
            with_grad
                .mul(&c)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let batch_grads: Vec<Vec<f32>> =
                weights.iter().map(|w| w.grad().unwrap().to_vec()).collect();
            weights.iter().for_each(Tensor::zero_grad);
            for r in 0..n {
                let cr = c.narrow(1, r, 1).unwrap();
                alone(r)
                    .mul(&cr)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
            }
            for (w, want) in weights.iter().zip(batch_grads) {
                let got = w.grad().unwrap().to_vec();
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "reverse {reverse}: {a} vs {b}"
                    );
                }
            }
            weights.iter().for_each(Tensor::zero_grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element lands in exactly one piece: the one of its step and
    /// its row's block, in order; the shared version cuts the same pieces.
    #[test]
    fn row_blocks_cut_every_step_at_the_same_rows() {
        let (steps, n, w) = (3, 5, 2);
        for rb in [1, 2, 3, 5, 7] {
            let mut buf: Vec<usize> = (0..steps * n * w).collect();
            let shared = row_blocks_ref(&buf.clone(), steps, n, w, rb)
                .into_iter()
                .map(|b| b.into_iter().map(<[usize]>::to_vec).collect::<Vec<_>>())
                .collect::<Vec<_>>();
            let blocks = row_blocks(&mut buf, steps, n, w, rb);
            assert_eq!(blocks.len(), n.div_ceil(rb));
            for (b, pieces) in blocks.iter().enumerate() {
                assert_eq!(pieces.len(), steps);
                for (s, piece) in pieces.iter().enumerate() {
                    let rows = b * rb..n.min((b + 1) * rb);
                    let want: Vec<usize> =
                        (s * n * w + rows.start * w..s * n * w + rows.end * w).collect();
                    assert_eq!(piece.to_vec(), want, "rb {rb} block {b} step {s}");
                    assert_eq!(shared[b][s], want);
                }
            }
        }
        // no rows: no blocks; no width: empty pieces
        assert!(row_blocks::<f32>(&mut [], 4, 0, 3, 2).is_empty());
        let empty = row_blocks::<f32>(&mut [], 2, 3, 0, 2);
        assert!(empty
            .iter()
            .all(|b| b.len() == 2 && b.iter().all(|p| p.is_empty())));
    }

    /// A wrong shape names the op, what is wrong and the shape expected.
    #[test]
    fn shape_errors_say_what_was_expected() {
        let z = |s: &[usize]| Tensor::zeros(s.to_vec());
        let (x, h) = (z(&[5, 2, 3]), z(&[2, 4]));
        let lstm = |w_ih: &[usize], w_hh: &[usize], b: &[usize], mask: Option<Vec<f32>>| {
            x.lstm_sequence(&z(w_ih), &z(w_hh), &z(b), &z(&[16]), &h, &h, mask, false)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            lstm(&[16, 3], &[16, 5], &[16], None),
            "lstm_sequence: w_hh has shape [16, 5]: with H = 5 (its columns) it must be [20, 5] (4 gates)"
        );
        assert_eq!(
            lstm(&[16, 2], &[16, 4], &[16], None),
            "lstm_sequence: w_ih has shape [16, 2], expected [16, 3] (input [5, 2, 3], w_hh [16, 4])"
        );
        assert_eq!(
            lstm(&[16, 3], &[16, 4], &[12], None),
            "lstm_sequence: b_ih has shape [12], expected [16] (input [5, 2, 3], w_hh [16, 4])"
        );
        assert_eq!(
            lstm(&[16, 3], &[16, 4], &[16], Some(vec![1.0; 8])),
            "lstm_sequence: mask must have T·N = 10 values (one per step and row), got 8"
        );
        let e = z(&[2, 3])
            .gru_sequence(
                &z(&[12, 3]),
                &z(&[12, 4]),
                &z(&[12]),
                &z(&[12]),
                &h,
                None,
                false,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "gru_sequence: expected an input of shape [T, N, I], got [2, 3]"
        );
        let e = x
            .rnn_sequence(
                &z(&[4, 3]),
                &z(&[4, 4]),
                &z(&[4]),
                &z(&[4]),
                &z(&[3, 4]),
                None,
                false,
                false,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rnn_sequence: h0 has shape [3, 4], expected [2, 4] (input [5, 2, 3], w_hh [4, 4])"
        );
    }

    /// Block-major pieces hold each block's rows of every step one after
    /// another, and putting the rows back in time order inverts the layout.
    #[test]
    fn block_major_pieces_and_time_order() {
        let (steps, n, w) = (3, 5, 2);
        for rb in [1, 2, 3, 5, 7] {
            // each row's values name its step and batch row
            let mut buf = vec![0f32; steps * n * w];
            let blocks = block_major(&mut buf, steps, n, w, rb);
            assert_eq!(blocks.len(), n.div_ceil(rb));
            for (b, pieces) in blocks.into_iter().enumerate() {
                assert_eq!(pieces.len(), steps);
                for (s, piece) in pieces.into_iter().enumerate() {
                    for (r, row) in piece.chunks_mut(w).enumerate() {
                        row.fill((s * n + b * rb + r) as f32);
                    }
                }
            }
            // block b's region: steps·rows rows, step by step
            let regions = block_regions(&mut buf.clone(), steps, n, w, rb)
                .into_iter()
                .map(|r| r.len())
                .collect::<Vec<_>>();
            let want: Vec<usize> = (0..n.div_ceil(rb))
                .map(|b| steps * rb.min(n - b * rb) * w)
                .collect();
            assert_eq!(regions, want, "rb {rb}");
            let time_major: Vec<f32> = (0..steps * n * w).map(|j| (j / w) as f32).collect();
            assert_eq!(to_time_major(&buf, steps, n, w, rb), time_major, "rb {rb}");
        }
        // rows of no width (an input without features)
        assert!(to_time_major(&[], 3, 5, 0, 2).is_empty());
    }
}
