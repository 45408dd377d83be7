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
            if transposed && g > 1 && layout.row_offset(first_row + r + g - 1) == base + g - 1 {
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
}
