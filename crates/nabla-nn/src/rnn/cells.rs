//! One step of a recurrent layer as a module of its own: PyTorch's
//! `nn.RNNCell`, `nn.LSTMCell` and `nn.GRUCell`, for loops written by hand
//! (a decoder feeding back its output, attention over steps).
//!
//! The same parameters as a layer's, without the layer suffix
//! (`weight_ih` `[G·H, I]`, `weight_hh` `[G·H, H]`, `bias_ih`, `bias_hh`
//! `[G·H]`, U(±1/√H)) and the same gates and formulas (see the `rnn`
//! module). A step is two linear products, `a = x·W_ihᵀ + b_ih` and
//! `b = h·W_hhᵀ + b_hh`, and the fused cell: `tanh(a + b)` or
//! `relu(a + b)`, `Tensor::lstm_cell(a + b, c)`, `Tensor::gru_cell(a, b, h)`.
//! Input `[N, I]` or one unbatched `[I]`; states `[N, H]` (`[H]`), zeros
//! when not given.

use nabla_core::{Error, Result, Tensor};

use super::{RnnKind, RnnWeights};
use crate::{Module, Parameters};

pub struct RecurrentCell {
    pub kind: RnnKind,
    pub weights: RnnWeights,
    input_size: usize,
    hidden_size: usize,
}

impl RecurrentCell {
    /// A cell of `kind` for `input_size` features and `hidden_size` units,
    /// with biases or without.
    pub fn new(kind: RnnKind, input_size: usize, hidden_size: usize, bias: bool) -> RecurrentCell {
        RecurrentCell {
            kind,
            weights: RnnWeights::new(kind, input_size, hidden_size, bias),
            input_size,
            hidden_size,
        }
    }
    /// `nn.RNNCell(input_size, hidden_size)` (tanh).
    pub fn rnn(input_size: usize, hidden_size: usize) -> RecurrentCell {
        RecurrentCell::new(RnnKind::RnnTanh, input_size, hidden_size, true)
    }
    /// `nn.LSTMCell(input_size, hidden_size)`.
    pub fn lstm(input_size: usize, hidden_size: usize) -> RecurrentCell {
        RecurrentCell::new(RnnKind::Lstm, input_size, hidden_size, true)
    }
    /// `nn.GRUCell(input_size, hidden_size)`.
    pub fn gru(input_size: usize, hidden_size: usize) -> RecurrentCell {
        RecurrentCell::new(RnnKind::Gru, input_size, hidden_size, true)
    }

    /// One step: the new `h` and, for an LSTM, the new `c`.
    pub fn step(
        &self,
        x: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        if x.rank() == 1 {
            // one unbatched input: a batch of one, states [H]
            let one = |s: Option<&Tensor>| s.map(|s| s.unsqueeze(0)).transpose();
            let (h, c) = (one(h)?, one(c)?);
            let (h, c) = self.step(&x.unsqueeze(0)?, h.as_ref(), c.as_ref())?;
            return Ok((h.squeeze(0)?, c.map(|c| c.squeeze(0)).transpose()?));
        }
        let (n, hs) = (x.shape().first().copied().unwrap_or(0), self.hidden_size);
        if x.shape() != [n, self.input_size] {
            return Err(self.shape_error("input", x, &[n, self.input_size]));
        }
        let state = |s: Option<&Tensor>, what: &str| match s {
            Some(s) if s.shape() != [n, hs] => Err(self.shape_error(what, s, &[n, hs])),
            Some(s) => Ok(s.clone()),
            None => Ok(Tensor::zeros_on([n, hs], x.device())),
        };
        let (h, c) = (state(h, "h")?, state(c, "c")?);
        let w = &self.weights;
        let a = x.linear(&w.weight_ih, w.bias_ih.as_ref())?;
        let b = h.linear(&w.weight_hh, w.bias_hh.as_ref())?;
        Ok(match self.kind {
            RnnKind::RnnTanh => (a.add(&b)?.tanh()?, None),
            RnnKind::RnnRelu => (a.add(&b)?.relu()?, None),
            RnnKind::Gru => (a.gru_cell(&b, &h)?, None),
            RnnKind::Lstm => {
                let hc = a.add(&b)?.lstm_cell(&c)?;
                (hc.narrow(1, 0, hs)?, Some(hc.narrow(1, hs, hs)?))
            }
        })
    }

    fn shape_error(&self, what: &str, t: &Tensor, want: &[usize]) -> Error {
        Error::Shape {
            op: "rnn_cell",
            msg: format!(
                "{what} must be {want:?} (input {} features, {} hidden units), got {:?}",
                self.input_size,
                self.hidden_size,
                t.shape()
            ),
        }
    }
}

impl Parameters for RecurrentCell {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let w = &self.weights;
        let mut p = vec![
            ("weight_ih".to_string(), w.weight_ih.clone()),
            ("weight_hh".to_string(), w.weight_hh.clone()),
        ];
        if let (Some(bi), Some(bh)) = (&w.bias_ih, &w.bias_hh) {
            p.push(("bias_ih".to_string(), bi.clone()));
            p.push(("bias_hh".to_string(), bh.clone()));
        }
        p
    }

    fn describe(&self) -> String {
        let name = match self.kind {
            RnnKind::RnnTanh | RnnKind::RnnRelu => "RNNCell",
            RnnKind::Lstm => "LSTMCell",
            RnnKind::Gru => "GRUCell",
        };
        format!("{name}({}, {})", self.input_size, self.hidden_size)
    }
}

impl Module for RecurrentCell {
    /// The new `h` from zero states (use [`RecurrentCell::step`] to pass
    /// states and get an LSTM's `c`).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.step(x, None, None)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{Recurrent, RnnConfig};
    use nabla_core::gradcheck::{gradcheck, rand_input};

    /// A cell's step is a one-step layer with the same weights.
    #[test]
    fn a_step_equals_a_one_step_layer() {
        nabla_core::manual_seed(7);
        for kind in [
            RnnKind::RnnTanh,
            RnnKind::RnnRelu,
            RnnKind::Lstm,
            RnnKind::Gru,
        ] {
            for bias in [true, false] {
                let cell = RecurrentCell::new(kind, 3, 4, bias);
                let layer = Recurrent::new(
                    kind,
                    RnnConfig {
                        bias,
                        ..RnnConfig::new(3, 4)
                    },
                );
                for ((_, p), (_, q)) in layer.named_parameters().iter().zip(cell.named_parameters())
                {
                    p.copy_from(&q).unwrap();
                }
                let (x, h, c) = (
                    Tensor::randn([2, 3]),
                    Tensor::randn([2, 4]),
                    Tensor::randn([2, 4]),
                );
                let c_in = (kind == RnnKind::Lstm).then_some(&c);
                let (h1, c1) = cell.step(&x, Some(&h), c_in).unwrap();
                let state = |s: &Tensor| s.unsqueeze(0).unwrap();
                let run = layer
                    .run(
                        &x.unsqueeze(0).unwrap(),
                        Some(&state(&h)),
                        c_in.map(state).as_ref(),
                        None,
                    )
                    .unwrap();
                let close = |a: &Tensor, b: &Tensor| {
                    a.to_vec()
                        .iter()
                        .zip(b.to_vec())
                        .all(|(a, b)| (a - b).abs() < 1e-6)
                };
                assert!(close(&h1, &run.h_n.squeeze(0).unwrap()), "{kind:?} h");
                if let (Some(c1), Some(cn)) = (&c1, &run.c_n) {
                    assert!(close(c1, &cn.squeeze(0).unwrap()), "{kind:?} c");
                }
                assert_eq!(c1.is_some(), kind == RnnKind::Lstm);
            }
        }
    }

    #[test]
    fn gradcheck_names_unbatched_and_errors() {
        let cell = RecurrentCell::gru(3, 2);
        let names: Vec<String> = cell
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]);
        let lstm = RecurrentCell::lstm(3, 2);
        let f = |t: &[Tensor]| {
            let cell = RecurrentCell {
                weights: RnnWeights {
                    weight_ih: t[2].clone(),
                    ..lstm.weights.clone()
                },
                ..RecurrentCell::lstm(3, 2)
            };
            let (h, c) = cell.step(&t[0], Some(&t[1]), Some(&t[1]))?;
            h.add(&c.unwrap())
        };
        let inputs = [
            rand_input(&[2, 3], 1),
            rand_input(&[2, 2], 2),
            rand_input(&[8, 3], 3),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap();
        let (h, _) = cell
            .step(&Tensor::randn([3]), Some(&Tensor::zeros([2])), None)
            .unwrap();
        assert_eq!(h.shape(), &[2]);
        let e = cell
            .step(&Tensor::zeros([2, 4]), None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rnn_cell: input must be [2, 3] (input 3 features, 2 hidden units), got [2, 4]"
        );
        let e = cell
            .step(&Tensor::zeros([2, 3]), Some(&Tensor::zeros([3, 2])), None)
            .unwrap_err();
        assert!(e.to_string().contains("h must be [2, 2]"), "{e}");
    }
}
