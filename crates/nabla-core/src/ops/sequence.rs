//! What the fused recurrent ops ([`rnn_sequence`](Tensor::rnn_sequence),
//! [`lstm_sequence`](Tensor::lstm_sequence),
//! [`gru_sequence`](Tensor::gru_sequence)) share: the shape checks, whether
//! a backward pass will come, and the op itself: the backend's fused
//! kernel (the CPU's lives in `backend/cpu/recurrent/`, one engine generic
//! over the cell) with its backward rule, or the composed steps of
//! [`sequence_steps`](super::sequence_steps) on a backend without one.

use super::sequence_steps;
use crate::backend::{Cell, Recurrence};
use crate::{Error, Result, Tensor};

/// Steps, batch rows, input features, hidden units.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub t: usize,
    pub n: usize,
    pub i: usize,
    pub h: usize,
}

/// Checks x `[T, N, I]`, w_ih `[G·H, I]`, w_hh `[G·H, H]`, both biases
/// `[G·H]`, each initial state `[N, H]` and the mask (`T·N` values) of a
/// recurrent op with `gates` gates; errors name the op and the shapes.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    op: &'static str,
    x: &Tensor,
    gates: usize,
    w_ih: &Tensor,
    w_hh: &Tensor,
    biases: [&Tensor; 2],
    states: &[(&str, &Tensor)],
    mask: Option<&[f32]>,
) -> Result<Dims> {
    let shape_err = |msg: String| Error::Shape { op, msg };
    for other in [w_ih, w_hh, biases[0], biases[1]]
        .into_iter()
        .chain(states.iter().map(|s| s.1))
    {
        super::same_device(op, x, other)?;
    }
    let [t, n, i] = x.shape()[..] else {
        return Err(shape_err(format!(
            "expected an input of shape [T, N, I], got {:?}",
            x.shape()
        )));
    };
    let [gh, h] = w_hh.shape()[..] else {
        return Err(shape_err(format!(
            "expected w_hh of shape [{gates}·H, H], got {:?}",
            w_hh.shape()
        )));
    };
    if gh != gates * h {
        return Err(shape_err(format!(
            "w_hh has shape {:?}: with H = {h} (its columns) it must be [{}, {h}] ({gates} gates)",
            w_hh.shape(),
            gates * h
        )));
    }
    if h == 0 {
        return Err(Error::Arg {
            op,
            msg: format!("w_hh {:?} has no hidden units", w_hh.shape()),
        });
    }
    // the rest as x and w_hh say they must be
    let bad = |what: &str, s: &[usize], want: &[usize]| {
        shape_err(format!(
            "{what} has shape {s:?}, expected {want:?} (input {:?}, w_hh {:?})",
            x.shape(),
            w_hh.shape()
        ))
    };
    if w_ih.shape() != [gh, i] {
        return Err(bad("w_ih", w_ih.shape(), &[gh, i]));
    }
    for (name, b) in [("b_ih", biases[0]), ("b_hh", biases[1])] {
        if b.shape() != [gh] {
            return Err(bad(name, b.shape(), &[gh]));
        }
    }
    for (name, s) in states {
        if s.shape() != [n, h] {
            return Err(bad(name, s.shape(), &[n, h]));
        }
    }
    if mask.is_some_and(|m| m.len() != t * n) {
        return Err(Error::Arg {
            op,
            msg: format!(
                "mask must have T·N = {} values (one per step and row), got {}",
                t * n,
                mask.map_or(0, |m| m.len())
            ),
        });
    }
    Ok(Dims { t, n, i, h })
}

/// Whether a backward pass can come, so the steps' values must be kept.
pub(super) fn needs_backward(inputs: &[&Tensor]) -> bool {
    crate::autograd::is_grad_enabled() && inputs.iter().any(|x| x.requires_grad())
}

/// One direction of `cell` over x `[T, N, I]` (the op named `op`): the
/// backend's fused kernel, or the composed steps on a backend without one.
/// `states` are h0 (and c0 for the LSTM). The output is `[T + S, N, H]`:
/// every step's output, then the S final states.
pub(super) fn direction(
    op: &'static str,
    cell: Cell,
    x: &Tensor,
    weights: [&Tensor; 4],
    states: &[&Tensor],
    mask: Option<Vec<f32>>,
    reverse: bool,
) -> Result<Tensor> {
    let [w_ih, w_hh, b_ih, b_hh] = weights;
    let named: Vec<(&str, &Tensor)> = ["h0", "c0"].into_iter().zip(states.to_vec()).collect();
    let mask = mask.as_deref();
    let Dims { t, n, i, h } = check(op, x, cell.gates(), w_ih, w_hh, [b_ih, b_hh], &named, mask)?;
    let r = Recurrence {
        cell,
        t,
        n,
        i,
        h,
        mask,
        reverse,
    };
    let inputs: Vec<&Tensor> = [x, w_ih, w_hh, b_ih, b_hh]
        .into_iter()
        .chain(states.iter().copied())
        .collect();
    let keep = needs_backward(&inputs);
    let be = x.backend();
    let fused = super::with_views("recurrent", &inputs, |v| {
        be.recurrent(&r, v[0], [v[1], v[2], v[3], v[4]], &v[5..], keep)
    })?;
    let Some((out, saved)) = fused else {
        let c0 = states.get(1).copied();
        return sequence_steps::direction(cell, x, weights, states[0], c0, mask, reverse);
    };
    let y = Tensor::from_storage(out, &[t + states.len(), n, h]);
    let name = match cell {
        Cell::Rnn { .. } => "RnnSequenceBackward",
        Cell::Lstm => "LstmSequenceBackward",
        Cell::Gru => "GruSequenceBackward",
    };
    Ok(y.attach(name, &inputs, move |dy, inputs| {
        let want: Vec<bool> = inputs.iter().map(Tensor::requires_grad).collect();
        let at = [dy, &inputs[0], &inputs[1], &inputs[2]];
        let grads = super::with_views("recurrent", &at, |v| {
            be.recurrent_backward(&saved, v[0], v[1], v[2], v[3], &want)
        })?;
        let grads = grads.ok_or_else(|| Error::Arg {
            op,
            msg: format!("the {} backend has no backward kernel for it", be.device()),
        })?;
        let shaped = grads.into_iter().zip(inputs);
        Ok(shaped
            .map(|(g, t)| g.map(|s| Tensor::from_storage(s, t.shape())))
            .collect())
    }))
}

/// What the recurrent ops' tests share.
#[cfg(test)]
pub(super) mod testing {
    use crate::gradcheck::rand_input;
    use crate::Tensor;

    /// A recurrent op run on `(x, [w_ih, w_hh, b_ih, b_hh], states, mask,
    /// reverse)`.
    pub type Op<'a> =
        &'a dyn Fn(&Tensor, &[Tensor], &[Tensor], Option<Vec<f32>>, bool) -> crate::Result<Tensor>;

    /// w_ih `[G·H, I]`, w_hh `[G·H, H]`, b_ih, b_hh `[G·H]` of `gates`
    /// gates, small random values that need gradients.
    pub fn weights(gates: usize, i: usize, h: usize, seed: u64) -> [Tensor; 4] {
        let w = |shape: &[usize], k: u64| {
            let v = rand_input(shape, seed + k).mul_scalar(0.2).unwrap();
            v.requires_grad_(true)
        };
        let g = gates * h;
        [w(&[g, i], 0), w(&[g, h], 1), w(&[g], 2), w(&[g], 3)]
    }

    /// No rows, no steps or no input features give outputs (`extra` more
    /// steps than the input: the final states) and gradients of the right,
    /// possibly empty, shapes; no hidden units is an error.
    pub fn empty_dimensions(op: Op, gates: usize, n_states: usize, extra: usize) {
        let run = |t: usize, n: usize, i: usize, h: usize| {
            let x = Tensor::ones([t, n, i]).requires_grad_(true);
            let w = weights(gates, i, h, 70);
            let states: Vec<Tensor> = (0..n_states).map(|_| Tensor::zeros([n, h])).collect();
            let op_w = |x: &Tensor| op(x, &w, &states, None, false);
            let y = op_w(&x)?;
            assert_eq!(y.shape(), [t + extra, n, h]);
            y.sum_all()?.backward()?;
            assert_eq!(w[1].grad().expect("w_hh gradient").shape(), [gates * h, h]);
            assert_eq!(x.grad().expect("x gradient").shape(), [t, n, i]);
            Ok::<_, crate::Error>(())
        };
        for (t, n, i) in [(3, 0, 2), (0, 2, 2), (3, 2, 0)] {
            run(t, n, i, 2).unwrap_or_else(|e| panic!("{t} {n} {i}: {e}"));
        }
        let err = run(3, 2, 2, 0).unwrap_err().to_string();
        assert!(err.contains("hidden"), "{err}");
    }

    /// A batch large enough to be split into one block of rows per thread
    /// gives, row by row, what each row gives alone. `op(x, weights,
    /// states, mask, reverse)` runs the op; `states` are `[N, H]`. Checks
    /// the outputs bit for bit, with and without gradients, and the weight
    /// gradients (summed over the rows alone) to 1e-4.
    pub fn rows_alone(
        op: Op,
        gates: usize,
        (t, n, i, h): (usize, usize, usize, usize),
        n_states: usize,
    ) {
        let weights = &weights(gates, i, h, 50);
        let x = rand_input(&[t, n, i], 41);
        let states: Vec<Tensor> = (0..n_states)
            .map(|k| rand_input(&[n, h], 42 + k as u64))
            .collect();
        // row r is 1 + r mod t steps long
        let mask: Vec<f32> = (0..t * n)
            .map(|j| ((j / n) < 1 + (j % n) % t) as u8 as f32)
            .collect();
        for reverse in [false, true] {
            let alone = |r: usize| {
                let xr = x.narrow(1, r, 1).unwrap();
                let sr: Vec<Tensor> = states.iter().map(|s| s.narrow(0, r, 1).unwrap()).collect();
                let mr = (0..t).map(|s| mask[s * n + r]).collect();
                op(&xr, weights, &sr, Some(mr), reverse).unwrap()
            };
            let batch = |grad: bool| {
                let run = || op(&x, weights, &states, Some(mask.clone()), reverse).unwrap();
                match grad {
                    true => run(),
                    false => crate::no_grad(run),
                }
            };
            let with_grad = batch(true);
            for y in [&with_grad, &batch(false)] {
                for r in 0..n {
                    let want = alone(r).to_vec();
                    assert_eq!(y.narrow(1, r, 1).unwrap().to_vec(), want, "row {r}");
                }
            }
            // weight gradients of Σ y·c for a fixed c
            let c = rand_input(with_grad.shape(), 43);
            weights.iter().for_each(Tensor::zero_grad);
            with_grad
                .mul(&c)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let batch_grads: Vec<Vec<f32>> =
                weights.iter().map(|w| w.grad().unwrap().to_vec()).collect();
            weights.iter().for_each(Tensor::zero_grad);
            for r in 0..n {
                let cr = c.narrow(1, r, 1).unwrap();
                alone(r)
                    .mul(&cr)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
            }
            for (w, want) in weights.iter().zip(batch_grads) {
                let got = w.grad().unwrap().to_vec();
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "reverse {reverse}: {a} vs {b}"
                    );
                }
            }
            weights.iter().for_each(Tensor::zero_grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrong shape names the op, what is wrong and the shape expected.
    #[test]
    fn shape_errors_say_what_was_expected() {
        let z = |s: &[usize]| Tensor::zeros(s.to_vec());
        let (x, h) = (z(&[5, 2, 3]), z(&[2, 4]));
        let lstm = |w_ih: &[usize], w_hh: &[usize], b: &[usize], mask: Option<Vec<f32>>| {
            x.lstm_sequence(&z(w_ih), &z(w_hh), &z(b), &z(&[16]), &h, &h, mask, false)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            lstm(&[16, 3], &[16, 5], &[16], None),
            "lstm_sequence: w_hh has shape [16, 5]: with H = 5 (its columns) it must be [20, 5] (4 gates)"
        );
        assert_eq!(
            lstm(&[16, 2], &[16, 4], &[16], None),
            "lstm_sequence: w_ih has shape [16, 2], expected [16, 3] (input [5, 2, 3], w_hh [16, 4])"
        );
        assert_eq!(
            lstm(&[16, 3], &[16, 4], &[12], None),
            "lstm_sequence: b_ih has shape [12], expected [16] (input [5, 2, 3], w_hh [16, 4])"
        );
        assert_eq!(
            lstm(&[16, 3], &[16, 4], &[16], Some(vec![1.0; 8])),
            "lstm_sequence: mask must have T·N = 10 values (one per step and row), got 8"
        );
        let e = z(&[2, 3])
            .gru_sequence(
                &z(&[12, 3]),
                &z(&[12, 4]),
                &z(&[12]),
                &z(&[12]),
                &h,
                None,
                false,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "gru_sequence: expected an input of shape [T, N, I], got [2, 3]"
        );
        let e = x
            .rnn_sequence(
                &z(&[4, 3]),
                &z(&[4, 4]),
                &z(&[4]),
                &z(&[4]),
                &z(&[3, 4]),
                None,
                false,
                false,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rnn_sequence: h0 has shape [3, 4], expected [2, 4] (input [5, 2, 3], w_hh [4, 4])"
        );
    }
}
