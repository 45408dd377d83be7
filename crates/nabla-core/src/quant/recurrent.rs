//! One direction of a dynamically quantized recurrent layer over a
//! sequence, for inference (PyTorch's dynamic quantized LSTM, GRU, RNN).
//!
//! The input `x [N, T, I]` is quantized once for the whole sequence (one
//! scale and zero point, as ATen projects a sequence's inputs at once on
//! the CPU); each step then computes `a = x_t·W_ihᵀ + ih_bias` and, with
//! `h` quantized as one tensor (its own scale and zero point),
//! `b = h·W_hhᵀ + hh_bias`, both in int8 with the biases in the epilogue,
//! then the cell in f32, on the vectorized exp-based σ and tanh the f32
//! engine uses:
//!
//! - LSTM: `i, f, g, o = σ, σ, tanh, σ of (a + b)`,
//!   `c' = f·c + i·g`, `h' = o·tanh(c')`;
//! - GRU: `r = σ(a_r + b_r)`,
//!   `u = σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`, `h' = (1 − u)·n + u·h`;
//! - RNN: `h' = tanh(a + b)` or `relu(a + b)`.
//!
//! The states start at zero. A step runs in blocks of rows, on the pool's
//! threads: each block's product and then its cells, while its gate values
//! are still in cache (a whole batch's gates, 2 MB for 1,000 rows of an
//! LSTM of 128 units, are not). `h` is quantized as one tensor per step,
//! as PyTorch does, so every element's arithmetic is the same at any
//! thread count.

use rayon::prelude::*;

use super::linear::QuantizedLinearWeight;
use crate::backend::cpu::math::{sigmoid_with as sigmoid, tanh_abs_with as tanh};
use crate::backend::Cell;

/// Rows of a block of cells (a task on the pool).
const ROWS: usize = 48;

thread_local! {
    /// A block's buffers, one set per thread: its inputs at a step, then
    /// the two products `a` and `b`.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = Default::default();
}

/// One direction's weights: the input and hidden products and their
/// biases (each `G·H` values, or empty).
pub struct DirectionWeights<'a> {
    pub ih: &'a QuantizedLinearWeight,
    pub ih_bias: &'a [f32],
    pub hh: &'a QuantizedLinearWeight,
    pub hh_bias: &'a [f32],
}

/// `(outputs [N, T, H], final h [N, H])` of one direction over the
/// batch-first sequence `x [N, T, I]` (row-major); `reverse` runs the
/// steps from the last.
pub fn run_direction(
    cell: Cell,
    x: &[f32],
    (n, t): (usize, usize),
    w: &DirectionWeights,
    reverse: bool,
) -> (Vec<f32>, Vec<f32>) {
    let ((i, g), (h, g2)) = (w.ih.features(), w.hh.features());
    assert_eq!(x.len(), n * t * i, "run_direction: x is [N, T, I]");
    assert!(
        g == g2 && g == cell.gates() * h,
        "run_direction: W_ih [G·H, I], W_hh [G·H, H]"
    );
    let (mut state, mut c) = (vec![0f32; n * h], vec![0f32; n * h]);
    let mut out = vec![0f32; n * t * h];
    let nonempty = |b: &'_ [f32]| (!b.is_empty()).then_some(b).map(<[f32]>::to_vec);
    let ih_bias = w.ih.padded(nonempty(w.ih_bias).as_deref());
    let hh_bias = w.hh.padded(nonempty(w.hh_bias).as_deref());
    let fma = crate::isa::isa() >= crate::Isa::Avx2;
    let out_addr = out.as_mut_ptr() as usize;
    crate::threads::in_pool(|| {
        let qx = super::QParams::for_activations(x);
        for step in 0..t {
            let s = if reverse { t - 1 - step } else { step };
            // h quantized as one tensor, as PyTorch quantizes it
            let qh = super::QParams::for_activations(&state);
            // each block of rows: its two products, then its cells, while
            // its gate values are in cache (in buffers each thread reuses,
            // so they stay in its cache too)
            let block = |(k, (hb, cb)): (usize, (&mut [f32], &mut [f32]))| {
                SCRATCH.with_borrow_mut(|(xs, a, b)| {
                    let rows = hb.len() / h;
                    let first = k * ROWS;
                    a.resize(rows * g, 0.0);
                    b.resize(rows * g, 0.0);
                    xs.clear();
                    for r in first..first + rows {
                        xs.extend_from_slice(&x[(r * t + s) * i..][..i]);
                    }
                    w.ih.product_with(xs, rows, qx, &ih_bias, a, 1);
                    w.hh.product_with(hb, rows, qh, &hh_bias, b, 1);
                    for r in 0..rows {
                        let (hr, cr) = (&mut hb[r * h..][..h], &mut cb[r * h..][..h]);
                        cells(cell, fma, &a[r * g..][..g], &mut b[r * g..][..g], hr, cr);
                        // SAFETY: row first + r's output at step s: each block
                        // writes its own rows of `out`, which outlives the loop.
                        unsafe {
                            let o = (out_addr as *mut f32).add(((first + r) * t + s) * h);
                            std::ptr::copy_nonoverlapping(hr.as_ptr(), o, h);
                        }
                    }
                })
            };
            if n > ROWS && crate::num_threads() > 1 {
                state
                    .par_chunks_mut(ROWS * h)
                    .zip(c.par_chunks_mut(ROWS * h))
                    .enumerate()
                    .for_each(block);
            } else {
                state
                    .chunks_mut(ROWS * h)
                    .zip(c.chunks_mut(ROWS * h))
                    .enumerate()
                    .for_each(block);
            }
        }
    });
    (out, state)
}

/// One row's cell, with the vector instructions of the CPU's path.
fn cells(cell: Cell, fma: bool, a: &[f32], b: &mut [f32], h: &mut [f32], c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn with_fma(cell: Cell, a: &[f32], b: &mut [f32], h: &mut [f32], c: &mut [f32]) {
        row::<true>(cell, a, b, h, c)
    }
    #[cfg(target_arch = "x86_64")]
    if fma {
        // SAFETY: the AVX2 path (FMA with it) is only chosen where the CPU has it.
        return unsafe { with_fma(cell, a, b, h, c) };
    }
    let _ = fma;
    row::<false>(cell, a, b, h, c)
}

/// The cell on one row: `b` (the hidden product) is overwritten with the
/// activations; loops over zipped slices, which vectorize.
#[inline(always)]
fn row<const FMA: bool>(cell: Cell, a: &[f32], b: &mut [f32], h: &mut [f32], c: &mut [f32]) {
    let n = h.len();
    match cell {
        Cell::Lstm => {
            b.iter_mut().zip(a).for_each(|(z, &x)| *z += x);
            let (z_if, z_go) = b.split_at_mut(2 * n);
            let (z_g, z_o) = z_go.split_at_mut(n);
            z_if.iter_mut().for_each(|z| *z = sigmoid::<FMA>(*z));
            z_g.iter_mut().for_each(|z| *z = tanh::<FMA>(*z));
            z_o.iter_mut().for_each(|z| *z = sigmoid::<FMA>(*z));
            let (z_i, z_f) = z_if.split_at(n);
            let gates = z_i.iter().zip(z_f.iter()).zip(z_g.iter().zip(z_o.iter()));
            for ((hv, cv), ((&i, &f), (&g, &o))) in h.iter_mut().zip(c.iter_mut()).zip(gates) {
                *cv = f * *cv + i * g;
                *hv = o * tanh::<FMA>(*cv);
            }
        }
        Cell::Gru => {
            let (b_rz, b_n) = b.split_at_mut(2 * n);
            let (a_rz, a_n) = a.split_at(2 * n);
            b_rz.iter_mut()
                .zip(a_rz)
                .for_each(|(z, &x)| *z = sigmoid::<FMA>(*z + x));
            let (r, u) = b_rz.split_at(n);
            for (bn, (&an, &rv)) in b_n.iter_mut().zip(a_n.iter().zip(r)) {
                *bn = tanh::<FMA>(an + rv * *bn);
            }
            for (hv, (&nv, &uv)) in h.iter_mut().zip(b_n.iter().zip(u)) {
                *hv = (1.0 - uv) * nv + uv * *hv;
            }
        }
        Cell::Rnn { relu } => {
            for (hv, (&bv, &av)) in h.iter_mut().zip(b.iter().zip(a)) {
                let z = av + bv;
                *hv = if relu { z.max(0.0) } else { tanh::<FMA>(z) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QTensor;
    use crate::Tensor;

    /// Every cell against the plain formulas (in f64) on the same int8
    /// products (the input's projected at once, the hidden one step by
    /// step), forward and reversed, over several blocks of rows.
    #[test]
    fn cells_follow_their_formulas() {
        let (n, t, i, h) = (100, 3, 4, 5);
        for cell in [
            Cell::Lstm,
            Cell::Gru,
            Cell::Rnn { relu: false },
            Cell::Rnn { relu: true },
        ] {
            let g = cell.gates() * h;
            let weight = |cols: usize| {
                let w = QTensor::quantize(&Tensor::randn([g, cols]), true).unwrap();
                QuantizedLinearWeight::new(w).unwrap()
            };
            let (ih, hh) = (weight(i), weight(h));
            let x = Tensor::randn([n * t * i]).to_vec();
            let bias: Vec<f32> = (0..g).map(|j| j as f32 * 0.05 - 0.3).collect();
            let ih_bias: Vec<f32> = (0..g).map(|j| 0.2 - j as f32 * 0.01).collect();
            // the input projection of the whole sequence at once
            let mut projected = vec![0f32; n * t * g];
            ih.product_into(&x, n * t, Some(&ih_bias), &mut projected);
            let w = DirectionWeights {
                ih: &ih,
                ih_bias: &ih_bias,
                hh: &hh,
                hh_bias: &bias,
            };
            for reverse in [false, true] {
                // the reference: the same int8 product each step, the cell in f64
                let (mut hs, mut cs) = (vec![0f32; n * h], vec![0f64; n * h]);
                let mut want = vec![0f32; n * t * h];
                for step in 0..t {
                    let s = if reverse { t - 1 - step } else { step };
                    let x = Tensor::from_vec(hs.clone(), [n, h]).unwrap();
                    let b = hh.forward(&x, Some(&bias)).unwrap().to_vec();
                    for r in 0..n {
                        let a = &projected[(r * t + s) * g..][..g];
                        let b = &b[r * g..][..g];
                        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
                        for k in 0..h {
                            let z = |j: usize| (a[j] + b[j]) as f64;
                            let hv = match cell {
                                Cell::Lstm => {
                                    let c = sig(z(h + k)) * cs[r * h + k]
                                        + sig(z(k)) * z(2 * h + k).tanh();
                                    cs[r * h + k] = c;
                                    sig(z(3 * h + k)) * c.tanh()
                                }
                                Cell::Gru => {
                                    let rg = sig(z(k));
                                    let u = sig(z(h + k));
                                    let nv =
                                        (a[2 * h + k] as f64 + rg * b[2 * h + k] as f64).tanh();
                                    (1.0 - u) * nv + u * hs[r * h + k] as f64
                                }
                                Cell::Rnn { relu: true } => z(k).max(0.0),
                                Cell::Rnn { relu: false } => z(k).tanh(),
                            };
                            want[(r * t + s) * h + k] = hv as f32;
                        }
                        for k in 0..h {
                            hs[r * h + k] = want[(r * t + s) * h + k];
                        }
                    }
                }
                let (out, last) = run_direction(cell, &x, (n, t), &w, reverse);
                let s_last = if reverse { 0 } else { t - 1 };
                for r in 0..n {
                    assert_eq!(&last[r * h..][..h], &out[(r * t + s_last) * h..][..h]);
                }
                for (o, w) in out.iter().zip(&want) {
                    // (the fast σ and tanh, and an h quantized from a
                    // slightly different value, each step)
                    assert!(
                        (o - w).abs() < 2e-2,
                        "{cell:?} reverse {reverse}: {o} vs {w}"
                    );
                }
            }
        }
    }
}
