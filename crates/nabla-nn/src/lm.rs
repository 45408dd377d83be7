//! A character-level language model: Embedding → LSTM or GRU → Linear,
//! predicting each next character, and temperature sampling of new text.
//!
//! Shapes: character ids `[N, T]` (i64, or integer values in f32) → embeddings
//! `[N, T, E]` → recurrent outputs `[N, T, H]` → logits `[N, T, V]`.
//! Parameter names as the PyTorch module
//! `Embedding(V, E); LSTM(E, H, num_layers, batch_first=True); Linear(H, V)`
//! registered as `embedding`, `rnn` and `head` would have them.

use nabla_core::{no_grad, Error, Generator, Result, Tensor};

use crate::module::prefixed;
use crate::rnn::{Recurrent, RnnConfig, RnnKind};
use crate::{Embedding, Linear, Module, Parameters};

pub struct CharLm {
    pub embedding: Embedding,
    pub rnn: Recurrent,
    pub head: Linear,
}

/// The recurrent state carried between calls: `h` (and `c` for LSTM),
/// each `[num_layers, N, H]`.
#[derive(Clone)]
pub struct LmState {
    pub h: Tensor,
    pub c: Option<Tensor>,
}

impl CharLm {
    /// `kind` is `RnnKind::Lstm` or `RnnKind::Gru` (or a plain RNN).
    pub fn new(
        kind: RnnKind,
        vocab: usize,
        embed: usize,
        hidden: usize,
        num_layers: usize,
    ) -> CharLm {
        let config = RnnConfig {
            num_layers,
            batch_first: true,
            ..RnnConfig::new(embed, hidden)
        };
        CharLm {
            embedding: Embedding::new(vocab, embed),
            rnn: Recurrent::new(kind, config),
            head: Linear::new(hidden, vocab),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.embedding.weight.shape()[0]
    }

    /// Logits `[N, T, V]` for ids `[N, T]`, starting from `state` (zeros
    /// when None), and the state after the last step (to continue the
    /// text, as truncated back-propagation through time and sampling do).
    pub fn forward_with_state(
        &self,
        ids: &Tensor,
        state: Option<&LmState>,
    ) -> Result<(Tensor, LmState)> {
        if ids.rank() != 2 {
            return Err(Error::Shape {
                op: "char_lm",
                msg: format!("expected character ids [N, T], got {:?}", ids.shape()),
            });
        }
        let x = self.embedding.forward(ids)?;
        let out = self.rnn.run(
            &x,
            state.map(|s| &s.h),
            state.and_then(|s| s.c.as_ref()),
            None,
        )?;
        let logits = self.head.forward(&out.output)?;
        Ok((
            logits,
            LmState {
                h: out.h_n,
                c: out.c_n,
            },
        ))
    }

    /// Mean cross-entropy (nats per character) of predicting `targets`
    /// `[N, T]` from `ids` `[N, T]`.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let (logits, _) = self.forward_with_state(ids, None)?;
        let v = self.vocab_size();
        crate::loss::cross_entropy(
            &logits.reshape(&[-1, v as isize][..])?,
            &targets.reshape([-1])?,
        )
    }

    /// Continues `prompt` (ids, at least one) by `len` characters drawn one
    /// at a time from softmax(logits / temperature); temperature 0 picks
    /// the most likely character. Lower temperatures give safer, more
    /// repetitive text, higher ones more surprising text.
    pub fn sample(
        &self,
        prompt: &[u32],
        len: usize,
        temperature: f32,
        gen: &mut Generator,
    ) -> Result<Vec<u32>> {
        let v = self.vocab_size();
        if prompt.is_empty() || prompt.iter().any(|&c| c as usize >= v) {
            return Err(Error::Arg {
                op: "char_lm.sample",
                msg: format!(
                    "the prompt must be at least one id below the vocabulary size {v}, got {prompt:?}"
                ),
            });
        }
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(Error::Arg {
                op: "char_lm.sample",
                msg: format!("temperature must be finite and ≥ 0, got {temperature}"),
            });
        }
        let was_training = self.rnn.is_training();
        self.eval();
        let result = no_grad(|| -> Result<Vec<u32>> {
            let ids: Vec<i64> = prompt.iter().map(|&c| i64::from(c)).collect();
            let (mut logits, mut state) =
                self.forward_with_state(&Tensor::from_vec_i64(ids, [1, prompt.len()])?, None)?;
            let mut out = Vec::with_capacity(len);
            for _ in 0..len {
                let t = logits.shape()[1];
                let last = logits.narrow(1, t - 1, 1)?.to_vec();
                let next = draw(&last, temperature, gen);
                out.push(next as u32);
                let x = Tensor::from_vec_i64(vec![next as i64], [1, 1])?;
                (logits, state) = self.forward_with_state(&x, Some(&state))?;
            }
            Ok(out)
        });
        if was_training {
            self.train();
        }
        result
    }
}

/// Draws an index from softmax(logits / temperature) over the `top_k`
/// largest logits (all when None; argmax at temperature 0).
pub(crate) fn draw_top_k(
    logits: &[f32],
    temperature: f32,
    top_k: Option<usize>,
    gen: &mut Generator,
) -> usize {
    match top_k {
        Some(k) if k > 0 && k < logits.len() => {
            let mut sorted = logits.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            let kept: Vec<f32> = logits
                .iter()
                .map(|&l| if l < kth { f32::NEG_INFINITY } else { l })
                .collect();
            draw(&kept, temperature, gen)
        }
        _ => draw(logits, temperature, gen),
    }
}

/// Draws an index from softmax(logits / temperature) (argmax at 0).
fn draw(logits: &[f32], temperature: f32, gen: &mut Generator) -> usize {
    let best = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0);
    if temperature == 0.0 {
        return best;
    }
    let top = logits[best];
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| (((l - top) / temperature) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = gen.uniform() as f64 * total;
    for (i, w) in weights.iter().enumerate() {
        u -= w;
        if u < 0.0 {
            return i;
        }
    }
    best
}

impl Parameters for CharLm {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embedding", self.embedding.named_parameters());
        p.extend(prefixed("rnn", self.rnn.named_parameters()));
        p.extend(prefixed("head", self.head.named_parameters()));
        p
    }

    fn set_training(&self, on: bool) {
        self.rnn.set_training(on);
    }

    fn describe(&self) -> String {
        format!(
            "CharLm({} → {} → {})",
            self.embedding.describe(),
            self.rnn.describe(),
            self.head.describe()
        )
    }
}

impl Module for CharLm {
    /// Logits `[N, T, V]` for ids `[N, T]`, from a zero state.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_state(ids, None)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, Optimizer};

    #[test]
    fn continuing_from_the_state_equals_one_long_run() {
        nabla_core::manual_seed(3);
        for kind in [RnnKind::Lstm, RnnKind::Gru] {
            let lm = CharLm::new(kind, 7, 5, 6, 2);
            let ids =
                Tensor::from_vec((0..12).map(|i| (i * 5 % 7) as f32).collect(), [2, 6]).unwrap();
            let (whole, _) = lm.forward_with_state(&ids, None).unwrap();
            let (a, s) = lm
                .forward_with_state(&ids.narrow(1, 0, 4).unwrap(), None)
                .unwrap();
            let (b, _) = lm
                .forward_with_state(&ids.narrow(1, 4, 2).unwrap(), Some(&s))
                .unwrap();
            let joined = Tensor::cat(&[a, b], 1).unwrap().to_vec();
            for (x, y) in whole.to_vec().iter().zip(joined) {
                assert!((x - y).abs() < 1e-5, "{kind:?}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn learns_a_repeating_text_and_samples_it_back() {
        nabla_core::manual_seed(0);
        let lm = CharLm::new(RnnKind::Lstm, 4, 8, 32, 1);
        let opt_params = lm.parameters();
        let mut opt = Adam::new(opt_params, 0.02);
        // "0123" repeated: every next character is determined
        let seq: Vec<f32> = (0..33).map(|i| (i % 4) as f32).collect();
        let x = Tensor::from_vec(seq[..32].to_vec(), [2, 16]).unwrap();
        let y = Tensor::from_vec(seq[1..33].to_vec(), [2, 16]).unwrap();
        let first = lm.loss(&x, &y).unwrap().item().unwrap();
        for _ in 0..150 {
            opt.zero_grad();
            let loss = lm.loss(&x, &y).unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
        }
        let last = lm.loss(&x, &y).unwrap().item().unwrap();
        assert!(first > 1.0 && last < 0.05, "loss {first} → {last}");
        let mut gen = Generator::new(1);
        let text = lm.sample(&[2], 12, 0.5, &mut gen).unwrap();
        assert_eq!(text, vec![3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
        assert!(lm.sample(&[4], 3, 1.0, &mut gen).is_err());
        assert!(lm.sample(&[1], 3, f32::NAN, &mut gen).is_err());
    }

    #[test]
    fn temperature_sharpens_or_flattens_the_draws() {
        let logits = [2.0f32, 1.0, 0.0];
        let count = |t: f32| {
            let mut gen = Generator::new(9);
            (0..4000)
                .filter(|_| draw(&logits, t, &mut gen) == 0)
                .count()
        };
        // softmax([2, 1, 0]) puts 0.665 on the first; at t = 0.5, 0.867; at t = 2, 0.506
        let (cold, warm, hot) = (count(0.5), count(1.0), count(2.0));
        assert!((cold as f64 / 4000.0 - 0.867).abs() < 0.03, "{cold}");
        assert!((warm as f64 / 4000.0 - 0.665).abs() < 0.03, "{warm}");
        assert!((hot as f64 / 4000.0 - 0.506).abs() < 0.03, "{hot}");
        assert_eq!(draw(&logits, 0.0, &mut Generator::new(0)), 0);
    }
}
