//! What the RNN and the LSTM share: one product per step,
//! `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ`, whose left operand `[x_t | 1 | h_{t−1}]`
//! is kept (block-major) for the weight gradients, where its column of
//! ones gives the bias gradient.

use super::blocks::to_time_major;
use super::engine::{Dims, Finish};
use crate::autocast::Precision;
use crate::backend::cpu::matmul::{gemm_new_at, gemm_new_split_k, sum_parts, MatRef};
use crate::backend::cpu::packed_gemm::{gemm_packed_prefix, PackedRhs};
use crate::backend::cpu::small_gemm::Strided;
use crate::backend::cpu::uninit::{assume_init, write_copy, Slots};

/// Writes the rows `[x_r | 1 | h_r]` of a step (`I + 1 + H` each) into
/// `xh`, the left operand of an op that multiplies them by
/// `[W_ih | b | W_hh]ᵀ` (the RNN's and the LSTM's), and returns them; x's
/// rows lie `x_rs` apart.
pub(super) fn joined_rows<'a>(
    xh: Slots<'a>,
    x: &[f32],
    x_rs: usize,
    h_rows: &[f32],
    (i, h): (usize, usize),
) -> &'a mut [f32] {
    let k = i + 1 + h;
    for (r, row) in xh.chunks_mut(k).enumerate() {
        let (xp, rest) = row.split_at_mut(i);
        write_copy(xp, &x[r * x_rs..][..i]);
        rest[0].write(1.0);
        write_copy(&mut rest[1..], &h_rows[r * h..(r + 1) * h]);
    }
    // SAFETY: every row's I + 1 + H slots were just written.
    unsafe { assume_init(xh) }
}

/// A block's share of `[dW_ih | db | dW_hh]ᵀ = Σ [x_t | 1 | h_{t−1}]ᵀ·dz_t`
/// over its rows of every step (`xh` `[rows, k]`, `dz` `[rows, g]`), on
/// the thread that wrote them.
pub(super) fn block_share(
    xh: &[f32],
    dz: &[f32],
    (k, g): (usize, usize),
    precision: Precision,
) -> Vec<f32> {
    let rows = xh.len() / k;
    let xh = MatRef::row_major(xh, rows, k);
    gemm_new_at(precision, xh.t(), MatRef::row_major(dz, rows, g), 1)
}

/// The gradients of x, W_ih, W_hh, b_ih and b_hh of a cell whose step
/// multiplies `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` (`g` = G·H outputs), from
/// its sweep back: the gate gradients `dz` (`grads[0]`) and the saved
/// `[x_t | 1 | h_{t−1}]` (`saved[0]`), both block-major, and the blocks'
/// shares of the weight gradients (none when one block left the product to
/// all the threads).
pub(super) fn gradients(f: Finish, dims: Dims, g: usize) -> [Option<Vec<f32>>; 5] {
    let Dims {
        t,
        n,
        i,
        h,
        precision,
    } = dims;
    let threads = crate::threads::num_threads();
    let want = |k: usize| f.want[k];
    let k = i + 1 + h;
    let (dz, xh) = (&f.grads[0], &f.saved[0]);
    let dz_all = MatRef::row_major(dz, t * n, g);
    let dx = want(0).then(|| {
        let dx = gemm_new_at(precision, dz_all, MatRef::row_major(f.w_ih, g, i), threads);
        // (one block: already in time order)
        match f.rb >= n {
            true => dx,
            false => to_time_major(&dx, t, n, i, f.rb),
        }
    });
    // [dW_ih | db | dW_hh]ᵀ: the blocks' shares summed, or one product, its
    // K = T·N rows cut between the threads; its row I, from the column of
    // ones, is the bias gradient
    let dw_t = (1..=4).any(want).then(|| match f.shares.is_empty() {
        false => sum_parts(f.shares),
        true => gemm_new_split_k(
            precision,
            MatRef::row_major(xh, t * n, k).t(),
            dz_all,
            threads,
        ),
    });
    // rows lo..lo + len of dw_t [k, g], transposed: [g, len]
    let rows_t = |lo: usize, len: usize| {
        let dw_t = dw_t.as_ref().expect("computed when wanted");
        let mut out = Vec::with_capacity(g * len);
        for c in 0..g {
            out.extend((lo..lo + len).map(|r| dw_t[r * g + c]));
        }
        out
    };
    let dwih = want(1).then(|| rows_t(0, i));
    let dwhh = want(2).then(|| rows_t(i + 1, h));
    let db = (want(3) || want(4)).then(|| match precision {
        Precision::F32 => rows_t(i, 1),
        // the bias joined no product (see Joined): Σ_rows dz in f32
        Precision::Bf16 => {
            let mut db = vec![0f32; g];
            for row in dz.chunks(g.max(1)) {
                db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            db
        }
    });
    [
        dx,
        dwih,
        dwhh,
        db.clone().filter(|_| want(3)),
        db.filter(|_| want(4)),
    ]
}

/// The step's product `z = [x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` (`[rows, g]`),
/// writing its left operand into the kept `xh`; the first step from a zero
/// state stops before the W_hh rows, which would multiply zeros.
pub(super) fn step_product(
    xh: Slots,
    (x, x_rs): (&[f32], usize),
    h_rows: &[f32],
    w: &Joined,
    (i, h, from_zero): (usize, usize, bool),
    z: &mut [f32],
) {
    let rows = h_rows.len() / h;
    let k = i + 1 + h;
    let xh = Strided {
        data: joined_rows(xh, x, x_rs, h_rows, (i, h)),
        rs: k,
        cs: 1,
    };
    let k_used = if from_zero { i + 1 } else { k };
    let g = z.len() / rows.max(1);
    gemm_packed_prefix(rows, xh, &w.w, k_used, z, g, false);
    if let Some(bias) = &w.bias {
        for row in z.chunks_mut(g.max(1)) {
            row.iter_mut().zip(bias).for_each(|(z, b)| *z += b);
        }
    }
}

/// The weights of a step's product: `[W_ih | b_ih + b_hh | W_hh]ᵀ`
/// packed, `[I + 1 + H, G·H]` (the bias before W_hh, so that a first step
/// from a zero state can stop before it). At bf16 the bias row is zero
/// and the bias is added to the product in f32 instead: a bias is not a
/// product's operand, and rounding it would move every output.
pub(super) struct Joined {
    w: PackedRhs,
    bias: Option<Vec<f32>>,
}

/// The weights of `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` at the products'
/// precision ([`Joined`]).
pub(super) fn pack([wih, whh, bih, bhh]: [&[f32]; 4], dims: Dims) -> Joined {
    let bias: Vec<f32> = bih.iter().zip(bhh).map(|(a, b)| a + b).collect();
    let (i, h, g) = (dims.i, dims.h, bias.len());
    match dims.precision {
        Precision::F32 => Joined {
            w: PackedRhs::transposed(&[(wih, i), (&bias, 1), (whh, h)], g),
            bias: None,
        },
        Precision::Bf16 => Joined {
            w: PackedRhs::transposed(&[(wih, i), (&vec![0.0; g], 1), (whh, h)], g)
                .with_precision(Precision::Bf16),
            bias: Some(bias),
        },
    }
}
