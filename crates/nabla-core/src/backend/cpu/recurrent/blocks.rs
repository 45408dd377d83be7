//! How the recurrent engine lays out its buffers and cuts them between
//! threads. Rows of a batch are independent through a recurrence, so each
//! thread takes a block of rows through every step; a buffer of every step
//! is laid out either time-major, `[steps, n, w]`, or block-major,
//! `[blocks][steps][rows][w]` (each block's rows of every step one matrix,
//! so that its share of a weight gradient is one product over values its
//! own thread wrote).

use std::ops::Range;

use crate::backend::cpu::copy;
use crate::backend::View;

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
pub(super) fn with_rows<R>((storage, layout): View, f: impl FnOnce(RowsAt) -> R) -> R {
    let strides = layout.strides();
    if strides[2] == 1 && layout.numel() > 0 {
        return f(RowsAt {
            data: storage.host(),
            offset: layout.offset(),
            step: strides[0],
            row: strides[1],
        });
    }
    let (n, i) = (layout.shape()[1], layout.shape()[2]);
    f(RowsAt {
        data: &copy::contiguous(storage.host(), layout),
        offset: 0,
        step: n * i,
        row: i,
    })
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
    mask: Option<&'a [f32]>,
    s: usize,
    n: usize,
    rows: &Range<usize>,
) -> Option<&'a [f32]> {
    mask.map(|m| &m[s * n + rows.start..s * n + rows.end])
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

/// [`block_regions`] of a buffer that is only read.
pub(super) fn block_regions_ref<T>(
    buf: &[T],
    steps: usize,
    n: usize,
    w: usize,
    rb: usize,
) -> Vec<&[T]> {
    assert_eq!(buf.len(), steps * n * w, "block_regions_ref: buffer size");
    let rb = rb.max(1);
    let mut rest = buf;
    (0..n.div_ceil(rb))
        .map(|b| {
            let (region, tail) = rest.split_at(steps * rb.min(n - b * rb) * w);
            rest = tail;
            region
        })
        .collect()
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
