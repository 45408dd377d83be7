//! Strided gather into a contiguous buffer (`contiguous()`, `to_vec()`).

use crate::Layout;

/// The elements of `layout` over `data`, in row-major order.
pub fn contiguous(data: &[f32], layout: &Layout) -> Vec<f32> {
    let n = layout.numel();
    if layout.is_contiguous() {
        let o = layout.offset();
        return data[o..o + n].to_vec();
    }
    let mut out = vec![0f32; n];
    if n == 0 {
        return out;
    }
    let rank = layout.rank();
    let inner = layout.shape()[rank - 1];
    let stride = layout.strides()[rank - 1];
    // A transpose of the last two dims: neighbouring output rows start at
    // neighbouring floats, so eight rows are gathered together (8×8 blocks
    // transposed in registers) and each source cache line serves eight of
    // them, not one.
    let transposed = rank >= 2 && stride != 1 && layout.strides()[rank - 2] == 1;
    let chunk = super::rows_per_chunk(inner);
    super::for_each_chunk(&mut out, chunk, |ci, c| {
        let first_row = ci * chunk / inner.max(1);
        let rows = c.len() / inner.max(1);
        let mut r = 0;
        while r < rows {
            let base = layout.row_offset(first_row + r);
            let g = 8.min(rows - r);
            // The block is one transpose only if *every* row in it starts
            // one float after the previous: rows that wrap past the end of
            // dim −2 jump elsewhere even when the last one lands back in
            // line (checking the ends alone scrambled such views).
            let in_line = || (1..g).all(|q| layout.row_offset(first_row + r + q) == base + q);
            if transposed && g > 1 && in_line() {
                // output row q, element j = data[base + j·stride + q]
                let block = &mut c[r * inner..(r + g) * inner];
                // SAFETY: block holds g rows of inner values
                unsafe {
                    super::transpose::transpose_into(
                        block.as_mut_ptr(),
                        inner,
                        false,
                        &data[base..],
                        stride,
                        inner,
                        g,
                    )
                };
                r += g;
                continue;
            }
            let row = &mut c[r * inner..(r + 1) * inner];
            if stride == 1 {
                // rows contiguous in the source (a permutation of the outer
                // dims, say): one copy per row
                row.copy_from_slice(&data[base..base + inner]);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = data[base + j * stride];
                }
            }
            r += 1;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use crate::Layout;

    /// Row copies (inner stride 1) and element gathers agree with walking
    /// the layout's offsets, for views large enough to run in parallel.
    #[test]
    fn gathers_every_view_in_row_major_order() {
        let data: Vec<f32> = (0..200_000).map(|v| v as f32).collect();
        let views = [
            // [T, N, I] read from a batch-first [N, T, I]: rows contiguous
            Layout::new(vec![28, 64, 28], vec![28, 784, 1], 5),
            // a transpose: inner stride ≠ 1
            Layout::new(vec![300, 200], vec![1, 300], 0),
            // a narrowed, contiguous-row view with an offset
            Layout::new(vec![10, 3], vec![7, 1], 2),
            // the last two dims transposed, groups of eight rows crossing
            // from one matrix to the next
            Layout::new(vec![3, 13, 7], vec![91, 1, 13], 1),
            // rows of a matrix transposed after a narrow (an LSTM's weight
            // gradient out of [x | 1 | h]ᵀ·dz)
            Layout::new(vec![512, 128], vec![1, 512], 28 * 512),
        ];
        for layout in views {
            let mut want = Vec::new();
            layout.for_each_offset(|o| want.push(data[o]));
            assert_eq!(super::contiguous(&data, &layout), want, "{layout:?}");
        }
    }

    /// Every permutation of every rank-4 and rank-5 shape with sizes 1–4
    /// (and a few offsets) against a walk of the offsets one by one: the
    /// transpose fast path must never take a block whose rows wrap.
    #[test]
    fn every_small_permuted_view_matches_a_naive_walk() {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut all = Vec::new();
            for p in permutations(n - 1) {
                for at in 0..n {
                    let mut q = p.clone();
                    q.insert(at, n - 1);
                    all.push(q);
                }
            }
            all
        }
        let data: Vec<f32> = (0..1100).map(|v| v as f32).collect();
        let mut checked = 0;
        for rank in [4usize, 5] {
            let perms = permutations(rank);
            for code in 0..4usize.pow(rank as u32) {
                let shape: Vec<usize> = (0..rank)
                    .map(|k| code / 4usize.pow(k as u32) % 4 + 1)
                    .collect();
                let mut strides = vec![1; rank];
                for k in (0..rank - 1).rev() {
                    strides[k] = strides[k + 1] * shape[k + 1];
                }
                for perm in &perms {
                    let offset = checked % 3;
                    let layout = Layout::new(
                        perm.iter().map(|&p| shape[p]).collect(),
                        perm.iter().map(|&p| strides[p]).collect(),
                        offset,
                    );
                    let mut want = Vec::new();
                    layout.for_each_offset(|o| want.push(data[o]));
                    assert_eq!(super::contiguous(&data, &layout), want, "{layout:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 256 * 24 + 1024 * 120);
    }
}
