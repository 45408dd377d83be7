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
    let chunk = super::rows_per_chunk(inner);
    super::for_each_chunk(&mut out, chunk, |ci, c| {
        let first_row = ci * chunk / inner.max(1);
        for (r, row) in c.chunks_mut(inner).enumerate() {
            let base = layout.row_offset(first_row + r);
            if stride == 1 {
                // rows contiguous in the source (a permutation of the outer
                // dims, say): one copy per row
                row.copy_from_slice(&data[base..base + inner]);
                continue;
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o = data[base + j * stride];
            }
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
        ];
        for layout in views {
            let mut want = Vec::new();
            layout.for_each_offset(|o| want.push(data[o]));
            assert_eq!(super::contiguous(&data, &layout), want, "{layout:?}");
        }
    }
}
