//! The plain RNN's cell in the engine (formulas: `ops/rnn_sequence.rs`):
//! one product per step, `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ`, then tanh or
//! ReLU and the state update.

use super::engine::{Backward, Buffer, Dims, Finish, Forward, Kernel, Order};
use super::joined;
use crate::backend::cpu::math::tanh_with as tanh;
use crate::backend::cpu::packed_gemm::{gemm_packed, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, Slots};

pub(super) struct Rnn {
    pub dims: Dims,
    pub relu: bool,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn activate_avx2(s: &mut Forward, act: Slots, relu: bool, h: usize) {
    activate::<true>(s, act, relu, h)
}

/// The same cells on the AVX-512 path (512-bit vectors, the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn activate_avx512(s: &mut Forward, act: Slots, relu: bool, h: usize) {
    activate::<true>(s, act, relu, h)
}

/// `h' = f(z)` from the pre-activations in the scratch into `act`, then
/// `h ← m·h' + (1 − m)·h`, `out = m·h`.
#[inline(always)]
fn activate<const FMA: bool>(s: &mut Forward, act: Slots, relu: bool, h: usize) {
    let z = s.scratch.iter();
    match relu {
        // (a NaN passes, as in relu)
        true => act.iter_mut().zip(z).for_each(|(a, &z)| {
            a.write(if z < 0.0 { 0.0 } else { z });
        }),
        false => act.iter_mut().zip(z).for_each(|(a, &z)| {
            a.write(tanh::<FMA>(z));
        }),
    }
    // SAFETY: every slot was just written.
    let act = unsafe { assume_init(act) };
    let hv = &mut *s.state[0];
    for r in 0..hv.len() / h {
        let m = s.m.map_or(1.0, |m| m[r]);
        let rs = r * h..(r + 1) * h;
        let state = hv[rs.clone()].iter_mut().zip(&mut s.out[rs.clone()]);
        for ((hv, out), &a) in state.zip(&act[rs]) {
            // past the end of a sequence (m = 0) the state stays
            *hv = m * a + (1.0 - m) * *hv;
            out.write(m * *hv);
        }
    }
}

impl Kernel for Rnn {
    type Weights = joined::Joined;

    fn dims(&self) -> Dims {
        self.dims
    }
    fn states(&self) -> usize {
        1
    }
    fn gates(&self) -> usize {
        1
    }
    /// `[x_t | 1 | h_{t−1}]` and the activations h' (before the mask),
    /// kept for their derivative.
    fn saved(&self) -> Vec<Buffer> {
        let Dims { i, h, .. } = self.dims;
        let xh = Buffer {
            width: i + 1 + h,
            order: Order::Block,
        };
        let act = Buffer {
            width: h,
            order: Order::Time,
        };
        vec![xh, act]
    }
    /// The pre-activations.
    fn scratch(&self) -> usize {
        self.dims.h
    }
    fn grads(&self) -> Vec<Buffer> {
        let dz = Buffer {
            width: self.dims.h,
            order: Order::Block,
        };
        vec![dz]
    }
    fn work(&self) -> (usize, usize) {
        (self.dims.i + 1 + self.dims.h, self.dims.h)
    }
    fn pack(&self, weights: [&[f32]; 4]) -> joined::Joined {
        joined::pack(weights, self.dims)
    }

    fn forward(&self, w: &joined::Joined, s: &mut Forward) {
        let Dims { i, h, .. } = self.dims;
        let [xh, act] = &mut s.saved[..] else {
            unreachable!("two saved buffers")
        };
        let x = (s.x, s.x_rs);
        joined::step_product(xh, x, s.state[0], w, (i, h, s.from_zero), s.scratch);
        let act: Slots = std::mem::take(act);
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx512() {
            // SAFETY: the CPU has AVX-512; the function only does slice arithmetic.
            return unsafe { activate_avx512(s, act, self.relu, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::backend::cpu::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the function only does slice arithmetic.
            return unsafe { activate_avx2(s, act, self.relu, h) };
        }
        activate::<false>(s, act, self.relu, h)
    }

    /// `dz = m·dh_t ⊙ f'`, `(1 − m)·dh_t` written over dh, then the
    /// recurrent product into dh.
    fn backward(&self, s: &mut Backward, whh: Option<&PackedRhs>) {
        let h = self.dims.h;
        let act = s.saved[1];
        let dh = &mut *s.dstate[0];
        let rows = dh.len() / h;
        for r in 0..rows {
            let m = s.m.map_or(1.0, |m| m[r]);
            let rs = r * h..(r + 1) * h;
            let grads = s.grads[0][rs.clone()].iter_mut().zip(&mut dh[rs.clone()]);
            for ((dz, dh), (&a, &dout)) in grads.zip(act[rs.clone()].iter().zip(&s.dout[rs])) {
                let dh_t = *dh + m * dout;
                let slope = match self.relu {
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
            data: unsafe { assume_init(&mut *s.grads[0]) },
            rs: h,
            cs: 1,
        };
        gemm_packed(rows, dz, whh, dh, h, true);
    }

    fn block_share(&self, saved: &[&[f32]], grads: &[&[f32]]) -> Option<Vec<f32>> {
        let Dims { i, h, .. } = self.dims;
        let precision = self.dims().precision;
        Some(joined::block_share(
            saved[0],
            grads[0],
            (i + 1 + h, h),
            precision,
        ))
    }

    fn gradients(&self, f: Finish) -> [Option<Vec<f32>>; 5] {
        joined::gradients(f, self.dims, self.dims.h)
    }
}
