//! CPU kernels. They work on plain slices plus a [`Layout`](crate::Layout),
//! allocate only their output, and go parallel (in the nabla thread pool)
//! once the work is large enough to pay for it.

/// `$f::<R, …>(args)` with the const `R` equal to `$rows` (1 to 12): a
/// tile of that many rows, each height compiled as a kernel of its own
/// (the AVX-512 tiles of the packed, broadcast and general products).
macro_rules! with_rows {
    ($rows:expr, $f:ident::<_ $(, $g:ident)*>($($arg:expr),* $(,)?)) => {
        match $rows {
            12 => $f::<12 $(, $g)*>($($arg),*),
            11 => $f::<11 $(, $g)*>($($arg),*),
            10 => $f::<10 $(, $g)*>($($arg),*),
            9 => $f::<9 $(, $g)*>($($arg),*),
            8 => $f::<8 $(, $g)*>($($arg),*),
            7 => $f::<7 $(, $g)*>($($arg),*),
            6 => $f::<6 $(, $g)*>($($arg),*),
            5 => $f::<5 $(, $g)*>($($arg),*),
            4 => $f::<4 $(, $g)*>($($arg),*),
            3 => $f::<3 $(, $g)*>($($arg),*),
            2 => $f::<2 $(, $g)*>($($arg),*),
            _ => $f::<1 $(, $g)*>($($arg),*),
        }
    };
}

mod attention;
mod backend;
pub mod bf16_gemm;
pub mod conv;
pub mod copy;
pub mod elementwise;
#[cfg(target_arch = "x86_64")]
mod gemm512;
pub mod int8_gemm;
pub mod loss;
pub mod math;
pub mod matmul;
pub mod named;
mod norm;
pub mod optim;
pub mod packed_gemm;
pub mod pool;
mod recurrent;
pub mod reduce;
pub mod small_gemm;
pub mod transpose;
pub mod uninit;

use rayon::prelude::*;

pub use backend::CpuBackend;

/// Below this many elements an elementwise kernel runs on one thread.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// Splits `out` into chunks of `chunk` elements and runs `f(chunk_index,
/// chunk)` on each, in parallel when `out` is large.
pub fn for_each_chunk(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let chunk = chunk.max(1);
    if out.len() < PAR_MIN_ELEMS || out.len() <= chunk {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        crate::threads::in_pool(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| f(i, c));
        });
    }
}

/// A new buffer of `len` floats, each `chunk` of it zeroed and then handed
/// to `f(index, chunk)`, in parallel as [`for_each_chunk`]: the output of
/// a kernel that adds into it (a pooling or col2im gradient). The zeros
/// are written by the thread that then adds: `vec![0.0; len]` may hand
/// back fresh pages that the first `+=` reads as the shared zero page and
/// then copies on write — two faults a page and, with two threads, a TLB
/// shootdown each (a wide CNN's max-pool gradient spent more time in the
/// kernel than in its loop).
pub fn zeroed_chunks(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let chunk = chunk.max(1);
    let mut out = Vec::with_capacity(len);
    let slots = uninit::spare(&mut out, len);
    let run = |i: usize, s: uninit::Slots| {
        let n = s.len();
        f(i, uninit::init(s, n, |_| 0.0))
    };
    if len < PAR_MIN_ELEMS || len <= chunk {
        slots
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| run(i, c));
    } else {
        crate::threads::in_pool(|| {
            slots
                .par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| run(i, c))
        });
    }
    // SAFETY: every chunk was zeroed above.
    unsafe { out.set_len(len) };
    out
}

/// A chunk size that gives each thread a few thousand elements at least and
/// is a whole number of rows of length `row`.
pub fn rows_per_chunk(row: usize) -> usize {
    let row = row.max(1);
    row * (4096 / row).max(1)
}

/// Whether the kernels take an AVX2+FMA path (or a wider one): the CPU
/// has it and `NABLA_ISA` does not ask for plain loops ([`crate::isa`]).
pub fn has_avx2_fma() -> bool {
    crate::isa::isa() >= crate::isa::Isa::Avx2
}

/// `*p = v` (or `*p += v` when `add`) in the lanes of `mask` only: how
/// the AVX-512 tiles write C, edges included.
///
/// # Safety
/// AVX-512F (the caller's target features); `p` valid at the masked lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn store_masked_512(
    p: *mut f32,
    v: std::arch::x86_64::__m512,
    mask: std::arch::x86_64::__mmask16,
    add: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: as the caller guarantees.
    unsafe {
        let v = match add {
            true => _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p)),
            false => v,
        };
        _mm512_mask_storeu_ps(p, mask, v);
    }
}

/// Whether the kernels take the AVX-512 path ([`crate::isa`]).
pub fn has_avx512() -> bool {
    crate::isa::isa() == crate::isa::Isa::Avx512
}

/// Deterministic test values in [−0.75, 0.75]: no generator, so a failing
/// kernel test shows the same numbers every run.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104729) % 97) as f32 - 48.0) / 64.0)
        .collect()
}
