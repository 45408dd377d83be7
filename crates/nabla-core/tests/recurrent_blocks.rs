//! At two threads a batch big enough is split into blocks of rows, one per
//! thread, each taking its rows through every step and adding up its own
//! share of the weight gradients (`ops/sequence.rs`). Whatever the machine
//! has, these run at two threads and check that a split batch gives what
//! each of its rows gives alone: outputs, and the gradients of the input,
//! the weights and the initial states, for the LSTM, the GRU and the plain
//! RNN.

use std::sync::Once;

use nabla_core::{set_num_threads, Tensor};

/// Deterministic values in [−0.5, 0.5), marked as needing a gradient.
fn leaf(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|j| ((j * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    Tensor::from_vec(v, shape).unwrap().requires_grad_(true)
}

fn grads(ts: &[&Tensor]) -> Vec<Vec<f32>> {
    ts.iter().map(|t| t.grad().unwrap().to_vec()).collect()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{what}[{j}]: {x} vs {y}"
        );
    }
}

/// A recurrent op on `(x, weights [w_ih, w_hh, b_ih, b_hh], initial
/// states, mask, reverse)`.
type Op<'a> = &'a dyn Fn(&Tensor, &[&Tensor], &[&Tensor], Vec<f32>, bool) -> Tensor;

/// Runs `op` (with `gates` gates and `n_states` initial states, its output
/// `[t + extra, n, h]`) on a batch split into two blocks and on each row
/// alone, and compares outputs and gradients.
fn split_batch_equals_rows_alone(op: Op, gates: usize, n_states: usize, extra: usize) {
    static TWO_THREADS: Once = Once::new();
    TWO_THREADS.call_once(|| set_num_threads(2));
    // a step's product over 2²⁰ multiply-adds in all (t·n·(i + 1 + h)·4h,
    // t·n·h·3h, t·n·(i + 1 + h)·h): two blocks of 10 rows
    let (t, n, i) = (6, 20, 8);
    let h = if gates == 1 { 128 } else { 64 };
    let x = leaf(&[t, n, i], 1);
    let weights = [
        leaf(&[gates * h, i], 2),
        leaf(&[gates * h, h], 3),
        leaf(&[gates * h], 4),
        leaf(&[gates * h], 5),
    ];
    let weights: Vec<&Tensor> = weights.iter().collect();
    let states: Vec<Tensor> = (0..n_states).map(|k| leaf(&[n, h], 6 + k)).collect();
    // row r is 1 + r mod t steps long
    let mask: Vec<f32> = (0..t * n)
        .map(|j| ((j / n) < 1 + (j % n) % t) as u8 as f32)
        .collect();
    let c = leaf(&[t + extra, n, h], 9).detach();
    for reverse in [false, true] {
        // a loss that reads every output and final state
        let run = |x: &Tensor, states: &[&Tensor], mask: Vec<f32>, c: &Tensor| {
            let y = op(x, &weights, states, mask, reverse);
            y.mul(c).unwrap().sum_all().unwrap().backward().unwrap();
            y.to_vec()
        };
        let all: Vec<&Tensor> = [&x]
            .into_iter()
            .chain(weights.iter().copied())
            .chain(&states)
            .collect();
        all.iter().for_each(|p| p.zero_grad());
        let y = run(&x, &states.iter().collect::<Vec<_>>(), mask.clone(), &c);
        let batch_weights = grads(&weights);
        let batch_x = x.grad().unwrap();
        let batch_states = grads(&states.iter().collect::<Vec<_>>());
        all.iter().for_each(|p| p.zero_grad());
        // without gradients (one step buffered) the same values
        let state_refs: Vec<&Tensor> = states.iter().collect();
        let evaluated =
            nabla_core::no_grad(|| op(&x, &weights, &state_refs, mask.clone(), reverse));
        assert_eq!(
            evaluated.to_vec(),
            y,
            "reverse {reverse}: without gradients"
        );
        let y = Tensor::from_vec(y, [t + extra, n, h]).unwrap();
        for r in 0..n {
            // row r alone, on leaves of its own
            let row = |v: &Tensor, dim| leaf_of(&v.narrow(dim, r, 1).unwrap());
            let xr = row(&x, 1);
            let sr: Vec<Tensor> = states.iter().map(|s| row(s, 0)).collect();
            let cr = c.narrow(1, r, 1).unwrap();
            let mr = (0..t).map(|s| mask[s * n + r]).collect();
            let yr = run(&xr, &sr.iter().collect::<Vec<_>>(), mr, &cr);
            close(&y.narrow(1, r, 1).unwrap().to_vec(), &yr, "output");
            let want_x = batch_x.narrow(1, r, 1).unwrap().to_vec();
            close(&xr.grad().unwrap().to_vec(), &want_x, "input gradient");
            for (s, state) in sr.iter().enumerate() {
                let want = &batch_states[s][r * h..(r + 1) * h];
                close(
                    &state.grad().unwrap().to_vec(),
                    want,
                    "initial state gradient",
                );
            }
        }
        // the rows' weight gradients, accumulated one row at a time
        for (got, want) in grads(&weights).iter().zip(&batch_weights) {
            close(got, want, "weight gradient");
        }
    }
}

#[test]
fn an_lstm_batch_split_between_two_threads_gives_each_row_its_own_result() {
    let op = |x: &Tensor, w: &[&Tensor], s: &[&Tensor], mask, reverse| {
        x.lstm_sequence(w[0], w[1], w[2], w[3], s[0], s[1], Some(mask), reverse)
            .unwrap()
    };
    split_batch_equals_rows_alone(&op, 4, 2, 2);
}

#[test]
fn a_gru_batch_split_between_two_threads_gives_each_row_its_own_result() {
    let op = |x: &Tensor, w: &[&Tensor], s: &[&Tensor], mask, reverse| {
        x.gru_sequence(w[0], w[1], w[2], w[3], s[0], Some(mask), reverse)
            .unwrap()
    };
    split_batch_equals_rows_alone(&op, 3, 1, 1);
}

/// A copy of `v` as a leaf of its own.
fn leaf_of(v: &Tensor) -> Tensor {
    Tensor::from_vec(v.to_vec(), v.shape())
        .unwrap()
        .requires_grad_(true)
}

#[test]
fn a_plain_rnn_batch_split_between_two_threads_gives_each_row_its_own_result() {
    for relu in [false, true] {
        let op = move |x: &Tensor, w: &[&Tensor], s: &[&Tensor], mask, reverse| {
            x.rnn_sequence(w[0], w[1], w[2], w[3], s[0], Some(mask), relu, reverse)
                .unwrap()
        };
        split_batch_equals_rows_alone(&op, 1, 1, 1);
    }
}
