//! The int8 product's AVX2 kernel (operands widened to 16 bits, `VPMADDWD`):
//! see the module above.

use super::{Lanes, PANEL};

/// [`kernel`] for `rows` (1 to 4) rows.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    rows: usize,
    steps: usize,
    a: *const i16,
    lda: usize,
    panel: &[i16],
    ep: &Lanes,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    // SAFETY: as the caller guarantees.
    unsafe {
        match rows {
            4 => kernel::<4>(steps, a, lda, panel, ep, c, ldc, cols),
            3 => kernel::<3>(steps, a, lda, panel, ep, c, ldc, cols),
            2 => kernel::<2>(steps, a, lda, panel, ep, c, ldc, cols),
            _ => kernel::<1>(steps, a, lda, panel, ep, c, ldc, cols),
        }
    }
}

/// One `R` × 16 tile: `C = A[R, 2·steps] · panel`, two values of k a
/// `VPMADDWD` (i16 × i16, pairs summed into i32, exact).
///
/// # Safety
/// AVX2; A valid at `r·lda + q` for r < R, q < 2·steps; `panel` holds
/// `steps` × 32 values; C valid at `r·ldc + j`, j < cols.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn kernel<const R: usize>(
    steps: usize,
    a: *const i16,
    lda: usize,
    panel: &[i16],
    ep: &Lanes,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(panel.len() >= steps * PANEL * 2);
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    let b = panel.as_ptr();
    for s in 0..steps {
        // SAFETY: step s of the panel and 2 values of each of A's R rows.
        unsafe {
            let b0 = _mm256_loadu_si256(b.add(s * 32) as *const _);
            let b1 = _mm256_loadu_si256(b.add(s * 32 + 16) as *const _);
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = (a.add(r * lda + 2 * s) as *const i32).read_unaligned();
                let av = _mm256_set1_epi32(pair);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, b0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, b1));
            }
        }
    }
    let scale = _mm256_set1_ps(ep.scale);
    for (r, acc) in acc.iter().enumerate() {
        let mut row = [0f32; 16];
        for (h, v) in acc.iter().enumerate() {
            // SAFETY: the epilogue's slices hold a panel's 16 values;
            // `row` holds 16.
            unsafe {
                let row_sums = _mm256_loadu_si256(ep.row_sums.as_ptr().add(8 * h) as *const _);
                let offset = _mm256_mullo_epi32(_mm256_set1_epi32(ep.zero_point), row_sums);
                let centred = _mm256_cvtepi32_ps(_mm256_sub_epi32(*v, offset));
                let y = _mm256_mul_ps(centred, scale);
                let y = _mm256_mul_ps(y, _mm256_loadu_ps(ep.col_scales.as_ptr().add(8 * h)));
                let y = _mm256_add_ps(y, _mm256_loadu_ps(ep.bias.as_ptr().add(8 * h)));
                _mm256_storeu_ps(row.as_mut_ptr().add(8 * h), y);
            }
        }
        // SAFETY: columns < cols of row r of C.
        unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), cols) };
    }
}
