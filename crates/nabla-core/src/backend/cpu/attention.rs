//! Scaled dot-product attention as FlashAttention-2 computes it: for each
//! block of query rows, the keys are visited a block at a time with an
//! online softmax (a running max `m` and sum `l` per row, the accumulated
//! output rescaled by `e^(m_old − m_new)` when the max grows), so no `L×S`
//! matrix is ever held. The forward pass keeps the output and each row's
//! log-sum-exp `lse = m + ln l`; the backward pass recomputes each block's
//! probabilities from them, `P = e^(S − lse)`, and with
//! `D_i = Σ_e dO_ie·O_ie`:
//!
//! `dV_j += Pᵀ·dO_i`, `dP = dO_i·V_jᵀ`, `dS = P ⊙ (dP − D_i)`,
//! `dQ_i += scale·dS·K_j`, `dK_j += scale·dSᵀ·Q_i`.
//!
//! Under a causal mask the key blocks past a query block's last row are
//! skipped, not computed and discarded. Rows with nothing to attend to
//! (every key masked) give 0 and no gradient. Work is split between the
//! threads by (matrix, block of query rows) forward and by key/value head
//! backward (each owns the gradients it writes).

use rayon::prelude::*;

use super::math::exp_with;
use super::matmul::{gemm_into_at, MatRef};
use crate::backend::{AttentionShape, MaskKind, View};

/// Query rows per block: a block's scores (64×128 floats) and its
/// operands stay in the L2 cache.
const ROWS: usize = 64;
/// Keys per block (128 measured 3–8% faster than 64 at L = 256…4,096, 4
/// heads of 64: fewer, larger products).
const KEYS: usize = 128;

/// A stack of matrices in a strided view: matrix `m`'s element (i, j) at
/// `data[offsets[m] + i·rs + j·cs]` (any view of `[…, rows, cols]`).
pub struct Operand<'a> {
    data: &'a [f32],
    offsets: Vec<usize>,
    rs: usize,
    cs: usize,
    cols: usize,
}

impl<'a> Operand<'a> {
    pub fn new((storage, l): View<'a>) -> Self {
        let r = l.rank();
        let (lead, strides) = (&l.shape()[..r - 2], &l.strides()[..r - 2]);
        let offsets = (0..lead.iter().product())
            .map(|mut m: usize| {
                let mut off = l.offset();
                for d in (0..lead.len()).rev() {
                    off += (m % lead[d]) * strides[d];
                    m /= lead[d];
                }
                off
            })
            .collect();
        Operand {
            data: storage.host(),
            offsets,
            rs: l.strides()[r - 2],
            cs: l.strides()[r - 1],
            cols: l.shape()[r - 1],
        }
    }

    /// Rows `r0..r0 + rows` of matrix `m`.
    fn rows(&self, m: usize, r0: usize, rows: usize) -> MatRef<'a> {
        MatRef {
            data: self.data,
            offset: self.offsets[m] + r0 * self.rs,
            rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

/// The mask as the kernel reads it.
pub struct Mask<'a> {
    kind: MaskKind,
    at: Operand<'a>,
}

impl<'a> Mask<'a> {
    pub fn new(view: View<'a>, kind: MaskKind) -> Self {
        Mask {
            kind,
            at: Operand::new(view),
        }
    }
}

/// What the forward pass keeps: the output `[B·Hq, L, Ev]` and each row's
/// log-sum-exp `[B·Hq, L]`.
pub struct Kept {
    out: Vec<f32>,
    lse: Vec<f32>,
}

/// The key/value matrix that query matrix `m` reads (grouped-query heads:
/// `Hq / Hk` query heads share one).
fn kv_of(a: &AttentionShape, m: usize) -> usize {
    let (b, h) = (m / a.heads, m % a.heads);
    b * a.kv_heads + h / (a.heads / a.kv_heads)
}

/// The keys a block of query rows `i0..i0 + rows` sees: all, or under a
/// causal mask those up to its last row.
fn key_end(a: &AttentionShape, i0: usize, rows: usize) -> usize {
    match a.causal {
        true => a.s.min(i0 + rows),
        false => a.s,
    }
}

/// The scores `scale·Q_i·K_jᵀ` of query rows `i0..` against keys `j0..`
/// (`sc` `[rows, cols]`), then the masks: −∞ where a key may not be seen,
/// the float mask added.
#[allow(clippy::too_many_arguments)]
fn scores(
    a: &AttentionShape,
    sc: &mut [f32],
    q: MatRef,
    k: MatRef,
    mask: Option<&Mask>,
    m: usize,
    (i0, j0): (usize, usize),
) {
    let (rows, cols) = (q.rows, k.rows);
    gemm_into_at(a.precision, sc, false, q, k.t(), 1);
    for (r, row) in sc.chunks_mut(cols.max(1)).enumerate().take(rows) {
        let i = i0 + r;
        row.iter_mut().for_each(|x| *x *= a.scale);
        if a.causal {
            // keys j > i are the future
            let seen = (i + 1).saturating_sub(j0).min(cols);
            row[seen..].fill(f32::NEG_INFINITY);
        }
        if let Some(mask) = mask {
            let at = &mask.at;
            let base = at.offsets[m] + i * at.rs + j0 * at.cs;
            let values = (0..cols).map(|c| at.data[base + c * at.cs]);
            match mask.kind {
                MaskKind::Keep => row.iter_mut().zip(values).for_each(|(x, v)| {
                    if v == 0.0 {
                        *x = f32::NEG_INFINITY;
                    }
                }),
                MaskKind::Add => row.iter_mut().zip(values).for_each(|(x, v)| *x += v),
            }
        }
    }
}

/// `e^x`, exactly 0 for x = −∞ (and below e's range).
#[inline(always)]
fn exp0<const FMA: bool>(x: f32) -> f32 {
    let e = exp_with::<FMA>(x);
    if x < -87.0 {
        0.0
    } else {
        e
    }
}

/// The max of a row, eight lanes at a time (a running max of one
/// register would not vectorize).
#[inline(always)]
fn lane_max(row: &[f32], init: f32) -> f32 {
    let mut lanes = [init; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &b| a.max(b));
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = m.max(x);
        }
    }
    lanes.iter().fold(tail, |a, &b| a.max(b))
}

/// The sum of a row, eight lanes at a time.
#[inline(always)]
fn lane_sum(row: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (s, &x) in lanes.iter_mut().zip(c) {
            *s += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// One row's online-softmax step: the scores become `e^(s − m_new)`; the
/// running max and sum are updated; returns the factor `e^(m_old − m_new)`
/// by which the row's accumulated output must be rescaled.
#[inline(always)]
fn online_row<const FMA: bool>(row: &mut [f32], max: &mut f32, sum: &mut f32) -> f32 {
    let new = lane_max(row, *max);
    if new == f32::NEG_INFINITY {
        // nothing seen yet in this row
        row.fill(0.0);
        return 1.0;
    }
    row.iter_mut().for_each(|x| *x = exp0::<FMA>(*x - new));
    let alpha = exp0::<FMA>(*max - new);
    *sum = *sum * alpha + lane_sum(row);
    *max = new;
    alpha
}

/// The softmax steps of a block's rows (compiled with AVX2 and FMA where
/// the CPU has them: the exponentials vectorize).
fn online_block(sc: &mut [f32], cols: usize, stats: (&mut [f32], &mut [f32]), out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
        return unsafe { online_block_avx512(sc, cols, stats, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { online_block_avx2(sc, cols, stats, out) };
    }
    online_block_with::<false>(sc, cols, stats, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn online_block_avx2(
    sc: &mut [f32],
    cols: usize,
    stats: (&mut [f32], &mut [f32]),
    out: &mut [f32],
) {
    online_block_with::<true>(sc, cols, stats, out)
}

/// [`online_block`] on the AVX-512 path (the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn online_block_avx512(
    sc: &mut [f32],
    cols: usize,
    stats: (&mut [f32], &mut [f32]),
    out: &mut [f32],
) {
    online_block_with::<true>(sc, cols, stats, out)
}

#[inline(always)]
fn online_block_with<const FMA: bool>(
    sc: &mut [f32],
    cols: usize,
    (max, sum): (&mut [f32], &mut [f32]),
    out: &mut [f32],
) {
    let ev = out.len() / max.len().max(1);
    for (r, row) in sc.chunks_mut(cols).enumerate() {
        let alpha = online_row::<FMA>(row, &mut max[r], &mut sum[r]);
        if alpha != 1.0 {
            out[r * ev..(r + 1) * ev]
                .iter_mut()
                .for_each(|o| *o *= alpha);
        }
    }
}

/// Query rows `i0..i0 + rows` of matrix `m`: their output (`out`,
/// `[rows, Ev]`) and log-sum-exp.
#[allow(clippy::too_many_arguments)]
fn forward_rows(
    a: &AttentionShape,
    (q, k, v): (&Operand, &Operand, &Operand),
    mask: Option<&Mask>,
    m: usize,
    i0: usize,
    out: &mut [f32],
    lse: &mut [f32],
) {
    let rows = lse.len();
    let kv = kv_of(a, m);
    let qm = q.rows(m, i0, rows);
    let (mut max, mut sum) = (vec![f32::NEG_INFINITY; rows], vec![0f32; rows]);
    let keys = KEYS;
    let mut sc = vec![0f32; rows * keys];
    out.fill(0.0);
    for j0 in (0..key_end(a, i0, rows)).step_by(keys) {
        let cols = keys.min(key_end(a, i0, rows) - j0);
        let sc = &mut sc[..rows * cols];
        scores(a, sc, qm, k.rows(kv, j0, cols), mask, m, (i0, j0));
        online_block(sc, cols, (&mut max, &mut sum), out);
        let p = MatRef::row_major(sc, rows, cols);
        gemm_into_at(a.precision, out, true, p, v.rows(kv, j0, cols), 1);
    }
    let ev = a.ev;
    for r in 0..rows {
        let o = &mut out[r * ev..(r + 1) * ev];
        if sum[r] > 0.0 {
            let inv = 1.0 / sum[r];
            o.iter_mut().for_each(|x| *x *= inv);
            lse[r] = max[r] + sum[r].ln();
        } else {
            // every key masked: no output, and no gradient later
            o.fill(0.0);
            lse[r] = f32::NEG_INFINITY;
        }
    }
}

/// A block's probabilities from its scores, `P = e^(S − lse)`: 0 where
/// masked and in rows that saw nothing (compiled with AVX2 and FMA where
/// the CPU has them).
fn probabilities(p: &mut [f32], cols: usize, lse: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
        return unsafe { probabilities_avx512(p, cols, lse) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { probabilities_avx2(p, cols, lse) };
    }
    probabilities_with::<false>(p, cols, lse)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn probabilities_avx2(p: &mut [f32], cols: usize, lse: &[f32]) {
    probabilities_with::<true>(p, cols, lse)
}

/// [`probabilities`] on the AVX-512 path (the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn probabilities_avx512(p: &mut [f32], cols: usize, lse: &[f32]) {
    probabilities_with::<true>(p, cols, lse)
}

#[inline(always)]
fn probabilities_with<const FMA: bool>(p: &mut [f32], cols: usize, lse: &[f32]) {
    for (row, &s) in p.chunks_mut(cols).zip(lse) {
        match s == f32::NEG_INFINITY {
            true => row.fill(0.0),
            false => row.iter_mut().for_each(|x| *x = exp0::<FMA>(*x - s)),
        }
    }
}

/// The output `[B·Hq, L, Ev]` (contiguous) and what the backward needs.
pub fn forward(
    a: &AttentionShape,
    qkv: (&Operand, &Operand, &Operand),
    mask: Option<&Mask>,
) -> (Vec<f32>, Kept) {
    let (l, ev) = (a.l, a.ev);
    let count = a.batch * a.heads;
    let mut out = vec![0f32; count * l * ev];
    let mut lse = vec![0f32; count * l];
    // one task per (matrix, block of query rows): all independent
    let mut tasks = Vec::new();
    if l > 0 && ev > 0 {
        for (m, (o, s)) in out.chunks_mut(l * ev).zip(lse.chunks_mut(l)).enumerate() {
            let blocks = o.chunks_mut(ROWS * ev).zip(s.chunks_mut(ROWS));
            tasks.extend(blocks.enumerate().map(|(b, (o, s))| (m, b * ROWS, o, s)));
        }
    } else if l > 0 {
        // no value features: only the log-sum-exp
        for (m, s) in lse.chunks_mut(l).enumerate() {
            let blocks = s.chunks_mut(ROWS).enumerate();
            tasks.extend(blocks.map(|(b, s)| (m, b * ROWS, &mut [][..], s)));
        }
    }
    let run = |(m, i0, o, s): (usize, usize, &mut [f32], &mut [f32])| {
        forward_rows(a, qkv, mask, m, i0, o, s)
    };
    crate::threads::in_pool(|| match tasks.len() > 1 {
        true => tasks.into_par_iter().for_each(run),
        false => tasks.into_iter().for_each(run),
    });
    let kept = Kept {
        out: out.clone(),
        lse,
    };
    (out, kept)
}

/// The gradients of one key/value head's matrices (`dk` `[S, E]`, `dv`
/// `[S, Ev]`) and of its query heads' (`dq`, `[group, L, E]`).
#[allow(clippy::too_many_arguments)]
fn backward_head(
    a: &AttentionShape,
    (q, k, v): (&Operand, &Operand, &Operand),
    mask: Option<&Mask>,
    (kept, dout): (&Kept, &Operand),
    kv: usize,
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (l, e, ev) = (a.l, a.e, a.ev);
    let group = a.heads / a.kv_heads;
    let (b, g) = (kv / a.kv_heads, kv % a.kv_heads);
    let keys = KEYS;
    let mut sc = vec![0f32; ROWS * keys];
    let mut dp = vec![0f32; ROWS * keys];
    for h in 0..group {
        let dq = &mut dq[h * l * e..(h + 1) * l * e];
        let m = b * a.heads + g * group + h;
        let (o, lse) = (&kept.out[m * l * ev..(m + 1) * l * ev], &kept.lse[m * l..]);
        for i0 in (0..l).step_by(ROWS) {
            let rows = ROWS.min(l - i0);
            let (qm, dom) = (q.rows(m, i0, rows), dout.rows(m, i0, rows));
            // D_i = Σ_e dO_ie·O_ie
            let d: Vec<f32> = (0..rows)
                .map(|r| {
                    let orow = &o[(i0 + r) * ev..(i0 + r + 1) * ev];
                    let base = dom.offset + r * dom.rs;
                    (0..ev).map(|c| dom.data[base + c * dom.cs] * orow[c]).sum()
                })
                .collect();
            let dq_i = &mut dq[i0 * e..(i0 + rows) * e];
            for j0 in (0..key_end(a, i0, rows)).step_by(keys) {
                let cols = keys.min(key_end(a, i0, rows) - j0);
                let (km, vm) = (k.rows(kv, j0, cols), v.rows(kv, j0, cols));
                let p = &mut sc[..rows * cols];
                scores(a, p, qm, km, mask, m, (i0, j0));
                probabilities(p, cols, &lse[i0..i0 + rows]);
                let pm = MatRef::row_major(p, rows, cols);
                let dvj = &mut dv[j0 * ev..(j0 + cols) * ev];
                gemm_into_at(a.precision, dvj, true, pm.t(), dom, 1);
                let dp = &mut dp[..rows * cols];
                gemm_into_at(a.precision, dp, false, dom, vm.t(), 1);
                // dS·scale = P ⊙ (dP − D_i)·scale, over dP
                for (r, (dprow, prow)) in dp.chunks_mut(cols).zip(p.chunks(cols)).enumerate() {
                    for (x, &pv) in dprow.iter_mut().zip(prow) {
                        *x = pv * (*x - d[r]) * a.scale;
                    }
                }
                let ds = MatRef::row_major(dp, rows, cols);
                gemm_into_at(a.precision, dq_i, true, ds, km, 1);
                let dkj = &mut dk[j0 * e..(j0 + cols) * e];
                gemm_into_at(a.precision, dkj, true, ds.t(), qm, 1);
            }
        }
    }
}

/// `v` cut into `heads` pieces of `n`.
fn per_head(v: &mut [f32], heads: usize, n: usize) -> impl Iterator<Item = &mut [f32]> {
    let mut rest = v;
    (0..heads).map(move |_| {
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        piece
    })
}

/// dq `[B·Hq, L, E]`, dk `[B·Hk, S, E]`, dv `[B·Hk, S, Ev]` (contiguous)
/// from the output's gradient.
pub fn backward(
    a: &AttentionShape,
    qkv: (&Operand, &Operand, &Operand),
    mask: Option<&Mask>,
    kept: &Kept,
    dout: &Operand,
) -> [Vec<f32>; 3] {
    let (l, s, e, ev) = (a.l, a.s, a.e, a.ev);
    let group = a.heads / a.kv_heads;
    let heads = a.batch * a.kv_heads;
    let mut dq = vec![0f32; a.batch * a.heads * l * e];
    let mut dk = vec![0f32; heads * s * e];
    let mut dv = vec![0f32; heads * s * ev];
    // each task one key/value head and the query heads that read it
    let tasks: Vec<_> = per_head(&mut dq, heads, group * l * e)
        .zip(per_head(&mut dk, heads, s * e))
        .zip(per_head(&mut dv, heads, s * ev))
        .enumerate()
        .map(|(kv, ((dq, dk), dv))| (kv, [dq, dk, dv]))
        .collect();
    let run = |(kv, [dq, dk, dv]): (usize, [&mut [f32]; 3])| {
        backward_head(a, qkv, mask, (kept, dout), kv, dq, dk, dv)
    };
    crate::threads::in_pool(|| match tasks.len() > 1 {
        true => tasks.into_par_iter().for_each(run),
        false => tasks.into_iter().for_each(run),
    });
    [dq, dk, dv]
}
