//! Dynamically quantized recurrent layers (PyTorch's
//! `torch.ao.nn.quantized.dynamic.LSTM` / `GRU` / `RNN`): `W_ih` and
//! `W_hh` stored as int8, for inference.
//!
//! A direction's input projection `x·W_ihᵀ` runs once over the whole
//! sequence (its activations quantized together, as ATen does on the
//! CPU); each step then quantizes `h` and runs `h·W_hhᵀ` in int8, and the
//! cell in f32 (`nabla_core::quant::recurrent`). The
//! states start at zero. Output: the sequence, or for a model file's
//! `lstm` layer the top layer's final hidden state ([`Output`]).

use std::sync::RwLock;

use nabla_core::backend::Cell;
use nabla_core::quant::recurrent::{run_direction, DirectionWeights};
use nabla_core::quant::{QTensor, QuantizedLinearWeight};
use nabla_core::{Error, Result, Tensor};

use super::{LastHidden, Recurrent, RnnConfig, RnnKind};
use crate::{Module, Parameters};

/// What the layer returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The output sequence, as [`Recurrent`]'s `forward`.
    Sequence,
    /// The top layer's final hidden state `[N, D·H]`, as [`LastHidden`].
    LastHidden,
}

/// One direction of one layer: the two int8 products and the f32 biases.
struct Direction {
    ih: RwLock<QuantizedLinearWeight>,
    hh: RwLock<QuantizedLinearWeight>,
    bias_ih: Option<Tensor>,
    bias_hh: Option<Tensor>,
}

/// A recurrent stack with int8 weights.
pub struct QuantizedRecurrent {
    kind: RnnKind,
    config: RnnConfig,
    output: Output,
    /// `[layer][direction]`, named as [`Recurrent`]'s parameters.
    layers: Vec<Vec<Direction>>,
}

impl QuantizedRecurrent {
    /// `r`'s weights quantized (a scale per tensor, or per gate row).
    pub fn from_recurrent(r: &Recurrent, output: Output, per_channel: bool) -> Result<Self> {
        let layers = r
            .weights
            .iter()
            .map(|dirs| {
                dirs.iter()
                    .map(|w| {
                        let q = |t: &Tensor| -> Result<RwLock<QuantizedLinearWeight>> {
                            let qt = QTensor::quantize(t, per_channel)?;
                            Ok(RwLock::new(QuantizedLinearWeight::new(qt)?))
                        };
                        Ok(Direction {
                            ih: q(&w.weight_ih)?,
                            hh: q(&w.weight_hh)?,
                            bias_ih: w.bias_ih.as_ref().map(Tensor::detach),
                            bias_hh: w.bias_hh.as_ref().map(Tensor::detach),
                        })
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(QuantizedRecurrent {
            kind: r.kind,
            config: r.config,
            output,
            layers,
        })
    }

    fn dirs(&self) -> usize {
        if self.config.bidirectional {
            2
        } else {
            1
        }
    }

    /// (name suffix, layer, direction) of every direction, in
    /// [`Recurrent`]'s parameter order.
    fn names(&self) -> Vec<(String, usize, usize)> {
        let mut out = vec![];
        for k in 0..self.layers.len() {
            for d in 0..self.dirs() {
                let sfx = if d == 1 { "_reverse" } else { "" };
                out.push((format!("l{k}{sfx}"), k, d));
            }
        }
        out
    }

    /// One direction over a batch-first sequence `[N, T, I]`: its outputs
    /// `[N, T, H]` and final state `h` `[N, H]`.
    fn direction(&self, dir: &Direction, x: &Tensor, reverse: bool) -> Result<(Tensor, Tensor)> {
        let (n, t, _) = x.dims3()?;
        let h_size = self.config.hidden_size;
        let read = |b: &Option<Tensor>| b.as_ref().map(Tensor::to_vec).unwrap_or_default();
        let (b_ih, b_hh) = (read(&dir.bias_ih), read(&dir.bias_hh));
        // the GRU needs b_hh inside its reset gate's term; the others add
        // both biases at once, with the hidden product
        let (ih_bias, hh_bias) = match self.kind {
            RnnKind::Gru => (b_ih, b_hh),
            _ if b_ih.len() == b_hh.len() => {
                (vec![], b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect())
            }
            _ => (vec![], vec![]),
        };
        let cell = match self.kind {
            RnnKind::Lstm => Cell::Lstm,
            RnnKind::Gru => Cell::Gru,
            RnnKind::RnnTanh => Cell::Rnn { relu: false },
            RnnKind::RnnRelu => Cell::Rnn { relu: true },
        };
        let (ih, hh) = (dir.ih.read().unwrap(), dir.hh.read().unwrap());
        let weights = DirectionWeights {
            ih: &ih,
            ih_bias: &ih_bias,
            hh: &hh,
            hh_bias: &hh_bias,
        };
        let (out, h) = x.read_data(|xs| run_direction(cell, xs, (n, t), &weights, reverse));
        let device = x.device();
        Ok((
            Tensor::from_vec_on(out, [n, t, h_size], device)?,
            Tensor::from_vec_on(h, [n, h_size], device)?,
        ))
    }
}

impl Parameters for QuantizedRecurrent {
    /// The biases are buffers: saved and loaded, never trained.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (sfx, k, d) in self.names() {
            let dir = &self.layers[k][d];
            if let (Some(bi), Some(bh)) = (&dir.bias_ih, &dir.bias_hh) {
                out.push((format!("bias_ih_{sfx}"), bi.clone()));
                out.push((format!("bias_hh_{sfx}"), bh.clone()));
            }
        }
        out
    }

    fn named_quantized(&self) -> Vec<(String, QTensor)> {
        let mut out = vec![];
        for (sfx, k, d) in self.names() {
            let dir = &self.layers[k][d];
            out.push((
                format!("weight_ih_{sfx}"),
                dir.ih.read().unwrap().weight().clone(),
            ));
            out.push((
                format!("weight_hh_{sfx}"),
                dir.hh.read().unwrap().weight().clone(),
            ));
        }
        out
    }

    fn set_quantized(&self, name: &str, value: QTensor) -> Result<()> {
        for (sfx, k, d) in self.names() {
            let dir = &self.layers[k][d];
            let slot = if name == format!("weight_ih_{sfx}") {
                &dir.ih
            } else if name == format!("weight_hh_{sfx}") {
                &dir.hh
            } else {
                continue;
            };
            let shape = slot.read().unwrap().weight().shape.clone();
            if value.shape != shape {
                return Err(Error::Arg {
                    op: "load quantized",
                    msg: format!("{name} is {shape:?}, not {:?}", value.shape),
                });
            }
            *slot.write().unwrap() = QuantizedLinearWeight::new(value)?;
            return Ok(());
        }
        Err(Error::Arg {
            op: "load quantized",
            msg: format!("the recurrent layer has no quantized tensor {name:?}"),
        })
    }

    fn describe(&self) -> String {
        format!(
            "Quantized{}({}, {}, num_layers={}, int8)",
            self.kind.name(),
            self.config.input_size,
            self.config.hidden_size,
            self.config.num_layers
        )
    }
}

impl Module for QuantizedRecurrent {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let cfg = &self.config;
        // to one batch-first layout: [N, T, I]
        let x = match (x.rank(), self.output) {
            (4, Output::LastHidden) if x.shape()[1] == 1 => x.squeeze(1)?,
            (2, _) => x.unsqueeze(0)?,
            (3, Output::LastHidden) => x.clone(),
            (3, _) if cfg.batch_first => x.clone(),
            (3, _) => x.transpose(0, 1)?,
            _ => {
                return Err(Error::Shape {
                    op: "quantized rnn",
                    msg: format!(
                        "expects a sequence [N, T, I] or [T, I], got {:?}",
                        x.shape()
                    ),
                })
            }
        };
        if x.shape()[2] != cfg.input_size {
            return Err(Error::Shape {
                op: "quantized rnn",
                msg: format!(
                    "expects {} input features, got {:?}",
                    cfg.input_size,
                    x.shape()
                ),
            });
        }
        let mut seq = x;
        let mut last = vec![];
        for dirs in &self.layers {
            let mut outs = vec![];
            last.clear();
            for (d, dir) in dirs.iter().enumerate() {
                let (out, h) = self.direction(dir, &seq, d == 1)?;
                outs.push(out);
                last.push(h);
            }
            seq = Tensor::cat(&outs, 2)?;
        }
        match self.output {
            Output::LastHidden => Tensor::cat(&last, 1),
            Output::Sequence if cfg.batch_first => Ok(seq),
            Output::Sequence => seq.transpose(0, 1)?.contiguous(),
        }
    }
}

impl Recurrent {
    /// This stack with int8 weights ([`QuantizedRecurrent`]).
    pub fn quantized(&self, per_channel: bool) -> Result<QuantizedRecurrent> {
        QuantizedRecurrent::from_recurrent(self, Output::Sequence, per_channel)
    }
}

impl LastHidden {
    /// The encoder with int8 weights, still returning the final state.
    pub fn quantized(&self, per_channel: bool) -> Result<QuantizedRecurrent> {
        QuantizedRecurrent::from_recurrent(&self.0, Output::LastHidden, per_channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::RnnConfig;

    /// Every kind, one and two layers, one and two directions: the int8
    /// stack follows the f32 one to the precision 8 bits give.
    #[test]
    fn quantized_stacks_follow_their_f32_originals() {
        for kind in [
            RnnKind::Lstm,
            RnnKind::Gru,
            RnnKind::RnnTanh,
            RnnKind::RnnRelu,
        ] {
            for (layers, bidirectional, batch_first) in [(1, false, true), (2, true, false)] {
                let cfg = RnnConfig {
                    num_layers: layers,
                    bidirectional,
                    batch_first,
                    ..RnnConfig::new(6, 8)
                };
                let r = Recurrent::new(kind, cfg);
                r.eval();
                let x = Tensor::randn(if batch_first { [3, 5, 6] } else { [5, 3, 6] });
                let want = r.forward(&x).unwrap();
                let q = r.quantized(true).unwrap();
                let got = q.forward(&x).unwrap();
                assert_eq!(got.shape(), want.shape(), "{kind:?}");
                for (g, w) in got.to_vec().iter().zip(want.to_vec()) {
                    assert!(
                        (g - w).abs() < 0.03,
                        "{kind:?} {layers} {bidirectional}: {g} vs {w}"
                    );
                }
                let names: Vec<String> = q.named_quantized().into_iter().map(|(n, _)| n).collect();
                assert_eq!(names.len(), 2 * layers * if bidirectional { 2 } else { 1 });
                assert_eq!(names[0], "weight_ih_l0");
            }
        }
        // the last hidden state, as a model file's lstm layer gives it
        let enc = LastHidden(Recurrent::lstm(RnnConfig::new(6, 8)));
        enc.eval();
        let x = Tensor::randn([2, 1, 4, 6]);
        let (want, got) = (
            enc.forward(&x).unwrap(),
            enc.quantized(false).unwrap().forward(&x).unwrap(),
        );
        assert_eq!(got.shape(), [2, 8]);
        for (g, w) in got.to_vec().iter().zip(want.to_vec()) {
            assert!((g - w).abs() < 0.03, "{g} vs {w}");
        }
        let q = enc.quantized(false).unwrap();
        assert!(q.forward(&Tensor::zeros([2, 4, 5])).is_err());
        let w = q.named_quantized()[1].1.clone();
        assert!(q.set_quantized("weight_hh_l0", w.clone()).is_ok());
        assert!(
            q.set_quantized("weight_ih_l0", w).is_err(),
            "a [32, 8] weight is no [32, 6] one"
        );
    }
}
