//! Elementwise maps: one input, or two inputs broadcast against each other.
//! The closure is monomorphized into the loop, so simple maps vectorize.

use crate::layout::{broadcast_strides, Layout};

/// `out[i] = f(x[i])` in row-major order.
pub fn unary(data: &[f32], layout: &Layout, f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    let mut out = if layout.is_contiguous() {
        let o = layout.offset();
        let mut out = vec![0f32; layout.numel()];
        let src = &data[o..o + out.len()];
        super::for_each_chunk(&mut out, 1 << 14, |ci, c| {
            let s = &src[ci * (1 << 14)..ci * (1 << 14) + c.len()];
            for (o, &x) in c.iter_mut().zip(s) {
                *o = f(x);
            }
        });
        return out;
    } else {
        super::copy::contiguous(data, layout)
    };
    super::for_each_chunk(&mut out, 1 << 14, |_, c| {
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
    let mut out = vec![0f32; n];
    if n == 0 {
        return out;
    }
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
        super::for_each_chunk(&mut out, 1 << 14, |ci, c| {
            let s = ci * (1 << 14);
            for ((o, &x), &y) in c.iter_mut().zip(&a[s..]).zip(&b[s..]) {
                *o = f(x, y);
            }
        });
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
