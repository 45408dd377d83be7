//! The 12 × 32 micro-kernels of the bf16 product: on `VDPBF16PS`, and
//! its emulation with two FMAs per pair in the same order (the same bits).

#![allow(unsafe_op_in_unsafe_fn)] // intrinsics on bounds checked by the caller

use std::arch::x86_64::*;

use super::NR;

/// One `R` × 32 tile: `C (+)= A[R, kcp pairs] · panel`, A's rows `kcp`
/// pairs apart, row r of C at `c + c_rows[r]` (rows written in order, so
/// they may overlap), writing only the first `cols` columns. `$step` is
/// `(acc, a, b)` → acc after the pair: a the pair of one row broadcast,
/// b 16 columns' pairs.
macro_rules! tile_kernel {
    ($name:ident, $features:literal, $step:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize>(
            kcp: usize,
            a: *const u32,
            panel: &[u32],
            c: *mut f32,
            c_rows: &[usize],
            cols: usize,
            add: bool,
        ) {
            debug_assert!(panel.len() >= kcp * NR && c_rows.len() >= R);
            let step = $step;
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            let b = panel.as_ptr();
            for q in 0..kcp {
                let b0 = _mm512_loadu_si512(b.add(q * NR) as *const _);
                let b1 = _mm512_loadu_si512(b.add(q * NR + 16) as *const _);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_epi32(*a.add(r * kcp + q) as i32);
                    acc[0] = step(acc[0], av, b0);
                    acc[1] = step(acc[1], av, b1);
                }
            }
            let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
            let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
            for (r, acc) in acc.iter().enumerate() {
                for (h, (v, mask)) in acc.iter().zip(masks).enumerate() {
                    super::super::store_masked_512(c.add(c_rows[r] + h * 16), *v, mask, add);
                }
            }
        }
    };
}

tile_kernel!(
    native,
    "avx512f,avx512bf16",
    |acc: __m512, a: __m512i, b: __m512i| _mm512_dpbf16_ps(
        acc,
        std::mem::transmute::<__m512i, __m512bh>(a),
        std::mem::transmute::<__m512i, __m512bh>(b),
    )
);

tile_kernel!(
    emulated,
    "avx512f",
    |acc: __m512, a: __m512i, b: __m512i| {
        // a bf16 is the upper half of an f32: the high one masked, the
        // low one shifted up; its product is exact in f32, so each FMA
        // rounds as the instruction's add does
        let high = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let (a1, b1) = (_mm512_and_si512(a, high), _mm512_and_si512(b, high));
        let (a0, b0) = (_mm512_slli_epi32::<16>(a), _mm512_slli_epi32::<16>(b));
        let acc = _mm512_fmadd_ps(_mm512_castsi512_ps(a1), _mm512_castsi512_ps(b1), acc);
        _mm512_fmadd_ps(_mm512_castsi512_ps(a0), _mm512_castsi512_ps(b0), acc)
    }
);

/// One tile of `rows` (1 to 12) rows on `VDPBF16PS` (`native`) or its
/// emulation, C's rows `ldc` apart.
///
/// # Safety
/// AVX-512F, and AVX512-BF16 when `native`; A valid at `r·kcp + q` for
/// r < rows, q < kcp; `c` valid at `r·ldc + j` for r < rows, j < cols
/// (and read there when `add`); `panel` holds `kcp` pairs.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    on_bf16_units: bool,
    rows: usize,
    kcp: usize,
    a: *const u32,
    panel: &[u32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    add: bool,
) {
    let c_rows: [usize; super::MR] = std::array::from_fn(|r| r * ldc);
    tile_at_rows(on_bf16_units, rows, kcp, a, panel, c, &c_rows, cols, add)
}

/// [`tile`] with row r of C at `c + c_rows[r]` (rows added in order when
/// they overlap).
///
/// # Safety
/// As [`tile`], `c` valid at `c_rows[r] + j`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile_at_rows(
    on_bf16_units: bool,
    rows: usize,
    kcp: usize,
    a: *const u32,
    panel: &[u32],
    c: *mut f32,
    c_rows: &[usize],
    cols: usize,
    add: bool,
) {
    assert!(c_rows.len() >= rows && rows <= super::MR);
    match on_bf16_units {
        true => with_rows!(rows, native::<_>(kcp, a, panel, c, c_rows, cols, add)),
        false => with_rows!(rows, emulated::<_>(kcp, a, panel, c, c_rows, cols, add)),
    }
}
