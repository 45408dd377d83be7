//! CPU kernels. They work on plain slices plus a [`Layout`](crate::Layout),
//! allocate only their output, and go parallel (in the nabla thread pool)
//! once the work is large enough to pay for it.

pub mod conv;
pub mod copy;
pub mod elementwise;
pub mod math;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod small_gemm;

use rayon::prelude::*;

/// Below this many elements an elementwise kernel runs on one thread.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// Splits `out` into chunks of `chunk` elements and runs `f(chunk_index,
/// chunk)` on each, in parallel when `out` is large.
pub fn for_each_chunk(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let chunk = chunk.max(1);
    if out.len() < PAR_MIN_ELEMS || out.len() <= chunk {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        crate::threads::install(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| f(i, c));
        });
    }
}

/// A chunk size that gives each thread a few thousand elements at least and
/// is a whole number of rows of length `row`.
pub fn rows_per_chunk(row: usize) -> usize {
    let row = row.max(1);
    row * (4096 / row).max(1)
}
