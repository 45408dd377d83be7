//! The recurrent layers' tests, and the step-at-a-time reference the fused
//! ops are checked against.

use super::*;
use nabla_core::gradcheck::{gradcheck, rand_input};

impl Recurrent {
    /// One direction of one layer over all steps, a step at a time with
    /// tensor ops: the output of each step (`[N, H]`) and the final states.
    /// run() sends every kind through its fused op; this is their
    /// reference in the tests.
    fn direction(
        &self,
        x: &[Tensor],
        w: &RnnWeights,
        mut h: Tensor,
        mut c: Tensor,
        reverse: bool,
        masks: Option<&[Tensor]>,
    ) -> Result<(Vec<Tensor>, Tensor, Tensor)> {
        let t = x.len();
        let hs = self.config.hidden_size;
        let (wih_t, whh_t) = (w.weight_ih.t()?, w.weight_hh.t()?);
        let mut outs: Vec<Tensor> = vec![Tensor::zeros([0]); t];
        let steps: Vec<usize> = if reverse {
            (0..t).rev().collect()
        } else {
            (0..t).collect()
        };
        for s in steps {
            let mut at = x[s].matmul(&wih_t)?;
            if let Some(bi) = &w.bias_ih {
                at = at.add(bi)?;
            }
            let mut b = h.matmul(&whh_t)?;
            if let Some(bh) = &w.bias_hh {
                b = b.add(bh)?;
            }
            let (h_new, c_new) = match self.kind {
                RnnKind::RnnTanh => (at.add(&b)?.tanh()?, c.clone()),
                RnnKind::RnnRelu => (at.add(&b)?.relu()?, c.clone()),
                RnnKind::Lstm => {
                    let hc = at.add(&b)?.lstm_cell(&c)?;
                    (hc.narrow(1, 0, hs)?, hc.narrow(1, hs, hs)?)
                }
                RnnKind::Gru => (at.gru_cell(&b, &h)?, c.clone()),
            };
            match masks {
                Some(m) => {
                    // inside the sequence: the new state; past its end: keep the old one
                    let keep = &m[s];
                    h = h.add(&h_new.sub(&h)?.mul(keep)?)?;
                    c = c.add(&c_new.sub(&c)?.mul(keep)?)?;
                    outs[s] = h.mul(keep)?;
                }
                None => {
                    (h, c) = (h_new, c_new);
                    outs[s] = h.clone();
                }
            }
        }
        Ok((outs, h, c))
    }
}

fn with_weights(kind: RnnKind, cfg: RnnConfig, p: &[Tensor]) -> Recurrent {
    let mut r = Recurrent::new(kind, cfg);
    let w = &mut r.weights[0][0];
    (w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh) = (
        p[1].clone(),
        p[2].clone(),
        Some(p[3].clone()),
        Some(p[4].clone()),
    );
    r
}

#[test]
fn gradcheck_the_cells() {
    for (kind, g) in [(RnnKind::RnnTanh, 1), (RnnKind::Lstm, 4), (RnnKind::Gru, 3)] {
        let cfg = RnnConfig::new(3, 2);
        let f = move |p: &[Tensor]| {
            let r = with_weights(kind, cfg, p);
            let o = r.run(&p[0], None, None, None)?;
            Tensor::cat(&[o.output.reshape([-1])?, o.h_n.reshape([-1])?], 0)
        };
        let inputs = [
            rand_input(&[3, 2, 3], 1),
            rand_input(&[g * 2, 3], 2),
            rand_input(&[g * 2, 2], 3),
            rand_input(&[g * 2], 4),
            rand_input(&[g * 2], 5),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}

/// No hidden units or no layers: an error naming both, not a panic
/// (with no layers, the last hidden state's index underflowed).
#[test]
fn no_hidden_units_or_no_layers_are_errors() {
    for (hidden, layers) in [(0, 1), (4, 0)] {
        let cfg = RnnConfig {
            num_layers: layers,
            ..RnnConfig::new(3, hidden)
        };
        for kind in [RnnKind::RnnTanh, RnnKind::Lstm, RnnKind::Gru] {
            let r = Recurrent::new(kind, cfg);
            let err = r.run(&Tensor::zeros([2, 1, 3]), None, None, None).err();
            let want = format!(
                "rnn: hidden_size and num_layers must be at least 1, got {hidden} and {layers}"
            );
            assert_eq!(err.map(|e| e.to_string()), Some(want), "{kind:?}");
            let last = LastHidden(Recurrent::new(kind, cfg));
            assert!(last.forward(&Tensor::zeros([1, 2, 3])).is_err());
        }
    }
}

#[test]
fn variable_length_batches_equal_per_sequence_runs() {
    nabla_core::manual_seed(4);
    for kind in [RnnKind::Lstm, RnnKind::Gru] {
        let cfg = RnnConfig {
            num_layers: 2,
            bidirectional: true,
            ..RnnConfig::new(3, 4)
        };
        let r = Recurrent::new(kind, cfg);
        let x = Tensor::randn([5, 3, 3]);
        let lengths = [5, 2, 4];
        let batch = r.run(&x, None, None, Some(&lengths)).unwrap();
        for (j, &len) in lengths.iter().enumerate() {
            let one = x.narrow(1, j, 1).unwrap().narrow(0, 0, len).unwrap();
            let alone = r.run(&one, None, None, None).unwrap();
            let got = batch
                .output
                .narrow(1, j, 1)
                .unwrap()
                .narrow(0, 0, len)
                .unwrap()
                .to_vec();
            for (a, b) in got.iter().zip(alone.output.to_vec()) {
                assert!((a - b).abs() < 1e-5, "{kind:?} sequence {j}: {a} vs {b}");
            }
            let hn = batch.h_n.narrow(1, j, 1).unwrap().to_vec();
            for (a, b) in hn.iter().zip(alone.h_n.to_vec()) {
                assert!((a - b).abs() < 1e-5, "{kind:?} h_n {j}");
            }
            if len < 5 {
                let pad = batch
                    .output
                    .narrow(1, j, 1)
                    .unwrap()
                    .narrow(0, len, 5 - len)
                    .unwrap()
                    .to_vec();
                assert!(pad.iter().all(|&v| v == 0.0));
            }
        }
    }
}

/// `[T, I]` with states `[L·D, H]` is the batch of one `[T, 1, I]` without
/// its batch dimension, whatever batch_first says (PyTorch's rule).
#[test]
fn an_unbatched_sequence_is_a_batch_of_one() {
    nabla_core::manual_seed(5);
    for (kind, batch_first) in [
        (RnnKind::Lstm, false),
        (RnnKind::Gru, true),
        (RnnKind::RnnTanh, false),
    ] {
        let cfg = RnnConfig {
            num_layers: 2,
            bidirectional: true,
            batch_first,
            ..RnnConfig::new(3, 4)
        };
        let r = Recurrent::new(kind, cfg);
        let x = Tensor::randn([5, 3]);
        let h0 = Tensor::randn([4, 4]);
        let c0 = Tensor::randn([4, 4]);
        let c0 = (kind == RnnKind::Lstm).then_some(&c0);
        let one = r.run(&x, Some(&h0), c0, None).unwrap();
        let b = if batch_first { 0 } else { 1 };
        let batch = r
            .run(
                &x.unsqueeze(b).unwrap(),
                Some(&h0.unsqueeze(1).unwrap()),
                c0.map(|c| c.unsqueeze(1).unwrap()).as_ref(),
                None,
            )
            .unwrap();
        assert_eq!(one.output.shape(), &[5, 8], "{kind:?}");
        assert_eq!(one.h_n.shape(), &[4, 4], "{kind:?}");
        assert_eq!(one.output.to_vec(), batch.output.to_vec(), "{kind:?}");
        assert_eq!(one.h_n.to_vec(), batch.h_n.to_vec(), "{kind:?}");
        assert_eq!(
            one.c_n.map(|c| c.to_vec()),
            batch.c_n.map(|c| c.to_vec()),
            "{kind:?}"
        );
        // batched states with an unbatched input are refused, naming both
        let e = r
            .run(&x, Some(&h0.unsqueeze(1).unwrap()), None, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("unbatched states [L·D, H], got [4, 1, 4]"),
            "{e}"
        );
    }
    // the classifier's encoder: [D·H] for one sequence
    let enc = LastHidden(Recurrent::lstm(RnnConfig::new(3, 4)));
    assert_eq!(enc.forward(&Tensor::randn([5, 3])).unwrap().shape(), &[4]);
    assert!(enc.forward(&Tensor::scalar(1.0)).is_err());
}

#[test]
fn the_fused_lstm_sequence_equals_the_per_step_cells() {
    nabla_core::manual_seed(5);
    let r = Recurrent::lstm(RnnConfig::new(3, 4));
    let x = Tensor::randn([6, 2, 3]);
    let fused = r.run(&x, None, None, None).unwrap();
    let steps: Vec<Tensor> = (0..6)
        .map(|s| x.narrow(0, s, 1).unwrap().reshape([2, 3]).unwrap())
        .collect();
    for reverse in [false, true] {
        let (h0, c0) = (Tensor::zeros([2, 4]), Tensor::zeros([2, 4]));
        let (outs, h, c) = r
            .direction(&steps, &r.weights[0][0], h0, c0, reverse, None)
            .unwrap();
        let w = &r.weights[0][0];
        let zero = Tensor::zeros([16]);
        let y = x
            .lstm_sequence(
                &w.weight_ih,
                &w.weight_hh,
                w.bias_ih.as_ref().unwrap_or(&zero),
                w.bias_hh.as_ref().unwrap_or(&zero),
                &Tensor::zeros([2, 4]),
                &Tensor::zeros([2, 4]),
                None,
                reverse,
            )
            .unwrap();
        let per_step = Tensor::cat(
            &[
                Tensor::stack(&outs, 0).unwrap(),
                h.unsqueeze(0).unwrap(),
                c.unsqueeze(0).unwrap(),
            ],
            0,
        )
        .unwrap();
        for (a, b) in y.to_vec().iter().zip(per_step.to_vec()) {
            assert!((a - b).abs() < 1e-5, "reverse {reverse}: {a} vs {b}");
        }
        if !reverse {
            assert_eq!(fused.output.to_vec(), y.narrow(0, 0, 6).unwrap().to_vec());
        }
    }
}

/// The plain RNN's fused op equals its steps as tensor ops, for both
/// activations, both directions and sequences of different lengths.
#[test]
fn the_fused_rnn_sequence_equals_the_per_step_ops() {
    nabla_core::manual_seed(6);
    let lengths = [6, 3];
    for kind in [RnnKind::RnnTanh, RnnKind::RnnRelu] {
        let r = Recurrent::new(kind, RnnConfig::new(3, 4));
        let x = Tensor::randn([6, 2, 3]);
        let steps: Vec<Tensor> = (0..6)
            .map(|s| x.narrow(0, s, 1).unwrap().reshape([2, 3]).unwrap())
            .collect();
        let masks: Vec<Tensor> = (0..6)
            .map(|s| {
                let m = lengths.iter().map(|&l| (s < l) as u8 as f32).collect();
                Tensor::from_vec(m, [2, 1]).unwrap()
            })
            .collect();
        let mask: Vec<f32> = masks.iter().flat_map(|m| m.to_vec()).collect();
        for reverse in [false, true] {
            let h0 = Tensor::zeros([2, 4]);
            let (outs, h, _) = r
                .direction(
                    &steps,
                    &r.weights[0][0],
                    h0.clone(),
                    h0.clone(),
                    reverse,
                    Some(&masks),
                )
                .unwrap();
            let w = &r.weights[0][0];
            let (bi, bh) = (w.bias_ih.as_ref().unwrap(), w.bias_hh.as_ref().unwrap());
            let relu = kind == RnnKind::RnnRelu;
            let y = x
                .rnn_sequence(
                    &w.weight_ih,
                    &w.weight_hh,
                    bi,
                    bh,
                    &h0,
                    Some(mask.clone()),
                    relu,
                    reverse,
                )
                .unwrap();
            let per_step = Tensor::cat(
                &[Tensor::stack(&outs, 0).unwrap(), h.unsqueeze(0).unwrap()],
                0,
            )
            .unwrap();
            for (a, b) in y.to_vec().iter().zip(per_step.to_vec()) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{kind:?} reverse {reverse}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn names_and_shapes_follow_pytorch() {
    let cfg = RnnConfig {
        num_layers: 2,
        bidirectional: true,
        batch_first: true,
        ..RnnConfig::new(5, 7)
    };
    let r = Recurrent::lstm(cfg);
    let names: Vec<String> = r.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        &names[..5],
        [
            "weight_ih_l0",
            "weight_hh_l0",
            "bias_ih_l0",
            "bias_hh_l0",
            "weight_ih_l0_reverse"
        ]
    );
    assert_eq!(r.named_parameters()[8].1.shape(), &[28, 14]);
    let o = r.run(&Tensor::zeros([3, 6, 5]), None, None, None).unwrap();
    assert_eq!(o.output.shape(), &[3, 6, 14]);
    assert_eq!(o.h_n.shape(), &[4, 3, 7]);
    assert_eq!(o.c_n.unwrap().shape(), &[4, 3, 7]);
    let e = r
        .run(&Tensor::zeros([3, 6, 4]), None, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("input size 4 does not match input_size 5"),
        "{e}"
    );
}
