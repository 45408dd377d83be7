//! Row reductions over a contiguous `[rows, len]` buffer.
//!
//! Sums accumulate in 8 independent lanes (vectorizable, and more accurate
//! than one running sum). A single long row is cut into fixed blocks whose
//! partial sums are added in order, so the result never depends on the
//! number of threads.

use rayon::prelude::*;

/// What a reduction computes per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

const BLOCK: usize = 1 << 14;

/// Sum in 8 independent lanes (vectorizes; fixed order, so deterministic).
pub fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Dot product in 8 independent lanes (vectorizes; fixed order).
pub fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn reduce_slice(x: &[f32], op: ReduceOp) -> f32 {
    match op {
        ReduceOp::Sum => sum_lanes(x),
        // NaN propagates, as in PyTorch.
        ReduceOp::Max => x.iter().fold(f32::NEG_INFINITY, |m, &v| {
            if v > m || v.is_nan() || m.is_nan() {
                if m.is_nan() {
                    m
                } else {
                    v
                }
            } else {
                m
            }
        }),
        ReduceOp::Min => x.iter().fold(f32::INFINITY, |m, &v| {
            if v < m || v.is_nan() || m.is_nan() {
                if m.is_nan() {
                    m
                } else {
                    v
                }
            } else {
                m
            }
        }),
    }
}

fn combine(a: f32, b: f32, op: ReduceOp) -> f32 {
    reduce_slice(&[a, b], op)
}

/// Reduces each row of `data` (`rows × len`, contiguous) to one value.
pub fn reduce_rows(data: &[f32], rows: usize, len: usize, op: ReduceOp) -> Vec<f32> {
    debug_assert_eq!(data.len(), rows * len);
    if len == 0 {
        let empty = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
        };
        return vec![empty; rows];
    }
    if rows == 1 && len > BLOCK {
        // One long row: fixed blocks in parallel, then combine in order.
        let partials: Vec<f32> = crate::threads::in_pool(|| {
            data.par_chunks(BLOCK)
                .map(|b| reduce_slice(b, op))
                .collect()
        });
        let mut acc = partials[0];
        for &p in &partials[1..] {
            acc = combine(acc, p, op);
        }
        return vec![acc];
    }
    if rows * len >= super::PAR_MIN_ELEMS && rows > 1 {
        crate::threads::in_pool(|| data.par_chunks(len).map(|r| reduce_slice(r, op)).collect())
    } else {
        data.chunks(len).map(|r| reduce_slice(r, op)).collect()
    }
}

/// Sums the rows of `data` (`[len, cols]`, contiguous) into `cols` values:
/// the column sums, bit for bit what [`sum_lanes`] gives on each column
/// (row i goes to lane i mod 8), without transposing first. A bias's
/// gradient is such a sum over the batch.
pub fn sum_columns(data: &[f32], len: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(data.len(), len * cols);
    // column blocks small enough for the eight lanes to stay in L1
    const WIDTH: usize = 256;
    let mut out = vec![0f32; cols];
    let full = len / 8 * 8;
    for j0 in (0..cols).step_by(WIDTH) {
        let w = WIDTH.min(cols - j0);
        let mut acc = [[0f32; WIDTH]; 8];
        for i in 0..full {
            let row = &data[i * cols + j0..i * cols + j0 + w];
            acc[i % 8][..w]
                .iter_mut()
                .zip(row)
                .for_each(|(a, &v)| *a += v);
        }
        let s = &mut out[j0..j0 + w];
        for (j, s) in s.iter_mut().enumerate() {
            let a = |k: usize| acc[k][j];
            *s = ((a(0) + a(4)) + (a(1) + a(5))) + ((a(2) + a(6)) + (a(3) + a(7)));
        }
        for i in full..len {
            let row = &data[i * cols + j0..i * cols + j0 + w];
            s.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_equal_row_sums_of_the_transpose_bit_for_bit() {
        // row counts around the lanes' 8, column counts around the blocks' 256
        for (len, cols) in [(64, 256), (13, 3), (7, 600), (1, 5), (0, 4), (200, 257)] {
            let x: Vec<f32> = (0..len * cols)
                .map(|v| ((v * 7919) % 1000) as f32 / 37.0 - 13.0)
                .collect();
            let mut t = vec![0f32; len * cols];
            for i in 0..len {
                for j in 0..cols {
                    t[j * len + i] = x[i * cols + j];
                }
            }
            let want = reduce_rows(&t, cols, len, ReduceOp::Sum);
            let got = sum_columns(&x, len, cols);
            assert_eq!(got.len(), cols);
            assert!(got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn rows_and_long_rows() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(reduce_rows(&x, 3, 4, ReduceOp::Sum), vec![6.0, 22.0, 38.0]);
        assert_eq!(reduce_rows(&x, 2, 6, ReduceOp::Max), vec![5.0, 11.0]);
        assert_eq!(reduce_rows(&x, 2, 6, ReduceOp::Min), vec![0.0, 6.0]);
        let long = vec![0.5f32; 100_000];
        assert_eq!(
            reduce_rows(&long, 1, 100_000, ReduceOp::Sum),
            vec![50_000.0]
        );
        assert!(reduce_rows(&[1.0, f32::NAN, 3.0], 1, 3, ReduceOp::Max)[0].is_nan());
    }
}
