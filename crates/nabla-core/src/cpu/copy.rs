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
            for (j, o) in row.iter_mut().enumerate() {
                *o = data[base + j * stride];
            }
        }
    });
    out
}
