//! The matrix product on 512-bit vectors: `C[M,N] (+)= A[M,K]·B[K,N]`,
//! A and B with any strides, C row-major. The `gemm` crate's AVX-512
//! kernels need a nightly compiler (its `nightly` feature); this one is
//! written with the AVX-512 intrinsics that stable Rust has had since 1.89.
//!
//! The classic blocking (Goto's, as BLIS lays it out): K in blocks of
//! `KC`; for each, B packed once into panels of `NR = 32` columns (two
//! vectors; the last panel padded with zeros), each `KC × 32` contiguous;
//! then the rows in blocks of about `MC`, a task each, run against every
//! panel 12 rows (`MR`) at a time. The micro-kernel keeps a 12 × 32 tile
//! of C in 24 of the 32 vector registers; each step of K loads one panel
//! row (2 vectors) and broadcasts 12 values of A, read in place, into 24
//! FMAs. A is not packed: its 12 rows of a block are 12 short streams
//! that stay in cache, and packing them cost the MLP's first layer as much
//! as its product. Edges: C's columns through lane masks (no scalar
//! tails), and a tile of fewer rows for the last ones.
//!
//! Each element's sum runs over K in the same order whatever the thread
//! count: results are bit for bit the same at 1 and 2 threads.

use rayon::prelude::*;

use super::matmul::MatRef;

/// Rows of C in a micro-tile (broadcasts of A).
const MR: usize = 12;
/// Columns of C in a micro-tile: two 16-lane vectors.
const NR: usize = 32;
/// Depth of a packed block: a `KC × 32` panel is 32 KiB, half of it in L1
/// at a time, and a `MC × KC` block of A 96 KiB of L2.
const KC: usize = 192;
/// Rows of A a task packs and runs against every panel.
const MC: usize = 96;

/// `dst (+)= lhs · rhs` on AVX-512; `threads` > 1 splits the rows (and,
/// for short products, the columns) between the pool's threads.
///
/// # Safety
/// The CPU must have AVX-512F; `lhs` and `rhs` checked views with
/// `lhs.cols == rhs.rows`; `dst` valid for writes (and reads when
/// `accumulate`) at `i·dst_rs + j` for every i < lhs.rows, j < rhs.cols.
pub(crate) unsafe fn gemm(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    let panels = n.div_ceil(NR);
    let tasks = Tasks::new(m, panels, threads, MR, MC);
    // B packed whole, block of K after block, then one parallel pass: two
    // hand-overs to the pool per product, not two per block of K
    let mut packed_b = vec![0f32; panels * k * NR];
    let lens = (KC * NR, (k % KC) * NR);
    for_each_block(
        &mut packed_b,
        lens,
        (k / KC) * panels,
        threads,
        |chunk, panel| {
            let (k0, p) = (chunk / panels * KC, chunk % panels);
            pack_b_panel(panel, &rhs, k0, KC.min(k - k0), p * NR)
        },
    );
    let packed_b = &packed_b[..];
    let dst_addr = dst as usize;
    let task = |t: usize| {
        let (i0, mc, first, last) = tasks.of(t);
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            // the first block of K writes C (or adds to it), the others add
            let add = accumulate || k0 > 0;
            for p in first..last {
                let (j0, cols) = (p * NR, NR.min(n - p * NR));
                let panel = &packed_b[k0 * panels * NR + p * kc * NR..][..kc * NR];
                for i in (i0..i0 + mc).step_by(MR) {
                    let rows = MR.min(i0 + mc - i);
                    // SAFETY: rows i.. (`rows` of them) and columns j0..
                    // (`cols`) of C are inside dst (the caller's guarantee),
                    // and of A inside the checked view; tasks write
                    // disjoint tiles.
                    unsafe {
                        let a = lhs.data.as_ptr().add(lhs.offset + i * lhs.rs + k0 * lhs.cs);
                        let c = (dst_addr as *mut f32).add(i * dst_rs + j0);
                        tile(rows, kc, (a, lhs.rs, lhs.cs), panel, c, dst_rs, cols, add);
                    }
                }
            }
        }
    };
    tasks.run(threads, task);
}

/// How a blocked product shares C's tiles between tasks: rows in blocks of
/// whole slivers (of `mr` rows), as even as slivers allow and a multiple
/// of the thread count — blocks of `mc` rows would leave one thread a
/// block more than the other (512 rows: 3 blocks of 96 against 2 and 32)
/// — and, with fewer row blocks than threads, the panels of columns cut
/// into parts too. Shared by the f32 and bf16 products.
pub(super) struct Tasks {
    m: usize,
    mr: usize,
    slivers: usize,
    row_blocks: usize,
    col_parts: usize,
    panels: usize,
    panels_per_part: usize,
}

impl Tasks {
    pub(super) fn new(m: usize, panels: usize, threads: usize, mr: usize, mc: usize) -> Tasks {
        let slivers = m.div_ceil(mr);
        let row_blocks = slivers
            .div_ceil(mc / mr)
            .next_multiple_of(threads)
            .min(slivers);
        let col_parts = threads.div_ceil(row_blocks).clamp(1, panels);
        Tasks {
            m,
            mr,
            slivers,
            row_blocks,
            col_parts,
            panels,
            panels_per_part: panels.div_ceil(col_parts),
        }
    }

    /// Task `t`'s first row and rows, and its panels `first..last`.
    pub(super) fn of(&self, t: usize) -> (usize, usize, usize, usize) {
        let (block, part) = (t / self.col_parts, t % self.col_parts);
        let (s0, s1) = (
            block * self.slivers / self.row_blocks,
            (block + 1) * self.slivers / self.row_blocks,
        );
        let i0 = s0 * self.mr;
        let first = part * self.panels_per_part;
        let last = (first + self.panels_per_part).min(self.panels);
        (i0, (s1 * self.mr).min(self.m) - i0, first, last)
    }

    /// Runs every task, in parallel when there are threads and tasks.
    pub(super) fn run(&self, threads: usize, task: impl Fn(usize) + Sync + Send) {
        let count = self.row_blocks * self.col_parts;
        if threads > 1 && count > 1 {
            (0..count).into_par_iter().for_each(task);
        } else {
            (0..count).for_each(task);
        }
    }
}

/// `pack(index, chunk)` over B's packed panels: the `full` blocks of K
/// (their first `blocks.0 · full` elements) in chunks of `blocks.0` (a
/// panel each), then the shorter last block's panels in chunks of
/// `blocks.1`; in parallel when `threads` > 1.
pub(super) fn for_each_block<T: Send>(
    packed: &mut [T],
    (len, last_len): (usize, usize),
    full: usize,
    threads: usize,
    pack: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let (full, last) = packed.split_at_mut(full * len);
    let pack = |(i, chunk): (usize, &mut [T])| pack(i, chunk);
    if threads > 1 {
        full.par_chunks_mut(len.max(1))
            .chain(last.par_chunks_mut(last_len.max(1)))
            .enumerate()
            .for_each(pack);
    } else {
        full.chunks_mut(len.max(1))
            .chain(last.chunks_mut(last_len.max(1)))
            .enumerate()
            .for_each(pack);
    }
}

/// Columns `j0..j0 + 32` of rows `k0..k0 + kc` of B into `panel`
/// (`kc × 32`, row after row; columns past N stay zero).
fn pack_b_panel(panel: &mut [f32], b: &MatRef, k0: usize, kc: usize, j0: usize) {
    let cols = NR.min(b.cols - j0);
    let panel = &mut panel[..kc * NR];
    if b.cs != 1 && b.rs == 1 {
        // columns contiguous (Wᵀ of a row-major W): read them whole
        panel.fill(0.0);
        for j in 0..cols {
            let column = &b.data[b.offset + (j0 + j) * b.cs + k0..][..kc];
            for (kk, v) in column.iter().enumerate() {
                panel[kk * NR + j] = *v;
            }
        }
        return;
    }
    for (kk, row) in panel.chunks_mut(NR).enumerate() {
        let base = b.offset + (k0 + kk) * b.rs + j0 * b.cs;
        if b.cs == 1 {
            row[..cols].copy_from_slice(&b.data[base..base + cols]);
        } else {
            for (j, v) in row[..cols].iter_mut().enumerate() {
                *v = b.data[base + j * b.cs];
            }
        }
        row[cols..].fill(0.0);
    }
}

/// A in place: its first element and strides (row, column).
type Strided = (*const f32, usize, usize);

/// [`kernel`] for a tile of `rows` (1 to 12) rows.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    rows: usize,
    kc: usize,
    a: Strided,
    panel: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    add: bool,
) {
    // SAFETY: as the caller guarantees.
    unsafe { with_rows!(rows, kernel::<_>(kc, a, panel, c, ldc, cols, add)) }
}

/// One `R` × 32 tile: `C (+)= A[R, kc] · panel` over `kc` steps, A read
/// in place (each step broadcasts one value of each of its R rows),
/// writing only the first `cols` columns of C.
///
/// # Safety
/// AVX-512F; A valid at `r·rs + kk·cs` for r < R, kk < kc; `c` valid at
/// `r·ldc + j` for r < R, j < cols (and read there when `add`); `panel`
/// holds `kc` steps.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize>(
    kc: usize,
    (a, rs, cs): Strided,
    panel: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    add: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(panel.len() >= kc * NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let b = panel.as_ptr();
    for kk in 0..kc {
        // SAFETY: step kk of the panel and of A's R rows are inside them.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(kk * NR));
            let b1 = _mm512_loadu_ps(b.add(kk * NR + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * rs + kk * cs));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    for (r, acc) in acc.iter().enumerate() {
        for (h, (v, mask)) in acc.iter().zip(masks).enumerate() {
            // SAFETY: the masked lanes are columns < cols of row r < R.
            unsafe { super::store_masked_512(c.add(r * ldc + h * 16), *v, mask, add) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::test_values;

    /// Every edge (partial slivers and panels, several K blocks, one
    /// row, one column), both layouts of A and B, both write modes, one
    /// and two threads (bit for bit alike), against the sum in f64.
    #[test]
    fn products_on_512_bit_vectors_match_the_definition() {
        if !crate::isa::Isa::Avx512.supported() {
            eprintln!("skipped: this CPU lacks AVX-512 (F, BW, VL, DQ)");
            return;
        }
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 37),
            (12, 256, 32),
            (97, 300, 65),
            (200, 513, 40),
            (5, 600, 3),
            (64, 784, 256),
        ] {
            for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
                let (av, bv) = (test_values(m * k, 1), test_values(k * n, 2));
                let a = match a_t {
                    false => MatRef::row_major(&av, m, k),
                    true => MatRef::row_major(&av, k, m).t(),
                };
                let b = match b_t {
                    false => MatRef::row_major(&bv, k, n),
                    true => MatRef::row_major(&bv, n, k).t(),
                };
                let at = |x: &MatRef, i: usize, j: usize| x.data[x.offset + i * x.rs + j * x.cs];
                let start = test_values(m * n, 3);
                for accumulate in [false, true] {
                    let mut outs = Vec::new();
                    for threads in [1, 2] {
                        let mut c = start.clone();
                        // SAFETY: AVX-512 is present; c holds m×n floats.
                        crate::threads::in_pool(|| unsafe {
                            gemm(c.as_mut_ptr(), n, accumulate, a, b, threads)
                        });
                        outs.push(c);
                    }
                    assert_eq!(outs[0], outs[1], "{m}x{k}x{n}: threads differ");
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 = (0..k)
                                .map(|kk| at(&a, i, kk) as f64 * at(&b, kk, j) as f64)
                                .sum();
                            let want = dot
                                + if accumulate {
                                    start[i * n + j] as f64
                                } else {
                                    0.0
                                };
                            let got = outs[0][i * n + j] as f64;
                            assert!(
                                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{m}x{k}x{n} ({a_t}, {b_t}, {accumulate}) at ({i}, {j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
