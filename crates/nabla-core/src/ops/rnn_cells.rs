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

/// The gradients a fused cell's backward kernel gave, shaped as its inputs
/// and kept where they are wanted.
fn shaped(grads: Vec<crate::backend::Storage>, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
    grads
        .into_iter()
        .zip(inputs)
        .map(|(g, t)| {
            t.requires_grad()
                .then(|| Tensor::from_storage(g, t.shape()))
        })
        .collect()
}

/// The error of a backend that ran a cell forward but has no backward.
fn no_backward(op: &'static str, t: &Tensor) -> Error {
    Error::Arg {
        op,
        msg: format!("the {} backend has no backward kernel for it", t.device()),
    }
}

impl Tensor {
    /// One LSTM step's elementwise part; see the module docs.
    pub fn lstm_cell(&self, c: &Tensor) -> Result<Tensor> {
        let (n, h) = c.dims2()?;
        check("lstm_cell", self, n, 4 * h, "gates")?;
        super::same_device("lstm_cell", self, c)?;
        let be = self.backend();
        let fused = super::with_views("lstm_cell", &[self, c], |v| be.lstm_cell(v[0], v[1], h))?;
        let Some((out, saved)) = fused else {
            // this backend has no fused kernel: composed ops
            let (h_new, c_new) = super::sequence_steps::lstm_cell(self, c)?;
            return Tensor::cat(&[h_new, c_new], 1);
        };
        let y = Tensor::from_storage(out, &[n, 2 * h]);
        Ok(y.attach("LstmCellBackward", &[self, c], move |dy, inputs| {
            let grads = dy.with_view("lstm_cell", |d| be.lstm_cell_backward(&saved, d))?;
            let (dz, dc) = grads.ok_or_else(|| no_backward("lstm_cell", dy))?;
            Ok(shaped(vec![dz, dc], inputs))
        }))
    }

    /// One GRU step's elementwise part; see the module docs. `self` is `a`.
    pub fn gru_cell(&self, b: &Tensor, h: &Tensor) -> Result<Tensor> {
        let (n, hs) = h.dims2()?;
        check("gru_cell", self, n, 3 * hs, "input gates")?;
        check("gru_cell", b, n, 3 * hs, "hidden gates")?;
        super::same_device("gru_cell", self, b)?;
        super::same_device("gru_cell", self, h)?;
        let be = self.backend();
        let fused = super::with_views("gru_cell", &[self, b, h], |v| {
            be.gru_cell(v[0], v[1], v[2], hs)
        })?;
        let Some((out, saved)) = fused else {
            // this backend has no fused kernel: composed ops
            return super::sequence_steps::gru_cell(self, b, h);
        };
        let y = Tensor::from_storage(out, &[n, hs]);
        Ok(
            y.attach("GruCellBackward", &[self, b, h], move |dy, inputs| {
                let grads = dy.with_view("gru_cell", |d| be.gru_cell_backward(&saved, d))?;
                let grads = grads.ok_or_else(|| no_backward("gru_cell", dy))?;
                Ok(shaped(Vec::from(grads), inputs))
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
