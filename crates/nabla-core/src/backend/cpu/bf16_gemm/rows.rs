//! The bf16 forms of `small_gemm.rs`'s two products, with the same
//! arguments: what a convolution runs under
//! [`autocast`](crate::autocast)`(Bf16, ..)`, one image at a time.
//!
//! - [`gemm_bcast`]: `C[M,N] (+)= bf16(A)[M,K]·bf16(B)[K,N]`, B given by
//!   rows (a lowered image: rows anywhere in one buffer, shared between
//!   taps). B's rows are paired two by two into this module's panels of 32
//!   columns (`combine_rows`: two rows, lane by lane), A packed as the
//!   general product packs it.
//! - [`gemm_dot`]: `C[M,N] (+)= bf16(A)[M,K]·bf16(B)[N,K]ᵀ`, both
//!   contiguous along K (a weight gradient: K is an image's output
//!   positions). Each row of B is narrowed into pairs along K, then 32 of
//!   them transposed into a panel.
//!
//! Both run the 12 × 32 tiles of `kernels.rs` (on `VDPBF16PS` or its
//! emulation, the same bits), which write C's rows wherever they are
//! (the wide input gradient's overlap: they are added in order). Without
//! AVX-512 the operands are rounded into f32 copies and go through the f32
//! kernels, as the general product's fallback does.

use std::cell::RefCell;

use super::super::small_gemm::{self, check_rows, Rows, Strided};
use super::{bf16_isa, on_bf16_units, round_to_bf16, NR};
use crate::isa::Isa;

/// Each thread's packing buffers, kept between calls: a convolution
/// calls these products once per image, and allocating and zeroing the
/// panels each time cost as much as packing them.
#[derive(Default)]
struct Buffers {
    a: Vec<u32>,
    panels: Vec<u32>,
    columns: Vec<u32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
}

/// The first `n` elements of `v`, grown (with zeros) if it is shorter;
/// what was there before is left (every caller overwrites what it reads).
fn first<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// `C[M,N] = bf16(A)[M,K]·bf16(B)[K,N]` (or `+=` when `accumulate`); B
/// given by rows (each N long), and C's row i starting at `c[c_rows[i]]`
/// (rows may overlap: they are added in order).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bcast(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Rows,
    c: &mut [f32],
    c_rows: &[usize],
    accumulate: bool,
) {
    let (isa, units) = (bf16_isa(), on_bf16_units());
    gemm_bcast_on(isa, units, m, n, k, a, b, c, c_rows, accumulate)
}

/// `C[M,N] = bf16(A)[M,K]·bf16(B)[N,K]ᵀ` (or `+=`): A row-major (rows
/// `lda` apart), B given by rows (each K long), C's rows `ldc` apart.
#[allow(clippy::too_many_arguments)]
pub fn gemm_dot(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: Rows,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let (isa, units) = (bf16_isa(), on_bf16_units());
    gemm_dot_on(isa, units, m, n, k, a, lda, b, c, ldc, accumulate)
}

/// `b` with every row's first `len` values rounded to bf16, in a buffer
/// of their own (same offsets): the fallback's operand.
fn rounded_rows(b: &Rows, rows: usize, len: usize) -> Vec<f32> {
    let mut out = vec![0f32; b.data.len()];
    for &o in &b.offsets[..rows] {
        for (d, s) in out[o..o + len].iter_mut().zip(&b.data[o..o + len]) {
            *d = round_to_bf16(*s);
        }
    }
    out
}

/// [`gemm_bcast`] on the path `isa` (`VDPBF16PS` when `units`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_bcast_on(
    isa: Isa,
    units: bool,
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Rows,
    c: &mut [f32],
    c_rows: &[usize],
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs);
    check_rows(&b, k, n);
    assert!(c_rows.len() >= m && c_rows[..m].iter().all(|&o| o + n <= c.len()));
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && k > 0 {
        return BUFFERS.with_borrow_mut(|buf| {
            let packed_a = pack_a(&mut buf.a, a, m, k, units);
            let panels = pack_b_rows(&mut buf.panels, &b, k, n, units);
            // SAFETY: AVX-512 (and BF16 with units) is present; C's rows
            // hold n values from their offsets (checked above).
            unsafe {
                tiles(
                    units,
                    (m, n, k.div_ceil(2)),
                    packed_a,
                    panels,
                    c,
                    |i| c_rows[i],
                    accumulate,
                )
            };
        });
    }
    // the fallback: rounded copies through the f32 kernels
    let _ = units;
    let a_rounded = super::rounded_copy(a.data, (m, k), (a.rs, a.cs));
    let a = Strided {
        data: &a_rounded,
        rs: k,
        cs: 1,
    };
    let b_rounded = rounded_rows(&b, k, n);
    let b = Rows {
        data: &b_rounded,
        offsets: b.offsets,
    };
    small_gemm::gemm_bcast_on(isa, m, n, k, a, b, c, c_rows, accumulate)
}

/// [`gemm_dot`] on the path `isa` (`VDPBF16PS` when `units`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_dot_on(
    isa: Isa,
    units: bool,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: Rows,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k);
    check_rows(&b, n, k);
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && k > 0 {
        let a = Strided {
            data: a,
            rs: lda,
            cs: 1,
        };
        return BUFFERS.with_borrow_mut(|buf| {
            let packed_a = pack_a(&mut buf.a, a, m, k, units);
            let panels = pack_b_columns(&mut buf.panels, &mut buf.columns, &b, n, k, units);
            // SAFETY: AVX-512 (and BF16 with units) is present; C's rows
            // (checked above) hold n values ldc apart.
            unsafe {
                tiles(
                    units,
                    (m, n, k.div_ceil(2)),
                    packed_a,
                    panels,
                    c,
                    |i| i * ldc,
                    accumulate,
                )
            };
        });
    }
    let _ = units;
    let a_rounded = super::rounded_copy(a, (m, k), (lda, 1));
    let b_rounded = rounded_rows(&b, n, k);
    let b = Rows {
        data: &b_rounded,
        offsets: b.offsets,
    };
    small_gemm::gemm_dot_on(isa, m, n, k, &a_rounded, k, b, c, ldc, accumulate)
}

/// A `[m, k]` as pairs along K: `m × ⌈k/2⌉` `u32`s, row after row.
#[cfg(target_arch = "x86_64")]
fn pack_a<'b>(buf: &'b mut Vec<u32>, a: Strided, m: usize, k: usize, units: bool) -> &'b [u32] {
    let kp = k.div_ceil(2);
    let view = super::MatRef::from_strided(a, m, k);
    view.check();
    let out = first(buf, m * kp);
    // SAFETY: the caller runs on the AVX-512 path (BF16 with units); the
    // view was checked.
    unsafe { super::pack::a_block(out, &view, 0, m, 0, kp, units) };
    out
}

/// B `[k, n]` given by rows into panels of 32 columns, `⌈k/2⌉` pairs
/// each (pair q of column j: rows 2q and 2q + 1), zeros past n and k.
#[cfg(target_arch = "x86_64")]
fn pack_b_rows<'b>(buf: &'b mut Vec<u32>, b: &Rows, k: usize, n: usize, units: bool) -> &'b [u32] {
    let kp = k.div_ceil(2);
    let panels = first(buf, n.div_ceil(NR) * kp * NR);
    let row = |r: usize, j0: usize| b.data[b.offsets[r] + j0..].as_ptr();
    for (p, panel) in panels.chunks_mut(kp * NR).enumerate() {
        let (j0, cols) = (p * NR, NR.min(n - p * NR));
        for (q, dst) in panel.chunks_mut(NR).enumerate() {
            let hi = (2 * q + 1 < k).then(|| row(2 * q + 1, j0));
            // SAFETY: AVX-512 (BF16 with units); rows 2q and 2q + 1 hold
            // n values from their offsets (checked by the caller), so
            // `cols` from j0.
            unsafe { super::pack::combine_rows(row(2 * q, j0), hi, &mut dst[..cols], units) };
            dst[cols..].fill(0);
        }
    }
    panels
}

/// Bᵀ for B `[n, k]` given by rows (contiguous along K): each row
/// narrowed into `⌈k/2⌉` pairs, 32 rows transposed into a panel.
#[cfg(target_arch = "x86_64")]
fn pack_b_columns<'b>(
    buf: &'b mut Vec<u32>,
    columns: &mut Vec<u32>,
    b: &Rows,
    n: usize,
    k: usize,
    units: bool,
) -> &'b [u32] {
    let kp = k.div_ceil(2);
    let panels = first(buf, n.div_ceil(NR) * kp * NR);
    let by_column = first(columns, NR * kp);
    for (p, panel) in panels.chunks_mut(kp * NR).enumerate() {
        let (j0, cols) = (p * NR, NR.min(n - p * NR));
        by_column[cols * kp..].fill(0);
        for (j, column) in by_column.chunks_mut(kp).take(cols).enumerate() {
            let src = b.data[b.offsets[j0 + j]..].as_ptr();
            // SAFETY: AVX-512 (BF16 with units); the row holds k values
            // (checked by the caller).
            unsafe { super::pack::narrow_pairs(src, k, column, units) };
        }
        // SAFETY: both hold NR × kp.
        unsafe { super::pack::transpose_u32(panel, by_column, NR, kp) };
    }
    panels
}

/// `C (+)= A·B` over the packed operands: `m` rows of `kp` pairs, panels
/// of `kp` pairs × 32 columns; C's row i at `c[c_row(i)..]`.
///
/// # Safety
/// AVX-512F (and AVX512-BF16 when `units`); C's rows hold `n` values.
#[cfg(target_arch = "x86_64")]
unsafe fn tiles(
    units: bool,
    (m, n, kp): (usize, usize, usize),
    packed_a: &[u32],
    panels: &[u32],
    c: &mut [f32],
    c_row: impl Fn(usize) -> usize,
    accumulate: bool,
) {
    for (p, panel) in panels.chunks(kp * NR).enumerate() {
        let (j0, cols) = (p * NR, NR.min(n - p * NR));
        for i in (0..m).step_by(super::MR) {
            // SAFETY: as the caller guarantees; rows i.. of packed A hold
            // kp pairs each, the panel kp × 32.
            unsafe {
                let a = packed_a.as_ptr().add(i * kp);
                let cp = c.as_mut_ptr().add(j0);
                let rows = super::MR.min(m - i);
                let at: [usize; super::MR] = std::array::from_fn(|r| c_row(i + r.min(rows - 1)));
                let at = &at[..rows];
                super::kernels::tile_at_rows(units, rows, kp, a, panel, cp, at, cols, accumulate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::paths;
    use super::*;
    use crate::backend::cpu::test_values;

    /// Rows of `len` at scattered, overlapping offsets in one buffer (as
    /// a convolution's strips share them), and the buffer.
    fn scattered(rows: usize, len: usize, seed: usize) -> (Vec<f32>, Vec<usize>) {
        let data: Vec<f32> = test_values(rows * 3 + len + 5, seed)
            .iter()
            .map(|v| v * 1.1)
            .collect();
        let offsets = (0..rows).map(|r| (r * 7 + 3) % (rows * 3 + 5)).collect();
        (data, offsets)
    }

    fn close(got: f32, want: f64, k: usize, case: &str) {
        assert!(
            (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs() + k as f64 / 64.0),
            "{case}: {got} vs {want}"
        );
    }

    /// Odd and even K, one to two tiles of rows, partial panels, evenly
    /// spaced and overlapping rows of C: the product of the rounded
    /// operands in f64 on every path, `VDPBF16PS` and its emulation the
    /// same bits.
    #[test]
    fn bcast_matches_the_rounded_product_on_every_path() {
        for (m, k, n) in [
            (1, 1, 1),
            (6, 25, 784),
            (16, 150, 100),
            (13, 7, 33),
            (30, 2, 65),
        ] {
            let a: Vec<f32> = test_values(m * k * 2, 1).iter().map(|v| v * 1.1).collect();
            let (bd, bo) = scattered(k, n, 2);
            // A as Wᵀ: element (i, kk) at kk·m + i
            let av = Strided {
                data: &a,
                rs: 1,
                cs: m,
            };
            for (overlapping, accumulate) in [(false, false), (false, true), (true, true)] {
                // evenly spaced rows n + 3 apart, or rows 2 apart (added in order)
                let gap = if overlapping { 2 } else { n + 3 };
                let c_rows: Vec<usize> = (0..m).map(|i| i * gap).collect();
                let start = test_values((m - 1) * gap + n, 3);
                let mut want: Vec<f64> = start.iter().map(|&v| v as f64).collect();
                if !accumulate {
                    c_rows.iter().for_each(|&r| want[r..r + n].fill(0.0));
                }
                for i in 0..m {
                    for j in 0..n {
                        let s: f64 = (0..k)
                            .map(|kk| {
                                let x = round_to_bf16(a[kk * m + i]) as f64;
                                x * round_to_bf16(bd[bo[kk] + j]) as f64
                            })
                            .sum();
                        want[c_rows[i] + j] += s;
                    }
                }
                let mut first: Option<Vec<f32>> = None;
                for (isa, units) in paths() {
                    let mut c = start.clone();
                    let rows = Rows {
                        data: &bd,
                        offsets: &bo,
                    };
                    gemm_bcast_on(isa, units, m, n, k, av, rows, &mut c, &c_rows, accumulate);
                    let case = format!("{m}x{k}x{n} overlapping {overlapping} acc {accumulate} {isa} units {units}");
                    for (idx, got) in c.iter().enumerate() {
                        close(*got, want[idx], k, &format!("{case} at {idx}"));
                    }
                    if isa == Isa::Avx512 {
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert_eq!(&c, f, "{case}: bits differ"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dot_matches_the_rounded_product_on_every_path() {
        for (m, k, n) in [
            (1, 1, 1),
            (6, 784, 25),
            (16, 100, 150),
            (5, 33, 40),
            (13, 2, 3),
        ] {
            let lda = k + 2;
            let a: Vec<f32> = test_values(m * lda, 4).iter().map(|v| v * 1.1).collect();
            let (bd, bo) = scattered(n, k, 5);
            let ldc = n + 1;
            for accumulate in [false, true] {
                let start = test_values(m * ldc, 6);
                let mut first: Option<Vec<f32>> = None;
                for (isa, units) in paths() {
                    let mut c = start.clone();
                    let rows = Rows {
                        data: &bd,
                        offsets: &bo,
                    };
                    gemm_dot_on(isa, units, m, n, k, &a, lda, rows, &mut c, ldc, accumulate);
                    let case = format!("{m}x{k}x{n} acc {accumulate} {isa} units {units}");
                    for i in 0..m {
                        for j in 0..n {
                            let s: f64 = (0..k)
                                .map(|kk| {
                                    let x = round_to_bf16(a[i * lda + kk]) as f64;
                                    x * round_to_bf16(bd[bo[j] + kk]) as f64
                                })
                                .sum();
                            let w = s + if accumulate {
                                start[i * ldc + j] as f64
                            } else {
                                0.0
                            };
                            close(c[i * ldc + j], w, k, &format!("{case} at ({i}, {j})"));
                        }
                    }
                    if isa == Isa::Avx512 {
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert_eq!(&c, f, "{case}: bits differ"),
                        }
                    }
                }
            }
        }
    }
}
