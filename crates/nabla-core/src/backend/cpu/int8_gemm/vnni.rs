//! The int8 product's VNNI kernel (`VPDPBUSD`): see the module above.

use super::{Lanes, PANEL};

/// [`kernel`] for `rows` (1 to 12) rows.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    rows: usize,
    steps: usize,
    a: *const u8,
    lda: usize,
    panel: &[i8],
    ep: &Lanes,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    // SAFETY: as the caller guarantees.
    unsafe { with_rows!(rows, kernel::<_>(steps, a, lda, panel, ep, c, ldc, cols)) }
}

/// One `R` × 16 tile: the sums of A[R, 4·steps] and the panel, four
/// values of k a `VPDPBUSD`, through the epilogue into the first
/// `cols` columns of C's R rows.
///
/// # Safety
/// AVX-512F and VNNI; A valid at `r·lda + q` for r < R, q < 4·steps;
/// `panel` holds `steps` × 64 bytes; C valid at `r·ldc + j`, j < cols.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn kernel<const R: usize>(
    steps: usize,
    a: *const u8,
    lda: usize,
    panel: &[i8],
    ep: &Lanes,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(panel.len() >= steps * PANEL * 4);
    let mut acc = [_mm512_setzero_si512(); R];
    let b = panel.as_ptr();
    for s in 0..steps {
        // SAFETY: step s of the panel and 4 bytes of each of A's R rows.
        unsafe {
            let bv = _mm512_loadu_si512(b.add(s * 64) as *const _);
            for (r, acc) in acc.iter_mut().enumerate() {
                let four = (a.add(r * lda + 4 * s) as *const i32).read_unaligned();
                *acc = _mm512_dpbusd_epi32(*acc, _mm512_set1_epi32(four), bv);
            }
        }
    }
    let mask = ((1u32 << cols.min(16)) - 1) as __mmask16;
    // SAFETY: the epilogue's slices hold a panel's 16 values.
    let (offset, col_scales, bias) = unsafe {
        let row_sums = _mm512_loadu_si512(ep.row_sums.as_ptr() as *const _);
        (
            _mm512_mullo_epi32(_mm512_set1_epi32(ep.zero_point), row_sums),
            _mm512_loadu_ps(ep.col_scales.as_ptr()),
            _mm512_loadu_ps(ep.bias.as_ptr()),
        )
    };
    let scale = _mm512_set1_ps(ep.scale);
    for (r, v) in acc.iter().enumerate() {
        let centred = _mm512_cvtepi32_ps(_mm512_sub_epi32(*v, offset));
        let y = _mm512_mul_ps(_mm512_mul_ps(centred, scale), col_scales);
        let y = _mm512_add_ps(y, bias);
        // SAFETY: the masked lanes are columns < cols of row r.
        unsafe { _mm512_mask_storeu_ps(c.add(r * ldc), mask, y) };
    }
}
