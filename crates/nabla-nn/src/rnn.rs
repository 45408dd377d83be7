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
//! Per step, with `a = W_ih·x + b_ih` and `b = W_hh·h + b_hh` (the LSTM and
//! GRU nonlinearities then run as one fused op, see `Tensor::lstm_cell`):
//! - RNN: `h' = tanh(a + b)`;
//! - LSTM: `i, f, g, o = σ, σ, tanh, σ of (a + b)` split in four;
//!   `c' = f·c + i·g`, `h' = o·tanh(c')`;
//! - GRU: `r, z = σ(a_r + b_r), σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`,
//!   `h' = (1 − z)·n + z·h`.
//!
//! With lengths, step t of sequence j updates its state only while
//! `t < len_j` (the reverse direction starts at `len_j − 1`), and the
//! output there is 0, as PyTorch's packed sequences give.
//! Gradients come from the composed tensor ops.

use std::sync::atomic::{AtomicBool, Ordering};

use nabla_core::{Error, Result, Tensor};

use crate::init::uniform;
use crate::Module;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnKind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl RnnKind {
    fn gates(self) -> usize {
        match self {
            RnnKind::RnnTanh | RnnKind::RnnRelu => 1,
            RnnKind::Lstm => 4,
            RnnKind::Gru => 3,
        }
    }
}

/// Weights of one direction of one layer.
#[derive(Clone)]
pub struct RnnWeights {
    pub weight_ih: Tensor,
    pub weight_hh: Tensor,
    pub bias_ih: Option<Tensor>,
    pub bias_hh: Option<Tensor>,
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
        let (h, g) = (config.hidden_size, kind.gates());
        let dirs = if config.bidirectional { 2 } else { 1 };
        let bound = 1.0 / (h as f32).sqrt();
        let weights = (0..config.num_layers)
            .map(|layer| {
                let inp = if layer == 0 {
                    config.input_size
                } else {
                    dirs * h
                };
                (0..dirs)
                    .map(|_| RnnWeights {
                        weight_ih: uniform(&[g * h, inp], bound).requires_grad_(true),
                        weight_hh: uniform(&[g * h, h], bound).requires_grad_(true),
                        bias_ih: config
                            .bias
                            .then(|| uniform(&[g * h], bound).requires_grad_(true)),
                        bias_hh: config
                            .bias
                            .then(|| uniform(&[g * h], bound).requires_grad_(true)),
                    })
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
    pub fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnOutput> {
        let cfg = &self.config;
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
                    None => Tensor::zeros([n, h]),
                };
                let c_init = match c0 {
                    Some(s) => s.narrow(0, k, 1)?.reshape([n, h])?,
                    None => Tensor::zeros([n, h]),
                };
                let (seq, hl, cl) = if self.kind == RnnKind::Lstm {
                    // the whole direction as one fused op (nabla-core's lstm_sequence)
                    let zero = || Tensor::zeros([4 * h]);
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
                    let zero = || Tensor::zeros([3 * h]);
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
                    let zero = || Tensor::zeros([h]);
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

    /// One direction of one layer over all steps, a step at a time with
    /// tensor ops: the output of each step (`[N, H]`) and the final states.
    /// run() sends every kind through its fused op; this is their
    /// reference in the tests.
    #[cfg(test)]
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

impl Module for Recurrent {
    /// The output sequence (use [`Recurrent::run`] for the final states).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, None, None, None)?.output)
    }

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

    fn describe(&self) -> String {
        let name = match self.kind {
            RnnKind::RnnTanh | RnnKind::RnnRelu => "RNN",
            RnnKind::Lstm => "LSTM",
            RnnKind::Gru => "GRU",
        };
        format!(
            "{name}({}, {}, num_layers={})",
            self.config.input_size, self.config.hidden_size, self.config.num_layers
        )
    }
}

/// A recurrent stack read as a sequence classifier's encoder: input
/// `[N, T, F]` (or an image `[N, 1, T, F]`, read row by row), output the
/// final hidden state of the top layer, `[N, D·H]` (both directions
/// concatenated). Parameters keep PyTorch's names.
pub struct LastHidden(pub Recurrent);

impl Module for LastHidden {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.rank() == 4 && x.shape()[1] == 1 {
            x.squeeze(1)?
        } else {
            x.clone()
        };
        let (n, dirs) = (x.shape()[0], self.0.dirs());
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
        let top = h_n.narrow(0, (cfg.num_layers - 1) * dirs, dirs)?; // [D, N, H]
        top.transpose(0, 1)?.reshape([n, dirs * cfg.hidden_size])
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.0.named_parameters()
    }
    fn set_training(&self, on: bool) {
        self.0.set_training(on)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

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
}
