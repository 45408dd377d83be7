//! One recurrent step's elementwise part fused (`ops/rnn_cells.rs` gives
//! the formulas): what `nn::LSTMCell` and `nn::GRUCell` run after their two
//! matmuls.

use crate::backend::cpu::math::{sigmoid, tanh};

/// What the LSTM cell keeps: σ(i), σ(f), tanh(g), σ(o) `[N, 4H]`, tanh(c')
/// and c `[N, H]`.
pub(super) struct LstmCell {
    h: usize,
    act: Vec<f32>,
    tc: Vec<f32>,
    c: Vec<f32>,
}

/// `[N, 2H]` (h' then c') from `z [N, 4H]` and `c [N, H]`.
pub(super) fn lstm_cell(z: &[f32], c: &[f32], h: usize) -> (Vec<f32>, LstmCell) {
    let n = c.len() / h;
    let mut act = vec![0f32; n * 4 * h];
    let mut tc = vec![0f32; n * h];
    let mut out = vec![0f32; n * 2 * h];
    for r in 0..n {
        let (zr, ar) = (
            &z[r * 4 * h..(r + 1) * 4 * h],
            &mut act[r * 4 * h..(r + 1) * 4 * h],
        );
        for k in 0..h {
            let (i, f) = (sigmoid(zr[k]), sigmoid(zr[h + k]));
            let (g, o) = (tanh(zr[2 * h + k]), sigmoid(zr[3 * h + k]));
            let c_new = f * c[r * h + k] + i * g;
            let t = tanh(c_new);
            (ar[k], ar[h + k], ar[2 * h + k], ar[3 * h + k]) = (i, f, g, o);
            tc[r * h + k] = t;
            out[r * 2 * h + k] = o * t;
            out[r * 2 * h + h + k] = c_new;
        }
    }
    let c = c.to_vec();
    (out, LstmCell { h, act, tc, c })
}

/// dz `[N, 4H]` and dc `[N, H]` from the output's gradient `[N, 2H]`.
pub(super) fn lstm_cell_backward(s: &LstmCell, gv: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let h = s.h;
    let n = s.c.len() / h;
    let mut dz = vec![0f32; n * 4 * h];
    let mut dc_prev = vec![0f32; n * h];
    for r in 0..n {
        for k in 0..h {
            let a = &s.act[r * 4 * h..];
            let (i, f, g, o) = (a[k], a[h + k], a[2 * h + k], a[3 * h + k]);
            let t = s.tc[r * h + k];
            let (dh, dc_out) = (gv[r * 2 * h + k], gv[r * 2 * h + h + k]);
            let dc = dc_out + dh * o * (1.0 - t * t);
            let d = &mut dz[r * 4 * h..];
            d[k] = dc * g * i * (1.0 - i);
            d[h + k] = dc * s.c[r * h + k] * f * (1.0 - f);
            d[2 * h + k] = dc * i * (1.0 - g * g);
            d[3 * h + k] = dh * t * o * (1.0 - o);
            dc_prev[r * h + k] = dc * f;
        }
    }
    (dz, dc_prev)
}

/// What the GRU cell keeps: r, u, n `[N, 3H]`, b `[N, 3H]` and h `[N, H]`.
pub(super) struct GruCell {
    hs: usize,
    act: Vec<f32>,
    b: Vec<f32>,
    h: Vec<f32>,
}

/// `h' [N, H]` from `a`, `b` `[N, 3H]` and `h [N, H]`.
pub(super) fn gru_cell(a: &[f32], b: &[f32], h: &[f32], hs: usize) -> (Vec<f32>, GruCell) {
    let n = h.len() / hs;
    let mut act = vec![0f32; n * 3 * hs];
    let mut out = vec![0f32; n * hs];
    for row in 0..n {
        let (ar, br) = (&a[row * 3 * hs..], &b[row * 3 * hs..]);
        for k in 0..hs {
            let r = sigmoid(ar[k] + br[k]);
            let u = sigmoid(ar[hs + k] + br[hs + k]);
            let nn = tanh(ar[2 * hs + k] + r * br[2 * hs + k]);
            let s = &mut act[row * 3 * hs..];
            (s[k], s[hs + k], s[2 * hs + k]) = (r, u, nn);
            out[row * hs + k] = (1.0 - u) * nn + u * h[row * hs + k];
        }
    }
    let saved = GruCell {
        hs,
        act,
        b: b.to_vec(),
        h: h.to_vec(),
    };
    (out, saved)
}

/// da, db `[N, 3H]` and dh `[N, H]` from the output's gradient `[N, H]`.
pub(super) fn gru_cell_backward(s: &GruCell, gv: &[f32]) -> [Vec<f32>; 3] {
    let hs = s.hs;
    let n = s.h.len() / hs;
    let (mut da, mut db, mut dh) = (
        vec![0f32; n * 3 * hs],
        vec![0f32; n * 3 * hs],
        vec![0f32; n * hs],
    );
    for row in 0..n {
        for k in 0..hs {
            let a = &s.act[row * 3 * hs..];
            let (r, u, nn) = (a[k], a[hs + k], a[2 * hs + k]);
            let g = gv[row * hs + k];
            let dn = g * (1.0 - u) * (1.0 - nn * nn);
            let du = g * (s.h[row * hs + k] - nn) * u * (1.0 - u);
            let dr = dn * s.b[row * 3 * hs + 2 * hs + k] * r * (1.0 - r);
            let (a, bb) = (&mut da[row * 3 * hs..], &mut db[row * 3 * hs..]);
            (a[k], a[hs + k], a[2 * hs + k]) = (dr, du, dn);
            (bb[k], bb[hs + k], bb[2 * hs + k]) = (dr, du, dn * r);
            dh[row * hs + k] = g * u;
        }
    }
    [da, db, dh]
}
