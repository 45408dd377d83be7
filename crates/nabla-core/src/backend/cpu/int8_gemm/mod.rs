//! The int8 matrix product of quantized inference: the exact 32-bit sums
//! `S[i, j] = Σ_k A[i, k] · B[j, k]` of A unsigned 8-bit (activations,
//! `0..=255`) and B signed 8-bit (weights `[n, k]`, a Linear's layout),
//! turned to f32 in the registers that hold them ([`Epilogue`]):
//!
//! `C[i, j] = ((S[i, j] − zp · rowsum[j]) as f32 · scale) · col_scale[j] + bias[j]`
//!
//! Three paths, chosen by [`isa::int8_isa`](crate::isa::int8_isa), give
//! the same bits: the sums are exact, so their order does not matter, and
//! the epilogue's float operations are the same, in the same order:
//!
//! - **VNNI** (AVX-512 VNNI): `VPDPBUSD` multiplies 4 u8 of A by 4 s8 of
//!   B and adds the four products into an i32 lane, 64 multiply-adds an
//!   instruction. B is packed in panels of 16 output columns, 4 values of
//!   k a lane (64 bytes a step); A's rows are padded to a multiple of 4.
//!   A tile of up to 12 rows × 16 columns lives in 12 registers.
//! - **AVX2**: `VPMADDUBSW`, AVX2's u8×s8 instruction, adds pairs of
//!   products into a *saturating* i16, and 255 · 127 · 2 does not fit
//!   (fbgemm avoids it by quantizing activations to 7 bits, PyTorch's
//!   `reduce_range`). Here A and B are widened to i16 instead and
//!   `VPMADDWD` adds pairs into i32: exact for the full 8 bits, 16
//!   multiply-adds an instruction. B is packed in panels of 16 columns, 2
//!   values of k a lane; a tile is 4 rows × 16 columns.
//! - **Scalar**: plain loops over the unpacked operands.
//!
//! Rows are split between threads in blocks, or the panels when there are
//! few rows; every element is one thread's exact sum.

use rayon::prelude::*;

use crate::Isa;

/// Output columns of a packed panel (both vector paths).
const PANEL: usize = 16;

/// B (`[n, k]`, signed 8-bit) laid out for one path's kernel.
#[derive(Clone, Debug)]
pub struct PackedInt8 {
    isa: Isa,
    n: usize,
    k: usize,
    /// VNNI: i8, `k4 = ⌈k/4⌉` steps of 16 lanes × 4 values a panel;
    /// AVX2: i16 (as pairs of bytes), `⌈k/2⌉` steps of 16 lanes × 2
    /// values a panel; scalar: B as given.
    data: Vec<i8>,
    wide: Vec<i16>,
}

impl PackedInt8 {
    /// Packs `b` (`n` rows of `k`) for the kernels of `isa`
    /// ([`Isa::Avx512`] is the VNNI path).
    pub fn new(b: &[i8], n: usize, k: usize, isa: Isa) -> PackedInt8 {
        assert_eq!(b.len(), n * k, "PackedInt8: B holds n·k values");
        let panels = n.div_ceil(PANEL);
        let (mut data, mut wide) = (Vec::new(), Vec::new());
        match isa {
            Isa::Scalar => data = b.to_vec(),
            Isa::Avx512 => {
                let steps = k.div_ceil(4);
                data = vec![0i8; panels * steps * PANEL * 4];
                for (j, row) in b.chunks_exact(k.max(1)).enumerate().take(n) {
                    let (p, lane) = (j / PANEL, j % PANEL);
                    for (kk, &v) in row.iter().enumerate() {
                        data[((p * steps + kk / 4) * PANEL + lane) * 4 + kk % 4] = v;
                    }
                }
            }
            Isa::Avx2 => {
                let steps = k.div_ceil(2);
                wide = vec![0i16; panels * steps * PANEL * 2];
                for (j, row) in b.chunks_exact(k.max(1)).enumerate().take(n) {
                    let (p, lane) = (j / PANEL, j % PANEL);
                    for (kk, &v) in row.iter().enumerate() {
                        wide[((p * steps + kk / 2) * PANEL + lane) * 2 + kk % 2] = v.into();
                    }
                }
            }
        }
        PackedInt8 {
            isa,
            n,
            k,
            data,
            wide,
        }
    }

    /// The row length A must be given in ([`RowsA::quantize`] pads to it).
    pub fn a_stride(&self) -> usize {
        match self.isa {
            Isa::Scalar => self.k,
            Isa::Avx2 => self.k.div_ceil(2) * 2,
            Isa::Avx512 => self.k.div_ceil(4) * 4,
        }
    }
}

/// The rows of A as a kernel reads them: u8 rows padded with zeros to
/// [`PackedInt8::a_stride`] (VNNI, scalar), or widened to i16 (AVX2).
pub enum RowsA {
    Bytes(Vec<u8>),
    Wide(Vec<i16>),
}

impl RowsA {
    /// `m` rows of `k` values made by `value(i, kk)`, for `b`'s kernel.
    #[cfg(test)]
    pub fn build(m: usize, b: &PackedInt8, value: impl Fn(usize, usize) -> u8 + Sync) -> RowsA {
        let (k, stride) = (b.k, b.a_stride());
        let fill_row = |i: usize, row: &mut [u8]| {
            for (kk, v) in row[..k].iter_mut().enumerate() {
                *v = value(i, kk);
            }
        };
        match b.isa {
            Isa::Avx2 => {
                let mut wide = vec![0i16; m * stride];
                wide.par_chunks_mut(stride.max(1))
                    .enumerate()
                    .for_each(|(i, row)| {
                        for (kk, v) in row[..k].iter_mut().enumerate() {
                            *v = value(i, kk).into();
                        }
                    });
                RowsA::Wide(wide)
            }
            _ => {
                let mut bytes = vec![0u8; m * stride];
                bytes
                    .par_chunks_mut(stride.max(1))
                    .enumerate()
                    .for_each(|(i, row)| fill_row(i, row));
                RowsA::Bytes(bytes)
            }
        }
    }
}

impl RowsA {
    /// Rows already in bytes, `m` of [`PackedInt8::a_stride`] each (what
    /// lies past `k` in a row is never used: B is zero there), for `b`'s
    /// kernel: kept as they are, or widened to i16 for AVX2.
    pub fn from_bytes(bytes: Vec<u8>, m: usize, b: &PackedInt8) -> RowsA {
        assert!(bytes.len() >= m * b.a_stride(), "RowsA::from_bytes: m rows");
        match b.isa {
            Isa::Avx2 => RowsA::Wide(bytes.iter().map(|&v| i16::from(v)).collect()),
            _ => RowsA::Bytes(bytes),
        }
    }

    /// `m` rows of `k` f32 values (`xs`, row-major) quantized to u8 with
    /// `1 / scale` and the zero point ([`crate::quant::quantize_row`]), for
    /// `b`'s kernel; rows in parallel when there are many values.
    pub fn quantize(
        xs: &[f32],
        m: usize,
        b: &PackedInt8,
        inv_scale: f32,
        zero_point: f32,
    ) -> RowsA {
        let (k, stride) = (b.k, b.a_stride());
        assert_eq!(xs.len(), m * k, "RowsA::quantize: m·k values");
        fn fill<T: crate::quant::QuantizedLane + Send>(
            xs: &[f32],
            k: usize,
            stride: usize,
            out: &mut [T],
            inv: f32,
            zp: f32,
        ) {
            let row = |(i, dst): (usize, &mut [T])| {
                crate::quant::quantize_row(&xs[i * k..][..k], &mut dst[..k], inv, zp)
            };
            if out.len() < super::PAR_MIN_ELEMS {
                out.chunks_mut(stride.max(1)).enumerate().for_each(row);
            } else {
                out.par_chunks_mut(stride.max(1)).enumerate().for_each(row);
            }
        }
        match b.isa {
            Isa::Avx2 => {
                let mut wide = vec![0i16; m * stride];
                fill(xs, k, stride, &mut wide, inv_scale, zero_point);
                RowsA::Wide(wide)
            }
            _ => {
                let mut bytes = vec![0u8; m * stride];
                fill(xs, k, stride, &mut bytes, inv_scale, zero_point);
                RowsA::Bytes(bytes)
            }
        }
    }
}

/// What turns a sum into an output: `((S − zero_point · row_sums[j]) as f32
/// · scale) · col_scales[j] + bias[j]`. Each slice holds n values or more
/// (the vector paths read whole panels: [`pad`] them to a multiple of 16).
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    pub zero_point: i32,
    pub scale: f32,
    pub row_sums: &'a [i32],
    pub col_scales: &'a [f32],
    pub bias: &'a [f32],
}

/// `values` followed by zeros up to a whole number of panels.
pub fn pad<T: Copy + Default>(values: impl IntoIterator<Item = T>, n: usize) -> Vec<T> {
    let mut v: Vec<T> = values.into_iter().take(n).collect();
    v.resize(n.next_multiple_of(PANEL), T::default());
    v
}

impl Epilogue<'_> {
    /// Output column `j` from its sum: the plain form of what the vector
    /// paths compute lane by lane.
    #[inline]
    fn apply(&self, sum: i32, j: usize) -> f32 {
        let centred = sum - self.zero_point * self.row_sums[j];
        centred as f32 * self.scale * self.col_scales[j] + self.bias[j]
    }
}

/// Rows of C a task computes (a multiple of every tile's height).
const ROW_BLOCK: usize = 48;

/// `c[i·n + j] = ep(Σ_k a[i, k] · b[j, k], j)` for i < m, j < n, on
/// `threads` threads of the pool.
pub fn gemm_u8s8(
    m: usize,
    a: &RowsA,
    b: &PackedInt8,
    c: &mut [f32],
    ep: &Epilogue,
    threads: usize,
) {
    let (n, stride) = (b.n, b.a_stride());
    assert_eq!(c.len(), m * n, "gemm_u8s8: C holds m·n values");
    let whole = n.next_multiple_of(PANEL);
    assert!(
        ep.row_sums.len() >= whole && ep.col_scales.len() >= whole && ep.bias.len() >= whole,
        "gemm_u8s8: the epilogue's slices must be padded to whole panels"
    );
    match (a, b.isa) {
        (RowsA::Bytes(a), Isa::Scalar | Isa::Avx512) => assert!(a.len() >= m * stride),
        (RowsA::Wide(a), Isa::Avx2) => assert!(a.len() >= m * stride),
        _ => panic!("gemm_u8s8: A was prepared for another path than B"),
    }
    if m == 0 || n == 0 {
        return;
    }
    let panels = n.div_ceil(PANEL);
    let row_blocks = m.div_ceil(ROW_BLOCK);
    // few rows (one image to predict): the threads split the panels
    let col_parts = threads.div_ceil(row_blocks).clamp(1, panels);
    let per_part = panels.div_ceil(col_parts);
    let c_addr = c.as_mut_ptr() as usize;
    let task = |t: usize| {
        let (block, part) = (t / col_parts, t % col_parts);
        let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(m);
        let panels = part * per_part..((part + 1) * per_part).min(panels);
        // SAFETY: tasks write disjoint blocks of rows × panels of C, which
        // holds m·n values (asserted); A and B were checked above.
        unsafe { block_product(rows, panels, a, b, ep, c_addr as *mut f32) }
    };
    let tasks = row_blocks * col_parts;
    if threads > 1 && tasks > 1 {
        crate::threads::in_pool(|| (0..tasks).into_par_iter().for_each(task));
    } else {
        (0..tasks).for_each(task);
    }
}

/// C's `rows` × the columns of `panels`.
///
/// # Safety
/// `c` holds m·n values; no other thread writes this block; A fits B's path.
unsafe fn block_product(
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    a: &RowsA,
    b: &PackedInt8,
    ep: &Epilogue,
    c: *mut f32,
) {
    let (n, k, stride) = (b.n, b.k, b.a_stride());
    for p in panels {
        let (j0, cols) = (p * PANEL, PANEL.min(b.n - p * PANEL));
        // the epilogue's values for this panel's 16 columns
        let lanes = Lanes {
            zero_point: ep.zero_point,
            scale: ep.scale,
            row_sums: &ep.row_sums[j0..j0 + PANEL],
            col_scales: &ep.col_scales[j0..j0 + PANEL],
            bias: &ep.bias[j0..j0 + PANEL],
        };
        match (a, b.isa) {
            #[cfg(target_arch = "x86_64")]
            (RowsA::Bytes(a), Isa::Avx512) => {
                let steps = k.div_ceil(4);
                let panel = &b.data[p * steps * PANEL * 4..][..steps * PANEL * 4];
                by_tiles(rows.clone(), 12, |i, r| {
                    // SAFETY: VNNI was detected when B was packed for it;
                    // rows i..i+r of A and of C exist.
                    unsafe {
                        let (a, c) = (a[i * stride..].as_ptr(), c.add(i * n + j0));
                        vnni::tile(r, steps, a, stride, panel, &lanes, c, n, cols)
                    }
                });
            }
            #[cfg(target_arch = "x86_64")]
            (RowsA::Wide(a), Isa::Avx2) => {
                let steps = k.div_ceil(2);
                let panel = &b.wide[p * steps * PANEL * 2..][..steps * PANEL * 2];
                by_tiles(rows.clone(), 4, |i, r| {
                    // SAFETY: AVX2 was detected when B was packed for it;
                    // rows i..i+r of A and of C exist.
                    unsafe {
                        let (a, c) = (a[i * stride..].as_ptr(), c.add(i * n + j0));
                        avx2::tile(r, steps, a, stride, panel, &lanes, c, n, cols)
                    }
                });
            }
            (RowsA::Bytes(a), _) => {
                for i in rows.clone() {
                    let row = &a[i * stride..][..k];
                    for j in j0..j0 + cols {
                        let w = &b.data[j * k..][..k];
                        let s: i32 = row.iter().zip(w).map(|(&x, &y)| x as i32 * y as i32).sum();
                        // SAFETY: (i, j) is inside C and this task's block.
                        unsafe { *c.add(i * n + j) = ep.apply(s, j) };
                    }
                }
            }
            (RowsA::Wide(_), _) => unreachable!("checked in gemm_u8s8"),
        }
    }
}

/// `rows` in tiles of at most `height`: `tile(first row, rows in it)`.
#[cfg(target_arch = "x86_64")]
fn by_tiles(rows: std::ops::Range<usize>, height: usize, mut tile: impl FnMut(usize, usize)) {
    let mut i = rows.start;
    while i < rows.end {
        let r = height.min(rows.end - i);
        tile(i, r);
        i += r;
    }
}

/// The epilogue's values for one panel's 16 columns.
struct Lanes<'a> {
    zero_point: i32,
    scale: f32,
    row_sums: &'a [i32],
    col_scales: &'a [f32],
    bias: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod vnni;

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 13) as u8)
            .collect()
    }

    /// Every path the CPU has gives the definition's integers, extremes
    /// included (255 · −128 in every product: no saturation), at every
    /// edge (partial panels and tiles, k not a multiple of 4, one row),
    /// on one and two threads, through the same epilogue bit for bit.
    #[test]
    fn every_path_gives_the_exact_sums() {
        for (m, k, n) in [
            (1, 1, 1),
            (5, 3, 17),
            (13, 7, 33),
            (50, 784, 256),
            (97, 130, 10),
            (3, 1000, 40),
        ] {
            let a = bytes(m * k, 1);
            let b: Vec<i8> = bytes(n * k, 2).into_iter().map(|v| v as i8).collect();
            let row_sums = pad((0..n).map(|j| j as i32 * 3 - 7), n);
            let col_scales = pad((0..n).map(|j| 0.001 * (j + 1) as f32), n);
            let bias = pad((0..n).map(|j| j as f32 - 4.5), n);
            let ep = Epilogue {
                zero_point: 9,
                scale: 0.37,
                row_sums: &row_sums,
                col_scales: &col_scales,
                bias: &bias,
            };
            let sums = |a: &[u8], b: &[i8]| -> Vec<f32> {
                (0..m * n)
                    .map(|e| {
                        let (i, j) = (e / n, e % n);
                        let s: i64 = (0..k)
                            .map(|q| a[i * k + q] as i64 * b[j * k + q] as i64)
                            .sum();
                        let c = (s - 9 * row_sums[j] as i64) as f32;
                        c * 0.37 * col_scales[j] + bias[j]
                    })
                    .collect()
            };
            let want = sums(&a, &b);
            // all extremes: the largest magnitude sums there are
            let (a_max, b_min) = (vec![255u8; m * k], vec![-128i8; n * k]);
            let want_extreme = sums(&a_max, &b_min);
            for isa in Isa::ALL {
                if !crate::isa::int8_supported(isa) {
                    eprintln!("skipped {isa}: not on this CPU");
                    continue;
                }
                for threads in [1, 2] {
                    let packed = PackedInt8::new(&b, n, k, isa);
                    let rows = RowsA::build(m, &packed, |i, q| a[i * k + q]);
                    let mut c = vec![0.0; m * n];
                    gemm_u8s8(m, &rows, &packed, &mut c, &ep, threads);
                    assert_eq!(c, want, "{isa} ({m}×{k}×{n}, {threads} threads)");
                    let packed = PackedInt8::new(&b_min, n, k, isa);
                    let rows = RowsA::build(m, &packed, |i, q| a_max[i * k + q]);
                    gemm_u8s8(m, &rows, &packed, &mut c, &ep, threads);
                    assert_eq!(c, want_extreme, "{isa}");
                }
            }
        }
    }
}
