//! Fused recurrent cells: the elementwise part of one LSTM or GRU step as a
//! single op, forward and backward, instead of a dozen small ops per step.
//! The matrix products around them stay ordinary matmuls.
//!
//! **LSTM** `lstm_cell(z [N, 4H], c [N, H]) → [N, 2H]` (h then c'), with
//! `z = W_ih·x + b_ih + W_hh·h + b_hh` split into gates i, f, g, o:
//! `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`.
//! Backward, from `dh` and `dc'` (the two halves of the output gradient):
//! `dc = dc' + dh·σ(o)·(1 − tanh²c')`, `dc_prev = dc·σ(f)`,
//! `dz_i = dc·tanh(g)·σ(i)(1−σ(i))`, `dz_f = dc·c·σ(f)(1−σ(f))`,
//! `dz_g = dc·σ(i)·(1−tanh²g)`, `dz_o = dh·tanh c'·σ(o)(1−σ(o))`.
//!
//! **GRU** `gru_cell(a [N, 3H], b [N, 3H], h [N, H]) → h' [N, H]` with
//! `a = W_ih·x + b_ih`, `b = W_hh·h + b_hh` split into r, z, n:
//! `r = σ(a_r + b_r)`, `u = σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`,
//! `h' = (1 − u)·n + u·h`. Backward: `dn = dh'(1 − u)(1 − n²)`,
//! `du = dh'(h − n)·u(1 − u)`, `dr = dn·b_n·r(1 − r)`; `da = (dr, du, dn)`,
//! `db = (dr, du, dn·r)`, `dh = dh'·u`.

use crate::backend::cpu::math::{sigmoid, tanh};
use crate::{Error, Result, Tensor};

fn check(op: &'static str, t: &Tensor, n: usize, width: usize, what: &str) -> Result<()> {
    if t.shape() != [n, width] {
        return Err(Error::Shape {
            op,
            msg: format!("{what} must be [{n}, {width}], got {:?}", t.shape()),
        });
    }
    Ok(())
}

impl Tensor {
    /// One LSTM step's elementwise part; see the module docs.
    pub fn lstm_cell(&self, c: &Tensor) -> Result<Tensor> {
        let (n, h) = c.dims2()?;
        check("lstm_cell", self, n, 4 * h, "gates")?;
        super::same_device("lstm_cell", self, c)?;
        if self.device() != crate::Device::Cpu {
            // this backend has no fused kernel: composed ops
            let (h_new, c_new) = super::sequence_steps::lstm_cell(self, c)?;
            return Tensor::cat(&[h_new, c_new], 1);
        }
        let (z, cv) = (self.to_vec(), c.to_vec());
        // saved for backward: activated gates [N, 4H] and tanh(c') [N, H]
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
                let c_new = f * cv[r * h + k] + i * g;
                let t = tanh(c_new);
                (ar[k], ar[h + k], ar[2 * h + k], ar[3 * h + k]) = (i, f, g, o);
                tc[r * h + k] = t;
                out[r * 2 * h + k] = o * t;
                out[r * 2 * h + h + k] = c_new;
            }
        }
        let y = Tensor::from_cpu(out, &[n, 2 * h]);
        Ok(
            y.attach("LstmCellBackward", &[self, c], move |grad, inputs| {
                let gv = grad.to_vec();
                let mut dz = vec![0f32; n * 4 * h];
                let mut dc_prev = vec![0f32; n * h];
                for r in 0..n {
                    for k in 0..h {
                        let a = &act[r * 4 * h..];
                        let (i, f, g, o) = (a[k], a[h + k], a[2 * h + k], a[3 * h + k]);
                        let t = tc[r * h + k];
                        let (dh, dc_out) = (gv[r * 2 * h + k], gv[r * 2 * h + h + k]);
                        let dc = dc_out + dh * o * (1.0 - t * t);
                        let d = &mut dz[r * 4 * h..];
                        d[k] = dc * g * i * (1.0 - i);
                        d[h + k] = dc * cv[r * h + k] * f * (1.0 - f);
                        d[2 * h + k] = dc * i * (1.0 - g * g);
                        d[3 * h + k] = dh * t * o * (1.0 - o);
                        dc_prev[r * h + k] = dc * f;
                    }
                }
                let dz = inputs[0]
                    .requires_grad()
                    .then(|| Tensor::from_cpu(dz, &[n, 4 * h]));
                let dc = inputs[1]
                    .requires_grad()
                    .then(|| Tensor::from_cpu(dc_prev, &[n, h]));
                Ok(vec![dz, dc])
            }),
        )
    }

    /// One GRU step's elementwise part; see the module docs. `self` is `a`.
    pub fn gru_cell(&self, b: &Tensor, h: &Tensor) -> Result<Tensor> {
        let (n, hs) = h.dims2()?;
        check("gru_cell", self, n, 3 * hs, "input gates")?;
        check("gru_cell", b, n, 3 * hs, "hidden gates")?;
        super::same_device("gru_cell", self, b)?;
        super::same_device("gru_cell", self, h)?;
        if self.device() != crate::Device::Cpu {
            // this backend has no fused kernel: composed ops
            return super::sequence_steps::gru_cell(self, b, h);
        }
        let (av, bv, hv) = (self.to_vec(), b.to_vec(), h.to_vec());
        // saved: r, u, n per element
        let mut act = vec![0f32; n * 3 * hs];
        let mut out = vec![0f32; n * hs];
        for row in 0..n {
            let (ar, br) = (&av[row * 3 * hs..], &bv[row * 3 * hs..]);
            for k in 0..hs {
                let r = sigmoid(ar[k] + br[k]);
                let u = sigmoid(ar[hs + k] + br[hs + k]);
                let nn = tanh(ar[2 * hs + k] + r * br[2 * hs + k]);
                let s = &mut act[row * 3 * hs..];
                (s[k], s[hs + k], s[2 * hs + k]) = (r, u, nn);
                out[row * hs + k] = (1.0 - u) * nn + u * hv[row * hs + k];
            }
        }
        let y = Tensor::from_cpu(out, &[n, hs]);
        Ok(
            y.attach("GruCellBackward", &[self, b, h], move |grad, inputs| {
                let gv = grad.to_vec();
                let (mut da, mut db, mut dh) = (
                    vec![0f32; n * 3 * hs],
                    vec![0f32; n * 3 * hs],
                    vec![0f32; n * hs],
                );
                for row in 0..n {
                    for k in 0..hs {
                        let s = &act[row * 3 * hs..];
                        let (r, u, nn) = (s[k], s[hs + k], s[2 * hs + k]);
                        let g = gv[row * hs + k];
                        let dn = g * (1.0 - u) * (1.0 - nn * nn);
                        let du = g * (hv[row * hs + k] - nn) * u * (1.0 - u);
                        let dr = dn * bv[row * 3 * hs + 2 * hs + k] * r * (1.0 - r);
                        let (a, bb) = (&mut da[row * 3 * hs..], &mut db[row * 3 * hs..]);
                        (a[k], a[hs + k], a[2 * hs + k]) = (dr, du, dn);
                        (bb[k], bb[hs + k], bb[2 * hs + k]) = (dr, du, dn * r);
                        dh[row * hs + k] = g * u;
                    }
                }
                let w = |i: usize, v: Vec<f32>, c: usize| {
                    inputs[i]
                        .requires_grad()
                        .then(|| Tensor::from_cpu(v, &[n, c]))
                };
                Ok(vec![w(0, da, 3 * hs), w(1, db, 3 * hs), w(2, dh, hs)])
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_fused_cells() {
        let f = |x: &[Tensor]| x[0].lstm_cell(&x[1]);
        gradcheck(
            f,
            &[
                rand_input(&[3, 8], 1).mul_scalar(2.0).unwrap(),
                rand_input(&[3, 2], 2),
            ],
            Default::default(),
        )
        .unwrap();
        let f = |x: &[Tensor]| x[0].gru_cell(&x[1], &x[2]);
        let inputs = [
            rand_input(&[3, 6], 3),
            rand_input(&[3, 6], 4),
            rand_input(&[3, 2], 5),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap();
        assert!(Tensor::zeros([3, 7])
            .lstm_cell(&Tensor::zeros([3, 2]))
            .is_err());
    }

    #[test]
    fn lstm_cell_equals_the_composed_formula() {
        let (z, c) = (
            rand_input(&[2, 12], 7).mul_scalar(2.0).unwrap(),
            rand_input(&[2, 3], 8),
        );
        let out = z.lstm_cell(&c).unwrap().to_vec();
        let g = |k: usize| z.narrow(1, 3 * k, 3).unwrap();
        let c_new = g(1)
            .sigmoid()
            .unwrap()
            .mul(&c)
            .unwrap()
            .add(&g(0).sigmoid().unwrap().mul(&g(2).tanh().unwrap()).unwrap())
            .unwrap();
        let h = g(3).sigmoid().unwrap().mul(&c_new.tanh().unwrap()).unwrap();
        let want = Tensor::cat(&[h, c_new], 1).unwrap().to_vec();
        out.iter()
            .zip(&want)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
    }
}
