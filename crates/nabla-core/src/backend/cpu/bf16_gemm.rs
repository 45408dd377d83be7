//! The matrix product with bfloat16 operands and f32 sums, what
//! [`autocast`](crate::autocast) runs `matmul` and `linear` on:
//! `C[M,N] (+)= bf16(A)[M,K] · bf16(B)[K,N]`, A and B f32 with any
//! strides, rounded to bfloat16 (nearest, ties to even) as they are packed.
//!
//! `VDPBF16PS` (AVX512-BF16) takes, per f32 lane, a pair of bf16 from
//! each operand and adds both products to the lane: `c += a₁·b₁` then
//! `c += a₀·b₀`, each rounded (the order Intel documents; a Zen 4 gives
//! the same bits). So both operands are packed with K in pairs:
//!
//! - B as in `gemm512.rs`, panels of 32 columns, but each row of a panel
//!   is a pair of K rows: 32 `u32`s, column j holding `(b[2p][j], b[2p+1][j])`
//!   (low half first) — two 512-bit vectors;
//! - A row by row, a `u32` per pair `(a[i][2p], a[i][2p+1])`, broadcast
//!   to every lane.
//!
//! The micro-kernel keeps a 12 × 32 tile of C in 24 registers, as the f32
//! one does, and each step does 24 `VDPBF16PS`: 768 multiply-adds where
//! the f32 kernel's 24 FMAs do 384. The packing rounds 32 values per
//! `VCVTNE2PS2BF16` where the CPU has AVX512-BF16 (else 16 per handful
//! of integer instructions: `+ 0x7FFF + lsb`, the same bits) and, where
//! the layout asks for it, transposes through `transpose.rs`.
//!
//! Without AVX512-BF16 the same kernel splits each pair into two f32
//! (the bf16 is f32's upper half) and runs two FMAs in the same order:
//! the same bits, at f32's speed. Without AVX-512 the operands are rounded
//! into f32 copies and go through the f32 product (other sums' order,
//! values equal to rounding). Subnormal operands are flushed to zero on
//! every path (the instruction treats them so); a subnormal *sum* is
//! flushed by the instruction only (its emulation keeps it).
//!
//! Each element's sum runs over K in the same order whatever the thread
//! count: bit for bit the same at 1 and 2 threads.

#[cfg(target_arch = "x86_64")]
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::gemm512::{for_each_block, Tasks};
use super::matmul::MatRef;
use crate::isa::Isa;

/// Rows of C in a micro-tile.
const MR: usize = 12;
/// Columns of C in a micro-tile: two 16-lane vectors.
const NR: usize = 32;
/// Pairs of K in a packed block: a `KCP × 32` panel is 16 KiB.
const KCP: usize = 128;
/// Rows of A a task packs and runs against every panel.
const MC: usize = 96;
/// Multiply-adds below which a product stays on one thread (as f32's).
const SMALL: usize = 1 << 18;
/// Multiply-adds from which a product's packing and tiles are shared by
/// the threads; below, each thread takes a part of its own.
const MID_SIZED: usize = 1 << 26;

/// `x` rounded to bfloat16 (nearest, ties to even; NaN kept quiet;
/// subnormals to a signed zero), as the upper half of an f32's bits.
#[inline(always)]
pub fn round_high(x: f32) -> u32 {
    let bits = x.to_bits();
    let abs = bits & 0x7FFF_FFFF;
    if abs > 0x7F80_0000 {
        (bits | 0x0040_0000) & 0xFFFF_0000
    } else if abs < 0x0080_0000 {
        bits & 0x8000_0000
    } else {
        bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) & 0xFFFF_0000
    }
}

/// `x` as the bf16 products see it, as an f32.
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits(round_high(x))
}

/// Every value of `x` rounded to bfloat16 in place ([`round_to_bf16`]),
/// 16 at a time where the CPU has AVX-512: operands for the f32 kernels.
pub fn round_slice(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx512.supported() {
        // SAFETY: AVX-512F is present.
        return unsafe { pack::round_in_place(x) };
    }
    x.iter_mut().for_each(|v| *v = round_to_bf16(*v));
}

/// The pair `(lo, hi)` as `VDPBF16PS` reads it: lo in the low half.
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    (round_high(lo) >> 16) | round_high(hi)
}

/// The path bf16 products take: [`Isa::Avx512`] is this file's kernel
/// (on `VDPBF16PS` where the CPU has AVX512-BF16, emulated otherwise),
/// anything else the f32 product of rounded copies. AVX-512 wherever the
/// CPU has it, Zen 4 included (there f32 stays on AVX2, but one
/// `VDPBF16PS` does the work of two FMAs); a `NABLA_ISA` that names a
/// path is followed, so `avx2` and `scalar` test the fallback. Decided
/// once per process (every product asks).
pub fn bf16_isa() -> Isa {
    static PATH: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let chosen = crate::isa::isa();
        let named = std::env::var("NABLA_ISA").is_ok_and(|v| !v.is_empty());
        match chosen {
            Isa::Avx512 => Isa::Avx512,
            _ if !named && Isa::Avx512.supported() => Isa::Avx512,
            other => other,
        }
    })
}

/// A strided matrix's values rounded to bfloat16, row-major: the
/// operands of the fallback paths (no AVX-512), which run the f32 kernels.
pub(crate) fn rounded_copy(
    data: &[f32],
    (rows, cols): (usize, usize),
    (rs, cs): (usize, usize),
) -> Vec<f32> {
    (0..rows)
        .flat_map(|i| (0..cols).map(move |j| i * rs + j * cs))
        .map(|at| round_to_bf16(data[at]))
        .collect()
}

/// Whether the CPU has `VDPBF16PS` (AVX512-BF16).
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::Avx512.supported() && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst (+)= bf16(lhs) · bf16(rhs)`, `dst` contiguous row-major
/// `[lhs.rows, rhs.cols]`; `threads` > 1 splits the work in the nabla pool.
///
/// # Safety
/// `dst` valid for writes (and reads when `accumulate`) of `lhs.rows ×
/// rhs.cols` floats; without `accumulate` every one is written and none
/// read.
pub(crate) unsafe fn gemm_to(
    dst: *mut f32,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    let (isa, units) = (bf16_isa(), on_bf16_units());
    // SAFETY: as the caller guarantees; bf16_isa() is a path the CPU has.
    unsafe { gemm_on(isa, units, dst, accumulate, lhs, rhs, threads) }
}

/// Whether the AVX-512 kernels run on `VDPBF16PS`: where the CPU has it,
/// unless `NABLA_BF16_EMULATE` is set (to time or test the emulation).
fn on_bf16_units() -> bool {
    static UNITS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNITS.get_or_init(|| has_avx512_bf16() && std::env::var_os("NABLA_BF16_EMULATE").is_none())
}

/// B packed once for many products (`packed_gemm.rs`'s `PackedRhs` at
/// bf16): its f32 panels of 16 columns (`k` rows each) regrouped as this
/// file's panels of 32 columns, `⌈k/2⌉` pairs each, every value rounded.
/// Needs the AVX-512 path ([`bf16_isa`]).
pub(crate) fn pairs_from_panels(panels16: &[f32], k: usize, n: usize) -> Vec<u32> {
    assert!(Isa::Avx512.supported(), "bf16 pairs need AVX-512");
    assert!(
        panels16.len() >= n.div_ceil(16) * k * 16,
        "pairs_from_panels: panels"
    );
    let (kp, units) = (k.div_ceil(2), on_bf16_units());
    let mut pairs = vec![0u32; n.div_ceil(NR) * kp * NR];
    for (p, panel) in pairs.chunks_mut((kp * NR).max(1)).enumerate() {
        for half in 0..2 {
            if (2 * p + half) * 16 >= n {
                continue; // past the last 16 columns: zeros
            }
            let src = &panels16[(2 * p + half) * k * 16..];
            for (q, row) in panel.chunks_mut(NR).enumerate() {
                let lo = src[2 * q * 16..].as_ptr();
                let hi = (2 * q + 1 < k).then(|| src[(2 * q + 1) * 16..].as_ptr());
                // SAFETY: AVX-512 (and BF16 with units) is present; rows
                // 2q and 2q + 1 of the panel hold 16 values each.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    pack::combine_rows(lo, hi, &mut row[half * 16..][..16], units)
                };
            }
        }
    }
    pairs
}

/// `C[M,N] (+)= bf16(A)[M, k]·B` against `pairs` from [`pairs_from_panels`]
/// (B `[k_all, N]`, only its first `k` rows used), on one thread; C's rows
/// `ldc` apart.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_pairs(
    m: usize,
    a: super::small_gemm::Strided,
    pairs: &[u32],
    (k_all, n): (usize, usize),
    k: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let (kp_all, kcp) = (k_all.div_ceil(2), k.div_ceil(2));
    assert!(k <= k_all && pairs.len() >= n.div_ceil(NR) * kp_all * NR);
    assert!(m == 0 || (ldc >= n && c.len() >= (m - 1) * ldc + n));
    let lhs = MatRef::from_strided(a, m, k);
    lhs.check();
    if m == 0 || n == 0 || k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    let units = on_bf16_units();
    let mut packed_a = vec![0u32; m * kcp];
    // SAFETY: pairs exist only on the AVX-512 path; the view was checked;
    // each tile's rows and columns are inside C (checked above) and its
    // panel holds kcp pairs.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        pack::a_block(&mut packed_a, &lhs, 0, m, 0, kcp, units);
        for p in 0..n.div_ceil(NR) {
            let (j0, cols) = (p * NR, NR.min(n - p * NR));
            let panel = &pairs[p * kp_all * NR..][..kcp * NR];
            for i in (0..m).step_by(MR) {
                let a = packed_a.as_ptr().add(i * kcp);
                let cp = c.as_mut_ptr().add(i * ldc + j0);
                kernels::tile(
                    units,
                    MR.min(m - i),
                    kcp,
                    a,
                    panel,
                    cp,
                    ldc,
                    cols,
                    accumulate,
                );
            }
        }
    }
}

/// [`gemm_to`] on the kernels of `isa`, [`Isa::Avx512`] on `VDPBF16PS`
/// when `on_bf16_units` (else its emulation): what the tests run on every
/// path.
///
/// # Safety
/// As [`gemm_to`]; the CPU has `isa` (and AVX512-BF16 when `on_bf16_units`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_on(
    isa: Isa,
    on_bf16_units: bool,
    dst: *mut f32,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "bf16 gemm: inner dimensions");
    lhs.check();
    rhs.check();
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && k > 0 {
        let (dst_addr, dst_rs) = (dst as usize, n);
        // x·Wᵀ (both operands contiguous along K) with fewer rows than
        // columns: as (W·xᵀ)ᵀ, W packed as A (pairs are neighbours: no
        // transposing) and only x's fewer rows transposed into panels —
        // the MLP's first layer, 167 → 157 µs at one thread
        let swap = lhs.cs == 1 && rhs.rs == 1 && rhs.cs != 1 && m < n;
        // SAFETY: as the caller guarantees; the transposed product goes
        // to scratch of n×m, written whole before it is read.
        let run = || unsafe {
            let dst = dst_addr as *mut f32;
            if swap {
                let mut ct = Vec::with_capacity(n * m);
                let ctp = ct.as_mut_ptr();
                gemm_threads(ctp, m, false, rhs.t(), lhs.t(), threads, on_bf16_units);
                ct.set_len(n * m);
                super::transpose::transpose_into(dst, dst_rs, accumulate, &ct, m, n, m);
            } else {
                gemm_threads(dst, dst_rs, accumulate, lhs, rhs, threads, on_bf16_units)
            }
        };
        return match threads > 1 {
            true => crate::threads::in_pool(run),
            false => run(),
        };
    }
    let _ = (isa, on_bf16_units);
    // the fallback: rounded copies through the f32 product
    let rounded = |x: &MatRef| rounded_copy(&x.data[x.offset..], (x.rows, x.cols), (x.rs, x.cs));
    let (a, b) = (rounded(&lhs), rounded(&rhs));
    let (a, b) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    // SAFETY: as the caller guarantees.
    unsafe { super::matmul::gemm_to(dst, accumulate, a, b, threads) }
}

/// [`gemm_avx512`] on up to `threads` threads of the pool (the caller's
/// thread is one of them). A product under [`SMALL`] multiply-adds stays
/// on one thread; a mid-sized one (under [`MID_SIZED`]) is cut along its
/// longer side into one part per thread, each a one-threaded product
/// packing what it needs: one hand-over to the pool instead of two (the
/// packing of B, then the tiles), which at the MLP's sizes cost as much
/// as the products gain. Every element's sum is the same either way.
///
/// # Safety
/// As [`gemm_avx512`].
#[cfg(target_arch = "x86_64")]
unsafe fn gemm_threads(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
    on_bf16_units: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    let work = m * n * k;
    let threads = if work < SMALL { 1 } else { threads };
    if threads == 1 || work >= MID_SIZED {
        // SAFETY: as the caller guarantees.
        return unsafe { gemm_avx512(dst, dst_rs, accumulate, lhs, rhs, threads, on_bf16_units) };
    }
    // the longer side in parts of whole tiles, one per thread
    let (by_rows, len, tile) = if m >= n {
        (true, m, MR)
    } else {
        (false, n, NR)
    };
    let part = len.div_ceil(threads).next_multiple_of(tile);
    let dst_addr = dst as usize;
    (0..len.div_ceil(part)).into_par_iter().for_each(|b| {
        let (s0, size) = (b * part, part.min(len - b * part));
        let (a, b, at) = match by_rows {
            true => {
                let rows = MatRef {
                    offset: lhs.offset + s0 * lhs.rs,
                    rows: size,
                    ..lhs
                };
                (rows, rhs, s0 * dst_rs)
            }
            false => {
                let cols = MatRef {
                    offset: rhs.offset + s0 * rhs.cs,
                    cols: size,
                    ..rhs
                };
                (lhs, cols, s0)
            }
        };
        // SAFETY: the part's rows or columns of dst, disjoint from the
        // other parts'.
        unsafe {
            let dst = (dst_addr as *mut f32).add(at);
            gemm_avx512(dst, dst_rs, accumulate, a, b, 1, on_bf16_units)
        }
    });
}

/// The blocked product on AVX-512 (see the module docs); `on_bf16_units` picks
/// `VDPBF16PS` over its emulation.
///
/// # Safety
/// As [`gemm_to`], on a CPU with the AVX-512 path (and AVX512-BF16 when
/// `on_bf16_units`), with m, n, k checked and k > 0.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx512(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    threads: usize,
    on_bf16_units: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    let kp = k.div_ceil(2); // pairs of K, the last one padded with a zero
    let panels = n.div_ceil(NR);
    let tasks = Tasks::new(m, panels, threads, MR, MC);
    // B packed whole: block of pairs after block, each block's panels
    let mut packed_b = vec![0u32; panels * kp * NR];
    let lens = (KCP * NR, (kp % KCP) * NR);
    for_each_block(
        &mut packed_b,
        lens,
        (kp / KCP) * panels,
        threads,
        |chunk, panel| {
            let (p0, pi) = (chunk / panels * KCP, chunk % panels);
            // SAFETY: AVX-512 is present (the caller's guarantee).
            unsafe { pack::b_panel(panel, &rhs, p0, KCP.min(kp - p0), pi * NR, on_bf16_units) }
        },
    );
    let packed_b = &packed_b[..];
    let dst_addr = dst as usize;
    let task = |t: usize| {
        let (i0, mc, first, last) = tasks.of(t);
        let mut packed_a = vec![0u32; mc * KCP.min(kp)];
        for p0 in (0..kp).step_by(KCP) {
            let kcp = KCP.min(kp - p0);
            // SAFETY: AVX-512 is present.
            unsafe {
                pack::a_block(
                    &mut packed_a[..mc * kcp],
                    &lhs,
                    i0,
                    mc,
                    p0,
                    kcp,
                    on_bf16_units,
                )
            };
            let add = accumulate || p0 > 0;
            for p in first..last {
                let (j0, cols) = (p * NR, NR.min(n - p * NR));
                let panel = &packed_b[p0 * panels * NR + p * kcp * NR..][..kcp * NR];
                for i in (0..mc).step_by(MR) {
                    let rows = MR.min(mc - i);
                    // SAFETY: rows i0 + i.. and columns j0.. of C are in
                    // dst (the caller's guarantee); the packed A and panel
                    // hold `kcp` pairs of those rows and columns; tasks
                    // write disjoint tiles.
                    unsafe {
                        let a = packed_a.as_ptr().add(i * kcp);
                        let c = (dst_addr as *mut f32).add((i0 + i) * dst_rs + j0);
                        kernels::tile(on_bf16_units, rows, kcp, a, panel, c, dst_rs, cols, add);
                    }
                }
            }
        }
    };
    tasks.run(threads, task);
}

#[cfg(target_arch = "x86_64")]
mod pack;

#[cfg(target_arch = "x86_64")]
mod kernels;

pub mod rows;

#[cfg(test)]
mod tests;
