//! [`ReferenceBackend`]: every primitive as the plainest loop that computes
//! it — one thread, no vector tricks, values widened to f64 and rounded
//! once at the end. It is slow on purpose and easy to check by eye, and it
//! is the oracle: the test suite runs ops and models on `Device::Reference`
//! and on `Device::Cpu` and compares.

use crate::backend::{
    ArgOp, Backend, BinaryOp, ConvGeom, CrossEntropyRows, ReduceOp, RowOp, Saved, UnaryOp,
    UpdateRule, View,
};
use crate::layout::{broadcast_strides, contiguous_strides, Layout};
use crate::storage::{HostBuffer, Storage};
use crate::Device;

mod scalar;
mod windows;

use scalar::{binary, derivative, step, unary};
use windows::{input_at, pool_divisor, window};

/// Plain loops in f64, one thread.
pub struct ReferenceBackend;

fn new(data: Vec<f32>) -> Storage {
    Storage::Reference(HostBuffer::new(data))
}

/// The elements of a view in row-major order.
fn values((s, l): View) -> Vec<f32> {
    let data = s.host();
    let mut out = Vec::with_capacity(l.numel());
    l.for_each_offset(|o| out.push(data[o]));
    out
}

/// A product's operand at this thread's [`autocast`](crate::autocast)
/// precision: rounded to bfloat16 as the CPU kernels round it.
fn as_product_operand(v: Vec<f32>) -> Vec<f32> {
    match crate::autocast::product_precision() {
        crate::autocast::Precision::F32 => v,
        crate::autocast::Precision::Bf16 => v
            .into_iter()
            .map(crate::backend::cpu::bf16_gemm::round_to_bf16)
            .collect(),
    }
}

/// The elements of a view broadcast to `shape`, in row-major order.
fn broadcast_values((s, l): View, shape: &[usize]) -> Vec<f32> {
    let view = Layout::new(shape.to_vec(), broadcast_strides(l, shape), l.offset());
    values((s, &view))
}

/// The row-major index of each element of `shape` as coordinates.
fn coords(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        c[k] = flat % shape[k];
        flat /= shape[k];
    }
    c
}

fn at(strides: &[usize], c: &[usize]) -> usize {
    c.iter().zip(strides).map(|(i, s)| i * s).sum()
}

impl Backend for ReferenceBackend {
    fn device(&self) -> Device {
        Device::Reference
    }

    fn upload(&self, data: Vec<f32>) -> Storage {
        new(data)
    }

    fn full(&self, n: usize, value: f32) -> Storage {
        new(vec![value; n])
    }

    fn to_vec(&self, x: View) -> Vec<f32> {
        values(x)
    }

    fn contiguous(&self, x: View) -> Storage {
        new(values(x))
    }

    fn write_view(&self, dst: &mut Storage, view: &Layout, src: View) {
        let src = values(src);
        let dst = dst.host_mut();
        let mut i = 0;
        view.for_each_offset(|o| {
            dst[o] = src[i];
            i += 1;
        });
    }

    fn unary(&self, op: UnaryOp, x: View) -> Storage {
        new(values(x)
            .iter()
            .map(|&v| unary(op, v as f64) as f32)
            .collect())
    }

    fn unary_grad(&self, op: UnaryOp, g: View, x: View, y: View) -> Storage {
        let (g, x, y) = (values(g), values(x), values(y));
        let dx = (0..g.len()).map(|i| match derivative(op, x[i] as f64, y[i] as f64) {
            Some(d) => (g[i] as f64 * d) as f32,
            None => 0.0,
        });
        new(dx.collect())
    }

    fn binary(&self, op: BinaryOp, a: View, b: View, shape: &[usize]) -> Storage {
        let (a, b) = (broadcast_values(a, shape), broadcast_values(b, shape));
        new(a
            .iter()
            .zip(&b)
            .map(|(&a, &b)| binary(op, a as f64, b as f64) as f32)
            .collect())
    }

    fn select(&self, c: View, a: View, b: View, shape: &[usize]) -> Storage {
        let (c, a, b) = (
            broadcast_values(c, shape),
            broadcast_values(a, shape),
            broadcast_values(b, shape),
        );
        new((0..c.len())
            .map(|i| if c[i] != 0.0 { a[i] } else { b[i] })
            .collect())
    }

    fn reduce(&self, op: ReduceOp, x: View, dims: &[usize]) -> Storage {
        let shape = x.1.shape();
        let out_shape: Vec<usize> = (0..shape.len())
            .map(|d| if dims.contains(&d) { 1 } else { shape[d] })
            .collect();
        let out_strides = contiguous_strides(&out_shape);
        let n_out: usize = out_shape.iter().product();
        let start = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        };
        let mut acc = vec![start; n_out];
        for (i, &v) in values(x).iter().enumerate() {
            let mut c = coords(shape, i);
            dims.iter().for_each(|&d| c[d] = 0);
            let (a, v) = (&mut acc[at(&out_strides, &c)], v as f64);
            *a = match op {
                ReduceOp::Sum => *a + v,
                _ if a.is_nan() || v.is_nan() => f64::NAN,
                ReduceOp::Max => a.max(v),
                ReduceOp::Min => a.min(v),
            };
        }
        new(acc.iter().map(|&a| a as f32).collect())
    }

    fn arg_reduce(&self, op: ArgOp, x: View) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1);
        let beats = |v: f32, b: f32| match op {
            _ if b.is_nan() => false,
            _ if v.is_nan() => true,
            ArgOp::Max => v > b,
            ArgOp::Min => v < b,
        };
        let values = values(x);
        let idx = values.chunks(len).map(|row| {
            let mut best = 0;
            for i in 1..row.len() {
                if beats(row[i], row[best]) {
                    best = i;
                }
            }
            best as f32
        });
        new(idx.collect())
    }

    fn topk_indices(&self, x: View, k: usize, largest: bool) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1).max(1);
        let values = values(x);
        let mut out = vec![];
        for row in values.chunks(len) {
            // k passes of selection: each takes the first extreme not yet taken
            let mut taken = vec![false; len];
            // NaN above every number
            let above = |a: f32, b: f32| (a.is_nan() && !b.is_nan()) || a > b;
            for _ in 0..k {
                let mut best: Option<usize> = None;
                for i in (0..len).filter(|&i| !taken[i]) {
                    let better = match best {
                        None => true,
                        Some(b) if largest => above(row[i], row[b]),
                        Some(b) => above(row[b], row[i]),
                    };
                    if better {
                        best = Some(i);
                    }
                }
                let b = best.expect("k ≤ the row's length");
                taken[b] = true;
                out.push(b as f32);
            }
        }
        new(out)
    }

    fn row_op(&self, op: RowOp, x: View) -> Storage {
        let len = x.1.shape().last().copied().unwrap_or(1).max(1);
        let mut out = Vec::with_capacity(x.1.numel());
        for row in values(x).chunks(len) {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            out.extend(row.iter().map(|&v| match op {
                RowOp::Softmax => ((v as f64 - m).exp() / s) as f32,
                RowOp::LogSoftmax => (v as f64 - m - s.ln()) as f32,
            }));
        }
        new(out)
    }

    fn row_spread(
        &self,
        x: View,
        len: usize,
        correction: usize,
        sqrt: bool,
    ) -> (Storage, Storage, Storage) {
        let (mut out, mut hi, mut lo) = (vec![], vec![], vec![]);
        for row in values(x).chunks(len) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>()
                / (len - correction) as f64;
            out.push(if sqrt { var.sqrt() } else { var } as f32);
            hi.push(mean as f32);
            lo.push(if mean.is_finite() {
                (mean - mean as f32 as f64) as f32
            } else {
                0.0
            });
        }
        (new(out), new(hi), new(lo))
    }

    fn matmul(&self, a: View, b: View, batch: &[usize]) -> Storage {
        let (ra, rb) = (a.1.rank(), b.1.rank());
        let (m, k, n) = (
            a.1.shape()[ra - 2],
            a.1.shape()[ra - 1],
            b.1.shape()[rb - 1],
        );
        let full = |v: View, rows: usize, cols: usize| {
            let mut shape = batch.to_vec();
            shape.extend([rows, cols]);
            broadcast_values(v, &shape)
        };
        let (av, bv) = (
            as_product_operand(full(a, m, k)),
            as_product_operand(full(b, k, n)),
        );
        let count: usize = batch.iter().product();
        let mut out = Vec::with_capacity(count * m * n);
        for p in 0..count {
            let (a, b) = (&av[p * m * k..], &bv[p * k * n..]);
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|t| a[i * k + t] as f64 * b[t * n + j] as f64)
                        .sum();
                    out.push(s as f32);
                }
            }
        }
        new(out)
    }

    fn linear(&self, x: View, w: View, bias: Option<View>) -> Storage {
        let ((m, k), o) = ((x.1.shape()[0], x.1.shape()[1]), w.1.shape()[0]);
        let (xv, wv) = (as_product_operand(values(x)), as_product_operand(values(w)));
        let b = bias.map(values).unwrap_or_else(|| vec![0.0; o]);
        let mut out = Vec::with_capacity(m * o);
        for i in 0..m {
            for j in 0..o {
                let s: f64 = (0..k)
                    .map(|t| xv[i * k + t] as f64 * wv[j * k + t] as f64)
                    .sum();
                out.push((s + b[j] as f64) as f32);
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
        // at bf16 the operands rounded (the bias is added in f32)
        let x = as_product_operand(x.host()[..g.n * g.c * g.h * g.w].to_vec());
        let w = as_product_operand(w.host().to_vec());
        let (cg, og) = (g.c / groups, o / groups);
        let mut y = Vec::with_capacity(g.n * o * g.oh * g.ow);
        for n in 0..g.n {
            for oc in 0..o {
                let first = oc / og * cg;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = bias.map_or(0.0, |b| b.host()[oc] as f64);
                        for ci in 0..cg {
                            for ky in 0..g.kh {
                                let Some(iy) = input_at(oy, ky, g.sh, g.ph, g.dh, g.h) else {
                                    continue;
                                };
                                for kx in 0..g.kw {
                                    let Some(ix) = input_at(ox, kx, g.sw, g.pw, g.dw, g.w) else {
                                        continue;
                                    };
                                    let xv = x[((n * g.c + first + ci) * g.h + iy) * g.w + ix];
                                    let wv = w[((oc * cg + ci) * g.kh + ky) * g.kw + kx];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y.push(s as f32);
                    }
                }
            }
        }
        (new(y), keep.then(|| Box::new(x) as Saved))
    }

    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> Storage {
        let dy = as_product_operand(dy.host().to_vec());
        let w = as_product_operand(w.host().to_vec());
        let (cg, og) = (g.c / groups, o / groups);
        let mut dx = vec![0f64; g.n * g.c * g.h * g.w];
        for n in 0..g.n {
            for oc in 0..o {
                let first = oc / og * cg;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let d = dy[((n * o + oc) * g.oh + oy) * g.ow + ox] as f64;
                        for ci in 0..cg {
                            for ky in 0..g.kh {
                                let Some(iy) = input_at(oy, ky, g.sh, g.ph, g.dh, g.h) else {
                                    continue;
                                };
                                for kx in 0..g.kw {
                                    let Some(ix) = input_at(ox, kx, g.sw, g.pw, g.dw, g.w) else {
                                        continue;
                                    };
                                    let wv = w[((oc * cg + ci) * g.kh + ky) * g.kw + kx] as f64;
                                    dx[((n * g.c + first + ci) * g.h + iy) * g.w + ix] += d * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        new(dx.iter().map(|&v| v as f32).collect())
    }

    fn conv2d_backward_params(
        &self,
        dy: &Storage,
        saved: Option<&Saved>,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> (Option<Storage>, Storage) {
        // the bias gradient sums dy as it is; the weight gradient's
        // product takes it rounded at bf16 (x was saved rounded)
        let dy = dy.host();
        let dy_operand = as_product_operand(dy.to_vec());
        let x = saved.map(|s| {
            s.downcast_ref::<Vec<f32>>()
                .expect("conv2d: saved by the reference backend")
        });
        let (cg, og) = (g.c / groups, o / groups);
        let mut dw = vec![0f64; o * cg * g.kh * g.kw];
        let mut db = vec![0f64; o];
        for n in 0..g.n {
            for oc in 0..o {
                let first = oc / og * cg;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let at = ((n * o + oc) * g.oh + oy) * g.ow + ox;
                        db[oc] += dy[at] as f64;
                        let d = dy_operand[at] as f64;
                        let Some(x) = x else { continue };
                        for ci in 0..cg {
                            for ky in 0..g.kh {
                                let Some(iy) = input_at(oy, ky, g.sh, g.ph, g.dh, g.h) else {
                                    continue;
                                };
                                for kx in 0..g.kw {
                                    let Some(ix) = input_at(ox, kx, g.sw, g.pw, g.dw, g.w) else {
                                        continue;
                                    };
                                    let xv =
                                        x[((n * g.c + first + ci) * g.h + iy) * g.w + ix] as f64;
                                    dw[((oc * cg + ci) * g.kh + ky) * g.kw + kx] += d * xv;
                                }
                            }
                        }
                    }
                }
            }
        }
        let round = |v: Vec<f64>| new(v.iter().map(|&v| v as f32).collect());
        (x.map(|_| round(dw)), round(db))
    }

    fn max_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        keep: bool,
    ) -> (Storage, Option<Saved>) {
        let x = x.host();
        let (mut y, mut arg) = (vec![], vec![]);
        for p in 0..planes {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    // the first maximum in row-major order; a NaN wins
                    let mut best: Option<(f32, usize)> = None;
                    for ky in 0..g.kh {
                        let Some(iy) = input_at(oy, ky, g.sh, g.ph, g.dh, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = input_at(ox, kx, g.sw, g.pw, g.dw, g.w) else {
                                continue;
                            };
                            let i = iy * g.w + ix;
                            let v = x[p * g.h * g.w + i];
                            let wins = match best {
                                None => true,
                                Some((b, _)) => !b.is_nan() && (v.is_nan() || v > b),
                            };
                            if wins {
                                best = Some((v, i));
                            }
                        }
                    }
                    let (v, i) = best.expect("max_pool2d: every window holds an element");
                    y.push(v);
                    arg.push(i);
                }
            }
        }
        (new(y), keep.then(|| Box::new(arg) as Saved))
    }

    fn max_pool2d_backward(
        &self,
        dy: &Storage,
        saved: &Saved,
        planes: usize,
        g: &ConvGeom,
    ) -> Storage {
        let arg = saved
            .downcast_ref::<Vec<usize>>()
            .expect("max_pool2d: saved by the reference backend");
        let (hw, p) = (g.h * g.w, g.oh * g.ow);
        let mut dx = vec![0f64; planes * hw];
        for (k, &d) in dy.host()[..planes * p].iter().enumerate() {
            dx[k / p * hw + arg[k]] += d as f64;
        }
        new(dx.iter().map(|&v| v as f32).collect())
    }

    fn avg_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage {
        let x = x.host();
        let mut y = vec![];
        for p in 0..planes {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut s = 0f64;
                    for (iy, ix) in window(g, oy, ox) {
                        s += x[(p * g.h + iy) * g.w + ix] as f64;
                    }
                    y.push((s / pool_divisor(g, oy, ox, count_include_pad)) as f32);
                }
            }
        }
        new(y)
    }

    fn avg_pool2d_backward(
        &self,
        dy: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage {
        let dy = dy.host();
        let mut dx = vec![0f64; planes * g.h * g.w];
        for p in 0..planes {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let d = dy[(p * g.oh + oy) * g.ow + ox] as f64
                        / pool_divisor(g, oy, ox, count_include_pad);
                    for (iy, ix) in window(g, oy, ox) {
                        dx[(p * g.h + iy) * g.w + ix] += d;
                    }
                }
            }
        }
        new(dx.iter().map(|&v| v as f32).collect())
    }

    fn index_select(
        &self,
        x: &Storage,
        outer: usize,
        size: usize,
        inner: usize,
        ids: &[usize],
    ) -> Storage {
        let x = x.host();
        let mut out = vec![];
        for o in 0..outer {
            for &i in ids {
                for j in 0..inner {
                    out.push(x[(o * size + i) * inner + j]);
                }
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
        let g = g.host();
        let mut dx = vec![0f64; outer * size * inner];
        for o in 0..outer {
            for (k, &i) in ids.iter().enumerate() {
                for j in 0..inner {
                    dx[(o * size + i) * inner + j] += g[(o * ids.len() + k) * inner + j] as f64;
                }
            }
        }
        new(dx.iter().map(|&v| v as f32).collect())
    }

    fn gather(&self, x: &Storage, at: &[usize]) -> Storage {
        new(at.iter().map(|&o| x.host()[o]).collect())
    }

    fn scatter_add(&self, g: &Storage, at: &[usize], n: usize) -> Storage {
        let mut dx = vec![0f64; n];
        for (&o, &v) in at.iter().zip(g.host()) {
            dx[o] += v as f64;
        }
        new(dx.iter().map(|&v| v as f32).collect())
    }

    fn cross_entropy(
        &self,
        logits: &Storage,
        rows: &CrossEntropyRows,
        total: bool,
    ) -> Option<(Storage, Storage)> {
        let (n, c) = (rows.ids.len(), rows.weight.len());
        let (x, w, eps) = (logits.host(), rows.weight, rows.smoothing as f64);
        let (mut losses, mut probs) = (vec![0f64; n], vec![0f32; n * c]);
        for (i, &id) in rows.ids.iter().enumerate() {
            let Some(y) = id else { continue };
            let row: Vec<f64> = x[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let ln_s = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            let log_p = |k: usize| row[k] - m - ln_s;
            for k in 0..c {
                probs[i * c + k] = log_p(k).exp() as f32;
            }
            let nll = -log_p(y) * w[y] as f64;
            let smooth: f64 = (0..c).map(|k| -(w[k] as f64) * log_p(k)).sum();
            losses[i] = if eps > 0.0 {
                (1.0 - eps) * nll + eps / c as f64 * smooth
            } else {
                nll
            };
        }
        let losses = if total {
            vec![losses.iter().sum()]
        } else {
            losses
        };
        Some((new(losses.iter().map(|&v| v as f32).collect()), new(probs)))
    }

    fn cross_entropy_backward(
        &self,
        probs: &Storage,
        rows: &CrossEntropyRows,
        scale: &Storage,
    ) -> Option<Storage> {
        let (n, c) = (rows.ids.len(), rows.weight.len());
        let (p, w, eps) = (probs.host(), rows.weight, rows.smoothing as f64);
        let w_total: f64 = w.iter().map(|&v| v as f64).sum();
        let mut dx = vec![0f32; n * c];
        for (i, &id) in rows.ids.iter().enumerate() {
            let Some(y) = id else { continue };
            for k in 0..c {
                let pk = p[i * c + k] as f64;
                let hard = (1.0 - eps) * w[y] as f64 * (pk - (k == y) as u8 as f64);
                let soft = eps / c as f64 * (w_total * pk - w[k] as f64);
                dx[i * c + k] = (scale.host()[i] as f64 * (hard + soft)) as f32;
            }
        }
        Some(new(dx))
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
        let g = values(grad);
        let w = &mut param.host_mut()[at];
        let mut s: Vec<&mut [f32]> = state.iter_mut().map(|s| s.host_mut()).collect();
        for k in 0..w.len() {
            let g = if maximize { -g[k] as f64 } else { g[k] as f64 };
            let mut x = w[k] as f64;
            // each buffer's value, updated in f64 and stored back in f32
            let mut b: Vec<f64> = s.iter().map(|s| s[k] as f64).collect();
            step(rule, &mut x, g, &mut b);
            w[k] = x as f32;
            for (s, b) in s.iter_mut().zip(b) {
                s[k] = b as f32;
            }
        }
    }
}
