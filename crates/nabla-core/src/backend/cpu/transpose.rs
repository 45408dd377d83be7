//! `dst (+)= srcᵀ`: a `[rows, cols]` block (rows at any stride) written transposed
//! into rows of a strided destination. Blocks of 8×8 are transposed in
//! registers with AVX2 (eight loads, 24 shuffles, eight stores), the edges
//! one value at a time. Used where a product is faster computed transposed
//! (`matmul::gemm_oriented`) and by the strided copy for a transpose of
//! the last two dims (`copy::contiguous`).

/// `dst[i·dst_rs + j] (+)= src[j·src_rs + i]` for `j < rows`, `i < cols`.
/// Only those elements of dst are touched (other threads may be writing
/// the columns in between, hence a pointer and not a slice).
///
/// # Safety
/// `dst` must be valid for reads and writes at every `i·dst_rs + j`, and
/// nothing else may access those elements meanwhile.
///
/// # Panics
/// If `src` does not hold `rows` rows of `cols` at stride `src_rs`, or
/// `dst_rs < rows`.
pub unsafe fn transpose_into(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    src: &[f32],
    src_rs: usize,
    rows: usize,
    cols: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    // (rows may overlap in src: they are only read)
    assert!(
        src.len() >= (rows - 1) * src_rs + cols,
        "transpose_into: source too short"
    );
    assert!(dst_rs >= rows, "transpose_into: rows overlap");
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        let (full_r, full_c) = (rows / 16 * 16, cols / 16 * 16);
        for j0 in (0..full_r).step_by(16) {
            for i0 in (0..full_c).step_by(16) {
                // SAFETY: AVX-512 is present; the 16×16 block at (j0, i0)
                // of src is inside it, and at (i0, j0) of dst inside the
                // caller's guarantee.
                unsafe {
                    avx512::block(
                        src.as_ptr().add(j0 * src_rs + i0),
                        src_rs,
                        dst.add(i0 * dst_rs + j0),
                        dst_rs,
                        accumulate,
                    )
                };
            }
        }
        // the bottom rows under the blocks, then the right-hand columns,
        // in 8×8 blocks where they are wide enough
        let rest = [((full_r, rows), (0, full_c)), ((0, rows), (full_c, cols))];
        for (r, c) in rest {
            // SAFETY: as the caller guarantees
            unsafe { blocks_of_8(dst, dst_rs, accumulate, src, src_rs, r, c) };
        }
        return;
    }
    // SAFETY: as the caller guarantees
    unsafe { blocks_of_8(dst, dst_rs, accumulate, src, src_rs, (0, rows), (0, cols)) };
}

/// Src rows `r.0..r.1` and columns `c.0..c.1` in 8×8 register blocks
/// (AVX2), the rest one value at a time.
///
/// # Safety
/// As [`transpose_into`].
unsafe fn blocks_of_8(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    src: &[f32],
    src_rs: usize,
    r: (usize, usize),
    c: (usize, usize),
) {
    let (full_r, full_c) = (r.0 + (r.1 - r.0) / 8 * 8, c.0 + (c.1 - c.0) / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        for j0 in (r.0..full_r).step_by(8) {
            for i0 in (c.0..full_c).step_by(8) {
                // SAFETY: AVX2 is present; the 8×8 block at (j0, i0) of src
                // is inside it, and at (i0, j0) of dst inside the caller's
                // guarantee.
                unsafe {
                    avx::block(
                        src.as_ptr().add(j0 * src_rs + i0),
                        src_rs,
                        dst.add(i0 * dst_rs + j0),
                        dst_rs,
                        accumulate,
                    )
                };
            }
        }
        // the bottom rows under the blocks, then the right-hand columns
        let rest = [((full_r, r.1), (c.0, full_c)), (r, (full_c, c.1))];
        for (r, c) in rest {
            // SAFETY: as the caller guarantees
            unsafe { edges(dst, dst_rs, accumulate, src, src_rs, r, c) };
        }
        return;
    }
    // SAFETY: as the caller guarantees
    unsafe { edges(dst, dst_rs, accumulate, src, src_rs, r, c) };
}

/// The plain loop over src rows `r.0..r.1` and columns `c.0..c.1`.
///
/// # Safety
/// As [`transpose_into`].
unsafe fn edges(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    src: &[f32],
    src_rs: usize,
    r: (usize, usize),
    c: (usize, usize),
) {
    for j in r.0..r.1 {
        for i in c.0..c.1 {
            // SAFETY: (i, j) is one of the elements the caller vouches for
            let o = unsafe { &mut *dst.add(i * dst_rs + j) };
            let v = src[j * src_rs + i];
            *o = if accumulate { *o + v } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
mod avx {
    use std::arch::x86_64::*;

    /// One 8×8 block: rows of src `s + k·s_rs`, rows of dst `d + k·d_rs`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block(s: *const f32, s_rs: usize, d: *mut f32, d_rs: usize, accumulate: bool) {
        let mut r = [_mm256_setzero_ps(); 8];
        for (k, r) in r.iter_mut().enumerate() {
            *r = _mm256_loadu_ps(s.add(k * s_rs));
        }
        // pairs of rows interleaved, then quadruples, then the two halves
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (k, v) in out.into_iter().enumerate() {
            let p = d.add(k * d_rs);
            let v = if accumulate {
                _mm256_add_ps(_mm256_loadu_ps(p), v)
            } else {
                v
            };
            _mm256_storeu_ps(p, v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
mod avx512 {
    use std::arch::x86_64::*;

    /// One 16×16 block: rows of src `s + k·s_rs`, rows of dst `d + k·d_rs`.
    /// Pairs of rows interleaved, then quadruples (both within 128-bit
    /// lanes, as the 8×8 block does), then the lanes gathered across the
    /// four groups of four rows in two rounds of `shuffle_f32x4`: 64
    /// shuffles for 256 values, against 24 for 64 in 8×8 blocks.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block(s: *const f32, s_rs: usize, d: *mut f32, d_rs: usize, accumulate: bool) {
        let mut r = [_mm512_setzero_ps(); 16];
        for (k, r) in r.iter_mut().enumerate() {
            *r = _mm512_loadu_ps(s.add(k * s_rs));
        }
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // u[4g + q]: in 128-bit lane L, column 4L + q of rows 4g..4g + 4
        let mut u = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let b = 4 * g;
            u[b] = _mm512_shuffle_ps::<0x44>(t[b], t[b + 2]);
            u[b + 1] = _mm512_shuffle_ps::<0xEE>(t[b], t[b + 2]);
            u[b + 2] = _mm512_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
            u[b + 3] = _mm512_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
        }
        let mut out = [_mm512_setzero_ps(); 16];
        for q in 0..4 {
            // lanes 0, 1 (lo) and 2, 3 (hi) of groups 0, 1 and of 2, 3
            let v_lo = _mm512_shuffle_f32x4::<0x44>(u[q], u[4 + q]);
            let v_hi = _mm512_shuffle_f32x4::<0xEE>(u[q], u[4 + q]);
            let w_lo = _mm512_shuffle_f32x4::<0x44>(u[8 + q], u[12 + q]);
            let w_hi = _mm512_shuffle_f32x4::<0xEE>(u[8 + q], u[12 + q]);
            out[q] = _mm512_shuffle_f32x4::<0x88>(v_lo, w_lo);
            out[4 + q] = _mm512_shuffle_f32x4::<0xDD>(v_lo, w_lo);
            out[8 + q] = _mm512_shuffle_f32x4::<0x88>(v_hi, w_hi);
            out[12 + q] = _mm512_shuffle_f32x4::<0xDD>(v_hi, w_hi);
        }
        for (k, v) in out.into_iter().enumerate() {
            let p = d.add(k * d_rs);
            let v = if accumulate {
                _mm512_add_ps(_mm512_loadu_ps(p), v)
            } else {
                v
            };
            _mm512_storeu_ps(p, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transpose_into;
    use crate::backend::cpu::test_values;

    /// Whole 8×8 blocks, ragged edges on either side or both, a wider
    /// destination whose gaps stay untouched, and both write modes.
    #[test]
    fn every_value_lands_transposed() {
        for (rows, cols) in [
            (8, 8),
            (16, 64),
            (13, 21),
            (3, 5),
            (64, 7),
            (1, 1),
            (0, 4),
            (16, 16),
            (37, 50),
            (24, 40),
        ] {
            // source rows 2 apart beyond their length
            let src_rs = cols + 2;
            let src = test_values(rows * src_rs, 7);
            let dst_rs = rows + 3;
            for accumulate in [false, true] {
                let mut dst = vec![0.5f32; cols.max(1) * dst_rs];
                // SAFETY: dst holds cols rows of dst_rs values
                unsafe {
                    transpose_into(
                        dst.as_mut_ptr(),
                        dst_rs,
                        accumulate,
                        &src,
                        src_rs,
                        rows,
                        cols,
                    )
                };
                for i in 0..cols.max(1) {
                    for j in 0..dst_rs {
                        let want = match j < rows && i < cols {
                            true => src[j * src_rs + i] + if accumulate { 0.5 } else { 0.0 },
                            false => 0.5,
                        };
                        assert_eq!(dst[i * dst_rs + j], want, "{rows}x{cols} ({i},{j})");
                    }
                }
            }
        }
    }
}
