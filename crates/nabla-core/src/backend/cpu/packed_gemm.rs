//! Products against a right-hand side that is packed once and used many
//! times: a recurrent layer multiplies the same weights by its inputs and
//! hidden state at each of its T steps (an LSTM `[W_ih | b | W_hh]ᵀ`, a GRU
//! `W_hhᵀ`), and `W_hh` by the gate gradients on the way back.
//!
//! [`PackedRhs`] copies `B[K,N]` into panels of 16 columns, each a
//! contiguous `K×16` block (the last one padded with zeros). A product then
//! reads B front to back: unpacked, a 16-column strip of a row-major
//! `[128, 512]` matrix is 128 cache lines 2 KiB apart, which fall into two
//! sets of an 8-way L1 and evict each other; gemm avoids that by packing B
//! on every call, which costs about as much as the product at 64 rows.
//!
//! [`gemm_packed`]: `C[M,N] (+)= A[M,K]·B`, A with any strides, C row-major
//! with leading dimension `ldc`. On AVX2+FMA a tile of 6 rows × 16 columns
//! of C lives in 12 registers; each step of K broadcasts 6 values of A and
//! multiplies one row of a panel. On AVX-512 a panel row is one vector and
//! a tile of 12 rows × 2 panels lives in 24 of the 32 registers, the last
//! panel's columns masked. Both paths sum each element in the same order
//! (zero, then K in order, then C when accumulating): the same bits. One
//! thread: callers split M themselves.

use super::small_gemm::Strided;
use crate::autocast::Precision;
use crate::isa::Isa;

/// Columns per panel: two 8-lane vectors.
const NR: usize = 16;

/// `B[K,N]` as `⌈N/16⌉` panels, panel p holding columns `16p..16p+16`
/// row after row (element (kk, j) at `(p·K + kk)·16 + j − 16p`).
pub struct PackedRhs {
    data: Vec<f32>,
    k: usize,
    n: usize,
    /// Set by [`PackedRhs::with_precision`] for bf16 products.
    bf16: Option<Bf16Rhs>,
}

/// B for bf16 products ([`crate::autocast`]).
enum Bf16Rhs {
    /// `bf16_gemm.rs`'s pairs of rounded values (the f32 panels dropped).
    Pairs(Vec<u32>),
    /// Without AVX-512: the f32 panels hold rounded values, and each
    /// product rounds a copy of A.
    Rounded,
}

impl PackedRhs {
    /// Packs `B[K,N]`, element (kk, j) at `b.data[kk·b.rs + j·b.cs]`.
    pub fn new(b: Strided, k: usize, n: usize) -> Self {
        if k > 0 && n > 0 {
            assert!(
                b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs,
                "PackedRhs: matrix out of bounds"
            );
        }
        let mut data = vec![0f32; n.div_ceil(NR) * k * NR];
        for (p, panel) in data.chunks_mut((k * NR).max(1)).enumerate() {
            let cols = NR.min(n - p * NR);
            // read along whichever of B's dimensions is contiguous
            if b.cs == 1 {
                for (kk, row) in panel.chunks_mut(NR).enumerate() {
                    let src = &b.data[kk * b.rs + p * NR..][..cols];
                    match (
                        <&mut [f32; NR]>::try_from(&mut *row),
                        <&[f32; NR]>::try_from(src),
                    ) {
                        // a whole panel row: two vector moves, not a memcpy call
                        (Ok(dst), Ok(src)) => *dst = *src,
                        _ => row[..cols].copy_from_slice(src),
                    }
                }
            } else {
                for jj in 0..cols {
                    let col = (p * NR + jj) * b.cs;
                    for kk in 0..k {
                        panel[kk * NR + jj] = b.data[col + kk * b.rs];
                    }
                }
            }
        }
        PackedRhs {
            data,
            k,
            n,
            bf16: None,
        }
    }

    /// Packs `B = [A_1 | A_2 | …]ᵀ`, each `A_b` row-major `[n, w_b]` (given
    /// as `(data, w_b)`), so `K = Σ w_b`: weights stored `[out, in]`, side
    /// by side, as the right-hand side of `x·Wᵀ`. Each panel's 16 rows of
    /// every A_b go through the 8×8 register transpose.
    pub fn transposed(blocks: &[(&[f32], usize)], n: usize) -> Self {
        let k: usize = blocks.iter().map(|&(_, w)| w).sum();
        for &(a, w) in blocks {
            assert_eq!(a.len(), n * w, "PackedRhs::transposed: block size");
        }
        let mut data = vec![0f32; n.div_ceil(NR) * k * NR];
        for (p, panel) in data.chunks_mut((k * NR).max(1)).enumerate() {
            let cols = NR.min(n - p * NR);
            let mut k0 = 0;
            for &(a, w) in blocks {
                // SAFETY: rows k0..k0 + w of the panel, 16 floats apart,
                // are inside it; nothing else touches them.
                unsafe {
                    super::transpose::transpose_into(
                        panel[k0 * NR..].as_mut_ptr(),
                        NR,
                        false,
                        &a[p * NR * w..],
                        w,
                        cols,
                        w,
                    )
                };
                k0 += w;
            }
        }
        PackedRhs {
            data,
            k,
            n,
            bf16: None,
        }
    }
}

impl PackedRhs {
    /// The same B for products at `precision`: with [`Precision::Bf16`]
    /// its values rounded to bfloat16 once, here, and A's rounded by each
    /// product (on `bf16_gemm.rs`'s kernels where the CPU has AVX-512).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        use super::bf16_gemm::{bf16_isa, pairs_from_panels, round_to_bf16};
        if precision == Precision::Bf16 && self.bf16.is_none() {
            self.bf16 = Some(match bf16_isa() {
                Isa::Avx512 => Bf16Rhs::Pairs(pairs_from_panels(
                    &std::mem::take(&mut self.data),
                    self.k,
                    self.n,
                )),
                _ => {
                    self.data.iter_mut().for_each(|v| *v = round_to_bf16(*v));
                    Bf16Rhs::Rounded
                }
            });
        }
        self
    }
}

/// `C[M,N] = A[M,K]·B` (or `+=` when `accumulate`), A's element (i, kk) at
/// `a.data[i·a.rs + kk·a.cs]`, C's element (i, j) at `c[i·ldc + j]`.
pub fn gemm_packed(
    m: usize,
    a: Strided,
    b: &PackedRhs,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    gemm_packed_prefix(m, a, b, b.k, c, ldc, accumulate)
}

/// [`gemm_packed`] over only the first `k` rows of B (and columns of A):
/// an LSTM's first step, whose zero initial state would multiply the
/// `W_hh` rows by zeros.
pub fn gemm_packed_prefix(
    m: usize,
    a: Strided,
    b: &PackedRhs,
    k: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    gemm_packed_on(crate::isa::isa(), m, a, b, k, c, ldc, accumulate)
}

/// [`gemm_packed_prefix`] on the kernels of `isa` (which the CPU must
/// have): what the tests run on every path.
#[allow(clippy::too_many_arguments)]
fn gemm_packed_on(
    isa: Isa,
    m: usize,
    a: Strided,
    b: &PackedRhs,
    k: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    assert!(isa.supported(), "gemm_packed: the CPU lacks {isa}");
    assert!(k <= b.k, "gemm_packed_prefix: {k} rows of {}", b.k);
    let n = b.n;
    if m == 0 || n == 0 {
        return;
    }
    // These bounds make every access of the kernels below in range.
    assert!(k == 0 || a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs);
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n);
    if k == 0 {
        // an empty sum: zeros, or C unchanged
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    match &b.bf16 {
        Some(Bf16Rhs::Pairs(pairs)) => {
            let shape = (b.k, b.n);
            super::bf16_gemm::gemm_pairs(m, a, pairs, shape, k, c, ldc, accumulate)
        }
        Some(Bf16Rhs::Rounded) => {
            let rounded = super::bf16_gemm::rounded_copy(a.data, (m, k), (a.rs, a.cs));
            let a = Strided {
                data: &rounded,
                rs: k,
                cs: 1,
            };
            gemm_packed_f32(isa, m, a, b, k, c, ldc, accumulate)
        }
        None => gemm_packed_f32(isa, m, a, b, k, c, ldc, accumulate),
    }
}

/// [`gemm_packed_on`] on B's f32 panels, with the bounds checked.
#[allow(clippy::too_many_arguments)]
fn gemm_packed_f32(
    isa: Isa,
    m: usize,
    a: Strided,
    b: &PackedRhs,
    k: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let n = b.n;
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: AVX-512F is present; bounds were checked above.
        unsafe { avx512::gemm_packed(m, a, b, k, c, ldc, accumulate) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: AVX2 and FMA are present; bounds were checked above.
        unsafe { avx::gemm_packed(m, a, b, k, c, ldc, accumulate) };
        return;
    }
    let mut acc = vec![0f32; NR];
    for i in 0..m {
        for (p, panel) in b.data.chunks(b.k * NR).enumerate() {
            acc.fill(0.0);
            for (kk, brow) in panel.chunks(NR).take(k).enumerate() {
                let av = a.data[i * a.rs + kk * a.cs];
                acc.iter_mut().zip(brow).for_each(|(s, b)| *s += av * b);
            }
            let cols = NR.min(n - p * NR);
            let row = &mut c[i * ldc + p * NR..][..cols];
            for (d, s) in row.iter_mut().zip(&acc) {
                *d = if accumulate { *d + s } else { *s };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
mod avx {
    use std::arch::x86_64::*;

    use super::super::small_gemm::avx::lane_mask;
    use super::{PackedRhs, Strided, NR};

    /// One MR×16 tile of C at row i0 against one panel. With `MASKED`, only
    /// the lanes of `masks` of C are read and written (the right edge).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const MR: usize, const MASKED: bool>(
        k: usize,
        a: Strided,
        i0: usize,
        panel: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        masks: (__m256i, __m256i),
    ) {
        let mut acc0 = [_mm256_setzero_ps(); MR];
        let mut acc1 = [_mm256_setzero_ps(); MR];
        let ap = a.data.as_ptr().add(i0 * a.rs);
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(panel.add(kk * NR));
            let b1 = _mm256_loadu_ps(panel.add(kk * NR + 8));
            for r in 0..MR {
                let av = _mm256_broadcast_ss(&*ap.add(r * a.rs + kk * a.cs));
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
            }
        }
        for r in 0..MR {
            let p = c.add((i0 + r) * ldc);
            if MASKED {
                if accumulate {
                    acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(p, masks.0));
                    acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(p.add(8), masks.1));
                }
                _mm256_maskstore_ps(p, masks.0, acc0[r]);
                _mm256_maskstore_ps(p.add(8), masks.1, acc1[r]);
            } else {
                if accumulate {
                    acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(p));
                    acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(p.add(8)));
                }
                _mm256_storeu_ps(p, acc0[r]);
                _mm256_storeu_ps(p.add(8), acc1[r]);
            }
        }
    }

    /// All rows against one panel, 6 at a time; the last 7 or 8 rows as
    /// 4 + 3 or 4 + 4, since a tile of 1 or 2 rows has too few
    /// accumulators to keep both FMA units busy (32 rows: 6·4 + 4 + 4).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn strip<const MASKED: bool>(
        m: usize,
        k: usize,
        a: Strided,
        panel: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        masks: (__m256i, __m256i),
    ) {
        let mut i0 = 0;
        while i0 < m {
            let mr = match m - i0 {
                7 | 8 => 4,
                rest => rest.min(6),
            };
            let (acc, ms) = (accumulate, masks);
            match mr {
                6 => tile::<6, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
                5 => tile::<5, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
                4 => tile::<4, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
                3 => tile::<3, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
                2 => tile::<2, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
                _ => tile::<1, MASKED>(k, a, i0, panel, c, ldc, acc, ms),
            }
            i0 += mr;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm_packed(
        m: usize,
        a: Strided,
        b: &PackedRhs,
        k: usize,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let n = b.n;
        let full = n / NR;
        let all = (lane_mask(8), lane_mask(8));
        for p in 0..full {
            let (panel, cp) = (
                b.data.as_ptr().add(p * b.k * NR),
                c.as_mut_ptr().add(p * NR),
            );
            strip::<false>(m, k, a, panel, cp, ldc, accumulate, all);
        }
        let rest = n - full * NR;
        if rest > 0 {
            // the padded panel is read whole; only C's valid lanes are touched
            let masks = (lane_mask(rest), lane_mask(rest.saturating_sub(8)));
            let (panel, cp) = (
                b.data.as_ptr().add(full * b.k * NR),
                c.as_mut_ptr().add(full * NR),
            );
            strip::<true>(m, k, a, panel, cp, ldc, accumulate, masks);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // the whole module is intrinsics on checked bounds
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PackedRhs, Strided, NR};

    /// One MR × (16·P) tile of C at row i0 against `P` panels, C's lanes
    /// outside `masks` neither read nor written.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const MR: usize, const P: usize>(
        k: usize,
        a: Strided,
        i0: usize,
        panels: [*const f32; 2],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        masks: [__mmask16; 2],
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; MR];
        let ap = a.data.as_ptr().add(i0 * a.rs);
        for kk in 0..k {
            let mut b = [_mm512_setzero_ps(); P];
            for (q, b) in b.iter_mut().enumerate() {
                *b = _mm512_loadu_ps(panels[q].add(kk * NR));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r * a.rs + kk * a.cs));
                for (acc, b) in acc.iter_mut().zip(&b) {
                    *acc = _mm512_fmadd_ps(av, *b, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (q, acc) in acc.iter().enumerate() {
                let p = c.add((i0 + r) * ldc + q * NR);
                super::super::store_masked_512(p, *acc, masks[q], accumulate);
            }
        }
    }

    /// All rows against `P` panels, 12 at a time, then the rest in one tile.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn strip<const P: usize>(
        m: usize,
        k: usize,
        a: Strided,
        panels: [*const f32; 2],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        masks: [__mmask16; 2],
    ) {
        let mut i0 = 0;
        while i0 < m {
            let mr = (m - i0).min(12);
            let (acc, ms) = (accumulate, masks);
            with_rows!(mr, tile::<_, P>(k, a, i0, panels, c, ldc, acc, ms));
            i0 += mr;
        }
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm_packed(
        m: usize,
        a: Strided,
        b: &PackedRhs,
        k: usize,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let n = b.n;
        let panels = n.div_ceil(NR);
        // the valid columns of panel p (the padded last one is read whole)
        let mask = |p: usize| -> __mmask16 {
            let cols = NR.min(n.saturating_sub(p * NR));
            ((1u32 << cols) - 1) as __mmask16
        };
        let panel = |p: usize| b.data.as_ptr().add(p * b.k * NR);
        let mut p = 0;
        while p < panels {
            let cp = c.as_mut_ptr().add(p * NR);
            if p + 1 < panels {
                let (ps, ms) = ([panel(p), panel(p + 1)], [mask(p), mask(p + 1)]);
                strip::<2>(m, k, a, ps, cp, ldc, accumulate, ms);
                p += 2;
            } else {
                let (ps, ms) = ([panel(p), panel(p)], [mask(p), 0]);
                strip::<1>(m, k, a, ps, cp, ldc, accumulate, ms);
                p += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
