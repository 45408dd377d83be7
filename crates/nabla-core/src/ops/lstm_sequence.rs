//! A whole LSTM direction over a sequence as one op: one product per step,
//! `[x_t | 1 | h]·[W_ih | b | W_hh]ᵀ` against weights packed once, the cell fused
//! after it, and backpropagation through time with one product per step plus
//! two large ones for the weight and input gradients. Rows of the batch are
//! independent, so each thread takes a block of rows through every step. No
//! tensor is allocated per step, and no graph node either.
//!
//! Inputs: x `[T, N, I]`, w_ih `[4H, I]`, w_hh `[4H, H]`, b_ih, b_hh `[4H]`,
//! h0, c0 `[N, H]`; an optional mask `[T, N]` (1 inside a sequence, 0 past
//! its end) and the direction. Output `[T + 2, N, H]`: the output of every
//! step, then h_n, then c_n. Step t (in processing order):
//! `z = W_ih·x_t + b_ih + W_hh·h + b_hh`, `(h', c') = cell(z, c)` as in
//! [`Tensor::lstm_cell`], `h ← m·h' + (1 − m)·h`, `c ← m·c' + (1 − m)·c`,
//! `out_t = m·h`.
//!
//! Backward, from the gradients of the outputs and of h_n, c_n, walking the
//! steps in reverse: `dh_t = dh + m·dout_t`, the cell's backward on
//! `(m·dh_t, m·dc)` gives dz_t and dc through the forget gate; then
//! `dh ← (1 − m)·dh_t + W_hhᵀ·dz_t`, `dc ← (1 − m)·dc + dc_cell`. Finally
//! `[dW_ih | db | dW_hh] = Σ dz_tᵀ·[x_t | 1 | h_{t−1}]`, one product per
//! block of rows over all its steps (the saved `[x_t | 1 | h_{t−1}]` and dz
//! are laid out block by block), and `dx_t = W_ih·dz_t` as one GEMM.
//!
//! The CPU's kernel: `backend/cpu/recurrent/lstm.rs` (the cell) in the
//! engine every cell shares (`engine.rs`); other backends run the composed
//! steps (`sequence_steps.rs`) until they have one.

use super::sequence;
use crate::backend::Cell;
use crate::{Result, Tensor};

impl Tensor {
    /// One LSTM direction over a whole sequence; see the module docs.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_sequence(
        &self,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> Result<Tensor> {
        let weights = [w_ih, w_hh, b_ih, b_hh];
        let op = "lstm_sequence";
        sequence::direction(op, Cell::Lstm, self, weights, &[h0, c0], mask, reverse)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_lstm_sequence_both_directions_and_masks() {
        let inputs = [
            rand_input(&[3, 2, 3], 1),
            rand_input(&[8, 3], 2),
            rand_input(&[8, 2], 3),
            rand_input(&[8], 4),
            rand_input(&[8], 5),
            rand_input(&[2, 2], 6),
            rand_input(&[2, 2], 7),
        ];
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, Some(vec![1., 1., 1., 0., 1., 0.])),
            (true, Some(vec![1., 1., 0., 1., 0., 1.])),
        ] {
            let f = |x: &[Tensor]| {
                x[0].lstm_sequence(
                    &x[1],
                    &x[2],
                    &x[3],
                    &x[4],
                    &x[5],
                    &x[6],
                    mask.clone(),
                    reverse,
                )
            };
            gradcheck(f, &inputs, Default::default())
                .unwrap_or_else(|e| panic!("reverse {reverse}: {e}"));
        }
    }

    /// The input is read where it lies: a batch-first view (rows in place)
    /// and a view whose features are strided (read through a copy) give
    /// the values and gradients of a contiguous input, bit for bit.
    #[test]
    fn strided_inputs_give_the_values_of_a_contiguous_one() {
        let (t, n, i) = (4, 3, 5);
        let data = rand_input(&[n, t, i], 31).to_vec();
        let weights: Vec<Tensor> = [&[16usize, 5][..], &[16, 4], &[16], &[16]]
            .iter()
            .enumerate()
            .map(|(k, s)| rand_input(s, 32 + k as u64))
            .collect();
        let zeros = Tensor::zeros([n, 4]);
        let run = |make: &dyn Fn(Tensor) -> Tensor| {
            let leaf = Tensor::from_vec(data.clone(), [n, t, i])
                .unwrap()
                .requires_grad_(true);
            let x = make(leaf.clone());
            assert_eq!(x.shape(), [t, n, i]);
            let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|k| weights[k].clone());
            let y = x
                .lstm_sequence(&w_ih, &w_hh, &b_ih, &b_hh, &zeros, &zeros, None, false)
                .unwrap();
            y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
            (y.to_vec(), leaf.grad().unwrap().to_vec())
        };
        let contiguous = run(&|x| x.transpose(0, 1).unwrap().contiguous().unwrap());
        let batch_first = run(&|x| x.transpose(0, 1).unwrap());
        // features strided: [N, T, I] stored as [I, N, T]
        let strided = run(&|x| {
            let stored = x.permute(&[2, 0, 1]).unwrap().contiguous().unwrap();
            stored.permute(&[2, 1, 0]).unwrap()
        });
        assert_eq!(batch_first, contiguous);
        assert_eq!(strided, contiguous);
    }

    /// Without gradients only one step is buffered: the outputs and final
    /// states are the same as with the full buffers.
    #[test]
    fn evaluation_without_gradients_gives_the_same_values() {
        let inputs = [
            rand_input(&[5, 3, 4], 11),
            rand_input(&[12, 4], 12),
            rand_input(&[12, 3], 13),
            rand_input(&[12], 14),
            rand_input(&[12], 15),
            rand_input(&[3, 3], 16),
            rand_input(&[3, 3], 17),
        ];
        let mask = Some(
            (0..15)
                .map(|k| if k % 7 == 6 { 0.0 } else { 1.0 })
                .collect(),
        );
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, mask.clone()),
            (true, mask),
        ] {
            let f = |x: &[Tensor]| {
                x[0].lstm_sequence(
                    &x[1],
                    &x[2],
                    &x[3],
                    &x[4],
                    &x[5],
                    &x[6],
                    mask.clone(),
                    reverse,
                )
                .unwrap()
                .to_vec()
            };
            let with_grad = f(&inputs);
            let without = crate::no_grad(|| f(&inputs));
            assert_eq!(with_grad, without, "reverse {reverse}");
        }
    }

    /// With h0 needing no gradient the last step back skips its recurrent
    /// product; every other gradient is the same, bit for bit.
    #[test]
    fn gradients_without_an_initial_state_gradient_are_the_same() {
        let grads = |h0_grad: bool, reverse: bool| {
            let leaf = |shape: &[usize], seed| rand_input(shape, seed).requires_grad_(true);
            let x = leaf(&[4, 3, 5], 21);
            let w = [
                leaf(&[16, 5], 22),
                leaf(&[16, 4], 23),
                leaf(&[16], 24),
                leaf(&[16], 25),
            ];
            let (h0, c0) = (
                rand_input(&[3, 4], 26).requires_grad_(h0_grad),
                leaf(&[3, 4], 27),
            );
            let y = x
                .lstm_sequence(&w[0], &w[1], &w[2], &w[3], &h0, &c0, None, reverse)
                .unwrap();
            // every output, h_n and c_n weighted differently
            let weights = rand_input(&[6, 3, 4], 28);
            y.mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert_eq!(h0.grad().is_some(), h0_grad);
            let mut all = vec![x.grad().unwrap().to_vec(), c0.grad().unwrap().to_vec()];
            all.extend(w.iter().map(|w| w.grad().unwrap().to_vec()));
            all
        };
        for reverse in [false, true] {
            assert_eq!(
                grads(true, reverse),
                grads(false, reverse),
                "reverse {reverse}"
            );
        }
    }

    /// From a zero initial state the first step's product stops before the
    /// W_hh rows; a state of 1e-30 takes the whole product and must give the
    /// same outputs and gradients (its h·W_hh terms vanish against the rest).
    #[test]
    fn a_zero_initial_state_skips_only_zero_terms() {
        let run = |h0_value: f32, reverse: bool, mask: Option<Vec<f32>>| {
            let leaf = |shape: &[usize], seed| rand_input(shape, seed).requires_grad_(true);
            let x = leaf(&[4, 3, 5], 31);
            let w = [
                leaf(&[16, 5], 32),
                leaf(&[16, 4], 33),
                leaf(&[16], 34),
                leaf(&[16], 35),
            ];
            let h0 = Tensor::full([3, 4], h0_value).requires_grad_(true);
            let c0 = leaf(&[3, 4], 36);
            let y = x
                .lstm_sequence(&w[0], &w[1], &w[2], &w[3], &h0, &c0, mask, reverse)
                .unwrap();
            y.mul(&rand_input(&[6, 3, 4], 37))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut all = vec![y.to_vec(), x.grad().unwrap().to_vec()];
            all.extend([&h0, &c0].iter().map(|s| s.grad().unwrap().to_vec()));
            all.extend(w.iter().map(|w| w.grad().unwrap().to_vec()));
            all
        };
        let mask = Some(vec![0., 1., 1., 1., 1., 1., 1., 0., 1., 1., 1., 1.]);
        for (reverse, mask) in [
            (false, None),
            (true, None),
            (false, mask.clone()),
            (true, mask),
        ] {
            let (zero, tiny) = (run(0.0, reverse, mask.clone()), run(1e-30, reverse, mask));
            for (a, b) in zero.iter().zip(&tiny) {
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= 1e-6 * (1.0 + v.abs()),
                        "reverse {reverse}: {u} vs {v}"
                    );
                }
            }
        }
    }

    fn op(
        x: &Tensor,
        w: &[Tensor],
        s: &[Tensor],
        mask: Option<Vec<f32>>,
        reverse: bool,
    ) -> crate::Result<Tensor> {
        x.lstm_sequence(&w[0], &w[1], &w[2], &w[3], &s[0], &s[1], mask, reverse)
    }

    /// No rows, no steps or no input features give outputs and gradients
    /// of the right (possibly empty) shapes; no hidden units is an error.
    #[test]
    fn empty_dimensions_work_and_no_hidden_units_is_an_error() {
        super::sequence::testing::empty_dimensions(&op, 4, 2, 2);
    }

    /// A batch split into blocks of rows (one per thread: the product's
    /// work is over the threshold) gives each row what it gives alone.
    #[test]
    fn a_batch_split_between_threads_equals_each_row_alone() {
        super::sequence::testing::rows_alone(&op, 4, (5, 18, 8, 64), 2);
    }
}
