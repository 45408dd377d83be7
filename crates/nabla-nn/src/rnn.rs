//! Recurrent layers with PyTorch's parameters, gate layouts and outputs:
//! `RNN` (tanh or relu), `LSTM` (gates i, f, g, o), `GRU` (gates r, z, n,
//! the reset gate applied after the hidden product), multi-layer,
//! bidirectional, batch-first, dropout between layers, initial states, and
//! variable-length batches.
//!
//! Shapes (T = steps, N = batch, I = input size, H = hidden size,
//! D = 2 if bidirectional else 1, L = layers): input `[T, N, I]`
//! (`[N, T, I]` if batch_first); output `[T, N, D·H]`; `h_n` (and LSTM's
//! `c_n`) `[L·D, N, H]`. Parameters of layer k: `weight_ih_l{k}`
//! `[G·H, I or D·H]`, `weight_hh_l{k}` `[G·H, H]`, `bias_ih_l{k}`,
//! `bias_hh_l{k}` `[G·H]`, suffixed `_reverse` for the backward direction
//! (G = 1, 4, 3 for RNN, LSTM, GRU), all initialized U(±1/√H).
//!
//! Per step, with `a = W_ih·x + b_ih` and `b = W_hh·h + b_hh`:
//! - RNN: `h' = tanh(a + b)`;
//! - LSTM: `i, f, g, o = σ, σ, tanh, σ of (a + b)` split in four;
//!   `c' = f·c + i·g`, `h' = o·tanh(c')`;
//! - GRU: `r, z = σ(a_r + b_r), σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`,
//!   `h' = (1 − z)·n + z·h`.
//!
//! With lengths, step t of sequence j updates its state only while
//! `t < len_j` (the reverse direction starts at `len_j − 1`), and the
//! output there is 0, as PyTorch's packed sequences give.
//!
//! Each direction of each layer runs as one fused op of nabla-core
//! (`Tensor::rnn_sequence`, `lstm_sequence`, `gru_sequence`): all its steps
//! forward, and backpropagation through time inside the op's backward.
//! An unbatched sequence `[T, I]` runs as a batch of one (see
//! [`Recurrent::run`]).

use std::sync::atomic::{AtomicBool, Ordering};

use nabla_core::{Error, Result, Tensor};

use crate::init::uniform;
use crate::{Module, Parameters};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnKind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl RnnKind {
    /// PyTorch's class name: `RNN`, `LSTM` or `GRU`.
    pub fn name(self) -> &'static str {
        match self {
            RnnKind::RnnTanh | RnnKind::RnnRelu => "RNN",
            RnnKind::Lstm => "LSTM",
            RnnKind::Gru => "GRU",
        }
    }

    fn gates(self) -> usize {
        match self {
            RnnKind::RnnTanh | RnnKind::RnnRelu => 1,
            RnnKind::Lstm => 4,
            RnnKind::Gru => 3,
        }
    }
}

/// Weights of one direction of one layer (or of a cell).
#[derive(Clone)]
pub struct RnnWeights {
    pub weight_ih: Tensor,
    pub weight_hh: Tensor,
    pub bias_ih: Option<Tensor>,
    pub bias_hh: Option<Tensor>,
}

impl RnnWeights {
    /// PyTorch's initialization, every weight U(±1/√H), for `input`
    /// features and `hidden` units.
    pub fn new(kind: RnnKind, input: usize, hidden: usize, bias: bool) -> RnnWeights {
        let (h, g) = (hidden, kind.gates());
        let bound = 1.0 / (h as f32).sqrt();
        let param = |shape: &[usize]| uniform(shape, bound).requires_grad_(true);
        RnnWeights {
            weight_ih: param(&[g * h, input]),
            weight_hh: param(&[g * h, h]),
            bias_ih: bias.then(|| param(&[g * h])),
            bias_hh: bias.then(|| param(&[g * h])),
        }
    }
}

/// Options of a recurrent layer (PyTorch's constructor arguments).
#[derive(Clone, Copy, Debug)]
pub struct RnnConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bias: bool,
    pub batch_first: bool,
    pub dropout: f32,
    pub bidirectional: bool,
}

impl RnnConfig {
    pub fn new(input_size: usize, hidden_size: usize) -> RnnConfig {
        RnnConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

/// A recurrent layer stack: `nn.RNN`, `nn.LSTM` or `nn.GRU`.
pub struct Recurrent {
    pub kind: RnnKind,
    pub config: RnnConfig,
    /// `[layer][direction]`
    pub weights: Vec<Vec<RnnWeights>>,
    training: AtomicBool,
}

/// What a recurrent layer returns: the output sequence and the final
/// states (`c_n` for LSTM only).
pub struct RnnOutput {
    pub output: Tensor,
    pub h_n: Tensor,
    pub c_n: Option<Tensor>,
}

impl Recurrent {
    pub fn new(kind: RnnKind, config: RnnConfig) -> Recurrent {
        let h = config.hidden_size;
        let dirs = if config.bidirectional { 2 } else { 1 };
        let weights = (0..config.num_layers)
            .map(|layer| {
                let inp = if layer == 0 {
                    config.input_size
                } else {
                    dirs * h
                };
                (0..dirs)
                    .map(|_| RnnWeights::new(kind, inp, h, config.bias))
                    .collect()
            })
            .collect();
        Recurrent {
            kind,
            config,
            weights,
            training: AtomicBool::new(true),
        }
    }

    /// `nn.LSTM(input_size, hidden_size)` with the other options in `config`.
    pub fn lstm(config: RnnConfig) -> Recurrent {
        Recurrent::new(RnnKind::Lstm, config)
    }
    pub fn gru(config: RnnConfig) -> Recurrent {
        Recurrent::new(RnnKind::Gru, config)
    }
    pub fn rnn(config: RnnConfig) -> Recurrent {
        Recurrent::new(RnnKind::RnnTanh, config)
    }

    /// Whether the layer is in training mode (dropout between layers on).
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn dirs(&self) -> usize {
        if self.config.bidirectional {
            2
        } else {
            1
        }
    }

    /// Runs the stack. `h0`/`c0`: `[L·D, N, H]` (zeros when None);
    /// `lengths`: the valid steps of each sequence (all T when None).
    ///
    /// An unbatched sequence `[T, I]` (whatever batch_first says, as in
    /// PyTorch) runs as a batch of one: states `[L·D, H]`, output
    /// `[T, D·H]`, `h_n` and `c_n` `[L·D, H]`.
    pub fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnOutput> {
        let cfg = &self.config;
        if x.rank() == 2 {
            let batch = if cfg.batch_first { 0 } else { 1 };
            let one = |s: Option<&Tensor>| -> Result<Option<Tensor>> {
                match s {
                    Some(s) if s.rank() != 2 => Err(Error::Shape {
                        op: "rnn",
                        msg: format!(
                            "an unbatched input {:?} takes unbatched states [L·D, H], got {:?}",
                            x.shape(),
                            s.shape()
                        ),
                    }),
                    s => s.map(|s| s.unsqueeze(1)).transpose(),
                }
            };
            let (h0, c0) = (one(h0)?, one(c0)?);
            let r = self.run(&x.unsqueeze(batch)?, h0.as_ref(), c0.as_ref(), lengths)?;
            return Ok(RnnOutput {
                output: r.output.squeeze(batch)?,
                h_n: r.h_n.squeeze(1)?,
                c_n: r.c_n.map(|c| c.squeeze(1)).transpose()?,
            });
        }
        if cfg.hidden_size == 0 || cfg.num_layers == 0 {
            // (PyTorch refuses these when the layer is built)
            return Err(Error::Arg {
                op: "rnn",
                msg: format!(
                    "hidden_size and num_layers must be at least 1, got {} and {}",
                    cfg.hidden_size, cfg.num_layers
                ),
            });
        }
        let device = x.device();
        let x = if cfg.batch_first {
            x.transpose(0, 1)?
        } else {
            x.clone()
        };
        let (t, n, i) = x.dims3().map_err(|_| Error::Shape {
            op: "rnn",
            msg: format!(
                "expected input [T, N, {}] (or [N, T, {}] with batch_first), got {:?}",
                cfg.input_size,
                cfg.input_size,
                x.shape()
            ),
        })?;
        if i != cfg.input_size {
            return Err(Error::Shape {
                op: "rnn",
                msg: format!(
                    "input size {i} does not match input_size {} (input {:?})",
                    cfg.input_size,
                    x.shape()
                ),
            });
        }
        let (h, dirs, layers) = (cfg.hidden_size, self.dirs(), cfg.num_layers);
        let state_shape = [layers * dirs, n, h];
        for (name, s) in [("h0", h0), ("c0", c0)] {
            if let Some(s) = s {
                if s.shape() != state_shape {
                    return Err(Error::Shape {
                        op: "rnn",
                        msg: format!("{name} must be {state_shape:?}, got {:?}", s.shape()),
                    });
                }
            }
        }
        let lengths: Vec<usize> = match lengths {
            Some(l) if l.len() != n || l.iter().any(|&v| v == 0 || v > t) => {
                return Err(Error::Arg {
                    op: "rnn",
                    msg: format!("lengths {l:?} must be {n} values in 1..={t}"),
                });
            }
            Some(l) => l.to_vec(),
            None => vec![t; n],
        };
        let ragged = lengths.iter().any(|&l| l < t);
        // `[T, N]`: 1 where step s of row r is inside its sequence
        let mask: Option<Vec<f32>> = ragged.then(|| {
            (0..t)
                .flat_map(|s| lengths.iter().map(move |&l| (s < l) as u8 as f32))
                .collect()
        });
        let mut input = x;
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for layer in 0..layers {
            let mut outs = Vec::with_capacity(dirs);
            for d in 0..dirs {
                let w = &self.weights[layer][d];
                let k = layer * dirs + d;
                let h_init = match h0 {
                    Some(s) => s.narrow(0, k, 1)?.reshape([n, h])?,
                    None => Tensor::zeros_on([n, h], device),
                };
                let c_init = match c0 {
                    Some(s) => s.narrow(0, k, 1)?.reshape([n, h])?,
                    None => Tensor::zeros_on([n, h], device),
                };
                let (seq, hl, cl) = if self.kind == RnnKind::Lstm {
                    // the whole direction as one fused op (nabla-core's lstm_sequence)
                    let zero = || Tensor::zeros_on([4 * h], device);
                    let (bi, bh) = (
                        w.bias_ih.clone().unwrap_or_else(zero),
                        w.bias_hh.clone().unwrap_or_else(zero),
                    );
                    let y = input.lstm_sequence(
                        &w.weight_ih,
                        &w.weight_hh,
                        &bi,
                        &bh,
                        &h_init,
                        &c_init,
                        mask.clone(),
                        d == 1,
                    )?;
                    let last = |j: usize| y.narrow(0, t + j, 1)?.reshape([n, h]);
                    (y.narrow(0, 0, t)?, last(0)?, last(1)?)
                } else if self.kind == RnnKind::Gru {
                    // likewise one fused op (nabla-core's gru_sequence)
                    let zero = || Tensor::zeros_on([3 * h], device);
                    let (bi, bh) = (
                        w.bias_ih.clone().unwrap_or_else(zero),
                        w.bias_hh.clone().unwrap_or_else(zero),
                    );
                    let y = input.gru_sequence(
                        &w.weight_ih,
                        &w.weight_hh,
                        &bi,
                        &bh,
                        &h_init,
                        mask.clone(),
                        d == 1,
                    )?;
                    let h_last = y.narrow(0, t, 1)?.reshape([n, h])?;
                    (y.narrow(0, 0, t)?, h_last.clone(), h_last)
                } else {
                    // and the plain RNN too (nabla-core's rnn_sequence)
                    let zero = || Tensor::zeros_on([h], device);
                    let (bi, bh) = (
                        w.bias_ih.clone().unwrap_or_else(zero),
                        w.bias_hh.clone().unwrap_or_else(zero),
                    );
                    let relu = self.kind == RnnKind::RnnRelu;
                    let y = input.rnn_sequence(
                        &w.weight_ih,
                        &w.weight_hh,
                        &bi,
                        &bh,
                        &h_init,
                        mask.clone(),
                        relu,
                        d == 1,
                    )?;
                    let h_last = y.narrow(0, t, 1)?.reshape([n, h])?;
                    (y.narrow(0, 0, t)?, h_last.clone(), h_last)
                };
                outs.push(seq);
                h_n.push(hl);
                c_n.push(cl);
            }
            input = if dirs == 2 {
                Tensor::cat(&outs, 2)?
            } else {
                outs.pop().expect("one direction")
            };
            let training = self.training.load(Ordering::Relaxed);
            if layer + 1 < layers && cfg.dropout > 0.0 && training {
                input = input.dropout(cfg.dropout, true)?;
            }
        }
        // batch_first: a transposed view, as PyTorch returns it; a model
        // that reads only h_n (a classifier) never pays for a copy
        let output = if cfg.batch_first {
            input.transpose(0, 1)?
        } else {
            input
        };
        let h_n = Tensor::stack(&h_n, 0)?;
        let c_n = (self.kind == RnnKind::Lstm)
            .then(|| Tensor::stack(&c_n, 0))
            .transpose()?;
        Ok(RnnOutput { output, h_n, c_n })
    }
}

impl Parameters for Recurrent {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![];
        for (k, dirs) in self.weights.iter().enumerate() {
            for (d, w) in dirs.iter().enumerate() {
                let sfx = if d == 1 { "_reverse" } else { "" };
                p.push((format!("weight_ih_l{k}{sfx}"), w.weight_ih.clone()));
                p.push((format!("weight_hh_l{k}{sfx}"), w.weight_hh.clone()));
                if let (Some(bi), Some(bh)) = (&w.bias_ih, &w.bias_hh) {
                    p.push((format!("bias_ih_l{k}{sfx}"), bi.clone()));
                    p.push((format!("bias_hh_l{k}{sfx}"), bh.clone()));
                }
            }
        }
        p
    }

    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    fn quantize_dynamic(&self, per_channel: bool) -> Option<Result<Box<dyn Module>>> {
        Some(
            self.quantized(per_channel)
                .map(|q| Box::new(q) as Box<dyn Module>),
        )
    }

    fn describe(&self) -> String {
        format!(
            "{}({}, {}, num_layers={})",
            self.kind.name(),
            self.config.input_size,
            self.config.hidden_size,
            self.config.num_layers
        )
    }
}

impl Module for Recurrent {
    /// The output sequence (use [`Recurrent::run`] for the final states).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, None, None, None)?.output)
    }
}

/// A recurrent stack read as a sequence classifier's encoder: input
/// `[N, T, F]` (or an image `[N, 1, T, F]`, read row by row), output the
/// final hidden state of the top layer, `[N, D·H]` (both directions
/// concatenated). Parameters keep PyTorch's names.
pub struct LastHidden(pub Recurrent);

impl Parameters for LastHidden {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.0.named_parameters()
    }

    fn set_training(&self, on: bool) {
        self.0.set_training(on)
    }

    fn quantize_dynamic(&self, per_channel: bool) -> Option<Result<Box<dyn Module>>> {
        Some(
            self.quantized(per_channel)
                .map(|q| Box::new(q) as Box<dyn Module>),
        )
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

impl Module for LastHidden {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.rank() == 4 && x.shape()[1] == 1 {
            x.squeeze(1)?
        } else {
            x.clone()
        };
        let dirs = self.0.dirs();
        let cfg = RnnConfig {
            batch_first: true,
            ..self.0.config
        };
        let r = Recurrent {
            kind: self.0.kind,
            config: cfg,
            weights: self.0.weights.clone(),
            training: AtomicBool::new(self.0.training.load(Ordering::Relaxed)),
        };
        let h_n = r.run(&x, None, None, None)?.h_n;
        let top = h_n.narrow(0, (cfg.num_layers - 1) * dirs, dirs)?; // [D, N, H] ([D, H] unbatched)
        match top.rank() {
            3 => top.transpose(0, 1)?.flatten(1, 2),
            _ => top.flatten(0, 1),
        }
    }
}

mod cells;
mod quantized;
pub use cells::RecurrentCell;
pub use quantized::{Output as QuantizedOutput, QuantizedRecurrent};

#[cfg(test)]
mod tests;
