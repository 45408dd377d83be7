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
//!
//! The CPU's kernel: `backend/cpu/recurrent/gru.rs` (the cell) in the
//! engine every cell shares (`engine.rs`); other backends run the composed
//! steps (`sequence_steps.rs`) until they have one.

use super::sequence;
use crate::backend::Cell;
use crate::{Result, Tensor};

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
        let weights = [w_ih, w_hh, b_ih, b_hh];
        sequence::direction(
            "gru_sequence",
            Cell::Gru,
            self,
            weights,
            &[h0],
            mask,
            reverse,
        )
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
