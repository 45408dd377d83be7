//! `nn.MultiheadAttention`: PyTorch's module, names and semantics.
//!
//! `out = concat(head_1, …, head_H)·W_oᵀ + b_o`, `head_h =
//! attention(q·W_q,hᵀ, k·W_k,hᵀ, v·W_v,hᵀ)` with `E / H` features a head
//! and the scores scaled by `1/√(E/H)`. Shapes: query `[L, N, E]` (or `[N,
//! L, E]` with `batch_first`, or unbatched `[L, E]`), key `[S, N, kdim]`,
//! value `[S, N, vdim]`; out like the query. Parameters as PyTorch names
//! them: `in_proj_weight [3E, E]` (or `q_proj_weight`, `k_proj_weight`,
//! `v_proj_weight` when kdim or vdim differ from E), `in_proj_bias [3E]`,
//! `out_proj.weight`, `out_proj.bias`; a PyTorch state dict loads as is.
//!
//! Masks keep PyTorch's polarity: a key padding mask `[N, S]` or an
//! attention mask `[L, S]` / `[N·H, L, S]` is either [`MhaMask::Ignore`]
//! (PyTorch's boolean mask: nonzero = the key is NOT attended to, the
//! opposite of `scaled_dot_product_attention`'s) or [`MhaMask::Add`] (added
//! to the scores). Without `need_weights` the heads run through the fused
//! attention op; with it the weights are materialized and returned,
//! averaged over the heads or per head.

use std::sync::atomic::{AtomicBool, Ordering};

use nabla_core::{AttentionParams, Error, Result, Tensor};

use crate::init::xavier_uniform;
use crate::{Linear, Module, Parameters};

/// A mask in PyTorch's `nn.MultiheadAttention` polarity.
#[derive(Clone, Debug)]
pub enum MhaMask {
    /// Nonzero where the key must NOT be attended to (PyTorch's bool mask).
    Ignore(Tensor),
    /// Added to the scores (PyTorch's float mask; −∞ hides a key).
    Add(Tensor),
}

/// The input projections: one packed `[3E, E]` weight when queries, keys
/// and values share E features, else three.
pub enum InProj {
    Packed(Tensor),
    Separate { q: Tensor, k: Tensor, v: Tensor },
}

/// The arguments of one call, PyTorch's keyword arguments and defaults
/// (`need_weights` and `average_attn_weights` on).
#[derive(Clone, Debug)]
pub struct MhaArgs {
    pub key_padding_mask: Option<MhaMask>,
    pub attn_mask: Option<MhaMask>,
    pub need_weights: bool,
    pub average_attn_weights: bool,
    pub is_causal: bool,
}

impl Default for MhaArgs {
    fn default() -> Self {
        MhaArgs {
            key_padding_mask: None,
            attn_mask: None,
            need_weights: true,
            average_attn_weights: true,
            is_causal: false,
        }
    }
}

impl MhaArgs {
    /// No weights returned: the fused attention path.
    pub fn fast() -> Self {
        MhaArgs {
            need_weights: false,
            ..Default::default()
        }
    }
}

/// `nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, kdim, vdim,
/// batch_first)`.
pub struct MultiheadAttention {
    pub embed_dim: usize,
    pub num_heads: usize,
    pub dropout: f32,
    pub batch_first: bool,
    pub in_proj: InProj,
    pub in_proj_bias: Option<Tensor>,
    pub out_proj: Linear,
    training: AtomicBool,
}

/// The options of [`MultiheadAttention::with_options`], PyTorch's defaults.
#[derive(Clone, Debug, Default)]
pub struct MhaOptions {
    pub dropout: f32,
    pub no_bias: bool,
    pub kdim: Option<usize>,
    pub vdim: Option<usize>,
    pub batch_first: bool,
}

impl MultiheadAttention {
    /// `nn.MultiheadAttention(embed_dim, num_heads)`.
    pub fn new(embed_dim: usize, num_heads: usize) -> Result<Self> {
        Self::with_options(embed_dim, num_heads, MhaOptions::default())
    }

    /// With PyTorch's initialization: Xavier-uniform input projections,
    /// zero biases, the output layer as `nn.Linear` with a zero bias.
    pub fn with_options(embed_dim: usize, num_heads: usize, o: MhaOptions) -> Result<Self> {
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(Error::Arg {
                op: "MultiheadAttention",
                msg: format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
            });
        }
        let e = embed_dim;
        let (kdim, vdim) = (o.kdim.unwrap_or(e), o.vdim.unwrap_or(e));
        let param = |t: Tensor| t.requires_grad_(true);
        let in_proj = match kdim == e && vdim == e {
            true => InProj::Packed(param(xavier_uniform(&[3 * e, e]))),
            false => InProj::Separate {
                q: param(xavier_uniform(&[e, e])),
                k: param(xavier_uniform(&[e, kdim])),
                v: param(xavier_uniform(&[e, vdim])),
            },
        };
        let out_proj = Linear::with_bias(e, e, !o.no_bias);
        if let Some(b) = &out_proj.bias {
            b.copy_from(&Tensor::zeros([e]))?;
        }
        Ok(MultiheadAttention {
            embed_dim: e,
            num_heads,
            dropout: o.dropout,
            batch_first: o.batch_first,
            in_proj,
            in_proj_bias: (!o.no_bias).then(|| param(Tensor::zeros([3 * e]))),
            out_proj,
            training: AtomicBool::new(true),
        })
    }

    fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    /// `x·W_pᵀ + b_p` for projection p (0: q, 1: k, 2: v).
    fn project(&self, x: &Tensor, p: usize) -> Result<Tensor> {
        let e = self.embed_dim;
        let w = match &self.in_proj {
            InProj::Packed(w) => w.narrow(0, p * e, e)?,
            InProj::Separate { q, k, v } => [q, k, v][p].clone(),
        };
        let b = self
            .in_proj_bias
            .as_ref()
            .map(|b| b.narrow(0, p * e, e))
            .transpose()?;
        x.linear(&w, b.as_ref())
    }

    /// `[N, T, E]` → `[N, H, T, E/H]` (a view).
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (n, t) = (x.shape()[0], x.shape()[1]);
        x.reshape([n, t, self.num_heads, self.head_dim()])?
            .transpose(1, 2)
    }

    /// The attention of `query` over `key` and `value`: the output and,
    /// with `need_weights`, the attention weights (`[N, L, S]` averaged
    /// over the heads, or `[N, H, L, S]`; without a batch dim for an
    /// unbatched query).
    pub fn forward_with(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        args: &MhaArgs,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let unbatched = query.rank() == 2;
        if !(2..=3).contains(&query.rank())
            || key.rank() != query.rank()
            || value.rank() != query.rank()
        {
            return Err(Error::Shape {
                op: "MultiheadAttention",
                msg: format!(
                    "query, key and value must all be [L, N, E] (or [N, L, E] with batch_first, or unbatched [L, E]), got {:?}, {:?}, {:?}",
                    query.shape(),
                    key.shape(),
                    value.shape()
                ),
            });
        }
        // every input as [N, T, features]
        let batch_major = |x: &Tensor| match (unbatched, self.batch_first) {
            (true, _) => x.unsqueeze(0),
            (false, true) => Ok(x.clone()),
            (false, false) => x.transpose(0, 1),
        };
        let self_attention = query.id() == key.id() && key.id() == value.id();
        let (q, k, v) = match (&self.in_proj, self_attention) {
            (InProj::Packed(w), true) => {
                // one product for the three projections
                let qkv = batch_major(query)?.linear(w, self.in_proj_bias.as_ref())?;
                let e = self.embed_dim;
                let part = |p: usize| qkv.narrow(2, p * e, e);
                (part(0)?, part(1)?, part(2)?)
            }
            _ => (
                self.project(&batch_major(query)?, 0)?,
                self.project(&batch_major(key)?, 1)?,
                self.project(&batch_major(value)?, 2)?,
            ),
        };
        let (n, l, s) = (q.shape()[0], q.shape()[1], k.shape()[1]);
        let mask = self.mask(args, (n, l, s), unbatched)?;
        let (q, k, v) = (
            self.split_heads(&q)?,
            self.split_heads(&k)?,
            self.split_heads(&v)?,
        );
        let training = self.training.load(Ordering::Relaxed);
        let dropout = if training { self.dropout } else { 0.0 };
        let causal = args.is_causal && mask.is_none();
        let (heads, weights) = match args.need_weights {
            false => {
                let mut p = AttentionParams::default().dropout(dropout);
                p.mask = mask.map(nabla_core::AttentionMask::Add);
                p.causal = causal;
                (q.scaled_dot_product_attention(&k, &v, &p)?, None)
            }
            true => {
                let scale = 1.0 / (self.head_dim() as f32).sqrt();
                let mut scores = q.matmul(&k.transpose(-2, -1)?)?.mul_scalar(scale)?;
                if let Some(m) = &mask {
                    scores = scores.add(m)?;
                }
                if causal {
                    scores = scores.add(&causal_mask(l, s)?)?;
                }
                let w = scores.softmax(-1)?.dropout(dropout, training)?;
                let shown = match args.average_attn_weights {
                    true => w.mean(&[1], false)?,
                    false => w.clone(),
                };
                let shown = if unbatched { shown.squeeze(0)? } else { shown };
                (w.matmul(&v)?, Some(shown))
            }
        };
        // [N, H, L, E/H] → [N, L, E], the output projection, the caller's layout
        let out = heads
            .transpose(1, 2)?
            .reshape([n, l, self.embed_dim])?
            .linear(&self.out_proj.weight, self.out_proj.bias.as_ref())?;
        let out = match (unbatched, self.batch_first) {
            (true, _) => out.squeeze(0)?,
            (false, true) => out,
            (false, false) => out.transpose(0, 1)?,
        };
        Ok((out, weights))
    }

    /// The key padding and attention masks as one additive mask that
    /// broadcasts to `[N, H, L, S]`.
    fn mask(
        &self,
        args: &MhaArgs,
        (n, l, s): (usize, usize, usize),
        unbatched: bool,
    ) -> Result<Option<Tensor>> {
        let additive = |m: &MhaMask| match m {
            MhaMask::Add(t) => Ok(t.clone()),
            MhaMask::Ignore(t) => {
                Tensor::zeros_on(t.shape().to_vec(), t.device()).masked_fill(t, f32::NEG_INFINITY)
            }
        };
        let bad = |what: &str, got: &[usize], want: String| Error::Shape {
            op: "MultiheadAttention",
            msg: format!("{what} has shape {got:?}, expected {want}"),
        };
        let mut total: Option<Tensor> = None;
        if let Some(m) = &args.attn_mask {
            let t = additive(m)?;
            let h = self.num_heads;
            let t = match t.shape() {
                [a, b] if *a == l && *b == s => t,
                [nh, a, b] if *nh == n * h && *a == l && *b == s => t.reshape([n, h, l, s])?,
                got => {
                    return Err(bad(
                        "attn_mask",
                        got,
                        format!("[{l}, {s}] or [{}, {l}, {s}]", n * h),
                    ));
                }
            };
            total = Some(t);
        }
        if let Some(m) = &args.key_padding_mask {
            let t = additive(m)?;
            let want: Vec<usize> = if unbatched { vec![s] } else { vec![n, s] };
            if t.shape() != want {
                return Err(bad("key_padding_mask", t.shape(), format!("{want:?}")));
            }
            let t = t.reshape([n, 1, 1, s])?;
            total = Some(match total {
                Some(a) => a.add(&t)?,
                None => t,
            });
        }
        Ok(total)
    }
}

/// 0 where key j may be seen from query i (j ≤ i), −∞ elsewhere.
fn causal_mask(l: usize, s: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..l * s)
        .map(|x| {
            if x % s > x / s {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, [l, s])
}

impl Parameters for MultiheadAttention {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = match &self.in_proj {
            InProj::Packed(w) => vec![("in_proj_weight".to_string(), w.clone())],
            InProj::Separate { q, k, v } => vec![
                ("q_proj_weight".to_string(), q.clone()),
                ("k_proj_weight".to_string(), k.clone()),
                ("v_proj_weight".to_string(), v.clone()),
            ],
        };
        if let Some(b) = &self.in_proj_bias {
            p.push(("in_proj_bias".to_string(), b.clone()));
        }
        p.extend(crate::prefixed(
            "out_proj",
            self.out_proj.named_parameters(),
        ));
        p
    }

    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!(
            "MultiheadAttention(embed_dim={}, num_heads={})",
            self.embed_dim, self.num_heads
        )
    }
}

impl Module for MultiheadAttention {
    /// Self-attention of `x` with no mask (the output alone).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(x, x, x, &MhaArgs::fast())?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::rand_input;

    /// The fused path (no weights) and the explicit one (weights) give the
    /// same output, with masks of both kinds and causal.
    #[test]
    fn fused_and_explicit_paths_agree() {
        let m = MultiheadAttention::new(8, 2).unwrap();
        m.set_training(false);
        let x = rand_input(&[6, 3, 8], 1);
        let mut kpm = vec![0f32; 18];
        kpm[4] = 1.0;
        let kpm = Tensor::from_vec(kpm, [3, 6]).unwrap();
        let cases = [
            MhaArgs::default(),
            MhaArgs {
                key_padding_mask: Some(MhaMask::Ignore(kpm)),
                attn_mask: Some(MhaMask::Add(rand_input(&[6, 6], 2))),
                ..Default::default()
            },
            MhaArgs {
                is_causal: true,
                ..Default::default()
            },
        ];
        for args in cases {
            let (a, w) = m.forward_with(&x, &x, &x, &args).unwrap();
            let fast = MhaArgs {
                need_weights: false,
                ..args.clone()
            };
            let (b, none) = m.forward_with(&x, &x, &x, &fast).unwrap();
            assert!(w.is_some() && none.is_none());
            assert_eq!(w.unwrap().shape(), [3, 6, 6]);
            for (u, v) in a.to_vec().iter().zip(b.to_vec()) {
                assert!((u - v).abs() < 1e-5, "{args:?}: {u} vs {v}");
            }
        }
    }

    /// Wrong sizes are errors that say what was expected.
    #[test]
    fn bad_shapes_are_errors() {
        assert!(MultiheadAttention::new(10, 3).is_err());
        let m = MultiheadAttention::new(8, 2).unwrap();
        let x = Tensor::zeros([4, 2, 8]);
        let e = m
            .forward_with(
                &x,
                &x,
                &x,
                &MhaArgs {
                    attn_mask: Some(MhaMask::Add(Tensor::zeros([3, 4]))),
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("attn_mask") && e.contains("[4, 4]"), "{e}");
        let e = m.forward(&Tensor::zeros([8])).unwrap_err().to_string();
        assert!(e.contains("[L, N, E]"), "{e}");
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "in_proj_weight",
                "in_proj_bias",
                "out_proj.weight",
                "out_proj.bias"
            ]
        );
    }
}
