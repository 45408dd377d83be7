//! The LSTM's cell in the engine (formulas: `ops/lstm_sequence.rs`): one
//! product per step, `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ`, then the gates and
//! the state update fused over each row.

use super::engine::{Backward, Buffer, Dims, Finish, Forward, Kernel, Order};
use super::joined;
use crate::backend::cpu::math::{sigmoid_with as sigmoid, tanh_abs_with as tanh};
use crate::backend::cpu::packed_gemm::{gemm_packed, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, write_copy, Slots};

pub(super) struct Lstm(pub Dims);

/// The cells of one block of rows at one step: the gate pre-activations
/// `z` in, σ(i), σ(f), tanh(g), σ(o) into `act`, tanh(c') into `tc`, the
/// state updated and the output written.
struct Cells<'a> {
    z: &'a [f32],
    act: Slots<'a>,
    tc: Slots<'a>,
    out: Slots<'a>,
    h: &'a mut [f32],
    c: &'a mut [f32],
    m: Option<&'a [f32]>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_cells_avx2(b: &mut Cells, h: usize) {
    forward_cells::<true>(b, h)
}

/// The same cells on the AVX-512 path (512-bit vectors, the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn forward_cells_avx512(b: &mut Cells, h: usize) {
    forward_cells::<true>(b, h)
}

/// The cells (compiled twice: plain, and with AVX2 and fused multiply-adds
/// in the exponentials). The gate activations first, one contiguous run
/// per gate, then the state update: loops over zipped slices, which
/// vectorize without the register spills and scalar fallbacks that one loop
/// doing both had.
#[inline(always)]
fn forward_cells<const FMA: bool>(b: &mut Cells, h: usize) {
    let rows = b.h.len() / h;
    for r in 0..rows {
        let m = b.m.map_or(1.0, |m| m[r]);
        let row = r * 4 * h..(r + 1) * 4 * h;
        let (ar, zr) = (&mut b.act[row.clone()], &b.z[row.clone()]);
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

/// One block of rows at one step, backward: the saved gates, tanh(c') and
/// c_{t−1}, the output's gradient; dz written, dh and dc updated.
struct BackCells<'a> {
    dz: Slots<'a>,
    act: &'a [f32],
    tc: &'a [f32],
    cp: &'a [f32],
    dout: &'a [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    m: Option<&'a [f32]>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_cells_avx2(b: &mut BackCells, h: usize) {
    backward_cells(b, h)
}

/// The same cells on the AVX-512 path (512-bit vectors, the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn backward_cells_avx512(b: &mut BackCells, h: usize) {
    backward_cells(b, h)
}

/// dz, dc through the forget gate, and `(1 − m)·dh_t` written over dh
/// (each element read before it is written).
#[inline(always)]
fn backward_cells(b: &mut BackCells, h: usize) {
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

impl Kernel for Lstm {
    type Weights = joined::Joined;

    fn dims(&self) -> Dims {
        self.0
    }
    fn states(&self) -> usize {
        2
    }
    fn gates(&self) -> usize {
        4
    }
    /// `[x_t | 1 | h_{t−1}]`; σ(i), σ(f), tanh(g), σ(o); tanh(c'); c_{t−1}.
    fn saved(&self) -> Vec<Buffer> {
        let Dims { i, h, .. } = self.0;
        let time = |width| Buffer {
            width,
            order: Order::Time,
        };
        let xh = Buffer {
            width: i + 1 + h,
            order: Order::Block,
        };
        vec![xh, time(4 * h), time(h), time(h)]
    }
    /// The gate pre-activations.
    fn scratch(&self) -> usize {
        4 * self.0.h
    }
    fn grads(&self) -> Vec<Buffer> {
        let dz = Buffer {
            width: 4 * self.0.h,
            order: Order::Block,
        };
        vec![dz]
    }
    fn work(&self) -> (usize, usize) {
        (self.0.i + 1 + self.0.h, 4 * self.0.h)
    }
    fn pack(&self, weights: [&[f32]; 4]) -> joined::Joined {
        joined::pack(weights, self.0)
    }

    fn forward(&self, w: &joined::Joined, s: &mut Forward) {
        let Dims { i, h, .. } = self.0;
        let [xh, act, tc, cp] = &mut s.saved[..] else {
            unreachable!("four saved buffers")
        };
        let [hs, cs] = &mut s.state[..] else {
            unreachable!("h and c")
        };
        let x = (s.x, s.x_rs);
        joined::step_product(xh, x, hs, w, (i, h, s.from_zero), s.scratch);
        write_copy(cp, cs);
        let mut cells = Cells {
            z: &*s.scratch,
            act,
            tc,
            out: &mut *s.out,
            h: hs,
            c: cs,
            m: s.m,
        };
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx512() {
            // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
            return unsafe { forward_cells_avx512(&mut cells, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
            return unsafe { forward_cells_avx2(&mut cells, h) };
        }
        forward_cells::<false>(&mut cells, h)
    }

    fn backward(&self, s: &mut Backward, whh: Option<&PackedRhs>) {
        let h = self.0.h;
        let [_, act, tc, cp] = s.saved[..] else {
            unreachable!("four saved buffers")
        };
        let [dh, dc] = &mut s.dstate[..] else {
            unreachable!("dh and dc")
        };
        let mut cells = BackCells {
            dz: &mut *s.grads[0],
            act,
            tc,
            cp,
            dout: s.dout,
            dh,
            dc,
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
        // dh ← (1 − m)·dh_t + dz·W_hh, the first term left in dh by the cells
        let rows = dh.len() / h;
        let dz = Strided {
            // SAFETY: the cells wrote all 4·H gradients of every row.
            data: unsafe { assume_init(&mut *s.grads[0]) },
            rs: 4 * h,
            cs: 1,
        };
        gemm_packed(rows, dz, whh, dh, h, true);
    }

    fn block_share(&self, saved: &[&[f32]], grads: &[&[f32]]) -> Option<Vec<f32>> {
        let Dims { i, h, .. } = self.0;
        let precision = self.dims().precision;
        Some(joined::block_share(
            saved[0],
            grads[0],
            (i + 1 + h, 4 * h),
            precision,
        ))
    }

    fn gradients(&self, f: Finish) -> [Option<Vec<f32>>; 5] {
        joined::gradients(f, self.0, 4 * self.0.h)
    }
}
