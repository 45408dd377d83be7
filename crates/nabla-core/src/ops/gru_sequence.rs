//! A whole GRU direction over a sequence as one op, like
//! [`lstm_sequence`](Tensor::lstm_sequence): two products per step, the
//! input projection and the recurrence (W_ih and W_hh packed once, the
//! input's rows read where they lie), with the cell fused after them, and
//! backpropagation through time inside the op with one product per step
//! plus large ones for the weight and input gradients. Each thread takes a block of batch rows through
//! every step. No tensor and no graph node per step.
//!
//! Inputs: x `[T, N, I]`, w_ih `[3H, I]`, w_hh `[3H, H]`, b_ih, b_hh `[3H]`,
//! h0 `[N, H]`; an optional mask `[T, N]` (1 inside a sequence, 0 past its
//! end) and the direction. Output `[T + 1, N, H]`: the output of every step,
//! then h_n. Gates in PyTorch's order r, z, n; step t (in processing order),
//! with `a = W_ih·x_t + b_ih` and `b = W_hh·h + b_hh`:
//! `r = σ(a_r + b_r)`, `z = σ(a_z + b_z)`, `n = tanh(a_n + r ⊙ b_n)`,
//! `h' = (1 − z) ⊙ n + z ⊙ h`, `h ← m·h' + (1 − m)·h`, `out_t = m·h`.
//!
//! Backward, walking the steps in reverse with `g = m·(dh + m·dout_t)`:
//! `dn = g ⊙ (1 − z)`, `dz = g ⊙ (h − n)`, `dâ_n = dn ⊙ (1 − n²)`,
//! `dr = dâ_n ⊙ b_n`; the pre-activation gradients are
//! `da = [dr·r(1−r), dz·z(1−z), dâ_n]` and `db = [da_r, da_z, dâ_n ⊙ r]`;
//! `dh ← (1 − m)·dh_t + g ⊙ z + W_hhᵀ·db`. Finally `dW_ih = Σ daᵀ·x_t`,
//! `dW_hh = Σ dbᵀ·h_{t−1}`, `dx_t = W_ih·da`, `db_ih = Σ da`,
//! `db_hh = Σ db`.

use std::ops::Range;

use super::sequence::{self, row_blocks, row_blocks_ref, Dims};
use super::sequence_steps::{self as steps, Cell};
use crate::backend::cpu::math::{sigmoid_with as sigmoid, tanh_abs_with as tanh};
use crate::backend::cpu::matmul::MatRef;
use crate::backend::cpu::packed_gemm::{gemm_packed, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::{Result, Tensor};

/// What the forward pass keeps of one step for the backward one.
struct Saved {
    /// r, z, n of every step, `[T, N, 3H]`.
    gates: Vec<f32>,
    /// `W_hn·h + b_hn` of every step, `[T, N, H]`.
    bn: Vec<f32>,
    /// h before every step, `[T, N, H]`.
    h_prev: Vec<f32>,
}

/// One step's slices: `a` the input projection `[N, 3H]`, `b` the
/// recurrent one, `h` updated in place, `gates` (r, z, n) and `bn` kept for
/// the backward pass, `out` the step's output.
struct Step<'a> {
    a: &'a [f32],
    b: &'a [f32],
    h: &'a mut [f32],
    gates: &'a mut [f32],
    bn: &'a mut [f32],
    out: &'a mut [f32],
    mask: Option<&'a [f32]>,
}

/// One block of batch rows through the whole sequence, forward: its piece
/// of each buffer at every step (`[0]` where a buffer holds one step).
struct Block<'a> {
    rows: Range<usize>,
    /// The step's input rows, `x_rs` apart (where the input lies).
    x: Vec<&'a [f32]>,
    /// The step's `x_t·W_ihᵀ + b_ih`, `[rows, 3H]`.
    a: Vec<&'a mut [f32]>,
    bs: Vec<&'a mut [f32]>,
    hb: Vec<&'a mut [f32]>,
    gates: Vec<&'a mut [f32]>,
    bn: Vec<&'a mut [f32]>,
    hp: Vec<&'a mut [f32]>,
    outs: Vec<&'a mut [f32]>,
}

/// One block of batch rows through the whole sequence, backward.
struct BackBlock<'a> {
    rows: Range<usize>,
    gates: Vec<&'a [f32]>,
    bn: Vec<&'a [f32]>,
    hp: Vec<&'a [f32]>,
    dout: Vec<&'a [f32]>,
    da: Vec<&'a mut [f32]>,
    db: Vec<&'a mut [f32]>,
    dh: Vec<&'a mut [f32]>,
    next: Vec<&'a mut [f32]>,
}

/// The cells of one step (compiled twice: plain, and with AVX2 and fused
/// multiply-adds in the exponentials). Gate by gate over zipped slices,
/// then the state update, as the LSTM's cells: one loop doing it all
/// spilled registers and ran as scalar code (half of an evaluation's time).
#[inline(always)]
fn cells<const FMA: bool>(s: &mut Step, hs: usize) {
    for row in 0..s.h.len() / hs {
        let m = s.mask.map_or(1.0, |m| m[row]);
        let (ar, br) = (
            &s.a[row * 3 * hs..][..3 * hs],
            &s.b[row * 3 * hs..][..3 * hs],
        );
        let g = &mut s.gates[row * 3 * hs..][..3 * hs];
        let (hr, bnr, outr) = (
            &mut s.h[row * hs..][..hs],
            &mut s.bn[row * hs..][..hs],
            &mut s.out[row * hs..][..hs],
        );
        let (g_rz, g_n) = g.split_at_mut(2 * hs);
        // r and z: σ(a + b)
        for (gv, (&a, &b)) in g_rz.iter_mut().zip(ar.iter().zip(br)) {
            *gv = sigmoid::<FMA>(a + b);
        }
        // n = tanh(a_n + r ⊙ b_n)
        let (a_n, b_n) = (&ar[2 * hs..], &br[2 * hs..]);
        for (gv, (&r, (&a, &b))) in g_n
            .iter_mut()
            .zip(g_rz[..hs].iter().zip(a_n.iter().zip(b_n)))
        {
            *gv = tanh::<FMA>(a + r * b);
        }
        bnr.copy_from_slice(b_n);
        // h' = (1 − z) ⊙ n + z ⊙ h, kept past the end of a sequence
        let zn = g_rz[hs..].iter().zip(g_n.iter());
        for ((hv, o), (&z, &n)) in hr.iter_mut().zip(outr.iter_mut()).zip(zn) {
            let new = (1.0 - z) * n + z * *hv;
            *hv = m * new + (1.0 - m) * *hv;
            *o = m * *hv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cells_avx2(s: &mut Step, hs: usize) {
    cells::<true>(s, hs)
}

fn run_cells(s: &mut Step, hs: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { cells_avx2(s, hs) };
    }
    cells::<false>(s, hs)
}

/// `dst = rows·Wᵀ + bias` for the rows of `src` (`(data, row stride)`),
/// `Wᵀ` packed, `dst` `[rows, G·H]`: the bias written first, the product
/// added to it.
fn affine(dst: &mut [f32], (src, rs): (&[f32], usize), w_t: &PackedRhs, bias: &[f32]) {
    for r in dst.chunks_mut(bias.len()) {
        r.copy_from_slice(bias);
    }
    let rows = dst.len() / bias.len();
    let src = Strided {
        data: src,
        rs,
        cs: 1,
    };
    gemm_packed(rows, src, w_t, dst, bias.len(), true);
}

/// One step's backward for a block of rows: the saved gates (r, z, n),
/// `b_n` and h before the step, the output's gradient; writes the
/// pre-activation gradients da, db and `next = (1 − m)·dh_t + g ⊙ z` (to
/// which the recurrent product is added).
struct BackStep<'a> {
    gates: &'a [f32],
    bn: &'a [f32],
    hp: &'a [f32],
    dout: &'a [f32],
    da: &'a mut [f32],
    db: &'a mut [f32],
    dh: &'a mut [f32],
    next: &'a mut [f32],
    mask: Option<&'a [f32]>,
}

/// The backward cells (the formulas of the module docs), compiled with
/// AVX2 where the CPU has it, as the forward's.
#[inline(always)]
fn backward_cells(s: &mut BackStep, h: usize) {
    for row in 0..s.next.len() / h {
        let mk = s.mask.map_or(1.0, |m| m[row]);
        let q = row * 3 * h;
        for k in 0..h {
            let j = row * h + k;
            let dh_t = s.dh[j] + mk * s.dout[j];
            let g = mk * dh_t;
            let (r, z, nn) = (s.gates[q + k], s.gates[q + h + k], s.gates[q + 2 * h + k]);
            let dn = g * (1.0 - z);
            let dz = g * (s.hp[j] - nn);
            let dan = dn * (1.0 - nn * nn);
            let dr = dan * s.bn[j];
            let (dar, daz) = (dr * r * (1.0 - r), dz * z * (1.0 - z));
            (s.da[q + k], s.da[q + h + k], s.da[q + 2 * h + k]) = (dar, daz, dan);
            (s.db[q + k], s.db[q + h + k], s.db[q + 2 * h + k]) = (dar, daz, dan * r);
            s.next[j] = (1.0 - mk) * dh_t + g * z;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_cells_avx2(s: &mut BackStep, h: usize) {
    backward_cells(s, h)
}

fn run_backward_cells(s: &mut BackStep, h: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
        return unsafe { backward_cells_avx2(s, h) };
    }
    backward_cells(s, h)
}

impl Tensor {
    /// One GRU direction over a whole sequence; see the module docs.
    pub fn gru_sequence(
        &self,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        h0: &Tensor,
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> Result<Tensor> {
        let Dims { t, n, i, h } = sequence::check(
            "gru_sequence",
            self,
            3,
            w_ih,
            w_hh,
            [b_ih, b_hh],
            &[("h0", h0)],
            mask.as_deref(),
        )?;
        if self.device() != crate::Device::Cpu {
            // this backend has no fused kernel: the composed steps
            let weights = [w_ih, w_hh, b_ih, b_hh];
            return steps::direction(Cell::Gru, self, weights, h0, None, mask.as_deref(), reverse);
        }
        let threads = crate::threads::num_threads();
        let (bih, bhh) = (b_ih.to_vec(), b_hh.to_vec());
        let keep = sequence::needs_backward(&[self, w_ih, w_hh, b_ih, b_hh, h0]);
        let kept = if keep { t } else { t.min(1) };
        let mut saved = Saved {
            gates: vec![0f32; kept * n * 3 * h],
            bn: vec![0f32; kept * n * h],
            h_prev: vec![0f32; kept * n * h],
        };
        let mut hv = h0.to_vec();
        let (mut a_step, mut b_step) = (vec![0f32; n * 3 * h], vec![0f32; n * 3 * h]);
        let mut out = vec![0f32; (t + 1) * n * h];
        let order = sequence::steps(t, reverse);
        // W_ihᵀ and W_hhᵀ packed once for all steps (and W_hh once for
        // the backward): each step's input projection is one product too,
        // no buffer of all steps' projections
        let wih_t = w_ih.read_data(|wih| PackedRhs::transposed(&[(wih, i)], 3 * h));
        let whh_t = w_hh.read_data(|whh| PackedRhs::transposed(&[(whh, h)], 3 * h));
        // Each thread takes a block of rows through all the steps, as the
        // LSTM does: one hand-off per sequence.
        let rb = n.div_ceil(sequence::row_block_count(t, n, h, 3 * h, threads));
        sequence::with_rows(self, |xr| {
            let mut work: Vec<_> = xr
                .blocks(t, n, rb)
                .into_iter()
                .zip(row_blocks(&mut a_step, 1, n, 3 * h, rb))
                .zip(row_blocks(&mut b_step, 1, n, 3 * h, rb))
                .zip(row_blocks(&mut hv, 1, n, h, rb))
                .zip(row_blocks(&mut saved.gates, kept, n, 3 * h, rb))
                .zip(row_blocks(&mut saved.bn, kept, n, h, rb))
                .zip(row_blocks(&mut saved.h_prev, kept, n, h, rb))
                .zip(row_blocks(&mut out[..t * n * h], t, n, h, rb))
                .enumerate()
                .map(
                    |(b, (((((((x, a), bs), hb), gates), bn), hp), outs))| Block {
                        rows: b * rb..n.min((b + 1) * rb),
                        x,
                        a,
                        bs,
                        hb,
                        gates,
                        bn,
                        hp,
                        outs,
                    },
                )
                .collect();
            let run = |blk: &mut Block| {
                let rows = blk.rows.clone();
                let Block {
                    x,
                    a,
                    bs,
                    hb,
                    gates,
                    bn,
                    hp,
                    outs,
                    ..
                } = blk;
                for &s in &order {
                    let k = if keep { s } else { 0 };
                    hp[k].copy_from_slice(hb[0]);
                    // A = x_t·W_ihᵀ + b_ih, B = h·W_hhᵀ + b_hh
                    affine(a[0], (x[s], xr.row), &wih_t, &bih);
                    affine(bs[0], (hb[0], h), &whh_t, &bhh);
                    run_cells(
                        &mut Step {
                            a: a[0],
                            b: bs[0],
                            h: hb[0],
                            gates: gates[k],
                            bn: bn[k],
                            out: outs[s],
                            mask: sequence::mask_rows(&mask, s, n, &rows),
                        },
                        h,
                    );
                }
            };
            sequence::run_blocks(&mut work, run);
        });
        out[t * n * h..].copy_from_slice(&hv);
        let y = Tensor::from_cpu(out, &[t + 1, n, h]);
        Ok(y.attach(
            "GruSequenceBackward",
            &[self, w_ih, w_hh, b_ih, b_hh, h0],
            move |grad, inputs| {
                let gv = grad.to_vec();
                let mut dh = gv[t * n * h..].to_vec();
                // gradients of the pre-activations: input side, recurrent side
                let mut da = vec![0f32; t * n * 3 * h];
                let mut db = vec![0f32; t * n * 3 * h];
                let mut next = vec![0f32; n * h];
                // (the weights and the input as they are now, as every op's
                // backward reads its inputs)
                let whh_packed = inputs[2].read_data(|whh| {
                    let whh = Strided {
                        data: whh,
                        rs: h,
                        cs: 1,
                    };
                    PackedRhs::new(whh, 3 * h, h)
                });
                let shared = |buf, w| row_blocks_ref(buf, t, n, w, rb);
                let mut work: Vec<_> = shared(&saved.gates, 3 * h)
                    .into_iter()
                    .zip(shared(&saved.bn, h))
                    .zip(shared(&saved.h_prev, h))
                    .zip(shared(&gv, h))
                    .zip(row_blocks(&mut da, t, n, 3 * h, rb))
                    .zip(row_blocks(&mut db, t, n, 3 * h, rb))
                    .zip(row_blocks(&mut dh, 1, n, h, rb))
                    .zip(row_blocks(&mut next, 1, n, h, rb))
                    .enumerate()
                    .map(
                        |(b, (((((((gates, bn), hp), dout), da), db), dh), next))| BackBlock {
                            rows: b * rb..n.min((b + 1) * rb),
                            gates,
                            bn,
                            hp,
                            dout,
                            da,
                            db,
                            dh,
                            next,
                        },
                    )
                    .collect();
                let run = |blk: &mut BackBlock| {
                    let rows = blk.rows.clone();
                    let BackBlock {
                        gates,
                        bn,
                        hp,
                        dout,
                        da,
                        db,
                        dh,
                        next,
                        ..
                    } = blk;
                    for &s in order.iter().rev() {
                        let m = sequence::mask_rows(&mask, s, n, &rows);
                        let (gates, bn, hp, dout) = (gates[s], bn[s], hp[s], dout[s]);
                        let (das, dbs) = (&mut *da[s], &mut *db[s]);
                        let (dh, next) = (&mut *dh[0], &mut *next[0]);
                        let mut step = BackStep {
                            gates,
                            bn,
                            hp,
                            dout,
                            da: das,
                            db: dbs,
                            dh,
                            next,
                            mask: m,
                        };
                        run_backward_cells(&mut step, h);
                        let BackStep {
                            db: dbs, dh, next, ..
                        } = step;
                        // dh ← next + db_s·W_hh
                        let dbs = Strided {
                            data: dbs,
                            rs: 3 * h,
                            cs: 1,
                        };
                        gemm_packed(rows.len(), dbs, &whh_packed, next, h, true);
                        dh.copy_from_slice(next);
                    }
                };
                sequence::run_blocks(&mut work, run);
                let want = |k: usize| inputs[k].requires_grad();
                let (da_all, db_all) = (
                    MatRef::row_major(&da, t * n, 3 * h),
                    MatRef::row_major(&db, t * n, 3 * h),
                );
                let dx = want(0).then(|| {
                    inputs[1].read_data(|wih| {
                        sequence::product(
                            &[t, n, i],
                            da_all,
                            MatRef::row_major(wih, 3 * h, i),
                            threads,
                        )
                    })
                });
                let dwih = want(1).then(|| {
                    inputs[0].read_data(|xv| {
                        sequence::product(
                            &[3 * h, i],
                            da_all.t(),
                            MatRef::row_major(xv, t * n, i),
                            threads,
                        )
                    })
                });
                let dwhh = want(2).then(|| {
                    let h_prev = MatRef::row_major(&saved.h_prev, t * n, h);
                    sequence::product(&[3 * h, h], db_all.t(), h_prev, threads)
                });
                let dbih = want(3).then(|| sequence::column_sums(&da, 3 * h));
                let dbhh = want(4).then(|| sequence::column_sums(&db, 3 * h));
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
            rand_input(&[3, 2, 3], 21),
            rand_input(&[6, 3], 22),
            rand_input(&[6, 2], 23),
            rand_input(&[6], 24),
            rand_input(&[6], 25),
            rand_input(&[2, 2], 26),
        ]
    }

    #[test]
    fn gradcheck_gru_sequence_both_directions_and_masks() {
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, Some(vec![1., 1., 1., 0., 1., 0.])),
            (true, Some(vec![1., 1., 0., 1., 0., 1.])),
        ] {
            let f = |x: &[Tensor]| {
                x[0].gru_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], mask.clone(), reverse)
            };
            gradcheck(f, &inputs(), Default::default())
                .unwrap_or_else(|e| panic!("reverse {reverse}: {e}"));
        }
    }

    /// Step by step with the composed GRU cell equals the fused op, and
    /// without gradients it gives the same values.
    #[test]
    fn equals_the_per_step_cell_and_runs_without_gradients() {
        let x = inputs();
        let y = x[0]
            .gru_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, false)
            .unwrap();
        let mut h = x[5].clone();
        for s in 0..3 {
            let xs = x[0].narrow(0, s, 1).unwrap().squeeze(0).unwrap();
            let a = xs.matmul(&x[1].t().unwrap()).unwrap().add(&x[3]).unwrap();
            let b = h.matmul(&x[2].t().unwrap()).unwrap().add(&x[4]).unwrap();
            h = a.gru_cell(&b, &h).unwrap();
            let got = y.narrow(0, s, 1).unwrap().to_vec();
            for (a, b) in got.iter().zip(h.to_vec()) {
                assert!((a - b).abs() < 1e-5, "step {s}: {a} vs {b}");
            }
        }
        let without = crate::no_grad(|| {
            x[0].gru_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, false)
                .unwrap()
                .to_vec()
        });
        assert_eq!(without, y.to_vec());
        let err = x[0]
            .gru_sequence(&x[1], &x[1], &x[3], &x[4], &x[5], None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gru_sequence") && err.contains("w_hh"),
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
        x.gru_sequence(&w[0], &w[1], &w[2], &w[3], &s[0], mask, reverse)
    }

    /// No rows, no steps or no input features give outputs and gradients
    /// of the right (possibly empty) shapes; no hidden units is an error.
    #[test]
    fn empty_dimensions_work_and_no_hidden_units_is_an_error() {
        super::sequence::testing::empty_dimensions(&op, 3, 1, 1);
    }

    /// A batch split into blocks of rows (one per thread: the product's
    /// work is over the threshold) gives each row what it gives alone.
    #[test]
    fn a_batch_split_between_threads_equals_each_row_alone() {
        super::sequence::testing::rows_alone(&op, 3, (5, 18, 8, 80), 1);
    }
}
