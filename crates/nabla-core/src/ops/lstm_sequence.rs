//! A whole LSTM direction over a sequence as one op: the input projection of
//! every step in one GEMM, one GEMM per step for the recurrence, the cell
//! fused, and backpropagation through time with one GEMM per step plus three
//! large ones for the weight and input gradients. No tensor is allocated per
//! step, and no graph node either.
//!
//! Inputs: x `[T, N, I]`, w_ih `[4H, I]`, w_hh `[4H, H]`, b_ih, b_hh `[4H]`,
//! h0, c0 `[N, H]`; an optional mask `[T, N]` (1 inside a sequence, 0 past
//! its end) and the direction. Output `[T + 2, N, H]`: the output of every
//! step, then h_n, then c_n. Step t (in processing order):
//! `z = W_ih·x_t + b_ih + W_hh·h + b_hh`, `(h', c') = cell(z, c)` as in
//! [`Tensor::lstm_cell`], `h ← m·h' + (1 − m)·h`, `c ← m·c' + (1 − m)·c`,
//! `out_t = m·h`.
//!
//! Backward, from the gradients of the outputs and of h_n, c_n, walking the
//! steps in reverse: `dh_t = dh + m·dout_t`, the cell's backward on
//! `(m·dh_t, m·dc)` gives dz_t and dc through the forget gate; then
//! `dh ← (1 − m)·dh_t + W_hhᵀ·dz_t`, `dc ← (1 − m)·dc + dc_cell`. Finally
//! `dW_hh = Σ dz_tᵀ·h_{t−1}`, `dW_ih = Σ dz_tᵀ·x_t`, `dx_t = W_ih·dz_t`,
//! `db = Σ dz_t` as single GEMMs and sums over all steps.

use super::tanh::fast_tanh as tanh;
use crate::cpu::matmul::{gemm_into, MatRef};
use crate::{Error, Result, Tensor};

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Tensor {
    /// One LSTM direction over a whole sequence; see the module docs.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_sequence(
        &self,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> Result<Tensor> {
        let (t, n, i) = self.dims3()?;
        let (g4, h) = w_hh.dims2()?;
        let bad = |what: &str, s: &[usize]| Error::Shape {
            op: "lstm_sequence",
            msg: format!(
                "{what} has shape {s:?} for input {:?} and w_hh {:?}",
                self.shape(),
                w_hh.shape()
            ),
        };
        if g4 != 4 * h {
            return Err(bad("w_hh", w_hh.shape()));
        }
        if w_ih.shape() != [4 * h, i] {
            return Err(bad("w_ih", w_ih.shape()));
        }
        for (name, b) in [("b_ih", b_ih), ("b_hh", b_hh)] {
            if b.shape() != [4 * h] {
                return Err(bad(name, b.shape()));
            }
        }
        for (name, s) in [("h0", h0), ("c0", c0)] {
            if s.shape() != [n, h] {
                return Err(bad(name, s.shape()));
            }
        }
        if mask.as_ref().is_some_and(|m| m.len() != t * n) {
            return Err(Error::Arg {
                op: "lstm_sequence",
                msg: format!("mask must have {} values", t * n),
            });
        }
        let threads = crate::threads::num_threads();
        // The per-step products are small: handing each to the pool costs
        // more than it saves. The big all-step products use every thread.
        let step_threads = if n * 4 * h * h >= 1 << 24 { threads } else { 1 };
        let (xv, wih, whh) = (self.to_vec(), w_ih.to_vec(), w_hh.to_vec());
        let bias: Vec<f32> = b_ih
            .to_vec()
            .iter()
            .zip(b_hh.to_vec())
            .map(|(a, b)| a + b)
            .collect();
        // Z = X·W_ihᵀ + b for all steps; the recurrent term is added per step.
        let mut z = vec![0f32; t * n * 4 * h];
        gemm_into(
            &mut z,
            false,
            MatRef::row_major(&xv, t * n, i),
            MatRef::row_major(&wih, 4 * h, i).t(),
            threads,
        );
        z.chunks_mut(4 * h)
            .for_each(|r| r.iter_mut().zip(&bias).for_each(|(v, b)| *v += b));
        let (mut hv, mut cv) = (h0.to_vec(), c0.to_vec());
        let mut act = vec![0f32; t * n * 4 * h]; // σ(i), σ(f), tanh(g), σ(o)
        let mut tc = vec![0f32; t * n * h]; // tanh(c')
        let mut h_prev = vec![0f32; t * n * h];
        let mut c_prev = vec![0f32; t * n * h];
        let mut out = vec![0f32; (t + 2) * n * h];
        let order: Vec<usize> = if reverse {
            (0..t).rev().collect()
        } else {
            (0..t).collect()
        };
        for &s in &order {
            let zs = &mut z[s * n * 4 * h..(s + 1) * n * 4 * h];
            gemm_into(
                zs,
                true,
                MatRef::row_major(&hv, n, h),
                MatRef::row_major(&whh, 4 * h, h).t(),
                step_threads,
            );
            h_prev[s * n * h..(s + 1) * n * h].copy_from_slice(&hv);
            c_prev[s * n * h..(s + 1) * n * h].copy_from_slice(&cv);
            for r in 0..n {
                let m = mask.as_ref().map_or(1.0, |m| m[s * n + r]);
                let zr = &zs[r * 4 * h..(r + 1) * 4 * h];
                let ar = &mut act[(s * n + r) * 4 * h..(s * n + r + 1) * 4 * h];
                for k in 0..h {
                    let (ig, fg) = (sigmoid(zr[k]), sigmoid(zr[h + k]));
                    let (gg, og) = (tanh(zr[2 * h + k]), sigmoid(zr[3 * h + k]));
                    (ar[k], ar[h + k], ar[2 * h + k], ar[3 * h + k]) = (ig, fg, gg, og);
                    let j = r * h + k;
                    let c_new = fg * cv[j] + ig * gg;
                    let th = tanh(c_new);
                    tc[s * n * h + j] = th;
                    let h_new = og * th;
                    // past the end of a sequence (m = 0) the state stays
                    cv[j] = m * c_new + (1.0 - m) * cv[j];
                    hv[j] = m * h_new + (1.0 - m) * hv[j];
                    out[s * n * h + j] = m * hv[j];
                }
            }
        }
        out[t * n * h..(t + 1) * n * h].copy_from_slice(&hv);
        out[(t + 1) * n * h..].copy_from_slice(&cv);
        let y = Tensor::from_cpu(out, &[t + 2, n, h]);
        Ok(y.attach(
            "LstmSequenceBackward",
            &[self, w_ih, w_hh, b_ih, b_hh, h0, c0],
            move |grad, inputs| {
                let gv = grad.to_vec();
                let mut dh = gv[t * n * h..(t + 1) * n * h].to_vec();
                let mut dc = gv[(t + 1) * n * h..].to_vec();
                let mut dz = vec![0f32; t * n * 4 * h];
                for &s in order.iter().rev() {
                    let dzs = &mut dz[s * n * 4 * h..(s + 1) * n * 4 * h];
                    let mut dh_keep = vec![0f32; n * h];
                    for r in 0..n {
                        let m = mask.as_ref().map_or(1.0, |m| m[s * n + r]);
                        let a = &act[(s * n + r) * 4 * h..];
                        for k in 0..h {
                            let j = r * h + k;
                            let dh_t = dh[j] + m * gv[s * n * h + j];
                            let (dh_new, dc_new) = (m * dh_t, m * dc[j]);
                            let (ig, fg, gg, og) = (a[k], a[h + k], a[2 * h + k], a[3 * h + k]);
                            let th = tc[s * n * h + j];
                            let dcc = dc_new + dh_new * og * (1.0 - th * th);
                            let d = &mut dzs[r * 4 * h..];
                            d[k] = dcc * gg * ig * (1.0 - ig);
                            d[h + k] = dcc * c_prev[s * n * h + j] * fg * (1.0 - fg);
                            d[2 * h + k] = dcc * ig * (1.0 - gg * gg);
                            d[3 * h + k] = dh_new * th * og * (1.0 - og);
                            dc[j] = (1.0 - m) * dc[j] + dcc * fg;
                            dh_keep[j] = (1.0 - m) * dh_t;
                        }
                    }
                    // dh ← (1 − m)·dh_t + dz·W_hh
                    gemm_into(
                        &mut dh_keep,
                        true,
                        MatRef::row_major(dzs, n, 4 * h),
                        MatRef::row_major(&whh, 4 * h, h),
                        step_threads,
                    );
                    dh = dh_keep;
                }
                let want = |k: usize| inputs[k].requires_grad();
                let dz_all = MatRef::row_major(&dz, t * n, 4 * h);
                let dx = want(0).then(|| {
                    let mut v = vec![0f32; t * n * i];
                    gemm_into(
                        &mut v,
                        false,
                        dz_all,
                        MatRef::row_major(&wih, 4 * h, i),
                        threads,
                    );
                    Tensor::from_cpu(v, &[t, n, i])
                });
                let dwih = want(1).then(|| {
                    let mut v = vec![0f32; 4 * h * i];
                    gemm_into(
                        &mut v,
                        false,
                        dz_all.t(),
                        MatRef::row_major(&xv, t * n, i),
                        threads,
                    );
                    Tensor::from_cpu(v, &[4 * h, i])
                });
                let dwhh = want(2).then(|| {
                    let mut v = vec![0f32; 4 * h * h];
                    gemm_into(
                        &mut v,
                        false,
                        dz_all.t(),
                        MatRef::row_major(&h_prev, t * n, h),
                        threads,
                    );
                    Tensor::from_cpu(v, &[4 * h, h])
                });
                let db = (want(3) || want(4)).then(|| {
                    let mut v = vec![0f32; 4 * h];
                    dz.chunks(4 * h)
                        .for_each(|r| v.iter_mut().zip(r).for_each(|(a, b)| *a += b));
                    Tensor::from_cpu(v, &[4 * h])
                });
                let dh0 = want(5).then(|| Tensor::from_cpu(dh, &[n, h]));
                let dc0 = want(6).then(|| Tensor::from_cpu(dc, &[n, h]));
                Ok(vec![
                    dx,
                    dwih,
                    dwhh,
                    db.clone().filter(|_| want(3)),
                    db.filter(|_| want(4)),
                    dh0,
                    dc0,
                ])
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_lstm_sequence_both_directions_and_masks() {
        let inputs = [
            rand_input(&[3, 2, 3], 1),
            rand_input(&[8, 3], 2),
            rand_input(&[8, 2], 3),
            rand_input(&[8], 4),
            rand_input(&[8], 5),
            rand_input(&[2, 2], 6),
            rand_input(&[2, 2], 7),
        ];
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, Some(vec![1., 1., 1., 0., 1., 0.])),
            (true, Some(vec![1., 1., 0., 1., 0., 1.])),
        ] {
            let f = |x: &[Tensor]| {
                x[0].lstm_sequence(
                    &x[1],
                    &x[2],
                    &x[3],
                    &x[4],
                    &x[5],
                    &x[6],
                    mask.clone(),
                    reverse,
                )
            };
            gradcheck(f, &inputs, Default::default())
                .unwrap_or_else(|e| panic!("reverse {reverse}: {e}"));
        }
    }
}
