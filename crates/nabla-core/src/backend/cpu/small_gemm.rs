//! Matrix products for the small, cache-resident shapes of a convolution
//! (one image at a time: `[16, 150]·[150, 100]` and the like), where a
//! general GEMM's packing and dispatch cost more than the arithmetic.
//!
//! - [`gemm_bcast`]: `C[M,N] (+)= A[M,K]·B[K,N]`, B row-major, A with any
//!   strides (so Wᵀ needs no copy). On AVX2+FMA a tile of 6 rows × 16
//!   columns of C lives in 12 registers; each step broadcasts 6 values of A
//!   and multiplies one 16-wide piece of a row of B. No packing.
//! - [`gemm_dot`]: `C[M,N] (+)= A[M,K]·B[N,K]ᵀ`, rows of A and B contiguous
//!   along K (long dot products, as in a weight gradient). On AVX2+FMA a
//!   4×3 tile of C accumulates 8-lane partial sums, added up at the end.
//!
//! The AVX2 kernels are chosen at run time ([`crate::isa`]); on the
//! AVX-512 path `gemm_bcast` keeps a 12 × 32 tile in 24 of the 32
//! registers (the same sums in the same order as the AVX2 tile, so the
//! same bits); elsewhere plain loops compute the same products.

/// A read-only matrix with arbitrary strides: element (i, k) at `i·rs + k·cs`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Rows of a matrix that live anywhere in one buffer: row r is
/// `data[offsets[r]..]` (contiguous along the row). Regular row-major
/// storage has `offsets[r] = r·ld`; a stride-1 convolution reads its input
/// image this way without copying it into columns.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub offsets: &'a [usize],
}

/// Offsets `0, ld, 2·ld, …` of `rows` rows of a row-major matrix.
pub fn row_offsets(rows: usize, ld: usize) -> Vec<usize> {
    (0..rows).map(|r| r * ld).collect()
}

/// Panics unless `b` has `rows` rows of `len` values in its buffer.
pub(super) fn check_rows(b: &Rows, rows: usize, len: usize) {
    assert!(b.offsets.len() >= rows, "small_gemm: too few row offsets");
    assert!(
        b.offsets[..rows].iter().all(|&o| o + len <= b.data.len()),
        "small_gemm: row out of bounds"
    );
}

/// `C[M,N] = A[M,K]·B[K,N]` (or `+=` when `accumulate`); B given by rows
/// (each N long), and C's row i starting at `c[c_rows[i]]`.
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
    gemm_bcast_on(crate::isa::isa(), m, n, k, a, b, c, c_rows, accumulate)
}

/// [`gemm_bcast`] on the kernels of `isa` (which the CPU must have).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_bcast_on(
    isa: crate::isa::Isa,
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Rows,
    c: &mut [f32],
    c_rows: &[usize],
    accumulate: bool,
) {
    use crate::isa::Isa;
    assert!(isa.supported(), "gemm_bcast: the CPU lacks {isa}");
    if m == 0 || n == 0 {
        return;
    }
    // These bounds make every access of the kernels below in range.
    assert!(k == 0 || a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs);
    check_rows(&b, k, n);
    assert!(c_rows.len() >= m && c_rows[..m].iter().all(|&o| o + n <= c.len()));
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: AVX-512F is present; bounds were checked above.
        unsafe { avx512::gemm_bcast(m, n, k, a, b, c, c_rows, accumulate) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: AVX2 and FMA are present; bounds were checked above.
        unsafe { avx::gemm_bcast(m, n, k, a, b, c, c_rows, accumulate) };
        return;
    }
    for i in 0..m {
        let row = &mut c[c_rows[i]..c_rows[i] + n];
        let mut acc = vec![0f32; n];
        for kk in 0..k {
            let av = a.data[i * a.rs + kk * a.cs];
            let brow = &b.data[b.offsets[kk]..b.offsets[kk] + n];
            acc.iter_mut().zip(brow).for_each(|(c, b)| *c += av * b);
        }
        for (r, v) in row.iter_mut().zip(acc) {
            *r = if accumulate { *r + v } else { v };
        }
    }
}

/// `C[M,N] = A[M,K]·B[N,K]ᵀ` (or `+=`): A row-major, B given by rows
/// (each K long).
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
    gemm_dot_on(crate::isa::isa(), m, n, k, a, lda, b, c, ldc, accumulate)
}

/// [`gemm_dot`] on the kernels of `isa` (which the CPU must have).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_dot_on(
    isa: crate::isa::Isa,
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
    use crate::isa::Isa;
    assert!(isa.supported(), "gemm_dot: the CPU lacks {isa}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k);
    check_rows(&b, n, k);
    assert!(c.len() >= (m - 1) * ldc + n);
    // The AVX-512 path keeps the AVX2 kernel: a convolution's K is one
    // image's output positions (100 for LeNet's conv2), and 16-lane partial
    // sums cost more to reduce at the end than the wider FMAs save (conv2's
    // weight gradient 0.42 → 0.59 ms with a 4×6 tile of zmm on a Zen 4).
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // SAFETY: AVX2 and FMA are present; bounds were checked above.
        unsafe { avx::gemm_dot(m, n, k, a, lda, b, c, ldc, accumulate) };
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let brow = &b.data[b.offsets[j]..b.offsets[j] + k];
            let s = super::reduce::dot_lanes(&a[i * lda..i * lda + k], brow);
            let d = &mut c[i * ldc + j];
            *d = if accumulate { *d + s } else { s };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
pub(super) mod avx {
    use std::arch::x86_64::*;

    use super::{Rows, Strided};

    const NB: usize = 16;

    /// One MR×16 tile of C (MR×8 when `!WIDE`): `C[i0.., 0..16] (+)= A[i0.., :]·B[:, 0..16]`,
    /// B's row kk starting at `b + off[kk]`. With `MASKED`, only the lanes
    /// of `masks` are read and written (the right edge of C).
    #[inline(always)]
    unsafe fn bcast_tile<const MR: usize, const MASKED: bool, const WIDE: bool>(
        k: usize,
        a: Strided,
        i0: usize,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        c_off: *const usize,
        accumulate: bool,
        masks: (__m256i, __m256i),
    ) {
        let load = |p: *const f32, m: __m256i| {
            if MASKED {
                _mm256_maskload_ps(p, m)
            } else {
                _mm256_loadu_ps(p)
            }
        };
        let mut acc0 = [_mm256_setzero_ps(); MR];
        let mut acc1 = [_mm256_setzero_ps(); MR];
        let ap = a.data.as_ptr();
        for kk in 0..k {
            let row = b.add(*off.add(kk));
            let b0 = load(row, masks.0);
            let b1 = if WIDE { load(row.add(8), masks.1) } else { b0 };
            for r in 0..MR {
                let av = _mm256_broadcast_ss(&*ap.add((i0 + r) * a.rs + kk * a.cs));
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                if WIDE {
                    acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
                }
            }
        }
        for r in 0..MR {
            let p = c.add(*c_off.add(i0 + r));
            if accumulate {
                acc0[r] = _mm256_add_ps(acc0[r], load(p, masks.0));
                if WIDE {
                    acc1[r] = _mm256_add_ps(acc1[r], load(p.add(8), masks.1));
                }
            }
            if MASKED {
                _mm256_maskstore_ps(p, masks.0, acc0[r]);
                if WIDE {
                    _mm256_maskstore_ps(p.add(8), masks.1, acc1[r]);
                }
            } else {
                _mm256_storeu_ps(p, acc0[r]);
                if WIDE {
                    _mm256_storeu_ps(p.add(8), acc1[r]);
                }
            }
        }
    }

    /// All rows of one 16-column strip (8 when `!WIDE`), tallest tiles first.
    #[inline(always)]
    unsafe fn bcast_strip<const MASKED: bool, const WIDE: bool>(
        m: usize,
        k: usize,
        a: Strided,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        c_off: *const usize,
        acc: bool,
        masks: (__m256i, __m256i),
    ) {
        let mut i0 = 0;
        while i0 + 6 <= m {
            bcast_tile::<6, MASKED, WIDE>(k, a, i0, b, off, c, c_off, acc, masks);
            i0 += 6;
        }
        if i0 + 4 <= m {
            bcast_tile::<4, MASKED, WIDE>(k, a, i0, b, off, c, c_off, acc, masks);
            i0 += 4;
        }
        if i0 + 2 <= m {
            bcast_tile::<2, MASKED, WIDE>(k, a, i0, b, off, c, c_off, acc, masks);
            i0 += 2;
        }
        if i0 < m {
            bcast_tile::<1, MASKED, WIDE>(k, a, i0, b, off, c, c_off, acc, masks);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm_bcast(
        m: usize,
        n: usize,
        k: usize,
        a: Strided,
        b: Rows,
        c: &mut [f32],
        c_rows: &[usize],
        accumulate: bool,
    ) {
        let n_full = n / NB * NB;
        let all = (lane_mask(8), lane_mask(8));
        let (off, c_off) = (b.offsets.as_ptr(), c_rows.as_ptr());
        for j0 in (0..n_full).step_by(NB) {
            let (bp, cp) = (b.data.as_ptr().add(j0), c.as_mut_ptr().add(j0));
            bcast_strip::<false, true>(m, k, a, bp, off, cp, c_off, accumulate, all);
        }
        // Right edge, narrower than a strip: masked loads and stores, and
        // only one vector per row when 8 lanes or fewer are left.
        let rest = n - n_full;
        let masks = (lane_mask(rest), lane_mask(rest.saturating_sub(8)));
        let (bp, cp) = (b.data.as_ptr().add(n_full), c.as_mut_ptr().add(n_full));
        if rest > 8 {
            bcast_strip::<true, true>(m, k, a, bp, off, cp, c_off, accumulate, masks);
        } else if rest > 0 {
            narrow_strip(m, k, a, bp, off, cp, c_off, accumulate, masks);
        }
    }

    /// The last ≤ 8 columns. Kept out of line: inlined next to the full
    /// strips it changed their code for the worse (conv1's input gradient
    /// 0.34 → 0.41 ms).
    #[inline(never)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn narrow_strip(
        m: usize,
        k: usize,
        a: Strided,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        c_off: *const usize,
        acc: bool,
        masks: (__m256i, __m256i),
    ) {
        bcast_strip::<true, false>(m, k, a, b, off, c, c_off, acc, masks);
    }

    /// A mask selecting the first `n` (≤ 8) of 8 lanes.
    #[inline(always)]
    pub(in crate::backend::cpu) unsafe fn lane_mask(n: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), idx)
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// One MR×NR tile of `C = A·Bᵀ`; B's row s starts at `b + off[s]`.
    #[inline(always)]
    unsafe fn dot_tile<const MR: usize, const NR: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); NR]; MR];
        let mut brow = [b; NR];
        for s in 0..NR {
            brow[s] = b.add(*off.add(s));
        }
        let k_full = k / 8 * 8;
        let mut kk = 0;
        while kk < k_full {
            let mut bv = [_mm256_setzero_ps(); NR];
            for s in 0..NR {
                bv[s] = _mm256_loadu_ps(brow[s].add(kk));
            }
            for r in 0..MR {
                let av = _mm256_loadu_ps(a.add(r * lda + kk));
                for s in 0..NR {
                    acc[r][s] = _mm256_fmadd_ps(av, bv[s], acc[r][s]);
                }
            }
            kk += 8;
        }
        if k_full < k {
            // the last k % 8 terms, as one masked step
            let mask = lane_mask(k - k_full);
            let mut bv = [_mm256_setzero_ps(); NR];
            for s in 0..NR {
                bv[s] = _mm256_maskload_ps(brow[s].add(k_full), mask);
            }
            for r in 0..MR {
                let av = _mm256_maskload_ps(a.add(r * lda + k_full), mask);
                for s in 0..NR {
                    acc[r][s] = _mm256_fmadd_ps(av, bv[s], acc[r][s]);
                }
            }
        }
        // Horizontal sums eight (then four) at a time: hadd pairs, then
        // fold the 128-bit halves.
        let flat = |i: usize| acc[i / NR][i % NR];
        let mut sums = [0f32; 12];
        let total = MR * NR;
        let mut i = 0;
        while i + 8 <= total {
            let v = |j: usize| flat(i + j);
            let t0 = _mm256_hadd_ps(_mm256_hadd_ps(v(0), v(1)), _mm256_hadd_ps(v(2), v(3)));
            let t1 = _mm256_hadd_ps(_mm256_hadd_ps(v(4), v(5)), _mm256_hadd_ps(v(6), v(7)));
            let s8 = _mm256_add_ps(
                _mm256_permute2f128_ps(t0, t1, 0x20),
                _mm256_permute2f128_ps(t0, t1, 0x31),
            );
            _mm256_storeu_ps(sums.as_mut_ptr().add(i), s8);
            i += 8;
        }
        if i + 4 <= total {
            let v = |j: usize| flat(i + j);
            let t = _mm256_hadd_ps(_mm256_hadd_ps(v(0), v(1)), _mm256_hadd_ps(v(2), v(3)));
            let s4 = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
            _mm_storeu_ps(sums.as_mut_ptr().add(i), s4);
            i += 4;
        }
        while i < total {
            sums[i] = hsum(flat(i));
            i += 1;
        }
        for (i, &sum) in sums[..total].iter().enumerate() {
            let d = c.add((i / NR) * ldc + i % NR);
            *d = if accumulate { *d + sum } else { sum };
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm_dot(
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
        let (a, bd, off, c) = (
            a.as_ptr(),
            b.data.as_ptr(),
            b.offsets.as_ptr(),
            c.as_mut_ptr(),
        );
        // Row tiles of 4, then 2, then 1; column tiles of 3, then 2, then 1
        // (4×3: twelve accumulators, seven loads for twelve FMAs).
        let mut i0 = 0;
        while i0 < m {
            let mr = if i0 + 4 <= m {
                4
            } else if i0 + 2 <= m {
                2
            } else {
                1
            };
            let mut j0 = 0;
            while j0 < n {
                let nr = (n - j0).min(3);
                let (ap, op, cp) = (a.add(i0 * lda), off.add(j0), c.add(i0 * ldc + j0));
                match (mr, nr) {
                    (4, 3) => dot_tile::<4, 3>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (4, 2) => dot_tile::<4, 2>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (4, _) => dot_tile::<4, 1>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (2, 3) => dot_tile::<2, 3>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (2, 2) => dot_tile::<2, 2>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (2, _) => dot_tile::<2, 1>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (_, 3) => dot_tile::<1, 3>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    (_, 2) => dot_tile::<1, 2>(k, ap, lda, bd, op, cp, ldc, accumulate),
                    _ => dot_tile::<1, 1>(k, ap, lda, bd, op, cp, ldc, accumulate),
                }
                j0 += nr;
            }
            i0 += mr;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Rows, Strided};

    /// Columns of a strip: two 16-lane vectors.
    const NB: usize = 32;

    /// One `MR` × (16·`P`) tile of C at row i0, B's row kk at `b + off[kk]`,
    /// only the lanes of `masks` read and written.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const MR: usize, const P: usize>(
        k: usize,
        a: Strided,
        i0: usize,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        c_off: *const usize,
        accumulate: bool,
        masks: [__mmask16; 2],
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; MR];
        let ap = a.data.as_ptr();
        for kk in 0..k {
            let row = b.add(*off.add(kk));
            let mut bv = [_mm512_setzero_ps(); P];
            for (q, v) in bv.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(masks[q], row.add(16 * q));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add((i0 + r) * a.rs + kk * a.cs));
                for (acc, bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, *bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let p = c.add(*c_off.add(i0 + r));
            for (q, acc) in acc.iter().enumerate() {
                super::super::store_masked_512(p.add(16 * q), *acc, masks[q], accumulate);
            }
        }
    }

    /// All rows of one strip, 12 at a time, then the rest in one tile.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn strip<const P: usize>(
        m: usize,
        k: usize,
        a: Strided,
        b: *const f32,
        off: *const usize,
        c: *mut f32,
        c_off: *const usize,
        acc: bool,
        ms: [__mmask16; 2],
    ) {
        let mut i0 = 0;
        while i0 < m {
            let mr = (m - i0).min(12);
            with_rows!(mr, tile::<_, P>(k, a, i0, b, off, c, c_off, acc, ms));
            i0 += mr;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_bcast(
        m: usize,
        n: usize,
        k: usize,
        a: Strided,
        b: Rows,
        c: &mut [f32],
        c_rows: &[usize],
        accumulate: bool,
    ) {
        let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
        let (off, c_off) = (b.offsets.as_ptr(), c_rows.as_ptr());
        for j0 in (0..n).step_by(NB) {
            let cols = NB.min(n - j0);
            let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
            let (bp, cp) = (b.data.as_ptr().add(j0), c.as_mut_ptr().add(j0));
            if cols > 16 {
                strip::<2>(m, k, a, bp, off, cp, c_off, accumulate, masks);
            } else {
                strip::<1>(m, k, a, bp, off, cp, c_off, accumulate, masks);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::test_values as vals;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn both_kernels_match_a_naive_product_on_ragged_shapes() {
        for (m, n, k) in [
            (6, 25, 784),
            (16, 100, 150),
            (150, 100, 16),
            (5, 17, 3),
            (1, 1, 1),
            (7, 33, 9),
            (13, 70, 5),
            (25, 16, 4),
            (9, 14, 40),
        ] {
            let (a, b) = (vals(m * k, 1), vals(k * n, 2));
            let want = naive(m, n, k, |i, p| a[i * k + p], |p, j| b[p * n + j]);
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-3 * (1.0 + y.abs());
            let offs = row_offsets(k, n);
            let rows = Rows {
                data: &b,
                offsets: &offs,
            };
            let a_rows = Strided {
                data: &a,
                rs: k,
                cs: 1,
            };
            let mut c = vec![1f32; m * n];
            let c_rows = row_offsets(m, n);
            gemm_bcast(m, n, k, a_rows, rows, &mut c, &c_rows, false);
            let ok = c.iter().zip(&want).all(|(x, y)| close(*x, *y));
            assert!(ok, "bcast {m}x{n}x{k}");
            // every path the CPU has; AVX-512 gives AVX2's bits
            let mut by_path = Vec::new();
            for isa in crate::isa::Isa::ALL {
                if !isa.supported() {
                    eprintln!("{isa} path skipped: this CPU lacks it");
                    continue;
                }
                let mut c = vec![1f32; m * n];
                gemm_bcast_on(isa, m, n, k, a_rows, rows, &mut c, &c_rows, true);
                let ok = c.iter().zip(&want).all(|(x, y)| close(*x - 1.0, *y));
                assert!(ok, "bcast on {isa} {m}x{n}x{k}");
                by_path.push((isa, c));
            }
            if let [.., (crate::isa::Isa::Avx2, avx2), (crate::isa::Isa::Avx512, avx512)] =
                &by_path[..]
            {
                assert_eq!(avx2, avx512, "bcast {m}x{n}x{k}: AVX-512 and AVX2 differ");
            }
            // A given transposed (column-major), accumulating onto ones
            let at: Vec<f32> = (0..k * m).map(|t| a[(t % m) * k + t / m]).collect();
            let a_cols = Strided {
                data: &at,
                rs: 1,
                cs: m,
            };
            let mut c = vec![1f32; m * n];
            gemm_bcast(m, n, k, a_cols, rows, &mut c, &c_rows, true);
            let ok = c.iter().zip(&want).all(|(x, y)| close(*x - 1.0, *y));
            assert!(ok, "bcast T {m}x{n}x{k}");
            // dot form: B given as [N, K]
            let bt: Vec<f32> = (0..n * k).map(|t| b[(t % k) * n + t / k]).collect();
            let mut c = vec![0f32; m * n];
            let offs = row_offsets(n, k);
            gemm_dot(
                m,
                n,
                k,
                &a,
                k,
                Rows {
                    data: &bt,
                    offsets: &offs,
                },
                &mut c,
                n,
                false,
            );
            assert!(
                c.iter().zip(&want).all(|(x, y)| close(*x, *y)),
                "dot {m}x{n}x{k}"
            );
            for isa in crate::isa::Isa::ALL.into_iter().filter(|i| i.supported()) {
                let mut c = vec![1f32; m * n];
                let b_rows = Rows {
                    data: &bt,
                    offsets: &offs,
                };
                gemm_dot_on(isa, m, n, k, &a, k, b_rows, &mut c, n, true);
                let ok = c.iter().zip(&want).all(|(x, y)| close(*x - 1.0, *y));
                assert!(ok, "dot on {isa} {m}x{n}x{k}");
            }
        }
    }
}
