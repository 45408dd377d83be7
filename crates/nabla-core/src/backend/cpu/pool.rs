//! 2-d max and average pooling over planes of a contiguous `[N, C, H, W]`
//! input (each of the N·C planes is independent). The window geometry is the
//! one of [`ConvGeom`] with C = 1 per plane.

use super::conv::ConvGeom;

/// Window positions `k` (in `0..kernel`) whose input index `o·s − p + k·d`
/// lies in `0..input`.
fn taps(
    o: usize,
    s: usize,
    p: usize,
    d: usize,
    kernel: usize,
    input: usize,
) -> std::ops::Range<usize> {
    let start = (o * s) as isize - p as isize;
    let lo = (0..kernel)
        .find(|&k| start + (k * d) as isize >= 0)
        .unwrap_or(kernel);
    let hi = (0..kernel)
        .rev()
        .find(|&k| start + ((k * d) as isize) < input as isize)
        .map_or(0, |k| k + 1);
    lo..hi.max(lo)
}

/// `(v, i)` if `v` beats `best` — it is larger, or either is NaN — else
/// `(best, best_i)`; ties keep the earlier index. One unordered compare and
/// u32 indices keep this branch-free and vectorizable: on real data the
/// comparison is a coin flip, and a branch per element would cost several
/// times the work. NaN is not sticky here; callers apply [`nan_wins`].
#[inline(always)]
fn pick(best: f32, best_i: u32, v: f32, i: u32) -> (f32, u32) {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // true when either is NaN, on purpose
    let better = !(v <= best);
    (
        if better { v } else { best },
        if better { i } else { best_i },
    )
}

/// NaN propagates through max pooling, as in PyTorch.
#[inline(always)]
fn nan_wins(best: f32, window_has_nan: bool) -> f32 {
    if window_has_nan {
        f32::NAN
    } else {
        best
    }
}

/// The common 2×2 window with stride 2 and no padding, with constant trip
/// counts the compiler can unroll.
fn max_pool_plane_2x2<const KEEP: bool>(
    plane: &[f32],
    g: &ConvGeom,
    out: &mut [f32],
    arg: &mut [u32],
) {
    let w = g.w;
    for oy in 0..g.oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        let (top, bottom) = (&plane[r0..r0 + w], &plane[r1..r1 + w]);
        let o = &mut out[oy * g.ow..(oy + 1) * g.ow];
        for ox in 0..g.ow {
            let x = 2 * ox;
            let (v0, v1, v2, v3) = (top[x], top[x + 1], bottom[x], bottom[x + 1]);
            let (b, i) = (v0, (r0 + x) as u32);
            let (b, i) = pick(b, i, v1, (r0 + x + 1) as u32);
            let (b, i) = pick(b, i, v2, (r1 + x) as u32);
            let (b, i) = pick(b, i, v3, (r1 + x + 1) as u32);
            let has_nan = v0.is_nan() | v1.is_nan() | v2.is_nan() | v3.is_nan();
            o[ox] = nan_wins(b, has_nan);
            if KEEP {
                arg[oy * g.ow + ox] = i;
            }
        }
    }
}

/// The 2×2 window, eight outputs at a time: the 16 inputs of a row split
/// into even and odd columns by shuffles, the first maximum of each pair
/// picked by compare and blend (row-major order: left before right, top
/// before bottom, as the scalar version and PyTorch), masked loads and
/// stores for the last, partial group of a row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_op_in_unsafe_fn)] // intrinsics on checked bounds
unsafe fn max_pool_plane_2x2_avx2<const KEEP: bool>(
    plane: &[f32],
    g: &ConvGeom,
    out: &mut [f32],
    arg: &mut [u32],
) {
    use std::arch::x86_64::*;
    let (w, ow) = (g.w, g.ow);
    assert!(plane.len() >= 2 * g.oh * w && w >= 2 * ow);
    assert!(out.len() >= g.oh * ow && (!KEEP || arg.len() >= g.oh * ow));
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // after the even/odd shuffles the pairs sit in the order 0 1 4 5 2 3 6 7
    let pair_col = _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14);
    let below = |n: usize| _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane);
    // the first maximum of each (even, odd) pair and its index, NaN flags
    let pairs = |row: *const f32, m_lo: __m256i, m_hi: __m256i, base: i32| {
        let (a, b) = (
            _mm256_maskload_ps(row, m_lo),
            _mm256_maskload_ps(row.wrapping_add(8), m_hi),
        );
        let (even, odd) = (_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xDD));
        let odd_wins = _mm256_cmp_ps(odd, even, _CMP_NLE_UQ);
        let v = _mm256_blendv_ps(even, odd, odd_wins);
        let i = _mm256_add_epi32(_mm256_set1_epi32(base), pair_col);
        let i = _mm256_sub_epi32(i, _mm256_castps_si256(odd_wins)); // −(−1) = +1
        (v, i, _mm256_cmp_ps(even, odd, _CMP_UNORD_Q))
    };
    for oy in 0..g.oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        let mut ox = 0;
        while ox < ow {
            let n = (ow - ox).min(8);
            let (m_lo, m_hi) = (below((2 * n).min(8)), below((2 * n).saturating_sub(8)));
            let x = 2 * ox;
            // masked-off lanes are never touched, so the address may pass the end
            let top = plane.as_ptr().wrapping_add(r0 + x);
            let bottom = plane.as_ptr().wrapping_add(r1 + x);
            let (tv, ti, tn) = pairs(top, m_lo, m_hi, (r0 + x) as i32);
            let (bv, bi, bn) = pairs(bottom, m_lo, m_hi, (r1 + x) as i32);
            let bottom_wins = _mm256_cmp_ps(bv, tv, _CMP_NLE_UQ);
            let v = _mm256_blendv_ps(tv, bv, bottom_wins);
            let i =
                _mm256_castsi256_ps(_mm256_blendv_epi8(ti, bi, _mm256_castps_si256(bottom_wins)));
            let v = _mm256_blendv_ps(v, _mm256_set1_ps(f32::NAN), _mm256_or_ps(tn, bn));
            // back to the order 0..8: 64-bit blocks 0 2 1 3
            let v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
            let i = _mm256_castpd_si256(_mm256_permute4x64_pd(_mm256_castps_pd(i), 0xD8));
            let m_out = below(n);
            let o = oy * ow + ox;
            _mm256_maskstore_ps(out.as_mut_ptr().add(o), m_out, v);
            if KEEP {
                _mm256_maskstore_epi32(arg.as_mut_ptr().add(o) as *mut i32, m_out, i);
            }
            ox += n;
        }
    }
}

/// Max pooling of one plane: outputs and (with `KEEP`) the winning input
/// index of each.
fn max_pool_plane<const KEEP: bool>(plane: &[f32], g: &ConvGeom, out: &mut [f32], arg: &mut [u32]) {
    let simple = (g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 0, 0, 1, 1);
    // (whole windows only: ceil mode's last ones run past the input)
    let whole = 2 * g.oh <= g.h && 2 * g.ow <= g.w;
    if simple && whole && (g.kh, g.kw) == (2, 2) {
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx512() {
            // SAFETY: AVX-512 is present; the function checks its bounds.
            return unsafe { max_pool_plane_2x2_avx512::<KEEP>(plane, g, out, arg) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx2_fma() {
            // SAFETY: AVX2 is present; the function checks its bounds.
            return unsafe { max_pool_plane_2x2_avx2::<KEEP>(plane, g, out, arg) };
        }
        return max_pool_plane_2x2::<KEEP>(plane, g, out, arg);
    }
    let (w, dh, dw) = (g.w, g.dh, g.dw);
    for oy in 0..g.oh {
        let ys = taps(oy, g.sh, g.ph, dh, g.kh, g.h);
        let y0 = oy * g.sh + ys.start * dh - g.ph;
        for ox in 0..g.ow {
            let xs = taps(ox, g.sw, g.pw, dw, g.kw, g.w);
            let x0 = ox * g.sw + xs.start * dw - g.pw;
            let first = y0 * w + x0;
            let (mut best, mut best_i, mut has_nan) = (plane[first], first as u32, false);
            for ki in 0..ys.len() {
                let row = (y0 + ki * dh) * w + x0;
                for kj in 0..xs.len() {
                    let idx = row + kj * dw;
                    (best, best_i) = pick(best, best_i, plane[idx], idx as u32);
                    has_nan |= plane[idx].is_nan();
                }
            }
            let best = nan_wins(best, has_nan);
            out[oy * g.ow + ox] = best;
            if KEEP {
                arg[oy * g.ow + ox] = best_i;
            }
        }
    }
}

/// Max pooling: the output `[N·C, OH, OW]` and, when `keep` (a backward
/// pass will need it), for each output the index within its input plane
/// that won. Without it the indices are neither computed nor stored:
/// evaluation reads the input and writes the output only. Padding never
/// wins (PyTorch's −∞ padding); callers ensure every window holds a pixel.
pub fn max_pool_forward(
    x: &[f32],
    planes: usize,
    g: &ConvGeom,
    keep: bool,
) -> (Vec<f32>, Option<Vec<u32>>) {
    let (hw, p) = (g.h * g.w, g.p());
    let mut out = vec![0f32; planes * p];
    let mut arg = vec![0u32; if keep { planes * p } else { 0 }];
    let arg_chunks: Box<dyn Iterator<Item = &mut [u32]>> = match keep {
        true => Box::new(arg.chunks_mut(p.max(1))),
        false => Box::new(std::iter::repeat_with(|| &mut [][..])),
    };
    let mut pairs: Vec<(&mut [f32], &mut [u32])> =
        out.chunks_mut(p.max(1)).zip(arg_chunks).collect();
    let work = |i: usize, (o, a): &mut (&mut [f32], &mut [u32])| {
        let plane = &x[i * hw..(i + 1) * hw];
        match keep {
            true => max_pool_plane::<true>(plane, g, o, a),
            false => max_pool_plane::<false>(plane, g, o, a),
        }
    };
    if planes * p * g.kh * g.kw >= super::PAR_MIN_ELEMS {
        use rayon::prelude::*;
        crate::threads::in_pool(|| {
            pairs
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, pr)| work(i, pr))
        });
    } else {
        pairs.iter_mut().enumerate().for_each(|(i, pr)| work(i, pr));
    }
    drop(pairs);
    (out, keep.then_some(arg))
}

/// Routes each output gradient to the input element that won the max.
pub fn max_pool_backward(grad: &[f32], arg: &[u32], planes: usize, g: &ConvGeom) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    super::zeroed_chunks(planes * hw, hw, |i, plane| {
        for k in i * p..(i + 1) * p {
            plane[arg[k] as usize] += grad[k];
        }
    })
}

/// Number of elements averaged by the window at (oy, ox): the window cut
/// at the padded input's end (only ceil mode's last windows run past it;
/// PyTorch's rule), and without the padding unless `count_include_pad`.
fn divisor(g: &ConvGeom, oy: usize, ox: usize, count_include_pad: bool) -> f32 {
    let (y0, x0) = (
        (oy * g.sh) as isize - g.ph as isize,
        (ox * g.sw) as isize - g.pw as isize,
    );
    let (lo_y, lo_x, hi_y, hi_x) = match count_include_pad {
        true => (y0, x0, (g.h + g.ph) as isize, (g.w + g.pw) as isize),
        false => (y0.max(0), x0.max(0), g.h as isize, g.w as isize),
    };
    let rows = (lo_y..(y0 + g.kh as isize).min(hi_y)).len();
    let cols = (lo_x..(x0 + g.kw as isize).min(hi_x)).len();
    (rows * cols).max(1) as f32
}

/// Average pooling forward (padding counts as zeros).
pub fn avg_pool_forward(
    x: &[f32],
    planes: usize,
    g: &ConvGeom,
    count_include_pad: bool,
) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    let mut out = vec![0f32; planes * p];
    super::for_each_chunk(&mut out, p, |i, o| {
        let plane = &x[i * hw..(i + 1) * hw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (y0, x0) = (
                    (oy * g.sh) as isize - g.ph as isize,
                    (ox * g.sw) as isize - g.pw as isize,
                );
                let mut s = 0f32;
                for iy in y0.max(0)..(y0 + g.kh as isize).min(g.h as isize) {
                    for ix in x0.max(0)..(x0 + g.kw as isize).min(g.w as isize) {
                        s += plane[iy as usize * g.w + ix as usize];
                    }
                }
                o[oy * g.ow + ox] = s / divisor(g, oy, ox, count_include_pad);
            }
        }
    });
    out
}

/// Average pooling backward: each output gradient spread evenly over its window.
pub fn avg_pool_backward(
    grad: &[f32],
    planes: usize,
    g: &ConvGeom,
    count_include_pad: bool,
) -> Vec<f32> {
    let (hw, p) = (g.h * g.w, g.p());
    super::zeroed_chunks(planes * hw, hw, |i, plane| {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let gv = grad[i * p + oy * g.ow + ox] / divisor(g, oy, ox, count_include_pad);
                let (y0, x0) = (
                    (oy * g.sh) as isize - g.ph as isize,
                    (ox * g.sw) as isize - g.pw as isize,
                );
                for iy in y0.max(0)..(y0 + g.kh as isize).min(g.h as isize) {
                    for ix in x0.max(0)..(x0 + g.kw as isize).min(g.w as isize) {
                        plane[iy as usize * g.w + ix as usize] += gv;
                    }
                }
            }
        }
    })
}

/// The 2×2 window, sixteen outputs at a time: the 32 inputs of a row split
/// into even and odd columns by one two-source permute each (already in
/// order), the first maximum of each pair picked under a compare mask
/// (left before right, top before bottom, as the other paths), masked
/// loads and stores for the last, partial group of a row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_op_in_unsafe_fn)] // intrinsics on checked bounds
unsafe fn max_pool_plane_2x2_avx512<const KEEP: bool>(
    plane: &[f32],
    g: &ConvGeom,
    out: &mut [f32],
    arg: &mut [u32],
) {
    use std::arch::x86_64::*;
    let (w, ow) = (g.w, g.ow);
    assert!(plane.len() >= 2 * g.oh * w && w >= 2 * ow);
    assert!(out.len() >= g.oh * ow && (!KEEP || arg.len() >= g.oh * ow));
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_add_epi32(evens, _mm512_set1_epi32(1));
    let below = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
    // the first maximum of each (even, odd) pair, its index, NaN flags
    let pairs = |row: *const f32, m_lo: __mmask16, m_hi: __mmask16, base: i32| {
        let (a, b) = (
            _mm512_maskz_loadu_ps(m_lo, row),
            _mm512_maskz_loadu_ps(m_hi, row.wrapping_add(16)),
        );
        let even = _mm512_permutex2var_ps(a, evens, b);
        let odd = _mm512_permutex2var_ps(a, odds, b);
        let odd_wins = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(odd, even);
        let v = _mm512_mask_blend_ps(odd_wins, even, odd);
        let i = _mm512_add_epi32(_mm512_set1_epi32(base), evens);
        let i = _mm512_mask_add_epi32(i, odd_wins, i, _mm512_set1_epi32(1));
        (v, i, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(even, odd))
    };
    for oy in 0..g.oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        let mut ox = 0;
        while ox < ow {
            let n = (ow - ox).min(16);
            let (m_lo, m_hi) = (below(2 * n), below((2 * n).saturating_sub(16)));
            let x = 2 * ox;
            // masked-off lanes are never touched, so the address may pass the end
            let top = plane.as_ptr().wrapping_add(r0 + x);
            let bottom = plane.as_ptr().wrapping_add(r1 + x);
            let (tv, ti, tn) = pairs(top, m_lo, m_hi, (r0 + x) as i32);
            let (bv, bi, bn) = pairs(bottom, m_lo, m_hi, (r1 + x) as i32);
            let bottom_wins = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(bv, tv);
            let v = _mm512_mask_blend_ps(bottom_wins, tv, bv);
            let i = _mm512_mask_blend_epi32(bottom_wins, ti, bi);
            let v = _mm512_mask_mov_ps(v, tn | bn, _mm512_set1_ps(f32::NAN));
            let (m_out, o) = (below(n), oy * ow + ox);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(o), m_out, v);
            if KEEP {
                _mm512_mask_storeu_epi32(arg.as_mut_ptr().add(o) as *mut i32, m_out, i);
            }
            ox += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize) -> ConvGeom {
        ConvGeom {
            n: 1,
            c: 1,
            h,
            w,
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            ph: 0,
            pw: 0,
            dh: 1,
            dw: 1,
            oh: h / 2,
            ow: w / 2,
        }
    }

    /// The vector kernel agrees with the scalar one on values, winning
    /// indices (ties included: values from a small set) and NaN, for widths
    /// that leave every size of partial group.
    #[test]
    fn vector_2x2_equals_scalar_2x2() {
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx2_fma() {
            let mut gen = crate::Generator::new(5);
            for w in 2..=70 {
                for h in [2, 3, 6] {
                    let g = geom(h, w);
                    let mut plane: Vec<f32> = (0..h * w).map(|_| gen.below(4) as f32).collect();
                    if w % 5 == 0 {
                        plane[gen.below(h * w)] = f32::NAN;
                    }
                    if w % 7 == 0 {
                        plane[gen.below(h * w)] = f32::INFINITY;
                    }
                    let p = g.oh * g.ow;
                    let (mut o1, mut a1) = (vec![0f32; p], vec![0u32; p]);
                    let (mut o2, mut a2) = (vec![0f32; p], vec![0u32; p]);
                    max_pool_plane_2x2::<true>(&plane, &g, &mut o1, &mut a1);
                    // SAFETY: AVX2 is present.
                    unsafe { max_pool_plane_2x2_avx2::<true>(&plane, &g, &mut o2, &mut a2) };
                    let mut vectors = vec![("avx2", o2, a2)];
                    if crate::isa::Isa::Avx512.supported() {
                        let (mut o3, mut a3) = (vec![0f32; p], vec![0u32; p]);
                        // SAFETY: AVX-512 is present.
                        unsafe { max_pool_plane_2x2_avx512::<true>(&plane, &g, &mut o3, &mut a3) };
                        vectors.push(("avx512", o3, a3));
                    }
                    // without the indices (evaluation): the same values, no
                    // index written (the index slice is empty)
                    let mut o4 = vec![0f32; p];
                    max_pool_plane_2x2::<false>(&plane, &g, &mut o4, &mut []);
                    let mut o5 = vec![0f32; p];
                    // SAFETY: AVX2 is present.
                    unsafe { max_pool_plane_2x2_avx2::<false>(&plane, &g, &mut o5, &mut []) };
                    vectors.push(("scalar, no indices", o4, a1.clone()));
                    vectors.push(("avx2, no indices", o5, a1.clone()));
                    if crate::isa::Isa::Avx512.supported() {
                        let mut o6 = vec![0f32; p];
                        // SAFETY: AVX-512 is present.
                        unsafe { max_pool_plane_2x2_avx512::<false>(&plane, &g, &mut o6, &mut []) };
                        vectors.push(("avx512, no indices", o6, a1.clone()));
                    }
                    for (path, o2, a2) in &vectors {
                        for k in 0..p {
                            let same = o1[k] == o2[k] || (o1[k].is_nan() && o2[k].is_nan());
                            assert!(same, "{path} {h}x{w} output {k}: {} vs {}", o1[k], o2[k]);
                            if !o1[k].is_nan() {
                                assert_eq!(a1[k], a2[k], "{path} {h}x{w} output {k}");
                            }
                        }
                    }
                }
            }
        }
    }
}
