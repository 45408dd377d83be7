//! A whole LSTM direction over a sequence as one op: one product per step,
//! `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` against weights packed once, the cell fused
//! after it, and backpropagation through time with one product per step plus
//! two large ones for the weight and input gradients. Rows of the batch are
//! independent, so each thread takes a block of rows through every step. No
//! tensor is allocated per step, and no graph node either.
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
//! `[dW_ih | db | dW_hh] = Σ dz_tᵀ·[x_t | 1 | h_{t−1}]`, one product per
//! block of rows over all its steps (the saved `[x_t | 1 | h_{t−1}]` and dz
//! are laid out block by block), and `dx_t = W_ih·dz_t` as one GEMM.

use std::ops::Range;

use super::sequence::{self, row_blocks, Dims};
use super::sequence_steps::{self as steps, Cell};
use crate::backend::cpu::math::{sigmoid_with as sigmoid, tanh_abs_with as tanh};
use crate::backend::cpu::packed_gemm::{gemm_packed, gemm_packed_prefix, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, spare, write_copy, Slots};
use crate::{Result, Tensor};

/// One block of batch rows of one step, forward.
struct StepRows<'a> {
    /// The step's input rows, `x_rs` apart (where the input lies: a
    /// batch-first input is read in place).
    x: &'a [f32],
    x_rs: usize,
    /// The rows `[x_t | 1 | h]` side by side, `[rows, I + 1 + H]`: the left
    /// operand of the step's one product; kept for the weight gradients,
    /// where the column of ones gives the bias gradient.
    xh: Slots<'a>,
    /// Scratch for the pre-activations `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ`:
    /// a step's own small buffer, which stays in cache.
    zh: &'a mut [f32],
    // written once each, never zeroed first
    act: Slots<'a>,
    tc: Slots<'a>,
    cp: Slots<'a>,
    out: Slots<'a>,
    h: &'a mut [f32],
    c: &'a mut [f32],
    m: Option<&'a [f32]>,
}

/// One block of batch rows through the whole sequence, forward: its piece
/// of each buffer at every step (`[0]` where a buffer holds one step).
struct BlockRows<'a> {
    rows: Range<usize>,
    x: Vec<&'a [f32]>,
    xh: Vec<Slots<'a>>,
    zh: Vec<&'a mut [f32]>,
    act: Vec<Slots<'a>>,
    tc: Vec<Slots<'a>>,
    cp: Vec<Slots<'a>>,
    out: Vec<Slots<'a>>,
    h: Vec<&'a mut [f32]>,
    c: Vec<&'a mut [f32]>,
}

/// `w` = `[W_ih | b | W_hh]ᵀ` packed, `[I + 1 + H, 4H]`. With `h_is_zero`
/// (the first step from a zero initial state) the product stops before the
/// `W_hh` rows, which would multiply zeros.
fn forward_rows(b: &mut StepRows, w: &PackedRhs, i: usize, h: usize, h_is_zero: bool) {
    let rows = b.h.len() / h;
    let k = i + 1 + h;
    let xh = Strided {
        data: sequence::joined_rows(&mut *b.xh, b.x, b.x_rs, b.h, (i, h)),
        rs: k,
        cs: 1,
    };
    let k_used = if h_is_zero { i + 1 } else { k };
    gemm_packed_prefix(rows, xh, w, k_used, b.zh, 4 * h, false);
    write_copy(b.cp, b.c);
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { forward_cells_avx2(b, h) };
    }
    forward_cells::<false>(b, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_cells_avx2(b: &mut StepRows, h: usize) {
    forward_cells::<true>(b, h)
}

/// The cells of one block of rows (compiled twice: plain, and with AVX2
/// and fused multiply-adds in the exponentials).
/// The gate activations first, one contiguous run per gate, then the state
/// update: loops over zipped slices, which vectorize without the register
/// spills and scalar fallbacks that one loop doing both had.
#[inline(always)]
fn forward_cells<const FMA: bool>(b: &mut StepRows, h: usize) {
    let rows = b.h.len() / h;
    for r in 0..rows {
        let m = b.m.map_or(1.0, |m| m[r]);
        let row = r * 4 * h..(r + 1) * 4 * h;
        let (ar, zr) = (&mut b.act[row.clone()], &b.zh[row.clone()]);
        let (a_if, a_go) = ar.split_at_mut(2 * h);
        let (a_g, a_o) = a_go.split_at_mut(h);
        // pre-activations of gates i and f, g, o
        let (z_if, z_go) = zr.split_at(2 * h);
        let (z_g, z_o) = z_go.split_at(h);
        a_if.iter_mut()
            .zip(z_if)
            .for_each(|(a, &z)| _ = a.write(sigmoid::<FMA>(z)));
        a_g.iter_mut()
            .zip(z_g)
            .for_each(|(a, &z)| _ = a.write(tanh::<FMA>(z)));
        a_o.iter_mut()
            .zip(z_o)
            .for_each(|(a, &z)| _ = a.write(sigmoid::<FMA>(z)));
        // SAFETY: the three loops above wrote every slot of the row.
        let ar = unsafe { assume_init(&mut b.act[row]) };
        let (a_if, a_go) = ar.split_at(2 * h);
        let ((a_i, a_f), (a_g, a_o)) = (a_if.split_at(h), a_go.split_at(h));
        let gates = a_i.iter().zip(a_f.iter()).zip(a_g.iter().zip(a_o.iter()));
        let rs = r * h..(r + 1) * h;
        let state = b.c[rs.clone()].iter_mut().zip(&mut b.h[rs.clone()]);
        let outs = b.tc[rs.clone()].iter_mut().zip(&mut b.out[rs]);
        for (((c, hv), (tc, out)), ((&ig, &fg), (&gg, &og))) in state.zip(outs).zip(gates) {
            let c_new = fg * *c + ig * gg;
            let th = tanh::<FMA>(c_new);
            tc.write(th);
            // past the end of a sequence (m = 0) the state stays
            *c = m * c_new + (1.0 - m) * *c;
            *hv = m * og * th + (1.0 - m) * *hv;
            out.write(m * *hv);
        }
    }
}

/// One block of batch rows of one step, backward.
struct BackRows<'a> {
    dz: Slots<'a>, // written once, never zeroed first
    act: &'a [f32],
    tc: &'a [f32],
    cp: &'a [f32],
    dout: &'a [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    m: Option<&'a [f32]>,
}

/// One block of batch rows through the whole sequence, backward.
struct BackBlock<'a> {
    rows: Range<usize>,
    /// The block's gate gradients, `[T·rows, 4H]` (block-major).
    dz: Slots<'a>,
    /// The block's `[x_t | 1 | h_{t−1}]`, `[T·rows, I + 1 + H]`.
    xh: &'a [f32],
    /// The block's share of `[dW_ih | db | dW_hh]ᵀ`, when it computes one.
    dw_t: Option<Vec<f32>>,
    act: Vec<&'a [f32]>,
    tc: Vec<&'a [f32]>,
    cp: Vec<&'a [f32]>,
    dout: Vec<&'a [f32]>,
    dh: Vec<&'a mut [f32]>,
    dc: Vec<&'a mut [f32]>,
}

/// The cells' backward, then the recurrent product into dh, unless `whh`
/// is `None` (the last step back when h0 needs no gradient: nothing reads
/// dh after it).
fn backward_rows(b: &mut BackRows, whh: Option<&PackedRhs>, h: usize) {
    let rows = b.dh.len() / h;
    match crate::backend::cpu::has_avx2_fma() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        true => unsafe { backward_cells_avx2(b, h) },
        _ => backward_cells(b, h),
    }
    let Some(whh) = whh else { return };
    // dh ← (1 − m)·dh_t + dz·W_hh, the first term left in dh by the cells
    let dz = Strided {
        // SAFETY: the cells wrote all 4·H gradients of every row.
        data: unsafe { assume_init(&mut *b.dz) },
        rs: 4 * h,
        cs: 1,
    };
    gemm_packed(rows, dz, whh, b.dh, h, true);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_cells_avx2(b: &mut BackRows, h: usize) {
    backward_cells(b, h)
}

/// The cells' backward: dz, dc through the forget gate, and `(1 − m)·dh_t`
/// written over dh (each element read before it is written).
#[inline(always)]
fn backward_cells(b: &mut BackRows, h: usize) {
    let rows = b.dh.len() / h;
    for r in 0..rows {
        let m = b.m.map_or(1.0, |m| m[r]);
        let a = &b.act[r * 4 * h..];
        for k in 0..h {
            let j = r * h + k;
            let dh_t = b.dh[j] + m * b.dout[j];
            let (dh_new, dc_new) = (m * dh_t, m * b.dc[j]);
            let (ig, fg, gg, og) = (a[k], a[h + k], a[2 * h + k], a[3 * h + k]);
            let th = b.tc[j];
            let dcc = dc_new + dh_new * og * (1.0 - th * th);
            let d = &mut b.dz[r * 4 * h..];
            d[k].write(dcc * gg * ig * (1.0 - ig));
            d[h + k].write(dcc * b.cp[j] * fg * (1.0 - fg));
            d[2 * h + k].write(dcc * ig * (1.0 - gg * gg));
            d[3 * h + k].write(dh_new * th * og * (1.0 - og));
            b.dc[j] = (1.0 - m) * b.dc[j] + dcc * fg;
            b.dh[j] = (1.0 - m) * dh_t;
        }
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
        let dims = sequence::check(
            "lstm_sequence",
            self,
            4,
            w_ih,
            w_hh,
            [b_ih, b_hh],
            &[("h0", h0), ("c0", c0)],
            mask.as_deref(),
        )?;
        let Dims { t, n, i, h } = dims;
        if self.device() != crate::Device::Cpu {
            // this backend has no fused kernel: the composed steps
            let weights = [w_ih, w_hh, b_ih, b_hh];
            return steps::direction(
                Cell::Lstm,
                self,
                weights,
                h0,
                Some(c0),
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
        // Without a backward pass to come (evaluation, sampling) only the
        // current step's gate values are needed: buffers of one step, not
        // of all T, keep an evaluation batch in cache.
        let keep = sequence::needs_backward(&[self, w_ih, w_hh, b_ih, b_hh, h0, c0]);
        let steps_kept = if keep { t } else { t.min(1) };
        let (mut hv, mut cv) = (h0.to_vec(), c0.to_vec());
        let h0_is_zero = hv.iter().all(|&v| v == 0.0);
        // Saved for the backward, and the output: every element is written
        // once below (as slots of the vectors' capacity), none is zeroed.
        let (mut act, mut tc) = (Vec::new(), Vec::new()); // σ(i), σ(f), tanh(g), σ(o); tanh(c')
                                                          // [x_t | 1 | h_{t−1}] block-major, each block's rows of all steps
                                                          // together (for its share of the weight gradients); c_{t−1}
        let (mut xh, mut c_prev, mut out) = (Vec::new(), Vec::new(), Vec::new());
        let (len4, len1, len_xh) = (
            steps_kept * n * 4 * h,
            steps_kept * n * h,
            steps_kept * n * (i + 1 + h),
        );
        let (act_s, tc_s) = (spare(&mut act, len4), spare(&mut tc, len1));
        let (xh_s, cp_s) = (spare(&mut xh, len_xh), spare(&mut c_prev, len1));
        let out_s = spare(&mut out, (t + 2) * n * h);
        let mut zh = vec![0f32; n * 4 * h];
        let order = sequence::steps(t, reverse);
        // [W_ih | b | W_hh]ᵀ packed once for all steps: the input
        // projection, the recurrence and the bias are one product per step,
        // and no projection of all steps goes through memory (W_hh is packed
        // once for the backward).
        // (the bias before W_hh, so that a first step from a zero state can
        // stop before the W_hh rows)
        let k = i + 1 + h;
        let w_t = w_ih.read_data(|wih| {
            w_hh.read_data(|whh| PackedRhs::transposed(&[(wih, i), (&bias, 1), (whh, h)], 4 * h))
        });
        // Each thread takes a block of rows through all the steps (rows are
        // independent): one hand-off per sequence, not one per step.
        let rb = n.div_ceil(sequence::row_block_count(t, n, k, 4 * h, threads));
        sequence::with_rows(self, |xr| {
            let mut work: Vec<BlockRows> = xr
                .blocks(t, n, rb)
                .into_iter()
                .zip(sequence::block_major(xh_s, steps_kept, n, k, rb))
                .zip(row_blocks(&mut zh, 1, n, 4 * h, rb))
                .zip(row_blocks(act_s, steps_kept, n, 4 * h, rb))
                .zip(row_blocks(tc_s, steps_kept, n, h, rb))
                .zip(row_blocks(cp_s, steps_kept, n, h, rb))
                .zip(row_blocks(&mut out_s[..t * n * h], t, n, h, rb))
                .zip(
                    row_blocks(&mut hv, 1, n, h, rb)
                        .into_iter()
                        .zip(row_blocks(&mut cv, 1, n, h, rb)),
                )
                .enumerate()
                .map(
                    |(b, (((((((x, xh), zh), act), tc), cp), out), (hb, cb)))| BlockRows {
                        rows: b * rb..n.min((b + 1) * rb),
                        x,
                        xh,
                        zh,
                        act,
                        tc,
                        cp,
                        out,
                        h: hb,
                        c: cb,
                    },
                )
                .collect();
            let run = |blk: &mut BlockRows| {
                let rows = blk.rows.clone();
                for &s in &order {
                    let k = if keep { s } else { 0 }; // the step's place in the buffers
                    let mut step = StepRows {
                        x: blk.x[s],
                        x_rs: xr.row,
                        xh: blk.xh[k],
                        zh: blk.zh[0],
                        act: blk.act[k],
                        tc: blk.tc[k],
                        cp: blk.cp[k],
                        out: blk.out[s],
                        h: blk.h[0],
                        c: blk.c[0],
                        m: sequence::mask_rows(&mask, s, n, &rows),
                    };
                    forward_rows(&mut step, &w_t, i, h, s == order[0] && h0_is_zero);
                }
            };
            sequence::run_blocks(&mut work, run);
        });
        write_copy(&mut out_s[t * n * h..(t + 1) * n * h], &hv);
        write_copy(&mut out_s[(t + 1) * n * h..], &cv);
        // SAFETY: every step wrote its slots of act, tc, xh, c_prev and out
        // (all rows, all units), and h_n, c_n were just written. With
        // buffers of one step (no backward), t ≥ 1 steps wrote them.
        unsafe {
            act.set_len(len4);
            tc.set_len(len1);
            xh.set_len(len_xh);
            c_prev.set_len(len1);
            out.set_len((t + 2) * n * h);
        }
        let y = Tensor::from_cpu(out, &[t + 2, n, h]);
        Ok(y.attach(
            "LstmSequenceBackward",
            &[self, w_ih, w_hh, b_ih, b_hh, h0, c0],
            move |grad, inputs| {
                // the output's gradient read in place (mostly zeros when only
                // the last step is used; no copy of it)
                let want = |k: usize| inputs[k].requires_grad();
                let need_dw = (1..=4).any(want);
                let (dz, shares, dh, dc) = grad.read_data(|gv| {
                    let mut dh = gv[t * n * h..(t + 1) * n * h].to_vec();
                    let mut dc = gv[(t + 1) * n * h..].to_vec();
                    let mut dz = Vec::new();
                    let dz_s = spare(&mut dz, t * n * 4 * h);
                    // (the weights as they are now, as every op's backward
                    // reads its inputs)
                    let whh_packed = inputs[2].read_data(|whh| {
                        let whh = Strided {
                            data: whh,
                            rs: h,
                            cs: 1,
                        };
                        PackedRhs::new(whh, 4 * h, h)
                    });
                    // each block of rows back through all the steps, as forward
                    let shared = |buf, w| sequence::row_blocks_ref(buf, t, n, w, rb);
                    let g = 4 * h;
                    let mut xh_blocks = xh.as_slice();
                    let mut work: Vec<BackBlock> = sequence::block_regions(dz_s, t, n, g, rb)
                        .into_iter()
                        .zip(shared(&act, 4 * h))
                        .zip(shared(&tc, h))
                        .zip(shared(&c_prev, h))
                        .zip(shared(gv, h))
                        .zip(row_blocks(&mut dh, 1, n, h, rb))
                        .zip(row_blocks(&mut dc, 1, n, h, rb))
                        .enumerate()
                        .map(|(b, ((((((dz, act), tc), cp), dout), dh), dc))| {
                            let rows = b * rb..n.min((b + 1) * rb);
                            let (xh, rest) = xh_blocks.split_at(t * rows.len() * k);
                            xh_blocks = rest;
                            BackBlock {
                                rows,
                                dz,
                                xh,
                                dw_t: None,
                                act,
                                tc,
                                cp,
                                dout,
                                dh,
                                dc,
                            }
                        })
                        .collect();
                    let need_dh0 = inputs[5].requires_grad();
                    // with several blocks each adds up its own share of the
                    // weight gradients right after its sweep (no wait for
                    // the others, values its own core wrote); one block
                    // leaves the product to all the threads after it
                    let shares = need_dw && work.len() > 1;
                    let run = |blk: &mut BackBlock| {
                        let rows = blk.rows.clone();
                        let piece = rows.len() * g;
                        for &s in order.iter().rev() {
                            let mut step = BackRows {
                                dz: &mut blk.dz[s * piece..(s + 1) * piece],
                                act: blk.act[s],
                                tc: blk.tc[s],
                                cp: blk.cp[s],
                                dout: blk.dout[s],
                                dh: blk.dh[0],
                                dc: blk.dc[0],
                                m: sequence::mask_rows(&mask, s, n, &rows),
                            };
                            let whh = (s != order[0] || need_dh0).then_some(&whh_packed);
                            backward_rows(&mut step, whh, h);
                        }
                        if shares {
                            // SAFETY: every step wrote the gradients of all its rows.
                            let dz = unsafe { assume_init(&mut *blk.dz) };
                            blk.dw_t = Some(sequence::block_share(blk.xh, dz, k, g));
                        }
                    };
                    sequence::run_blocks(&mut work, run);
                    let shares: Vec<Vec<f32>> = work.into_iter().filter_map(|b| b.dw_t).collect();
                    // SAFETY: every step wrote the gradients of all its rows.
                    unsafe { dz.set_len(t * n * g) };
                    (dz, shares, dh, dc)
                });
                let [dx, dwih, dwhh, dbih, dbhh] =
                    sequence::joined_gradients(inputs, (&dz, &xh, shares), dims, 4 * h, rb)?;
                let dh0 = want(5).then(|| Tensor::from_cpu(dh, &[n, h]));
                let dc0 = want(6).then(|| Tensor::from_cpu(dc, &[n, h]));
                Ok(vec![dx, dwih, dwhh, dbih, dbhh, dh0, dc0])
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

    /// The input is read where it lies: a batch-first view (rows in place)
    /// and a view whose features are strided (read through a copy) give
    /// the values and gradients of a contiguous input, bit for bit.
    #[test]
    fn strided_inputs_give_the_values_of_a_contiguous_one() {
        let (t, n, i) = (4, 3, 5);
        let data = rand_input(&[n, t, i], 31).to_vec();
        let weights: Vec<Tensor> = [&[16usize, 5][..], &[16, 4], &[16], &[16]]
            .iter()
            .enumerate()
            .map(|(k, s)| rand_input(s, 32 + k as u64))
            .collect();
        let zeros = Tensor::zeros([n, 4]);
        let run = |make: &dyn Fn(Tensor) -> Tensor| {
            let leaf = Tensor::from_vec(data.clone(), [n, t, i])
                .unwrap()
                .requires_grad_(true);
            let x = make(leaf.clone());
            assert_eq!(x.shape(), [t, n, i]);
            let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|k| weights[k].clone());
            let y = x
                .lstm_sequence(&w_ih, &w_hh, &b_ih, &b_hh, &zeros, &zeros, None, false)
                .unwrap();
            y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
            (y.to_vec(), leaf.grad().unwrap().to_vec())
        };
        let contiguous = run(&|x| x.transpose(0, 1).unwrap().contiguous().unwrap());
        let batch_first = run(&|x| x.transpose(0, 1).unwrap());
        // features strided: [N, T, I] stored as [I, N, T]
        let strided = run(&|x| {
            let stored = x.permute(&[2, 0, 1]).unwrap().contiguous().unwrap();
            stored.permute(&[2, 1, 0]).unwrap()
        });
        assert_eq!(batch_first, contiguous);
        assert_eq!(strided, contiguous);
    }

    /// Without gradients only one step is buffered: the outputs and final
    /// states are the same as with the full buffers.
    #[test]
    fn evaluation_without_gradients_gives_the_same_values() {
        let inputs = [
            rand_input(&[5, 3, 4], 11),
            rand_input(&[12, 4], 12),
            rand_input(&[12, 3], 13),
            rand_input(&[12], 14),
            rand_input(&[12], 15),
            rand_input(&[3, 3], 16),
            rand_input(&[3, 3], 17),
        ];
        let mask = Some(
            (0..15)
                .map(|k| if k % 7 == 6 { 0.0 } else { 1.0 })
                .collect(),
        );
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, mask.clone()),
            (true, mask),
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
                .unwrap()
                .to_vec()
            };
            let with_grad = f(&inputs);
            let without = crate::no_grad(|| f(&inputs));
            assert_eq!(with_grad, without, "reverse {reverse}");
        }
    }

    /// With h0 needing no gradient the last step back skips its recurrent
    /// product; every other gradient is the same, bit for bit.
    #[test]
    fn gradients_without_an_initial_state_gradient_are_the_same() {
        let grads = |h0_grad: bool, reverse: bool| {
            let leaf = |shape: &[usize], seed| rand_input(shape, seed).requires_grad_(true);
            let x = leaf(&[4, 3, 5], 21);
            let w = [
                leaf(&[16, 5], 22),
                leaf(&[16, 4], 23),
                leaf(&[16], 24),
                leaf(&[16], 25),
            ];
            let (h0, c0) = (
                rand_input(&[3, 4], 26).requires_grad_(h0_grad),
                leaf(&[3, 4], 27),
            );
            let y = x
                .lstm_sequence(&w[0], &w[1], &w[2], &w[3], &h0, &c0, None, reverse)
                .unwrap();
            // every output, h_n and c_n weighted differently
            let weights = rand_input(&[6, 3, 4], 28);
            y.mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert_eq!(h0.grad().is_some(), h0_grad);
            let mut all = vec![x.grad().unwrap().to_vec(), c0.grad().unwrap().to_vec()];
            all.extend(w.iter().map(|w| w.grad().unwrap().to_vec()));
            all
        };
        for reverse in [false, true] {
            assert_eq!(
                grads(true, reverse),
                grads(false, reverse),
                "reverse {reverse}"
            );
        }
    }

    /// From a zero initial state the first step's product stops before the
    /// W_hh rows; a state of 1e-30 takes the whole product and must give the
    /// same outputs and gradients (its h·W_hh terms vanish against the rest).
    #[test]
    fn a_zero_initial_state_skips_only_zero_terms() {
        let run = |h0_value: f32, reverse: bool, mask: Option<Vec<f32>>| {
            let leaf = |shape: &[usize], seed| rand_input(shape, seed).requires_grad_(true);
            let x = leaf(&[4, 3, 5], 31);
            let w = [
                leaf(&[16, 5], 32),
                leaf(&[16, 4], 33),
                leaf(&[16], 34),
                leaf(&[16], 35),
            ];
            let h0 = Tensor::full([3, 4], h0_value).requires_grad_(true);
            let c0 = leaf(&[3, 4], 36);
            let y = x
                .lstm_sequence(&w[0], &w[1], &w[2], &w[3], &h0, &c0, mask, reverse)
                .unwrap();
            y.mul(&rand_input(&[6, 3, 4], 37))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut all = vec![y.to_vec(), x.grad().unwrap().to_vec()];
            all.extend([&h0, &c0].iter().map(|s| s.grad().unwrap().to_vec()));
            all.extend(w.iter().map(|w| w.grad().unwrap().to_vec()));
            all
        };
        let mask = Some(vec![0., 1., 1., 1., 1., 1., 1., 0., 1., 1., 1., 1.]);
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, mask.clone()),
            (true, mask),
        ] {
            let (zero, tiny) = (run(0.0, reverse, mask.clone()), run(1e-30, reverse, mask));
            for (a, b) in zero.iter().zip(&tiny) {
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= 1e-6 * (1.0 + v.abs()),
                        "reverse {reverse}: {u} vs {v}"
                    );
                }
            }
        }
    }

    fn op(
        x: &Tensor,
        w: &[Tensor],
        s: &[Tensor],
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> crate::Result<Tensor> {
        x.lstm_sequence(&w[0], &w[1], &w[2], &w[3], &s[0], &s[1], mask, reverse)
    }

    /// No rows, no steps or no input features give outputs and gradients
    /// of the right (possibly empty) shapes; no hidden units is an error.
    #[test]
    fn empty_dimensions_work_and_no_hidden_units_is_an_error() {
        super::sequence::testing::empty_dimensions(&op, 4, 2, 2);
    }

    /// A batch split into blocks of rows (one per thread: the product's
    /// work is over the threshold) gives each row what it gives alone.
    #[test]
    fn a_batch_split_between_threads_equals_each_row_alone() {
        super::sequence::testing::rows_alone(&op, 4, (5, 18, 8, 64), 2);
    }
}
