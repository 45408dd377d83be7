//! A whole plain-RNN direction over a sequence as one op, as
//! [`lstm_sequence`](Tensor::lstm_sequence) is for the LSTM: one product per
//! step, `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` against weights packed once,
//! the activation fused after it, and backpropagation through time inside
//! the op. Each thread takes a block of batch rows through every step; no
//! tensor and no graph node per step.
//!
//! Inputs: x `[T, N, I]`, w_ih `[H, I]`, w_hh `[H, H]`, b_ih, b_hh `[H]`,
//! h0 `[N, H]`; an optional mask `[T, N]` (1 inside a sequence, 0 past its
//! end), the nonlinearity (tanh, or ReLU with `relu`) and the direction.
//! Output `[T + 1, N, H]`: the output of every step, then h_n. Step t (in
//! processing order): `h' = f(W_ih·x_t + b_ih + W_hh·h + b_hh)`,
//! `h ← m·h' + (1 − m)·h`, `out_t = m·h`.
//!
//! Backward, walking the steps in reverse: `dh_t = dh + m·dout_t`,
//! `dz = m·dh_t ⊙ f'` (tanh: `1 − h'²`; ReLU: 1 where `h' > 0`), then
//! `dh ← (1 − m)·dh_t + W_hhᵀ·dz`. Finally `[dW_ih | db | dW_hh] =
//! Σ dzᵀ·[x_t | 1 | h_{t−1}]`, one product per block of rows over all its
//! steps (summed across the blocks), and `dx_t = W_ih·dz` as one GEMM.
//!
//! The CPU's kernel: `backend/cpu/recurrent/rnn.rs` (the cell) in the
//! engine every cell shares (`engine.rs`); other backends run the composed
//! steps (`sequence_steps.rs`) until they have one.

use super::sequence;
use crate::backend::Cell;
use crate::{Result, Tensor};

impl Tensor {
    /// One plain-RNN direction over a whole sequence (tanh, or ReLU with
    /// `relu`); see the module docs.
    #[allow(clippy::too_many_arguments)]
    pub fn rnn_sequence(
        &self,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        h0: &Tensor,
        mask: Option<Vec<f32>>,
        relu: bool,
        reverse: bool,
    ) -> Result<Tensor> {
        let weights = [w_ih, w_hh, b_ih, b_hh];
        let cell = Cell::Rnn { relu };
        sequence::direction("rnn_sequence", cell, self, weights, &[h0], mask, reverse)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    fn inputs() -> [Tensor; 6] {
        [
            rand_input(&[3, 2, 3], 51),
            rand_input(&[2, 3], 52),
            rand_input(&[2, 2], 53),
            rand_input(&[2], 54),
            rand_input(&[2], 55),
            rand_input(&[2, 2], 56),
        ]
    }

    #[test]
    fn gradcheck_rnn_sequence_both_activations_directions_and_masks() {
        for relu in [false, true] {
            for (reverse, mask) in [
                (false, None),
                (true, None),
                (false, Some(vec![1., 1., 1., 0., 1., 0.])),
                (true, Some(vec![1., 1., 0., 1., 0., 1.])),
            ] {
                let f = |x: &[Tensor]| {
                    x[0].rnn_sequence(
                        &x[1],
                        &x[2],
                        &x[3],
                        &x[4],
                        &x[5],
                        mask.clone(),
                        relu,
                        reverse,
                    )
                };
                gradcheck(f, &inputs(), Default::default())
                    .unwrap_or_else(|e| panic!("relu {relu}, reverse {reverse}: {e}"));
            }
        }
    }

    /// Step by step with tensor ops, `f(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)`,
    /// equals the fused op, and without gradients it gives the same values.
    #[test]
    fn equals_the_composed_steps_and_runs_without_gradients() {
        let x = inputs();
        for relu in [false, true] {
            let y = x[0]
                .rnn_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, relu, false)
                .unwrap();
            let mut h = x[5].clone();
            for s in 0..3 {
                let xs = x[0].narrow(0, s, 1).unwrap().squeeze(0).unwrap();
                let a = xs.matmul(&x[1].t().unwrap()).unwrap().add(&x[3]).unwrap();
                let b = h.matmul(&x[2].t().unwrap()).unwrap().add(&x[4]).unwrap();
                let z = a.add(&b).unwrap();
                h = if relu { z.relu() } else { z.tanh() }.unwrap();
                let got = y.narrow(0, s, 1).unwrap().to_vec();
                for (a, b) in got.iter().zip(h.to_vec()) {
                    assert!((a - b).abs() < 1e-5, "relu {relu}, step {s}: {a} vs {b}");
                }
            }
            // h_n is the last step's output
            let last = |k: usize| y.narrow(0, k, 1).unwrap().to_vec();
            assert_eq!(last(3), last(2));
            let without = crate::no_grad(|| {
                x[0].rnn_sequence(&x[1], &x[2], &x[3], &x[4], &x[5], None, relu, false)
                    .unwrap()
                    .to_vec()
            });
            assert_eq!(without, y.to_vec());
        }
        let err = x[0]
            .rnn_sequence(&x[1], &x[1], &x[3], &x[4], &x[5], None, false, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rnn_sequence") && err.contains("w_hh"),
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
        x.rnn_sequence(&w[0], &w[1], &w[2], &w[3], &s[0], mask, false, reverse)
    }

    /// No rows, no steps or no input features give outputs and gradients
    /// of the right (possibly empty) shapes; no hidden units is an error.
    #[test]
    fn empty_dimensions_work_and_no_hidden_units_is_an_error() {
        super::sequence::testing::empty_dimensions(&op, 1, 1, 1);
    }

    /// A batch split into blocks of rows (one per thread: the product's
    /// work is over the threshold) gives each row what it gives alone.
    #[test]
    fn a_batch_split_between_threads_equals_each_row_alone() {
        super::sequence::testing::rows_alone(&op, 1, (6, 18, 8, 128), 1);
    }
}
