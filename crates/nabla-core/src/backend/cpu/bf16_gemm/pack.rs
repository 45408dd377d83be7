//! Packing f32 operands into bf16 pairs along K (see `bf16_gemm.rs`):
//! 16 values rounded per vector instruction, a transpose through
//! `transpose.rs` where the pairs lie across the layout's rows.

#![allow(unsafe_op_in_unsafe_fn)] // intrinsics on bounds checked by the callers

use std::arch::x86_64::*;

use super::super::matmul::MatRef;
use super::super::transpose::transpose_into;
use super::{pair, NR};

/// 16 values rounded as [`super::round_high`] rounds one.
#[inline(always)]
unsafe fn round_high_16(x: __m512) -> __m512i {
    let bits = _mm512_castps_si512(x);
    let abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFF_FFFF));
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
    let rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    let nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7F80_0000));
    let tiny = _mm512_cmplt_epu32_mask(abs, _mm512_set1_epi32(0x0080_0000));
    let quiet = _mm512_or_si512(bits, _mm512_set1_epi32(0x0040_0000));
    let signed_zero = _mm512_and_si512(bits, _mm512_set1_epi32(i32::MIN));
    let r = _mm512_mask_mov_epi32(rounded, nan, quiet);
    let r = _mm512_mask_mov_epi32(r, tiny, signed_zero);
    _mm512_and_si512(r, _mm512_set1_epi32(0xFFFF_0000u32 as i32))
}

/// Every value of `x` rounded to bfloat16 in place, as an f32 (16 at a
/// time as [`super::round_high`] rounds one).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn round_in_place(x: &mut [f32]) {
    let whole = x.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        let p = x.as_mut_ptr().add(i);
        _mm512_storeu_ps(p, _mm512_castsi512_ps(round_high_16(_mm512_loadu_ps(p))));
    }
    for v in &mut x[whole..] {
        *v = super::round_to_bf16(*v);
    }
}

/// `dst[q] = pair(src[2q], src[2q+1])` for q < dst.len(), reading the
/// first `n` values of src (a missing second value of the last pair is 0);
/// with `units`, on AVX512-BF16's conversion.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn narrow_pairs(src: *const f32, n: usize, dst: &mut [u32], units: bool) {
    debug_assert!(n <= 2 * dst.len() && n + 1 >= 2 * dst.len());
    let whole = n / 32 * 32;
    let out = dst.as_mut_ptr();
    if units {
        narrow_pairs_on_units(src, whole, out);
    } else {
        narrow_pairs_in_lanes(src, whole, out);
    }
    for (q, d) in dst.iter_mut().enumerate().skip(whole / 2) {
        let hi = if 2 * q + 1 < n {
            *src.add(2 * q + 1)
        } else {
            0.0
        };
        *d = pair(*src.add(2 * q), hi);
    }
}

/// The first `whole` (a multiple of 32) values of [`narrow_pairs`] by
/// `VCVTNE2PS2BF16`: 32 values an instruction, rounded as
/// [`super::round_high`] rounds (nearest even, NaN quiet, subnormals
/// flushed with their sign).
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn narrow_pairs_on_units(src: *const f32, whole: usize, out: *mut u32) {
    for i in (0..whole).step_by(32) {
        let (x0, x1) = (
            _mm512_loadu_ps(src.add(i)),
            _mm512_loadu_ps(src.add(i + 16)),
        );
        // words 0..16 from x0, 16..32 from x1: the values in order
        let v = _mm512_cvtne2ps_pbh(x1, x0);
        _mm512_storeu_si512(
            out.add(i / 2) as *mut _,
            std::mem::transmute::<__m512bh, __m512i>(v),
        );
    }
}

/// The first `whole` values of [`narrow_pairs`] by integer rounding.
#[target_feature(enable = "avx512f")]
unsafe fn narrow_pairs_in_lanes(src: *const f32, whole: usize, out: *mut u32) {
    for i in (0..whole).step_by(32) {
        let r0 = _mm512_srli_epi32::<16>(round_high_16(_mm512_loadu_ps(src.add(i))));
        let r1 = _mm512_srli_epi32::<16>(round_high_16(_mm512_loadu_ps(src.add(i + 16))));
        // 32 bf16 in order: pair q is (value 2q, value 2q + 1), low first
        _mm256_storeu_si256(out.add(i / 2) as *mut __m256i, _mm512_cvtepi32_epi16(r0));
        _mm256_storeu_si256(
            out.add(i / 2 + 8) as *mut __m256i,
            _mm512_cvtepi32_epi16(r1),
        );
    }
}

/// `dst[i] = pair(lo[i], hi[i])` for i < dst.len() (hi zero when `None`);
/// with `units`, on AVX512-BF16's conversion.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn combine_rows(
    lo: *const f32,
    hi: Option<*const f32>,
    dst: &mut [u32],
    units: bool,
) {
    let n = dst.len();
    let whole = n / 16 * 16;
    let out = dst.as_mut_ptr();
    if units {
        combine_rows_on_units(lo, hi, whole, out);
    } else {
        for i in (0..whole).step_by(16) {
            let l = _mm512_srli_epi32::<16>(round_high_16(_mm512_loadu_ps(lo.add(i))));
            let h = match hi {
                Some(hi) => round_high_16(_mm512_loadu_ps(hi.add(i))),
                None => _mm512_setzero_si512(),
            };
            _mm512_storeu_si512(out.add(i) as *mut _, _mm512_or_si512(l, h));
        }
    }
    for (i, d) in dst.iter_mut().enumerate().skip(whole) {
        *d = pair(*lo.add(i), hi.map_or(0.0, |h| *h.add(i)));
    }
}

/// The first `whole` (a multiple of 16) pairs of [`combine_rows`] by
/// `VCVTNE2PS2BF16` (both rows in one vector of words) and a word
/// permute that interleaves them.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn combine_rows_on_units(
    lo: *const f32,
    hi: Option<*const f32>,
    whole: usize,
    out: *mut u32,
) {
    // word 2j ← word j (lo's), word 2j + 1 ← word 16 + j (hi's)
    let interleave = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0,
    );
    for i in (0..whole).step_by(16) {
        let h = hi.map_or(_mm512_setzero_ps(), |h| _mm512_loadu_ps(h.add(i)));
        let both = _mm512_cvtne2ps_pbh(h, _mm512_loadu_ps(lo.add(i)));
        let words = std::mem::transmute::<__m512bh, __m512i>(both);
        _mm512_storeu_si512(
            out.add(i) as *mut _,
            _mm512_permutexvar_epi16(interleave, words),
        );
    }
}

/// `dst = srcᵀ` for `u32`s, src `rows × cols` and dst `cols × rows`
/// (both row-major), through the f32 transpose (it only moves bits).
pub(super) unsafe fn transpose_u32(dst: &mut [u32], src: &[u32], rows: usize, cols: usize) {
    assert!(dst.len() >= rows * cols && src.len() >= rows * cols);
    // SAFETY: u32 and f32 have one size and alignment, and every bit
    // pattern is an f32; the transpose copies values without arithmetic.
    let src = std::slice::from_raw_parts(src.as_ptr() as *const f32, rows * cols);
    transpose_into(
        dst.as_mut_ptr() as *mut f32,
        rows,
        false,
        src,
        cols,
        rows,
        cols,
    );
}

/// Pairs `p0..p0 + kcp` of K and columns `j0..j0 + 32` of B into `panel`
/// (`kcp × 32`, pair after pair; columns past N zero).
///
/// # Safety
/// AVX-512F, and AVX512-BF16 when `units`; `b` a checked view.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn b_panel(
    panel: &mut [u32],
    b: &MatRef,
    p0: usize,
    kcp: usize,
    j0: usize,
    units: bool,
) {
    let (k, cols) = (b.rows, NR.min(b.cols - j0));
    let panel = &mut panel[..kcp * NR];
    let at = |kk: usize, j: usize| b.data.as_ptr().add(b.offset + kk * b.rs + j * b.cs);
    if b.cs == 1 && cols == NR {
        // rows of B contiguous: a pair is two rows, lane by lane
        for (q, row) in panel.chunks_mut(NR).enumerate() {
            let r0 = 2 * (p0 + q);
            let hi = (r0 + 1 < k).then(|| at(r0 + 1, j0));
            combine_rows(at(r0, j0), hi, row, units);
        }
    } else if b.rs == 1 && b.cs != 1 {
        // columns contiguous (Wᵀ of a row-major W): each column's pairs,
        // then the 32 columns transposed into the panel
        let n = (2 * kcp).min(k - 2 * p0);
        let mut by_column = vec![0u32; NR * kcp];
        for (j, column) in by_column.chunks_mut(kcp).take(cols).enumerate() {
            narrow_pairs(at(2 * p0, j0 + j), n, column, units);
        }
        transpose_u32(panel, &by_column, NR, kcp);
    } else {
        for (q, row) in panel.chunks_mut(NR).enumerate() {
            let r0 = 2 * (p0 + q);
            for (j, d) in row.iter_mut().enumerate() {
                *d = match j < cols {
                    true => pair(
                        *at(r0, j0 + j),
                        if r0 + 1 < k { *at(r0 + 1, j0 + j) } else { 0.0 },
                    ),
                    false => 0,
                };
            }
        }
    }
}

/// Rows `i0..i0 + mc` of A, pairs `p0..p0 + kcp` of K, into `out`
/// (`mc × kcp`, row after row).
///
/// # Safety
/// AVX-512F, and AVX512-BF16 when `units`; `a` a checked view holding
/// those rows.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn a_block(
    out: &mut [u32],
    a: &MatRef,
    i0: usize,
    mc: usize,
    p0: usize,
    kcp: usize,
    units: bool,
) {
    let k = a.cols;
    let n = (2 * kcp).min(k - 2 * p0);
    let at = |i: usize, kk: usize| a.data.as_ptr().add(a.offset + i * a.rs + kk * a.cs);
    if a.cs == 1 {
        for (r, row) in out.chunks_mut(kcp).take(mc).enumerate() {
            narrow_pairs(at(i0 + r, 2 * p0), n, row, units);
        }
    } else if a.rs == 1 {
        // columns of A contiguous (a transposed view): pairs across two
        // columns, lane by lane, then transposed into rows
        let mut by_pair = vec![0u32; kcp * mc];
        for (q, col) in by_pair.chunks_mut(mc).enumerate() {
            let c0 = 2 * (p0 + q);
            let hi = (c0 + 1 < k).then(|| at(i0, c0 + 1));
            combine_rows(at(i0, c0), hi, col, units);
        }
        transpose_u32(out, &by_pair, kcp, mc);
    } else {
        for (r, row) in out.chunks_mut(kcp).take(mc).enumerate() {
            for (q, d) in row.iter_mut().enumerate() {
                let c0 = 2 * (p0 + q);
                let hi = if c0 + 1 < k { *at(i0 + r, c0 + 1) } else { 0.0 };
                *d = pair(*at(i0 + r, c0), hi);
            }
        }
    }
}
