//! [`CpuBackend`]: the [`Backend`] primitives on the kernels of this folder.

use rayon::prelude::*;

use super::matmul::{gemm_to_at, MatRef};
use super::reduce::{reduce_rows, sum_columns};
use super::{attention, conv, copy, loss, named, norm, optim, pool, recurrent};
use crate::autocast::product_precision;
use crate::backend::{
    ArgOp, AttentionShape, Backend, BinaryOp, ConvGeom, CrossEntropyRows, MaskKind, Recurrence,
    ReduceOp, RowOp, Saved, UnaryOp, UpdateRule, View,
};
use crate::layout::{broadcast_strides, Layout};
use crate::storage::{HostBuffer, Storage};
use crate::Device;

/// The fast CPU kernels: threads from the nabla pool, AVX2/FMA where the
/// CPU has them.
pub struct CpuBackend;

fn new(data: Vec<f32>) -> Storage {
    Storage::Cpu(HostBuffer::new(data))
}

/// The elements of a contiguous view, or a contiguous copy of them.
pub(super) fn rows<'a>((s, l): View<'a>) -> std::borrow::Cow<'a, [f32]> {
    if l.is_contiguous() {
        std::borrow::Cow::Borrowed(&s.host()[l.offset()..l.offset() + l.numel()])
    } else {
        std::borrow::Cow::Owned(copy::contiguous(s.host(), l))
    }
}

/// Storage offset of the `flat`-th element (row-major order) of `layout`.
fn offset_of(layout: &Layout, mut flat: usize) -> usize {
    let mut off = layout.offset();
    for k in (0..layout.rank()).rev() {
        off += (flat % layout.shape()[k]) * layout.strides()[k];
        flat /= layout.shape()[k];
    }
    off
}

/// The batch part (all but the last two dims) of `l`, broadcast to `batch`.
fn batch_layout(l: &Layout, batch: &[usize]) -> Layout {
    let r = l.rank() - 2;
    let own = Layout::new(
        l.shape()[..r].to_vec(),
        l.strides()[..r].to_vec(),
        l.offset(),
    );
    Layout::new(batch.to_vec(), broadcast_strides(&own, batch), l.offset())
}

/// The last two dims of `l` as a matrix starting at `offset`.
fn mat<'a>(data: &'a [f32], l: &Layout, offset: usize) -> MatRef<'a> {
    let r = l.rank();
    MatRef {
        data,
        offset,
        rows: l.shape()[r - 2],
        cols: l.shape()[r - 1],
        rs: l.strides()[r - 2],
        cs: l.strides()[r - 1],
    }
}

fn softmax_row(r: &mut [f32]) {
    let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0f64;
    for v in r.iter_mut() {
        *v = (*v - m).exp();
        s += *v as f64;
    }
    // the sum and the quotients in f64, each output rounded once: the
    // outputs then sum to 1 within an ulp or two, and the gradient of a
    // sum of them cancels as it should (an f32 running sum of 12 terms
    // left 1 − Σy at 2.4e-7)
    r.iter_mut().for_each(|v| *v = (*v as f64 / s) as f32);
}

fn log_softmax_row(r: &mut [f32]) {
    let (m, ln_s) = super::math::max_and_ln_sum_exp(r);
    // (x − m) − ln s, not x − (m + ln s): for large logits m + ln s rounds
    // to m's spacing and every output loses those bits
    r.iter_mut().for_each(|v| *v = (*v - m) - ln_s);
}

/// `Σ (x − x̄)² / (n − correction)` of one row, accumulated in f64, or
/// its square root (taken in f64 too: a standard deviation of 1e20 is a
/// fine f32 even though its variance is not), and the row's mean as two
/// f32s, hi + lo: `(x − hi) − lo` centers to within rounding, so the
/// deviations sum to 0 as they should.
fn row_spread(row: &[f32], correction: usize, sqrt: bool) -> ([f32; 2], f32) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let m2: f64 = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    let var = m2 / (n - correction as f64);
    let hi = mean as f32;
    // (an infinite mean has no low part: ∞ − ∞ would make every
    // deviation NaN, where PyTorch's x − x̄ gives ±∞ for the finite x)
    let lo = if mean.is_finite() {
        (mean - hi as f64) as f32
    } else {
        0.0
    };
    ([hi, lo], (if sqrt { var.sqrt() } else { var }) as f32)
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn upload(&self, data: Vec<f32>) -> Storage {
        new(data)
    }

    fn full(&self, n: usize, value: f32) -> Storage {
        new(vec![value; n])
    }

    fn to_vec(&self, (s, l): View) -> Vec<f32> {
        copy::contiguous(s.host(), l)
    }

    fn contiguous(&self, x: View) -> Storage {
        new(self.to_vec(x))
    }

    fn write_view(&self, dst: &mut Storage, view: &Layout, src: View) {
        let src = rows(src);
        let dst = dst.host_mut();
        let mut i = 0;
        view.for_each_offset(|o| {
            dst[o] = src[i];
            i += 1;
        });
    }

    fn unary(&self, op: UnaryOp, (s, l): View) -> Storage {
        new(named::unary(op, s.host(), l))
    }

    fn unary_grad(&self, op: UnaryOp, g: View, x: View, y: View) -> Storage {
        let n = g.1.numel();
        fn part<'a>((s, l): View<'a>, n: usize) -> &'a [f32] {
            &s.host()[l.offset()..l.offset() + n]
        }
        new(named::unary_grad(op, part(g, n), part(x, n), part(y, n)))
    }

    fn binary(&self, op: BinaryOp, (a, la): View, (b, lb): View, shape: &[usize]) -> Storage {
        new(named::binary(op, a.host(), la, b.host(), lb, shape))
    }

    fn select(&self, c: View, a: View, b: View, shape: &[usize]) -> Storage {
        let spread = |(s, l): View| {
            let view = Layout::new(shape.to_vec(), broadcast_strides(l, shape), l.offset());
            copy::contiguous(s.host(), &view)
        };
        let (c, a, b) = (spread(c), spread(a), spread(b));
        let out = c
            .iter()
            .zip(a.iter().zip(&b))
            .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
            .collect();
        new(out)
    }

    fn reduce(&self, op: ReduceOp, (s, l): View, dims: &[usize]) -> Storage {
        let shape = l.shape();
        let kept: Vec<usize> = (0..shape.len()).filter(|d| !dims.contains(d)).collect();
        let rows_n: usize = kept.iter().map(|&d| shape[d]).product();
        let len: usize = dims.iter().map(|&d| shape[d]).product();
        let leading = dims.iter().enumerate().all(|(i, &d)| i == d);
        let data = s.host();
        if op == ReduceOp::Sum && leading && rows_n > 1 && l.is_contiguous() {
            // over leading dims (a bias's gradient: the sum over the batch):
            // add whole rows instead of transposing first (a full sum, one
            // output, keeps the blocked parallel path)
            let o = l.offset();
            return new(sum_columns(&data[o..o + rows_n * len], len, rows_n));
        }
        // the reduced dims last: each output reduces one row
        let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
        let permuted = Layout::new(
            perm.iter().map(|&p| shape[p]).collect(),
            perm.iter().map(|&p| l.strides()[p]).collect(),
            l.offset(),
        );
        new(reduce_rows(&rows((s, &permuted)), rows_n, len, op))
    }

    fn arg_reduce(&self, op: ArgOp, x: View) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1);
        let better = match op {
            ArgOp::Max => |v: f32, b: f32| v > b || (v.is_nan() && !b.is_nan()),
            ArgOp::Min => |v: f32, b: f32| v < b || (v.is_nan() && !b.is_nan()),
        };
        let idx = rows(x)
            .chunks(len)
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if better(v, row[best]) {
                        best = i;
                    }
                }
                best as f32
            })
            .collect();
        new(idx)
    }

    fn topk_indices(&self, x: View, k: usize, largest: bool) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1).max(1);
        let values = rows(x);
        let mut out = Vec::with_capacity(values.len() / len * k);
        let mut order: Vec<usize> = Vec::with_capacity(len);
        for row in values.chunks(len) {
            order.clear();
            order.extend(0..len);
            // NaN above everything (total_cmp orders it so for positive NaN;
            // any NaN is lifted there), ties in index order (a stable sort)
            let key = |i: &usize| {
                let v = row[*i];
                if v.is_nan() {
                    f32::INFINITY
                } else {
                    v
                }
            };
            let nan_first = |a: &usize, b: &usize| row[*b].is_nan().cmp(&row[*a].is_nan());
            match largest {
                true => order.sort_by(|a, b| nan_first(a, b).then(key(b).total_cmp(&key(a)))),
                false => {
                    order.sort_by(|a, b| nan_first(a, b).reverse().then(key(a).total_cmp(&key(b))))
                }
            }
            out.extend(order[..k].iter().map(|&i| i as f32));
        }
        new(out)
    }

    fn row_op(&self, op: RowOp, x: View) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1);
        let f = match op {
            RowOp::Softmax => softmax_row,
            RowOp::LogSoftmax => log_softmax_row,
        };
        let mut data = self.to_vec(x);
        super::for_each_chunk(&mut data, super::rows_per_chunk(len), |_, c| {
            c.chunks_mut(len.max(1)).for_each(f)
        });
        new(data)
    }

    fn row_spread(
        &self,
        x: View,
        len: usize,
        correction: usize,
        sqrt: bool,
    ) -> (Storage, Storage, Storage) {
        let (means, out): (Vec<[f32; 2]>, Vec<f32>) = rows(x)
            .chunks(len)
            .map(|r| row_spread(r, correction, sqrt))
            .unzip();
        let (hi, lo) = means.iter().map(|m| (m[0], m[1])).unzip();
        (new(out), new(hi), new(lo))
    }

    fn matmul(&self, (da, la): View, (db, lb): View, batch: &[usize]) -> Storage {
        let (ra, rb) = (la.rank(), lb.rank());
        let (m, k, n) = (la.shape()[ra - 2], la.shape()[ra - 1], lb.shape()[rb - 1]);
        let (da, db) = (da.host(), db.host());
        let count: usize = batch.iter().product();
        let len = count * m * n;
        let mut out = Vec::with_capacity(len);
        let base = out.as_mut_ptr() as usize;
        let (ba, bb) = (batch_layout(la, batch), batch_layout(lb, batch));
        // read here, on the calling thread: the scope is per thread
        let precision = product_precision();
        let one = |i: usize, threads: usize| {
            let lhs = mat(da, la, offset_of(&ba, i));
            let rhs = mat(db, lb, offset_of(&bb, i));
            // SAFETY: product i fills elements i·m·n .. (i+1)·m·n of out's
            // capacity, disjoint from the others' and written without being
            // read (no accumulate).
            unsafe {
                let dst = (base as *mut f32).add(i * m * n);
                gemm_to_at(precision, dst, false, lhs, rhs, threads)
            }
        };
        let threads = crate::threads::num_threads();
        if count > 1 && m * n * k < (1 << 21) && m * n > 0 {
            // Many small products: one per thread beats threading each.
            crate::threads::in_pool(|| (0..count).into_par_iter().for_each(|i| one(i, 1)));
        } else if m * n > 0 {
            (0..count).for_each(|i| one(i, threads));
        }
        // SAFETY: the products above wrote all count·m·n elements (none when
        // m·n = 0).
        unsafe { out.set_len(len) };
        new(out)
    }

    fn linear(&self, (xd, xl): View, (wd, wl): View, bias: Option<View>) -> Storage {
        let (m, out_f) = (xl.shape()[0], wl.shape()[0]);
        let mut out = Vec::with_capacity(m * out_f);
        let x = mat(xd.host(), xl, xl.offset());
        // x·Wᵀ as a product against W's transposed view (gemm computes it
        // as (W·xᵀ)ᵀ where that is faster, see matmul.rs)
        let w_t = mat(wd.host(), wl, wl.offset()).t();
        let threads = crate::threads::num_threads();
        // SAFETY: out's capacity holds the m×out product, which gemm_to
        // writes whole (no accumulate) without reading it.
        unsafe {
            gemm_to_at(
                product_precision(),
                out.as_mut_ptr(),
                false,
                x,
                w_t,
                threads,
            )
        };
        // SAFETY: written above (nothing to write when m·out = 0)
        unsafe { out.set_len(m * out_f) };
        if let Some(b) = bias {
            let bv = rows(b);
            for row in out.chunks_mut(out_f.max(1)) {
                row.iter_mut().zip(bv.iter()).for_each(|(y, b)| *y += b);
            }
        }
        new(out)
    }

    fn conv2d(
        &self,
        x: &Storage,
        w: &Storage,
        bias: Option<&Storage>,
        g: &ConvGeom,
        o: usize,
        groups: usize,
        keep: bool,
    ) -> (Storage, Option<Saved>) {
        let b = bias.map(|b| &b.host()[..o]);
        let (y, cols) = conv::conv_forward(x.host(), w.host(), b, g, o, groups, keep);
        (new(y), cols.map(|c| Box::new(c) as Saved))
    }

    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> Storage {
        new(conv::conv_backward_input(dy.host(), w.host(), g, o, groups))
    }

    fn conv2d_backward_params(
        &self,
        dy: &Storage,
        saved: Option<&Saved>,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> (Option<Storage>, Storage) {
        let cols = saved.map(|s| {
            s.downcast_ref::<Vec<f32>>()
                .expect("conv2d: saved by the CPU backend")
                .as_slice()
        });
        let (dw, db) = conv::conv_backward_params(dy.host(), cols, g, o, groups);
        (dw.map(new), new(db))
    }

    fn max_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        keep: bool,
    ) -> (Storage, Option<Saved>) {
        let (y, arg) = pool::max_pool_forward(x.host(), planes, g, keep);
        (new(y), arg.map(|a| Box::new(a) as Saved))
    }

    fn max_pool2d_backward(
        &self,
        dy: &Storage,
        saved: &Saved,
        planes: usize,
        g: &ConvGeom,
    ) -> Storage {
        let arg = saved
            .downcast_ref::<Vec<u32>>()
            .expect("max_pool2d: saved by the CPU backend");
        new(pool::max_pool_backward(dy.host(), arg, planes, g))
    }

    fn avg_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage {
        new(pool::avg_pool_forward(
            x.host(),
            planes,
            g,
            count_include_pad,
        ))
    }

    fn avg_pool2d_backward(
        &self,
        dy: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage {
        new(pool::avg_pool_backward(
            dy.host(),
            planes,
            g,
            count_include_pad,
        ))
    }

    fn index_select(
        &self,
        x: &Storage,
        outer: usize,
        size: usize,
        inner: usize,
        ids: &[usize],
    ) -> Storage {
        // the selected rows read straight from storage
        let x = x.host();
        let mut out = Vec::with_capacity(outer * ids.len() * inner);
        for o in 0..outer {
            for &i in ids {
                let s = (o * size + i) * inner;
                out.extend_from_slice(&x[s..s + inner]);
            }
        }
        new(out)
    }

    fn index_add(
        &self,
        g: &Storage,
        outer: usize,
        size: usize,
        inner: usize,
        ids: &[usize],
    ) -> Storage {
        let gv = g.host();
        let mut dx = vec![0f32; outer * size * inner];
        for o in 0..outer {
            for (k, &i) in ids.iter().enumerate() {
                let (d, s) = ((o * size + i) * inner, (o * ids.len() + k) * inner);
                dx[d..d + inner]
                    .iter_mut()
                    .zip(&gv[s..s + inner])
                    .for_each(|(a, b)| *a += b);
            }
        }
        new(dx)
    }

    fn gather(&self, x: &Storage, at: &[usize]) -> Storage {
        let x = x.host();
        new(at.iter().map(|&o| x[o]).collect())
    }

    fn scatter_add(&self, g: &Storage, at: &[usize], n: usize) -> Storage {
        let mut dx = vec![0f32; n];
        for (&o, &gv) in at.iter().zip(g.host()) {
            dx[o] += gv;
        }
        new(dx)
    }

    fn cross_entropy(
        &self,
        logits: &Storage,
        rows: &CrossEntropyRows,
        total: bool,
    ) -> Option<(Storage, Storage)> {
        let (losses, probs) = loss::cross_entropy(logits.host(), rows, total);
        Some((new(losses), new(probs)))
    }

    fn cross_entropy_backward(
        &self,
        probs: &Storage,
        rows: &CrossEntropyRows,
        scale: &Storage,
    ) -> Option<Storage> {
        Some(new(loss::cross_entropy_backward(
            probs.host(),
            rows,
            scale.host(),
        )))
    }

    fn layer_norm(
        &self,
        x: View,
        d: usize,
        (w, b): (Option<View>, Option<View>),
        eps: f32,
    ) -> Option<(Storage, Saved)> {
        let (w, b) = (w.map(rows), b.map(rows));
        let (y, kept) = norm::forward(&rows(x), d, w.as_deref(), b.as_deref(), eps);
        Some((new(y), Box::new(kept)))
    }

    fn layer_norm_backward(
        &self,
        x: View,
        d: usize,
        w: Option<View>,
        saved: &Saved,
        dy: View,
    ) -> Option<[Storage; 3]> {
        let kept = saved.downcast_ref().expect("layer norm's kept values");
        let w = w.map(rows);
        let (dx, dw, db) = norm::backward(&rows(x), d, w.as_deref(), kept, &rows(dy));
        Some([new(dx), new(dw), new(db)])
    }

    fn attention(
        &self,
        a: &AttentionShape,
        qkv: [View; 3],
        mask: Option<(View, MaskKind)>,
    ) -> Option<(Storage, Saved)> {
        let [q, k, v] = qkv.map(attention::Operand::new);
        let mask = mask.map(|(m, kind)| attention::Mask::new(m, kind));
        let (out, kept) = attention::forward(a, (&q, &k, &v), mask.as_ref());
        Some((new(out), Box::new(kept)))
    }

    fn attention_backward(
        &self,
        a: &AttentionShape,
        saved: &Saved,
        qkv: [View; 3],
        mask: Option<(View, MaskKind)>,
        dout: View,
    ) -> Option<[Storage; 3]> {
        let kept = saved.downcast_ref().expect("attention's kept values");
        let [q, k, v] = qkv.map(attention::Operand::new);
        let mask = mask.map(|(m, kind)| attention::Mask::new(m, kind));
        let dout = attention::Operand::new(dout);
        let grads = attention::backward(a, (&q, &k, &v), mask.as_ref(), kept, &dout);
        Some(grads.map(new))
    }

    fn recurrent(
        &self,
        r: &Recurrence,
        x: View,
        weights: [View; 4],
        states: &[View],
        keep: bool,
    ) -> Option<(Storage, Saved)> {
        let w = weights.map(rows);
        let states = states.iter().map(|&s| rows(s).into_owned()).collect();
        let (out, saved) = recurrent::forward(r, x, [&w[0], &w[1], &w[2], &w[3]], states, keep);
        Some((new(out), saved))
    }

    fn recurrent_backward(
        &self,
        saved: &Saved,
        dy: View,
        x: View,
        w_ih: View,
        w_hh: View,
        want: &[bool],
    ) -> Option<Vec<Option<Storage>>> {
        let (dy, w_ih, w_hh) = (rows(dy), rows(w_ih), rows(w_hh));
        let grads = recurrent::backward(saved, &dy, (x, &w_ih, &w_hh), want);
        Some(grads.into_iter().map(|g| g.map(new)).collect())
    }

    fn lstm_cell(&self, z: View, c: View, h: usize) -> Option<(Storage, Saved)> {
        let (out, saved) = recurrent::lstm_cell(&rows(z), &rows(c), h);
        Some((new(out), saved))
    }

    fn lstm_cell_backward(&self, saved: &Saved, dy: View) -> Option<(Storage, Storage)> {
        let (dz, dc) = recurrent::lstm_cell_backward(saved, &rows(dy));
        Some((new(dz), new(dc)))
    }

    fn gru_cell(&self, a: View, b: View, h: View, hidden: usize) -> Option<(Storage, Saved)> {
        let (out, saved) = recurrent::gru_cell(&rows(a), &rows(b), &rows(h), hidden);
        Some((new(out), saved))
    }

    fn gru_cell_backward(&self, saved: &Saved, dy: View) -> Option<[Storage; 3]> {
        Some(recurrent::gru_cell_backward(saved, &rows(dy)).map(new))
    }

    fn update(
        &self,
        rule: &UpdateRule,
        param: &mut Storage,
        at: std::ops::Range<usize>,
        grad: View,
        state: &mut [&mut Storage],
        maximize: bool,
    ) {
        let g = rows(grad);
        let state = state.iter_mut().map(|s| s.host_mut()).collect();
        optim::update(rule, &mut param.host_mut()[at], &g, state, maximize);
    }
}
