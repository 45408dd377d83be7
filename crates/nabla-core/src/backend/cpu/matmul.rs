//! Matrix products: on the AVX-512 path nabla's own kernel (`gemm512.rs`),
//! elsewhere the `gemm` crate, which picks SIMD kernels (AVX2, NEON) at
//! run time (its AVX-512 ones need a nightly compiler), so one binary is
//! fast on any x86-64.

use gemm::Parallelism;

use crate::autocast::Precision;
use rayon::prelude::*;

/// Multiply-adds below which a product's columns are split between the
/// threads rather than handed to gemm's parallel kernels.
const MID_SIZED: usize = 1 << 26;

/// Multiply-adds below which a product stays on one thread: a few
/// microseconds of work, less than waking another thread costs.
const SMALL: usize = 1 << 18;

/// A read-only strided matrix: element (i, j) at `data[offset + i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The `rows × cols` matrix a [`Strided`](super::small_gemm::Strided) views.
    pub fn from_strided(a: super::small_gemm::Strided<'a>, rows: usize, cols: usize) -> Self {
        MatRef {
            data: a.data,
            offset: 0,
            rows,
            cols,
            rs: a.rs,
            cs: a.cs,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    pub(crate) fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), with `dst`
/// contiguous row-major `[lhs.rows, rhs.cols]`. `threads` > 1 lets gemm split
/// the work in the nabla pool.
pub fn gemm_into(dst: &mut [f32], accumulate: bool, lhs: MatRef, rhs: MatRef, threads: usize) {
    assert_eq!(
        dst.len(),
        lhs.rows * rhs.cols,
        "gemm_into: destination size"
    );
    // SAFETY: dst is an initialized m×n slice.
    unsafe { gemm_to(dst.as_mut_ptr(), accumulate, lhs, rhs, threads) }
}

/// `lhs · rhs` as a new row-major `[lhs.rows, rhs.cols]` vector, written
/// once into fresh capacity (no zeroing pass first).
pub fn gemm_new(lhs: MatRef, rhs: MatRef, threads: usize) -> Vec<f32> {
    let len = lhs.rows * rhs.cols;
    let mut out = Vec::with_capacity(len);
    // SAFETY: the capacity holds m×n floats and, with accumulate off, gemm_to
    // writes every one of them without reading any.
    unsafe {
        gemm_to(out.as_mut_ptr(), false, lhs, rhs, threads);
        out.set_len(len);
    }
    out
}

/// [`gemm_into`] at `precision`: with [`Precision::Bf16`] the operands
/// are rounded to bfloat16 and the sums kept in f32 (`bf16_gemm.rs`).
pub fn gemm_into_at(
    precision: Precision,
    dst: &mut [f32],
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    assert_eq!(
        dst.len(),
        lhs.rows * rhs.cols,
        "gemm_into: destination size"
    );
    // SAFETY: dst is an initialized m×n slice.
    unsafe { gemm_to_at(precision, dst.as_mut_ptr(), accumulate, lhs, rhs, threads) }
}

/// [`gemm_new`] at `precision` (see [`gemm_into_at`]).
pub fn gemm_new_at(precision: Precision, lhs: MatRef, rhs: MatRef, threads: usize) -> Vec<f32> {
    let len = lhs.rows * rhs.cols;
    let mut out = Vec::with_capacity(len);
    // SAFETY: as in gemm_new: written whole, none read.
    unsafe {
        gemm_to_at(precision, out.as_mut_ptr(), false, lhs, rhs, threads);
        out.set_len(len);
    }
    out
}

/// [`gemm_to`] at `precision` (see [`gemm_into_at`]).
///
/// # Safety
/// As [`gemm_to`].
pub(crate) unsafe fn gemm_to_at(
    precision: Precision,
    dst: *mut f32,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    // SAFETY: as the caller guarantees (dst row-major with n columns).
    unsafe {
        match precision {
            Precision::F32 => gemm_to(dst, accumulate, lhs, rhs, threads),
            Precision::Bf16 => super::bf16_gemm::gemm_to(dst, accumulate, lhs, rhs, threads),
        }
    }
}

/// The body of [`gemm_into`] and [`gemm_new`].
///
/// # Safety
/// `dst` must be valid for writes of `lhs.rows × rhs.cols` floats, and
/// initialized when `accumulate`; without `accumulate` every element is
/// written and none read.
pub(crate) unsafe fn gemm_to(
    dst: *mut f32,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "gemm_into: inner dimensions");
    lhs.check();
    rhs.check();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            // SAFETY: dst holds m·n floats (the caller's guarantee).
            unsafe { dst.write_bytes(0, m * n) };
        }
        return;
    }
    // For mid-sized products (the MLP's: 64 rows by a few hundred) gemm's
    // own split leaves the second thread mostly idle: give each thread a
    // block of columns instead, each a one-threaded product that packs only
    // its part of rhs (blocks of rows would each pack all of it).
    let work = m * n * k;
    if threads > 1 && n >= 32 * threads && (SMALL..MID_SIZED).contains(&work) {
        let cols = n.div_ceil(threads).next_multiple_of(16);
        let dst_addr = dst as usize;
        crate::threads::in_pool(|| {
            (0..n.div_ceil(cols)).into_par_iter().for_each(|b| {
                let (j0, nb) = (b * cols, cols.min(n - b * cols));
                let block = MatRef {
                    offset: rhs.offset + j0 * rhs.cs,
                    cols: nb,
                    ..rhs
                };
                // SAFETY: each block writes only columns j0..j0 + nb of
                // dst's m rows (row stride n), inside dst and disjoint from
                // the other blocks'; dst outlives the parallel loop.
                unsafe {
                    let out = (dst_addr as *mut f32).add(j0);
                    gemm_oriented(out, n, accumulate, lhs, block, Parallelism::None)
                }
            })
        });
        return;
    }
    let threaded = threads > 1 && work >= SMALL;
    let parallelism = if threaded {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the views were bounds-checked above and dst holds m×n floats,
    // row-major (the caller's guarantee).
    let dst_addr = dst as usize;
    let run =
        || unsafe { gemm_oriented(dst_addr as *mut f32, n, accumulate, lhs, rhs, parallelism) };
    if threaded {
        crate::threads::in_pool(run);
    } else {
        run();
    }
}

/// `lhs · rhs` like [`gemm_new`], for products whose inner dimension K
/// dwarfs M and N: at several threads K is cut into one contiguous part per
/// thread, each a one-threaded product, and the partial products are added.
/// gemm splits M and N between threads, and with M·N small (a recurrent
/// layer's weight gradients, `[x | 1 | h]ᵀ·dz`: 157 × 512 over K = 1792 for
/// the row-by-row LSTM) each thread packs and streams the whole of K for a
/// share of a small output: 206 against 189 GFLOP/s on two threads
/// (`kernels lstm_dw_split`). The GRU's weight gradients take it, and the
/// RNN's and LSTM's when their batch is one block of rows (several blocks
/// add up shares of their own instead). The sums are then in another order
/// than with one thread (last-bit differences).
pub fn gemm_new_split_k(
    precision: Precision,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) -> Vec<f32> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "gemm_new_split_k: inner dimensions");
    // each part long enough to amortize its own packing and its share of
    // the final additions; smaller products go to gemm's own split (or
    // the column blocks of gemm_to)
    let parts = threads.min(k / 256);
    if parts < 2 || m * n * k < MID_SIZED {
        return gemm_new_at(precision, lhs, rhs, threads);
    }
    let part = k.div_ceil(parts);
    let products: Vec<Vec<f32>> = crate::threads::in_pool(|| {
        (0..parts)
            .into_par_iter()
            .map(|p| {
                let (k0, kc) = (p * part, part.min(k - p * part));
                let lhs = MatRef {
                    offset: lhs.offset + k0 * lhs.cs,
                    cols: kc,
                    ..lhs
                };
                let rhs = MatRef {
                    offset: rhs.offset + k0 * rhs.rs,
                    rows: kc,
                    ..rhs
                };
                gemm_new_at(precision, lhs, rhs, 1)
            })
            .collect()
    });
    sum_parts(products)
}

/// The element-wise sum of equally long partial results (at least one),
/// the first in place, in chunks spread over the threads.
pub fn sum_parts(mut parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut sum = parts.swap_remove(0);
    let rest = &parts;
    super::for_each_chunk(&mut sum, 4096, |c, out| {
        for other in rest {
            let part = &other[c * 4096..][..out.len()];
            out.iter_mut().zip(part).for_each(|(s, v)| *s += v);
        }
    });
    sum
}

/// [`gemm_raw`], except that a short, wide product against a row-major
/// weight (a batch of 64 rows through a layer, `x·Wᵀ`) is computed as
/// `(W·xᵀ)ᵀ`: gemm is 10–20% faster writing such an output column-major
/// (`kernels orient`: the MLP's first layer 280 → 242 µs at one thread,
/// 145 → 130 µs at two), so `Cᵀ` goes to scratch and is transposed into
/// dst (8×8 blocks in registers, 1–3 µs).
///
/// At two threads each thread does this for its own block of W's rows
/// (`gemm_to`). Splitting the batch rows instead was faster still for the
/// product (120 µs), but then both cores read all of W, and the optimizer's
/// update of W right after took 33 → 98 µs a step (each write had to take
/// the line from the other core's cache).
///
/// # Safety
/// As [`gemm_raw`].
unsafe fn gemm_oriented(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    parallelism: Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    let x_wt = lhs.cs == 1 && rhs.rs == 1; // lhs row-major, rhs = Wᵀ, W row-major
    if !(x_wt && m <= 128 && m <= n && n >= 64 && k >= 32) {
        // SAFETY: as the caller guarantees.
        return unsafe { gemm_raw(dst, dst_rs, accumulate, lhs, rhs, parallelism) };
    }
    let mut ct = Vec::with_capacity(n * m);
    // SAFETY: ct's capacity holds the n×m product, written whole (no
    // accumulate) before it is read; dst as the caller guarantees.
    unsafe {
        gemm_raw(ct.as_mut_ptr(), m, false, rhs.t(), lhs.t(), parallelism);
        ct.set_len(n * m);
        super::transpose::transpose_into(dst, dst_rs, accumulate, &ct, m, n, m);
    }
}

/// `dst (+)= lhs · rhs` through gemm, `dst` with row stride `dst_rs` and
/// unit column stride.
///
/// # Safety
/// `lhs` and `rhs` must be checked views, and `dst` valid for writes at
/// `i·dst_rs + j` for every row i < lhs.rows and column j < rhs.cols.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    parallelism: Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        let threads = match parallelism {
            Parallelism::Rayon(n) => n.max(1),
            _ => 1,
        };
        // SAFETY: AVX-512 is present; the rest as the caller guarantees.
        return unsafe { super::gemm512::gemm(dst, dst_rs, accumulate, lhs, rhs, threads) };
    }
    // SAFETY: as the caller guarantees.
    unsafe {
        gemm::gemm(
            lhs.rows,
            rhs.cols,
            lhs.cols,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::test_values as vals;

    #[test]
    fn column_blocks_on_two_threads_give_the_one_thread_product() {
        // (m, k, n, lhs transposed, accumulate): the MLP's shapes, a weight
        // gradient read through a transposed view, ragged column counts
        for (m, k, n, lhs_t, acc) in [
            (64, 784, 256, false, false),
            (256, 64, 784, true, true),
            (64, 128, 100, false, true),
            (67, 97, 65, true, false),
        ] {
            let (a, b) = (vals(m * k, 1), vals(k * n, 2));
            let lhs = if lhs_t {
                MatRef::row_major(&a, k, m).t()
            } else {
                MatRef::row_major(&a, m, k)
            };
            let rhs = MatRef::row_major(&b, k, n);
            let start = vals(m * n, 3);
            let (mut one, mut two) = (start.clone(), start.clone());
            gemm_into(&mut one, acc, lhs, rhs, 1);
            gemm_into(&mut two, acc, lhs, rhs, 2);
            assert_eq!(one, two, "{m}x{k}x{n}");
            // and the values are the product's
            let at = |i: usize, p: usize| a[if lhs_t { p * m + i } else { i * k + p }];
            for (idx, v) in one.iter().enumerate() {
                let (i, j) = (idx / n, idx % n);
                let want: f32 = (0..k).map(|p| at(i, p) * b[p * n + j]).sum::<f32>()
                    + if acc { start[idx] } else { 0.0 };
                assert!((v - want).abs() < 1e-3 * (1.0 + want.abs()), "{m}x{k}x{n}");
            }
        }
    }

    #[test]
    fn split_inner_dimension_gives_the_product() {
        // K cut in two or three parts (ragged), and not cut (one thread, or
        // a small product), through a transposed left-hand view as the LSTM
        // uses it
        for (m, k, n) in [(157, 1792, 512), (100, 2001, 400), (40, 600, 30)] {
            let (a, b) = (vals(k * m, 4), vals(k * n, 5));
            let lhs = MatRef::row_major(&a, k, m).t();
            let rhs = MatRef::row_major(&b, k, n);
            let one = gemm_new(lhs, rhs, 1);
            for threads in [1, 2, 3] {
                let split = gemm_new_split_k(Precision::F32, lhs, rhs, threads);
                assert_eq!(split.len(), m * n);
                for (s, o) in split.iter().zip(&one) {
                    assert!(
                        (s - o).abs() < 1e-4 * (1.0 + o.abs()),
                        "{m}x{k}x{n}, {threads} threads"
                    );
                }
            }
        }
    }
}
