//! Elementwise maps: one input, or two inputs broadcast against each other.
//! The closure is monomorphized into the loop, so simple maps vectorize.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::layout::{broadcast_strides, Layout};

const CHUNK: usize = 1 << 14;

/// A vector of `n` values computed chunk by chunk (in parallel when large)
/// straight into unused capacity, so it is not zeroed first: `write(start,
/// chunk)` is handed each chunk and the index of its first element, and
/// `fill` checks it wrote every element. (Zeroing outputs that are then
/// overwritten cost about a tenth of a LeNet training step.)
fn fill(
    n: usize,
    write: impl Fn(usize, &mut [MaybeUninit<f32>]) -> usize + Sync + Send,
) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    let written: usize = if n < super::PAR_MIN_ELEMS {
        spare
            .chunks_mut(CHUNK)
            .enumerate()
            .map(|(i, c)| write(i * CHUNK, c))
            .sum()
    } else {
        crate::threads::in_pool(|| {
            spare
                .par_chunks_mut(CHUNK)
                .enumerate()
                .map(|(i, c)| write(i * CHUNK, c))
                .sum()
        })
    };
    assert_eq!(written, n, "fill: every element must be written");
    // SAFETY: the n elements were initialized: each chunk's writer reported
    // how many it wrote, and the chunks partition 0..n.
    unsafe { out.set_len(n) };
    out
}

/// The loops of [`map1`], [`map2`], [`map3`] over one chunk, each also
/// compiled with AVX2 and with AVX-512 for the paths that use them: the
/// loop and the op's closure, inlined into it, then run on 256- or 512-bit
/// vectors. The values are the same every way (each element's arithmetic
/// is unchanged, and Rust never forms fused multiply-adds on its own); the
/// exact GELU ran twice as fast on AVX2.
macro_rules! chunk_loop {
    ($name:ident, $wide:ident, $widest:ident, ($($x:ident),+), $f:ident: $($fty:tt)+) => {
        #[inline(always)]
        fn $name<F: $($fty)+>(out: &mut [MaybeUninit<f32>], $($x: &[f32],)+ $f: &F) -> usize {
            let mut n = 0;
            for (i, o) in out.iter_mut().enumerate() {
                o.write($f($($x[i]),+));
                n += 1;
            }
            n
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $wide<F: $($fty)+>(out: &mut [MaybeUninit<f32>], $($x: &[f32],)+ $f: &F) -> usize {
            $name(out, $($x,)+ $f)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
        unsafe fn $widest<F: $($fty)+>(out: &mut [MaybeUninit<f32>], $($x: &[f32],)+ $f: &F) -> usize {
            $name(out, $($x,)+ $f)
        }
    };
}

chunk_loop!(loop1, loop1_avx2, loop1_avx512, (a), f: Fn(f32) -> f32);
chunk_loop!(loop2, loop2_avx2, loop2_avx512, (a, b), f: Fn(f32, f32) -> f32);
chunk_loop!(loop3, loop3_avx2, loop3_avx512, (a, b, c), f: Fn(f32, f32, f32) -> f32);

/// Runs the build of a chunk loop for the kernels' path ([`crate::isa`]).
macro_rules! run_loop {
    ($plain:ident, $wide:ident, $widest:ident, $($arg:expr),+) => {{
        #[cfg(target_arch = "x86_64")]
        if super::has_avx512() {
            // SAFETY: the CPU has AVX-512; the loop only does slice arithmetic.
            return unsafe { $widest($($arg),+) };
        }
        #[cfg(target_arch = "x86_64")]
        if super::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the loop only does slice arithmetic.
            return unsafe { $wide($($arg),+) };
        }
        $plain($($arg),+)
    }};
}

/// `f(a[i])` for every element of a slice.
pub fn map1(a: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    fill(a.len(), |s, c| {
        let a = &a[s..s + c.len()];
        run_loop!(loop1, loop1_avx2, loop1_avx512, c, a, &f)
    })
}

/// `f(a[i], b[i])` for slices of equal length.
pub fn map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    fill(a.len(), |s, c| {
        let (a, b) = (&a[s..s + c.len()], &b[s..s + c.len()]);
        run_loop!(loop2, loop2_avx2, loop2_avx512, c, a, b, &f)
    })
}

/// `f(a[i], b[i], c[i])` for slices of equal length.
pub fn map3(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    assert!(a.len() == b.len() && b.len() == c.len());
    fill(a.len(), |s, ch| {
        let n = ch.len();
        let (a, b, c) = (&a[s..s + n], &b[s..s + n], &c[s..s + n]);
        run_loop!(loop3, loop3_avx2, loop3_avx512, ch, a, b, c, &f)
    })
}

/// `out[i] = f(x[i])` in row-major order.
pub fn unary(data: &[f32], layout: &Layout, f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    if layout.is_contiguous() {
        let o = layout.offset();
        return map1(&data[o..o + layout.numel()], f);
    }
    // a strided view: gather it first, then map in place
    let mut out = super::copy::contiguous(data, layout);
    super::for_each_chunk(&mut out, CHUNK, |_, c| {
        c.iter_mut().for_each(|v| *v = f(*v))
    });
    out
}

/// `out[i] = f(a[i], b[i])` with `a` and `b` broadcast to `out_shape`.
pub fn binary(
    a: &[f32],
    la: &Layout,
    b: &[f32],
    lb: &Layout,
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    let n: usize = out_shape.iter().product();
    // Fast path: same shape, both contiguous.
    if la.shape() == out_shape
        && lb.shape() == out_shape
        && la.is_contiguous()
        && lb.is_contiguous()
    {
        let (a, b) = (
            &a[la.offset()..la.offset() + n],
            &b[lb.offset()..lb.offset() + n],
        );
        return map2(a, b, f);
    }
    let mut out = vec![0f32; n];
    if n == 0 {
        return out;
    }
    // General path: walk rows of the output; each operand reads with its
    // broadcast strides (0 along broadcast dims).
    let rank = out_shape.len();
    let ba = Layout::new(
        out_shape.to_vec(),
        broadcast_strides(la, out_shape),
        la.offset(),
    );
    let bb = Layout::new(
        out_shape.to_vec(),
        broadcast_strides(lb, out_shape),
        lb.offset(),
    );
    let inner = if rank == 0 { 1 } else { out_shape[rank - 1] };
    let (sa, sb) = if rank == 0 {
        (0, 0)
    } else {
        (ba.strides()[rank - 1], bb.strides()[rank - 1])
    };
    let chunk = super::rows_per_chunk(inner);
    super::for_each_chunk(&mut out, chunk, |ci, c| {
        let first_row = ci * chunk / inner;
        for (r, row) in c.chunks_mut(inner).enumerate() {
            let (oa, ob) = (ba.row_offset(first_row + r), bb.row_offset(first_row + r));
            match (sa, sb) {
                (1, 1) => {
                    for ((o, &x), &y) in row.iter_mut().zip(&a[oa..]).zip(&b[ob..]) {
                        *o = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[ob];
                    for (o, &x) in row.iter_mut().zip(&a[oa..]) {
                        *o = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (o, &y) in row.iter_mut().zip(&b[ob..]) {
                        *o = f(x, y);
                    }
                }
                _ => {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = f(a[oa + j * sa], b[ob + j * sb]);
                    }
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod map_tests {
    use super::*;

    /// Every element is computed, in order, at sizes below and above the
    /// parallel threshold and not a multiple of the chunk.
    #[test]
    fn maps_write_every_element() {
        for n in [0usize, 1, 1000, CHUNK + 3, 100_001] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
            assert_eq!(
                map1(&a, |x| x + 1.0),
                a.iter().map(|x| x + 1.0).collect::<Vec<_>>()
            );
            let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
            assert_eq!(map2(&a, &b, |x, y| x * y), want);
            let want: Vec<f32> = want.iter().zip(&a).map(|(w, x)| w - x).collect();
            assert_eq!(map3(&a, &b, &a, |x, y, z| x * y - z), want);
        }
    }
}
