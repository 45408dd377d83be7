//! A GPT with nanoGPT's architecture and parameter names: token embeddings
//! `transformer.wte` (and learned positions `transformer.wpe`), pre-norm
//! blocks `transformer.h.{i}` of causal self-attention (one fused QKV
//! product `attn.c_attn`, `attn.c_proj`) and a 4× GELU MLP (`mlp.c_fc`,
//! `mlp.c_proj`), a final `transformer.ln_f`, and `lm_head` tied to `wte`.
//!
//! Shapes: ids `[B, T]` (token ids: i64, or integers in f32; T ≤ `block_size`) → logits `[B,
//! T, V]`. Initialization as nanoGPT's: weights N(0, 0.02), the residual
//! projections N(0, 0.02/√(2·n_layer)), zero biases.
//!
//! Generation keeps each block's keys and values ([`KvCache`]): a new token
//! costs one row through the network instead of the whole context. With
//! learned positions the context is capped at `block_size`: when the cache
//! is full it is rebuilt from the last `block_size / 2` tokens (the model
//! then sees between half a block and a block of context; nanoGPT's loop,
//! which recomputes everything, always sees a full block). With rotary
//! positions the oldest entries are dropped instead, a true sliding window.

use std::sync::atomic::{AtomicBool, Ordering};

use nabla_core::{no_grad, AttentionParams, Error, Generator, Result, Tensor};

use crate::positional::{rope, rope_tables, sinusoidal};
use crate::{init, prefixed, Dropout, Embedding, LayerNorm, Linear, Module, Parameters};

/// How positions enter the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Positions {
    /// A learned table `wpe` (GPT-2, nanoGPT).
    #[default]
    Learned,
    /// The fixed sinusoidal table, added.
    Sinusoidal,
    /// Rotary embeddings of the queries and keys.
    Rotary,
}

/// nanoGPT's `GPTConfig`.
#[derive(Clone, Debug)]
pub struct GptConfig {
    pub vocab_size: usize,
    pub block_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub dropout: f32,
    pub positions: Positions,
}

impl GptConfig {
    /// nanoGPT's CPU configuration for characters: 4 layers, 4 heads, 128
    /// wide, context 64, no dropout.
    pub fn char_cpu(vocab_size: usize) -> Self {
        GptConfig {
            vocab_size,
            block_size: 64,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            dropout: 0.0,
            positions: Positions::Learned,
        }
    }
}

/// One block's keys and values of the tokens seen so far, `[B, H, P, d]`.
#[derive(Default, Clone)]
struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
}

/// The keys and values of every block, for incremental decoding.
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    /// Tokens held (the position of the next one).
    len: usize,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the keys and values of the last `n` tokens (a sliding window:
    /// for rotary positions, whose scores depend on distances only).
    fn keep_last(&mut self, n: usize) -> Result<()> {
        for l in &mut self.layers {
            if let Some((k, v)) = &l.kv {
                let held = k.shape()[2];
                let from = held.saturating_sub(n);
                let cut = |t: &Tensor| t.narrow(2, from, held - from)?.contiguous();
                l.kv = Some((cut(k)?, cut(v)?));
            }
        }
        Ok(())
    }
}

struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    n_head: usize,
    dropout: f32,
    resid_dropout: Dropout,
    rotary: bool,
}

impl Attention {
    /// `x [B, T, C]` at positions `start..start + T`, with the cache.
    fn forward(
        &self,
        x: &Tensor,
        cache: Option<&mut LayerCache>,
        start: usize,
        training: bool,
    ) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let (h, d) = (self.n_head, c / self.n_head);
        let qkv = self.c_attn.forward(x)?;
        let heads = |k: usize| {
            qkv.narrow(2, k * c, c)?
                .reshape([b, t, h, d])?
                .transpose(1, 2)
        };
        let (mut q, mut k, mut v) = (heads(0)?, heads(1)?, heads(2)?);
        if self.rotary {
            let tables = rope_tables(start, t, d, x.device())?;
            q = rope(&q, &tables)?;
            k = rope(&k, &tables)?;
        }
        let past = match cache {
            Some(cache) => {
                if let Some((pk, pv)) = &cache.kv {
                    k = Tensor::cat(&[pk.clone(), k], 2)?;
                    v = Tensor::cat(&[pv.clone(), v], 2)?;
                }
                cache.kv = Some((k.clone(), v.clone()));
                k.shape()[2] - t
            }
            None => 0,
        };
        let dropout = if training { self.dropout } else { 0.0 };
        let mut p = AttentionParams::default().dropout(dropout);
        if past == 0 {
            p = p.causal();
        } else if t > 1 {
            // new query i (absolute past + i) sees keys j ≤ past + i
            let s = past + t;
            let keep: Vec<f32> = (0..t * s)
                .map(|x| ((x % s) <= past + x / s) as u8 as f32)
                .collect();
            p = p.keep_mask(&Tensor::from_vec_on(keep, [t, s], x.device())?);
        }
        let y = q.scaled_dot_product_attention(&k, &v, &p)?;
        let y = y.transpose(1, 2)?.reshape([b, t, c])?;
        self.resid_dropout.forward(&self.c_proj.forward(&y)?)
    }
}

struct Mlp {
    c_fc: Linear,
    c_proj: Linear,
    dropout: Dropout,
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(
        &self,
        x: &Tensor,
        cache: Option<&mut LayerCache>,
        start: usize,
        training: bool,
    ) -> Result<Tensor> {
        let x = x.add(
            &self
                .attn
                .forward(&self.ln_1.forward(x)?, cache, start, training)?,
        )?;
        let m = &self.mlp;
        let h = m.c_fc.forward(&self.ln_2.forward(&x)?)?.gelu()?;
        x.add(&m.dropout.forward(&m.c_proj.forward(&h)?)?)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("ln_1", self.ln_1.named_parameters());
        p.extend(prefixed("attn.c_attn", self.attn.c_attn.named_parameters()));
        p.extend(prefixed("attn.c_proj", self.attn.c_proj.named_parameters()));
        p.extend(prefixed("ln_2", self.ln_2.named_parameters()));
        p.extend(prefixed("mlp.c_fc", self.mlp.c_fc.named_parameters()));
        p.extend(prefixed("mlp.c_proj", self.mlp.c_proj.named_parameters()));
        p
    }
}

/// The GPT; see the module docs.
pub struct Gpt {
    pub config: GptConfig,
    wte: Embedding,
    wpe: Option<Embedding>,
    drop: Dropout,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    training: AtomicBool,
}

impl Gpt {
    pub fn new(config: GptConfig) -> Result<Gpt> {
        let c = config.n_embd;
        if config.n_head == 0
            || !c.is_multiple_of(config.n_head)
            || config.vocab_size == 0
            || config.block_size == 0
        {
            return Err(Error::Arg {
                op: "Gpt",
                msg: format!(
                    "n_embd {c} must be a multiple of n_head {}, and vocab_size and block_size positive ({config:?})",
                    config.n_head
                ),
            });
        }
        let normal = |shape: &[usize], std: f32| init::normal(shape, std).requires_grad_(true);
        let linear = |i: usize, o: usize, std: f32| Linear {
            weight: normal(&[o, i], std),
            bias: Some(Tensor::zeros([o]).requires_grad_(true)),
        };
        let proj_std = 0.02 / (2.0 * config.n_layer as f32).sqrt();
        let blocks = (0..config.n_layer)
            .map(|_| Block {
                ln_1: LayerNorm::new(&[c]),
                attn: Attention {
                    c_attn: linear(c, 3 * c, 0.02),
                    c_proj: linear(c, c, proj_std),
                    n_head: config.n_head,
                    dropout: config.dropout,
                    resid_dropout: Dropout::new(config.dropout),
                    rotary: config.positions == Positions::Rotary,
                },
                ln_2: LayerNorm::new(&[c]),
                mlp: Mlp {
                    c_fc: linear(c, 4 * c, 0.02),
                    c_proj: linear(4 * c, c, proj_std),
                    dropout: Dropout::new(config.dropout),
                },
            })
            .collect();
        let embedding = |n: usize| Embedding {
            weight: normal(&[n, c], 0.02),
            padding_idx: None,
        };
        Ok(Gpt {
            wte: embedding(config.vocab_size),
            wpe: (config.positions == Positions::Learned).then(|| embedding(config.block_size)),
            drop: Dropout::new(config.dropout),
            blocks,
            ln_f: LayerNorm::new(&[c]),
            training: AtomicBool::new(true),
            config,
        })
    }

    /// Logits `[B, T, V]` for ids `[B, T]` at positions `start..start + T`,
    /// extending `cache` when given.
    pub fn forward_cached(&self, ids: &Tensor, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let start = cache.as_ref().map_or(0, |c| c.len);
        let limit = self.config.block_size;
        if start + t > limit && self.config.positions != Positions::Rotary {
            return Err(Error::Arg {
                op: "Gpt",
                msg: format!("{} positions do not fit the context of {limit}", start + t),
            });
        }
        let training = self.training.load(Ordering::Relaxed);
        let mut x = self.wte.forward(ids)?;
        let c = self.config.n_embd;
        match self.config.positions {
            Positions::Learned => {
                let pos: Vec<i64> = (start as i64..(start + t) as i64).collect();
                let pos = Tensor::from_vec_i64(pos, [t])?.to(ids.device())?;
                let wpe = self.wpe.as_ref().expect("learned positions have a table");
                x = x.add(&wpe.forward(&pos)?)?;
            }
            Positions::Sinusoidal => {
                let table = sinusoidal(start + t, c, ids.device())?.narrow(0, start, t)?;
                x = x.add(&table)?;
            }
            Positions::Rotary => {}
        }
        let mut x = self.drop.forward(&x)?;
        if let Some(cache) = cache.as_deref_mut() {
            cache
                .layers
                .resize(self.blocks.len(), LayerCache::default());
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let layer = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(&x, layer, start, training)?;
        }
        if let Some(cache) = cache {
            cache.len += t;
        }
        // the head shares the token embeddings' weights
        self.ln_f.forward(&x)?.linear(&self.wte.weight, None)
    }

    /// `max_new_tokens` ids continuing `prompt`, drawn from softmax(logits
    /// / temperature) over the `top_k` likeliest (all when None; the
    /// likeliest at temperature 0), each passed to `emit` as it comes.
    /// With `use_cache` each new token runs alone through the network;
    /// without, the whole (cropped) context is recomputed for each token,
    /// as nanoGPT's `generate` does.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        temperature: f32,
        top_k: Option<usize>,
        use_cache: bool,
        gen: &mut Generator,
        mut emit: impl FnMut(u32),
    ) -> Result<Vec<u32>> {
        let v = self.config.vocab_size;
        if prompt.is_empty() || prompt.iter().any(|&c| c as usize >= v) {
            return Err(Error::Arg {
                op: "Gpt.generate",
                msg: format!("the prompt must be at least one id below the vocabulary size {v}"),
            });
        }
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(Error::Arg {
                op: "Gpt.generate",
                msg: format!("temperature must be finite and ≥ 0, got {temperature}"),
            });
        }
        let was_training = self.training.load(Ordering::Relaxed);
        self.set_training(false);
        let block = self.config.block_size;
        let ids_tensor = |ids: &[u32]| {
            let v: Vec<i64> = ids.iter().map(|&c| i64::from(c)).collect();
            Tensor::from_vec_i64(v, [1, ids.len()])
        };
        let rotary = self.config.positions == Positions::Rotary;
        let result = no_grad(|| -> Result<Vec<u32>> {
            let mut ids = prompt.to_vec();
            let mut cache = KvCache::default();
            let mut pending: Vec<u32> = ids[ids.len().saturating_sub(block)..].to_vec();
            for _ in 0..max_new_tokens {
                let logits = match use_cache {
                    true => {
                        if cache.len + pending.len() > block {
                            if rotary {
                                cache.keep_last(block - pending.len().min(block))?;
                            } else {
                                // full: rebuild from the last half block
                                cache = KvCache::default();
                                pending =
                                    ids[ids.len() - (block / 2).clamp(1, ids.len())..].to_vec();
                            }
                        }
                        self.forward_cached(&ids_tensor(&pending)?, Some(&mut cache))?
                    }
                    false => {
                        let context = &ids[ids.len().saturating_sub(block)..];
                        self.forward_cached(&ids_tensor(context)?, None)?
                    }
                };
                let t = logits.shape()[1];
                let last = logits.narrow(1, t - 1, 1)?.to_vec();
                let next = crate::lm::draw_top_k(&last, temperature, top_k, gen) as u32;
                emit(next);
                ids.push(next);
                pending = vec![next];
            }
            Ok(ids[prompt.len()..].to_vec())
        });
        self.set_training(was_training);
        result
    }
}

impl Parameters for Gpt {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("transformer.wte", self.wte.named_parameters());
        if let Some(wpe) = &self.wpe {
            p.extend(prefixed("transformer.wpe", wpe.named_parameters()));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            p.extend(prefixed(
                &format!("transformer.h.{i}"),
                b.named_parameters(),
            ));
        }
        p.extend(prefixed("transformer.ln_f", self.ln_f.named_parameters()));
        // tied: the same tensor as transformer.wte.weight
        p.push(("lm_head.weight".to_string(), self.wte.weight.clone()));
        p
    }

    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
        self.drop.set_training(on);
        for b in &self.blocks {
            b.attn.resid_dropout.set_training(on);
            b.mlp.dropout.set_training(on);
        }
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "GPT({} layers, {} heads, {} wide, context {}, vocabulary {})",
            c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size
        )
    }
}

impl Module for Gpt {
    /// Logits `[B, T, V]` for ids `[B, T]`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.forward_cached(ids, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(positions: Positions, block_size: usize) -> Gpt {
        nabla_core::manual_seed(5);
        let m = Gpt::new(GptConfig {
            vocab_size: 13,
            block_size,
            n_layer: 2,
            n_head: 2,
            n_embd: 16,
            dropout: 0.0,
            positions,
        })
        .unwrap();
        // larger weights than nanoGPT's init, so that positions matter
        for p in m.parameters() {
            p.copy_from(
                &nabla_core::gradcheck::rand_input(p.shape(), p.numel() as u64)
                    .mul_scalar(0.5)
                    .unwrap(),
            )
            .unwrap();
        }
        m
    }

    fn ids(v: &[u32]) -> Tensor {
        Tensor::from_vec_i64(v.iter().map(|&i| i64::from(i)).collect(), [1, v.len()]).unwrap()
    }

    /// Feeding a sequence a few tokens at a time through the cache gives
    /// the logits of the whole sequence at once, for every kind of position.
    #[test]
    fn the_cache_gives_the_logits_of_the_whole_sequence() {
        let seq = [3u32, 1, 4, 1, 5, 9, 2, 6, 5, 3];
        for positions in [Positions::Learned, Positions::Sinusoidal, Positions::Rotary] {
            let m = tiny(positions, 16);
            let whole = m.forward(&ids(&seq)).unwrap();
            let mut cache = KvCache::default();
            let mut parts = Vec::new();
            for chunk in [&seq[..4], &seq[4..5], &seq[5..8], &seq[8..]] {
                parts.push(m.forward_cached(&ids(chunk), Some(&mut cache)).unwrap());
            }
            assert_eq!(cache.len(), seq.len());
            let pieces = Tensor::cat(&parts, 1).unwrap();
            for (a, b) in pieces.to_vec().iter().zip(whole.to_vec()) {
                assert!((a - b).abs() < 1e-4, "{positions:?}: {a} vs {b}");
            }
        }
    }

    /// Greedy generation gives the same tokens with and without the cache
    /// while the context fits; past it, the cache's window still yields
    /// valid tokens. Bad prompts are errors.
    #[test]
    fn generation_with_and_without_the_cache() {
        let m = tiny(Positions::Learned, 16);
        let mut g = Generator::new(1);
        let with = m
            .generate(&[1, 2, 3], 12, 0.0, None, true, &mut g, |_| {})
            .unwrap();
        let without = m
            .generate(&[1, 2, 3], 12, 0.0, None, false, &mut g, |_| {})
            .unwrap();
        assert_eq!(with, without);
        let mut streamed = Vec::new();
        let long = m
            .generate(&[1], 40, 0.8, Some(5), true, &mut g, |t| streamed.push(t))
            .unwrap();
        assert_eq!(long, streamed);
        assert!(long.len() == 40 && long.iter().all(|&t| t < 13));
        let r = tiny(Positions::Rotary, 8);
        assert_eq!(
            r.generate(&[2], 30, 1.0, None, true, &mut g, |_| {})
                .unwrap()
                .len(),
            30
        );
        assert!(m.generate(&[], 3, 1.0, None, true, &mut g, |_| {}).is_err());
        assert!(m
            .generate(&[13], 3, 1.0, None, true, &mut g, |_| {})
            .is_err());
        let e = m.forward(&ids(&[1; 17])).unwrap_err().to_string();
        assert!(e.contains("context of 16"), "{e}");
    }
}
