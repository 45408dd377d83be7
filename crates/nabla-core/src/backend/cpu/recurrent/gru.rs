//! The GRU's cell in the engine (formulas: `ops/gru_sequence.rs`): two
//! products per step, the input projection `x_t·W_ihᵀ + b_ih` and the
//! recurrence `h·W_hhᵀ + b_hh` (kept apart: r multiplies the recurrent part
//! of n), then the gates and the state update fused over each row.

use super::engine::{Backward, Buffer, Dims, Finish, Forward, Kernel, Order};
use crate::backend::cpu::backend::rows as contiguous_rows;
use crate::backend::cpu::math::{sigmoid_with as sigmoid, tanh_abs_with as tanh};
use crate::backend::cpu::matmul::{gemm_new_split_k, MatRef};
use crate::backend::cpu::packed_gemm::{gemm_packed, PackedRhs};
use crate::backend::cpu::reduce::sum_columns;
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, write_copy, Slots};

pub(super) struct Gru(pub Dims);

/// W_ihᵀ and W_hhᵀ packed once for all steps, and both biases.
pub(super) struct Weights {
    wih_t: PackedRhs,
    whh_t: PackedRhs,
    bih: Vec<f32>,
    bhh: Vec<f32>,
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

/// The cells of one block of rows at one step: `a` the input projection
/// `[rows, 3H]`, `b` the recurrent one; r, z, n into `gates` and `b_n`
/// into `bn` (kept for the backward pass), h updated, the output written.
struct Cells<'a> {
    a: &'a [f32],
    b: &'a [f32],
    gates: Slots<'a>,
    bn: Slots<'a>,
    h: &'a mut [f32],
    out: Slots<'a>,
    m: Option<&'a [f32]>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cells_avx2(s: &mut Cells, hs: usize) {
    cells::<true>(s, hs)
}

/// The same cells on the AVX-512 path (512-bit vectors, the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn cells_avx512(s: &mut Cells, hs: usize) {
    cells::<true>(s, hs)
}

/// The cells (compiled twice: plain, and with AVX2 and fused multiply-adds
/// in the exponentials). Gate by gate over zipped slices, then the state
/// update, as the LSTM's cells: one loop doing it all spilled registers and
/// ran as scalar code (half of an evaluation's time).
#[inline(always)]
fn cells<const FMA: bool>(s: &mut Cells, hs: usize) {
    for row in 0..s.h.len() / hs {
        let m = s.m.map_or(1.0, |m| m[row]);
        let (ar, br) = (
            &s.a[row * 3 * hs..][..3 * hs],
            &s.b[row * 3 * hs..][..3 * hs],
        );
        let g = &mut s.gates[row * 3 * hs..][..3 * hs];
        let (hr, outr) = (&mut s.h[row * hs..][..hs], &mut s.out[row * hs..][..hs]);
        let (g_rz, g_n) = g.split_at_mut(2 * hs);
        // r and z: σ(a + b)
        for (gv, (&a, &b)) in g_rz.iter_mut().zip(ar.iter().zip(br)) {
            gv.write(sigmoid::<FMA>(a + b));
        }
        // SAFETY: every slot of r and z was just written.
        let g_rz = unsafe { assume_init(g_rz) };
        // n = tanh(a_n + r ⊙ b_n)
        let (a_n, b_n) = (&ar[2 * hs..], &br[2 * hs..]);
        for (gv, (&r, (&a, &b))) in g_n
            .iter_mut()
            .zip(g_rz[..hs].iter().zip(a_n.iter().zip(b_n)))
        {
            gv.write(tanh::<FMA>(a + r * b));
        }
        // SAFETY: every slot of n was just written.
        let g_n = unsafe { assume_init(g_n) };
        write_copy(&mut s.bn[row * hs..][..hs], b_n);
        // h' = (1 − z) ⊙ n + z ⊙ h, kept past the end of a sequence
        let zn = g_rz[hs..].iter().zip(g_n.iter());
        for ((hv, o), (&z, &n)) in hr.iter_mut().zip(outr.iter_mut()).zip(zn) {
            let new = (1.0 - z) * n + z * *hv;
            *hv = m * new + (1.0 - m) * *hv;
            o.write(m * *hv);
        }
    }
}

/// One block of rows at one step, backward: the saved gates (r, z, n),
/// `b_n` and h before the step, the output's gradient; writes the
/// pre-activation gradients da, db and `(1 − m)·dh_t + g ⊙ z` over dh.
struct BackCells<'a> {
    gates: &'a [f32],
    bn: &'a [f32],
    hp: &'a [f32],
    dout: &'a [f32],
    da: Slots<'a>,
    db: Slots<'a>,
    dh: &'a mut [f32],
    m: Option<&'a [f32]>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_cells_avx2(s: &mut BackCells, h: usize) {
    backward_cells(s, h)
}

/// The same cells on the AVX-512 path (512-bit vectors, the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn backward_cells_avx512(s: &mut BackCells, h: usize) {
    backward_cells(s, h)
}

/// The backward cells (the formulas of `ops/gru_sequence.rs`), compiled
/// with AVX2 where the CPU has it, as the forward's.
#[inline(always)]
fn backward_cells(s: &mut BackCells, h: usize) {
    for row in 0..s.dh.len() / h {
        let mk = s.m.map_or(1.0, |m| m[row]);
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
            s.da[q + k].write(dar);
            s.da[q + h + k].write(daz);
            s.da[q + 2 * h + k].write(dan);
            s.db[q + k].write(dar);
            s.db[q + h + k].write(daz);
            s.db[q + 2 * h + k].write(dan * r);
            s.dh[j] = (1.0 - mk) * dh_t + g * z;
        }
    }
}

impl Kernel for Gru {
    type Weights = Weights;

    fn dims(&self) -> Dims {
        self.0
    }
    fn states(&self) -> usize {
        1
    }
    fn gates(&self) -> usize {
        3
    }
    /// r, z, n; `W_hn·h + b_hn`; h before the step.
    fn saved(&self) -> Vec<Buffer> {
        let h = self.0.h;
        let time = |width| Buffer {
            width,
            order: Order::Time,
        };
        vec![time(3 * h), time(h), time(h)]
    }
    /// The two projections side by side.
    fn scratch(&self) -> usize {
        6 * self.0.h
    }
    /// da and db, time-major for the large products after the sweep.
    fn grads(&self) -> Vec<Buffer> {
        let d = Buffer {
            width: 3 * self.0.h,
            order: Order::Time,
        };
        vec![d, d]
    }
    fn work(&self) -> (usize, usize) {
        (self.0.h, 3 * self.0.h)
    }
    fn pack(&self, [wih, whh, bih, bhh]: [&[f32]; 4]) -> Weights {
        let Dims {
            i, h, precision, ..
        } = self.0;
        Weights {
            wih_t: PackedRhs::transposed(&[(wih, i)], 3 * h).with_precision(precision),
            whh_t: PackedRhs::transposed(&[(whh, h)], 3 * h).with_precision(precision),
            bih: bih.to_vec(),
            bhh: bhh.to_vec(),
        }
    }

    fn forward(&self, w: &Weights, s: &mut Forward) {
        let h = self.0.h;
        let [gates, bn, hp] = &mut s.saved[..] else {
            unreachable!("three saved buffers")
        };
        let hv = &mut *s.state[0];
        write_copy(hp, hv);
        // A = x_t·W_ihᵀ + b_ih, B = h·W_hhᵀ + b_hh
        let (a, b) = s.scratch.split_at_mut(s.scratch.len() / 2);
        affine(a, (s.x, s.x_rs), &w.wih_t, &w.bih);
        affine(b, (hv, h), &w.whh_t, &w.bhh);
        let mut step = Cells {
            a,
            b,
            gates,
            bn,
            h: hv,
            out: &mut *s.out,
            m: s.m,
        };
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx512() {
            // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
            return unsafe { cells_avx512(&mut step, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
            return unsafe { cells_avx2(&mut step, h) };
        }
        cells::<false>(&mut step, h)
    }

    /// The cells' backward, then dh ← … + db·W_hh.
    fn backward(&self, s: &mut Backward, whh: Option<&PackedRhs>) {
        let h = self.0.h;
        let [gates, bn, hp] = s.saved[..] else {
            unreachable!("three saved buffers")
        };
        let [da, db] = &mut s.grads[..] else {
            unreachable!("da and db")
        };
        let dh = &mut *s.dstate[0];
        let mut cells = BackCells {
            gates,
            bn,
            hp,
            dout: s.dout,
            da,
            db,
            dh,
            m: s.m,
        };
        match crate::isa::isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
            crate::isa::Isa::Avx512 => unsafe { backward_cells_avx512(&mut cells, h) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
            crate::isa::Isa::Avx2 => unsafe { backward_cells_avx2(&mut cells, h) },
            _ => backward_cells(&mut cells, h),
        }
        let Some(whh) = whh else { return };
        let rows = dh.len() / h;
        let db = Strided {
            // SAFETY: the cells wrote all 3·H gradients of every row.
            data: unsafe { assume_init(db) },
            rs: 3 * h,
            cs: 1,
        };
        gemm_packed(rows, db, whh, dh, h, true);
    }

    /// `dx_t = da·W_ih`, `dW_ih = Σ daᵀ·x_t`, `dW_hh = Σ dbᵀ·h_{t−1}`,
    /// `db_ih = Σ da`, `db_hh = Σ db`: products over all T·N rows, their K
    /// cut between the threads.
    fn gradients(&self, f: Finish) -> [Option<Vec<f32>>; 5] {
        let Dims {
            t,
            n,
            i,
            h,
            precision,
        } = self.0;
        let threads = crate::threads::num_threads();
        let want = |k: usize| f.want[k];
        let (da, db) = (&f.grads[0], &f.grads[1]);
        let (da_all, db_all) = (
            MatRef::row_major(da, t * n, 3 * h),
            MatRef::row_major(db, t * n, 3 * h),
        );
        let wih = MatRef::row_major(f.w_ih, 3 * h, i);
        let dx = want(0).then(|| gemm_new_split_k(precision, da_all, wih, threads));
        let dwih = want(1).then(|| {
            let xv = contiguous_rows(f.x);
            gemm_new_split_k(
                precision,
                da_all.t(),
                MatRef::row_major(&xv, t * n, i),
                threads,
            )
        });
        let dwhh = want(2).then(|| {
            let h_prev = MatRef::row_major(&f.saved[2], t * n, h);
            gemm_new_split_k(precision, db_all.t(), h_prev, threads)
        });
        let dbih = want(3).then(|| sum_columns(da, t * n, 3 * h));
        let dbhh = want(4).then(|| sum_columns(db, t * n, 3 * h));
        [dx, dwih, dwhh, dbih, dbhh]
    }
}
