//! A whole plain-RNN direction over a sequence as one op, as
//! [`lstm_sequence`](Tensor::lstm_sequence) is for the LSTM: one product per
//! step, `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` against weights packed once,
//! the activation fused after it, and backpropagation through time inside
//! the op. Each thread takes a block of batch rows through every step; no
//! tensor and no graph node per step.
//!
//! Inputs: x `[T, N, I]`, w_ih `[H, I]`, w_hh `[H, H]`, b_ih, b_hh `[H]`,
//! h0 `[N, H]`; an optional mask `[T, N]` (1 inside a sequence, 0 past its
//! end), the nonlinearity (tanh, or ReLU with `relu`) and the direction.
//! Output `[T + 1, N, H]`: the output of every step, then h_n. Step t (in
//! processing order): `h' = f(W_ih·x_t + b_ih + W_hh·h + b_hh)`,
//! `h ← m·h' + (1 − m)·h`, `out_t = m·h`.
//!
//! Backward, walking the steps in reverse: `dh_t = dh + m·dout_t`,
//! `dz = m·dh_t ⊙ f'` (tanh: `1 − h'²`; ReLU: 1 where `h' > 0`), then
//! `dh ← (1 − m)·dh_t + W_hhᵀ·dz`. Finally `[dW_ih | db | dW_hh] =
//! Σ dzᵀ·[x_t | 1 | h_{t−1}]`, one product per block of rows over all its
//! steps (summed across the blocks), and `dx_t = W_ih·dz` as one GEMM.

use std::ops::Range;

use super::sequence::{self, row_blocks, Dims};
use super::sequence_steps::{self as steps, Cell};
use crate::backend::cpu::math::tanh_with as tanh;
use crate::backend::cpu::packed_gemm::{gemm_packed, gemm_packed_prefix, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, spare, write_copy, Slots};
use crate::{Result, Tensor};

/// One block of batch rows of one step, forward.
struct StepRows<'a> {
    /// The step's input rows, `x_rs` apart (where the input lies).
    x: &'a [f32],
    x_rs: usize,
    /// `[x_t | 1 | h]`, `[rows, I + 1 + H]`: the step's left operand, kept
    /// for the weight gradients.
    xh: Slots<'a>,
    /// The activations h' (before the mask), kept for their derivative.
    act: &'a mut [f32],
    out: Slots<'a>,
    h: &'a mut [f32],
    m: Option<&'a [f32]>,
}

/// `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` into `act`, then the activation and
/// the state update. With `h_is_zero` the product stops before the W_hh
/// rows.
fn forward_rows(
    b: &mut StepRows,
    w: &PackedRhs,
    (i, h): (usize, usize),
    relu: bool,
    h_is_zero: bool,
) {
    let (rows, k) = (b.h.len() / h, i + 1 + h);
    let xh = Strided {
        data: sequence::joined_rows(&mut *b.xh, b.x, b.x_rs, b.h, (i, h)),
        rs: k,
        cs: 1,
    };
    let k_used = if h_is_zero { i + 1 } else { k };
    gemm_packed_prefix(rows, xh, w, k_used, b.act, h, false);
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { activate_avx2(b, h, relu) };
    }
    activate::<false>(b, h, relu)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn activate_avx2(b: &mut StepRows, h: usize, relu: bool) {
    activate::<true>(b, h, relu)
}

/// h' = f(z) in place, then `h ← m·h' + (1 − m)·h`, `out = m·h`.
#[inline(always)]
fn activate<const FMA: bool>(b: &mut StepRows, h: usize, relu: bool) {
    match relu {
        // (a NaN passes, as in relu)
        true => b
            .act
            .iter_mut()
            .for_each(|z| *z = if *z < 0.0 { 0.0 } else { *z }),
        false => b.act.iter_mut().for_each(|z| *z = tanh::<FMA>(*z)),
    }
    for r in 0..b.h.len() / h {
        let m = b.m.map_or(1.0, |m| m[r]);
        let rs = r * h..(r + 1) * h;
        let state = b.h[rs.clone()].iter_mut().zip(&mut b.out[rs.clone()]);
        for ((hv, out), &a) in state.zip(&b.act[rs]) {
            // past the end of a sequence (m = 0) the state stays
            *hv = m * a + (1.0 - m) * *hv;
            out.write(m * *hv);
        }
    }
}

/// One block of batch rows through the whole sequence, forward: its piece
/// of each buffer at every step (`[0]` where a buffer holds one step).
struct BlockRows<'a> {
    rows: Range<usize>,
    x: Vec<&'a [f32]>,
    xh: Vec<Slots<'a>>,
    act: Vec<&'a mut [f32]>,
    out: Vec<Slots<'a>>,
    h: Vec<&'a mut [f32]>,
}

/// One block of batch rows of one step, backward: dz written, dh updated.
struct BackRows<'a> {
    dz: Slots<'a>,
    act: &'a [f32],
    dout: &'a [f32],
    dh: &'a mut [f32],
    m: Option<&'a [f32]>,
}

/// `dz = m·dh_t ⊙ f'`, `(1 − m)·dh_t` written over dh, then the recurrent
/// product into dh unless `whh` is `None` (the last step back when h0
/// needs no gradient).
fn backward_rows(b: &mut BackRows, whh: Option<&PackedRhs>, h: usize, relu: bool) {
    let rows = b.dh.len() / h;
    for r in 0..rows {
        let m = b.m.map_or(1.0, |m| m[r]);
        let rs = r * h..(r + 1) * h;
        let grads = b.dz[rs.clone()].iter_mut().zip(&mut b.dh[rs.clone()]);
        for ((dz, dh), (&a, &dout)) in grads.zip(b.act[rs.clone()].iter().zip(&b.dout[rs])) {
            let dh_t = *dh + m * dout;
            let slope = match relu {
                true => {
                    if a <= 0.0 {
                        0.0
                    } else {
                        1.0
                    }
                }
                false => 1.0 - a * a,
            };
            dz.write(m * dh_t * slope);
            *dh = (1.0 - m) * dh_t;
        }
    }
    let Some(whh) = whh else { return };
    let dz = Strided {
        // SAFETY: every row's H gradients were just written.
        data: unsafe { assume_init(&mut *b.dz) },
        rs: h,
        cs: 1,
    };
    gemm_packed(rows, dz, whh, b.dh, h, true);
}

/// One block of batch rows through the whole sequence, backward.
struct BackBlock<'a> {
    rows: Range<usize>,
    /// The block's dz, `[T·rows, H]` (block-major).
    dz: Slots<'a>,
    /// The block's `[x_t | 1 | h_{t−1}]`, `[T·rows, I + 1 + H]`.
    xh: &'a [f32],
    dw_t: Option<Vec<f32>>,
    act: Vec<&'a [f32]>,
    dout: Vec<&'a [f32]>,
    dh: &'a mut [f32],
}

impl Tensor {
    /// One plain-RNN direction over a whole sequence (tanh, or ReLU with
    /// `relu`); see the module docs.
    #[allow(clippy::too_many_arguments)]
    pub fn rnn_sequence(
        &self,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        h0: &Tensor,
        mask: Option<Vec<f32>>,
        relu: bool,
        reverse: bool,
    ) -> Result<Tensor> {
        let dims = sequence::check(
            "rnn_sequence",
            self,
            1,
            w_ih,
            w_hh,
            [b_ih, b_hh],
            &[("h0", h0)],
            mask.as_deref(),
        )?;
        let Dims { t, n, i, h } = dims;
        if self.device() != crate::Device::Cpu {
            // this backend has no fused kernel: the composed steps
            let weights = [w_ih, w_hh, b_ih, b_hh];
            return steps::direction(
                Cell::Rnn { relu },
                self,
                weights,
                h0,
                None,
                mask.as_deref(),
                reverse,
            );
        }
        let threads = crate::threads::num_threads();
        let bias: Vec<f32> = b_ih
            .to_vec()
            .iter()
            .zip(b_hh.to_vec())
            .map(|(a, b)| a + b)
            .collect();
        // without a backward pass to come, buffers of one step
        let keep = sequence::needs_backward(&[self, w_ih, w_hh, b_ih, b_hh, h0]);
        let steps_kept = if keep { t } else { t.min(1) };
        let mut hv = h0.to_vec();
        let h0_is_zero = hv.iter().all(|&v| v == 0.0);
        let k = i + 1 + h;
        // [x_t | 1 | h_{t−1}] block-major (each block's rows of all steps
        // together, for its share of the weight gradients), written once
        let (mut xh, mut out) = (Vec::new(), Vec::new());
        let xh_s = spare(&mut xh, steps_kept * n * k);
        let out_s = spare(&mut out, (t + 1) * n * h);
        let mut act = vec![0f32; steps_kept * n * h];
        let order = sequence::steps(t, reverse);
        // [W_ih | b | W_hh]ᵀ packed once for all steps (the bias before
        // W_hh, so that a first step from a zero state can stop before it)
        let w_t = w_ih.read_data(|wih| {
            w_hh.read_data(|whh| PackedRhs::transposed(&[(wih, i), (&bias, 1), (whh, h)], h))
        });
        let rb = n.div_ceil(sequence::row_block_count(t, n, k, h, threads));
        sequence::with_rows(self, |xr| {
            let mut work: Vec<BlockRows> = xr
                .blocks(t, n, rb)
                .into_iter()
                .zip(sequence::block_major(xh_s, steps_kept, n, k, rb))
                .zip(row_blocks(&mut act, steps_kept, n, h, rb))
                .zip(row_blocks(&mut out_s[..t * n * h], t, n, h, rb))
                .zip(row_blocks(&mut hv, 1, n, h, rb))
                .enumerate()
                .map(|(b, ((((x, xh), act), out), h))| BlockRows {
                    rows: b * rb..n.min((b + 1) * rb),
                    x,
                    xh,
                    act,
                    out,
                    h,
                })
                .collect();
            let run = |blk: &mut BlockRows| {
                for &s in &order {
                    let kept = if keep { s } else { 0 };
                    let mut step = StepRows {
                        x: blk.x[s],
                        x_rs: xr.row,
                        xh: &mut *blk.xh[kept],
                        act: &mut *blk.act[kept],
                        out: &mut *blk.out[s],
                        h: &mut *blk.h[0],
                        m: sequence::mask_rows(&mask, s, n, &blk.rows),
                    };
                    let first_from_zero = s == order[0] && h0_is_zero;
                    forward_rows(&mut step, &w_t, (i, h), relu, first_from_zero);
                }
            };
            sequence::run_blocks(&mut work, run);
        });
        write_copy(&mut out_s[t * n * h..], &hv);
        // SAFETY: every step wrote its rows of xh and out (with buffers of
        // one step, t ≥ 1 steps wrote them), and h_n was just written.
        unsafe {
            xh.set_len(steps_kept * n * k);
            out.set_len((t + 1) * n * h);
        }
        let y = Tensor::from_cpu(out, &[t + 1, n, h]);
        Ok(y.attach(
            "RnnSequenceBackward",
            &[self, w_ih, w_hh, b_ih, b_hh, h0],
            move |grad, inputs| {
                let want = |k: usize| inputs[k].requires_grad();
                let need_dw = (1..=4).any(want);
                let (dz, shares, dh) = grad.read_data(|gv| {
                    let mut dh = gv[t * n * h..].to_vec();
                    let mut dz = Vec::new();
                    let dz_s = spare(&mut dz, t * n * h);
                    let whh_packed = inputs[2].read_data(|whh| {
                        let whh = Strided {
                            data: whh,
                            rs: h,
                            cs: 1,
                        };
                        PackedRhs::new(whh, h, h)
                    });
                    let shared = |buf, w| sequence::row_blocks_ref(buf, t, n, w, rb);
                    let mut xh_blocks = xh.as_slice();
                    let mut work: Vec<BackBlock> = sequence::block_regions(dz_s, t, n, h, rb)
                        .into_iter()
                        .zip(shared(&act, h))
                        .zip(shared(gv, h))
                        .zip(row_blocks(&mut dh, 1, n, h, rb))
                        .enumerate()
                        .map(|(b, (((dz, act), dout), mut dh))| {
                            let rows = b * rb..n.min((b + 1) * rb);
                            let (xh, rest) = xh_blocks.split_at(t * rows.len() * k);
                            xh_blocks = rest;
                            let dh = dh.pop().expect("one step");
                            BackBlock {
                                rows,
                                dz,
                                xh,
                                dw_t: None,
                                act,
                                dout,
                                dh,
                            }
                        })
                        .collect();
                    let need_dh0 = inputs[5].requires_grad();
                    // with several blocks each adds up its own share of the
                    // weight gradients right after its sweep
                    let shares = need_dw && work.len() > 1;
                    let run = |blk: &mut BackBlock| {
                        let rows = blk.rows.clone();
                        let piece = rows.len() * h;
                        for &s in order.iter().rev() {
                            let mut step = BackRows {
                                dz: &mut blk.dz[s * piece..(s + 1) * piece],
                                act: blk.act[s],
                                dout: blk.dout[s],
                                dh: &mut *blk.dh,
                                m: sequence::mask_rows(&mask, s, n, &rows),
                            };
                            let whh = (s != order[0] || need_dh0).then_some(&whh_packed);
                            backward_rows(&mut step, whh, h, relu);
                        }
                        if shares {
                            // SAFETY: every step wrote the gradients of all its rows.
                            let dz = unsafe { assume_init(&mut *blk.dz) };
                            blk.dw_t = Some(sequence::block_share(blk.xh, dz, k, h));
                        }
                    };
                    sequence::run_blocks(&mut work, run);
                    let shares: Vec<Vec<f32>> = work.into_iter().filter_map(|b| b.dw_t).collect();
                    // SAFETY: every step wrote the gradients of all its rows.
                    unsafe { dz.set_len(t * n * h) };
                    (dz, shares, dh)
                });
                let [dx, dwih, dwhh, dbih, dbhh] =
                    sequence::joined_gradients(inputs, (&dz, &xh, shares), dims, h, rb)?;
                let dh0 = want(5).then(|| Tensor::from_cpu(dh, &[n, h]));
                Ok(vec![dx, dwih, dwhh, dbih, dbhh, dh0])
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    fn inputs() -> [Tensor; 6] {
        [
            rand_input(&[3, 2, 3], 51),
            rand_input(&[2, 3], 52),
            rand_input(&[2, 2], 53),
            rand_input(&[2], 54),
            rand_input(&[2], 55),
            rand_input(&[2, 2], 56),
        ]
    }

    #[test]
    fn gradcheck_rnn_sequence_both_activations_directions_and_masks() {
        for relu in [false, true] {
            for (reverse, mask) in [
                (false, None),
                (true, None),
                (false, Some(vec![1., 1., 1., 0., 1., 0.])),
                (true, Some(vec![1., 1., 0., 1., 0., 1.])),
            ] {
                let f = |x: &[Tensor]| {
                    x[0].rnn_sequence(
                        &x[1],
                        &x[2],
                        &x[3],
                        &x[4],
                        &x[5],
                        mask.clone(),
                        relu,
                        reverse,
                    )
                };
                gradcheck(f, &inputs(), Default::default())
                    .unwrap_or_else(|e| panic!("relu {relu}, reverse {reverse}: {e}"));
            }
        }
    }

    /// Step by step with tensor ops, `f(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)`,
    /// equals the fused op, and without gradients it gives the same values.
    #[test]
    fn equals_the_composed_steps_and_runs_without_gradients() {
        let x = inputs();
        for relu in [false, true] {
            let y = x[0]
                .rnn_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, relu, false)
                .unwrap();
            let mut h = x[5].clone();
            for s in 0..3 {
                let xs = x[0].narrow(0, s, 1).unwrap().squeeze(0).unwrap();
                let a = xs.matmul(&x[1].t().unwrap()).unwrap().add(&x[3]).unwrap();
                let b = h.matmul(&x[2].t().unwrap()).unwrap().add(&x[4]).unwrap();
                let z = a.add(&b).unwrap();
                h = if relu { z.relu() } else { z.tanh() }.unwrap();
                let got = y.narrow(0, s, 1).unwrap().to_vec();
                for (a, b) in got.iter().zip(h.to_vec()) {
                    assert!((a - b).abs() < 1e-5, "relu {relu}, step {s}: {a} vs {b}");
                }
            }
            // h_n is the last step's output
            let last = |k: usize| y.narrow(0, k, 1).unwrap().to_vec();
            assert_eq!(last(3), last(2));
            let without = crate::no_grad(|| {
                x[0].rnn_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, relu, false)
                    .unwrap()
                    .to_vec()
            });
            assert_eq!(without, y.to_vec());
        }
        let err = x[0]
            .rnn_sequence(&x[1], &x[1], &x[3], &x[4], &x[5], None, false, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rnn_sequence") && err.contains("w_hh"),
            "{err}"
        );
    }

    fn op(
        x: &Tensor,
        w: &[Tensor],
        s: &[Tensor],
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> crate::Result<Tensor> {
        x.rnn_sequence(&w[0], &w[1], &w[2], &w[3], &s[0], mask, false, reverse)
    }

    /// No rows, no steps or no input features give outputs and gradients
    /// of the right (possibly empty) shapes; no hidden units is an error.
    #[test]
    fn empty_dimensions_work_and_no_hidden_units_is_an_error() {
        super::sequence::testing::empty_dimensions(&op, 1, 1, 1);
    }

    /// A batch split into blocks of rows (one per thread: the product's
    /// work is over the threshold) gives each row what it gives alone.
    #[test]
    fn a_batch_split_between_threads_equals_each_row_alone() {
        super::sequence::testing::rows_alone(&op, 1, (6, 18, 8, 128), 1);
    }
}
