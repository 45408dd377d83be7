//! PyTorch's Transformer modules, their names, defaults and arithmetic:
//! `TransformerEncoderLayer`, `TransformerDecoderLayer`,
//! `TransformerEncoder`, `TransformerDecoder` and `Transformer`.
//!
//! An encoder layer (post-norm, PyTorch's default):
//! `x = norm1(x + dropout1(self_attn(x)))`,
//! `x = norm2(x + dropout2(linear2(dropout(act(linear1(x))))))`;
//! with `norm_first` (pre-norm, GPT's order): `x = x + sa(norm1(x))`,
//! `x = x + ff(norm2(x))`. A decoder layer adds cross-attention over the
//! encoder's output (`memory`) between the two, with `norm2` before or after
//! it and the feed-forward block's norm named `norm3`. Parameter names are
//! PyTorch's (`layers.0.self_attn.in_proj_weight`, `encoder.norm.weight`,
//! …), so its state dicts load and give its outputs.

use nabla_core::{Error, Result, Tensor};

use crate::{
    prefixed, Dropout, LayerNorm, Linear, MhaArgs, MhaMask, MhaOptions, Module, MultiheadAttention,
    Parameters,
};

/// The feed-forward block's activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    Relu,
    /// The exact GELU (`F.gelu`).
    Gelu,
}

/// The sizes and options of a layer (PyTorch's arguments and defaults:
/// `dim_feedforward` 2048, `dropout` 0.1, ReLU, `layer_norm_eps` 1e-5,
/// sequence-first, post-norm, with biases).
#[derive(Clone, Debug)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub nhead: usize,
    pub dim_feedforward: usize,
    pub dropout: f32,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    pub batch_first: bool,
    pub norm_first: bool,
    pub bias: bool,
}

impl TransformerConfig {
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
            bias: true,
        }
    }
    pub fn dim_feedforward(mut self, d: usize) -> Self {
        self.dim_feedforward = d;
        self
    }
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn layer_norm_eps(mut self, eps: f32) -> Self {
        self.layer_norm_eps = eps;
        self
    }
    pub fn batch_first(mut self, on: bool) -> Self {
        self.batch_first = on;
        self
    }
    pub fn norm_first(mut self, on: bool) -> Self {
        self.norm_first = on;
        self
    }
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }

    fn attention(&self) -> Result<MultiheadAttention> {
        let o = MhaOptions {
            dropout: self.dropout,
            no_bias: !self.bias,
            batch_first: self.batch_first,
            ..Default::default()
        };
        MultiheadAttention::with_options(self.d_model, self.nhead, o)
    }

    fn norm(&self) -> Result<LayerNorm> {
        let mut n = LayerNorm::new(&[self.d_model]);
        n.eps = self.layer_norm_eps;
        if !self.bias {
            return Err(Error::Arg {
                op: "TransformerConfig",
                msg: "layers without biases need a LayerNorm without bias, which nabla lacks"
                    .into(),
            });
        }
        Ok(n)
    }
}

/// The masks of an attention block (PyTorch's `*_mask`,
/// `*_key_padding_mask`, `*_is_causal`).
#[derive(Clone, Debug, Default)]
pub struct Masks {
    pub mask: Option<MhaMask>,
    pub key_padding_mask: Option<MhaMask>,
    pub is_causal: bool,
}

impl Masks {
    /// Query i sees keys j ≤ i (a decoder's self-attention, a GPT's).
    pub fn causal() -> Self {
        Masks {
            is_causal: true,
            ..Default::default()
        }
    }

    fn args(&self) -> MhaArgs {
        MhaArgs {
            key_padding_mask: self.key_padding_mask.clone(),
            attn_mask: self.mask.clone(),
            need_weights: false,
            average_attn_weights: true,
            is_causal: self.is_causal,
        }
    }
}

/// `linear2(dropout(act(linear1(x))))`, then `dropout_out`.
struct FeedForward {
    linear1: Linear,
    dropout: Dropout,
    linear2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(c: &TransformerConfig) -> Self {
        FeedForward {
            linear1: Linear::with_bias(c.d_model, c.dim_feedforward, c.bias),
            dropout: Dropout::new(c.dropout),
            linear2: Linear::with_bias(c.dim_feedforward, c.d_model, c.bias),
            activation: c.activation,
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear1.forward(x)?;
        let h = match self.activation {
            Activation::Relu => h.relu()?,
            Activation::Gelu => h.gelu()?,
        };
        self.linear2.forward(&self.dropout.forward(&h)?)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("linear1", self.linear1.named_parameters());
        p.extend(prefixed("linear2", self.linear2.named_parameters()));
        p
    }
}

/// `nn.TransformerEncoderLayer`.
pub struct TransformerEncoderLayer {
    pub self_attn: MultiheadAttention,
    ff: FeedForward,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    dropout1: Dropout,
    dropout2: Dropout,
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    pub fn new(c: &TransformerConfig) -> Result<Self> {
        Ok(TransformerEncoderLayer {
            self_attn: c.attention()?,
            ff: FeedForward::new(c),
            norm1: c.norm()?,
            norm2: c.norm()?,
            dropout1: Dropout::new(c.dropout),
            dropout2: Dropout::new(c.dropout),
            norm_first: c.norm_first,
        })
    }

    /// The layer on `src` with its masks.
    pub fn forward_with(&self, src: &Tensor, masks: &Masks) -> Result<Tensor> {
        Ok(self.run(src, masks, false)?.0)
    }

    /// The layer's output and its attention weights `[N, L, S]` (averaged
    /// over the heads).
    pub fn forward_with_weights(&self, src: &Tensor, masks: &Masks) -> Result<(Tensor, Tensor)> {
        let (y, w) = self.run(src, masks, true)?;
        Ok((y, w.expect("asked for")))
    }

    fn run(&self, src: &Tensor, masks: &Masks, weights: bool) -> Result<(Tensor, Option<Tensor>)> {
        let seen = std::sync::Mutex::new(None);
        let sa = |x: &Tensor| {
            let args = MhaArgs {
                need_weights: weights,
                ..masks.args()
            };
            let (y, w) = self.self_attn.forward_with(x, x, x, &args)?;
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = w;
            self.dropout1.forward(&y)
        };
        let ff = |x: &Tensor| self.dropout2.forward(&self.ff.forward(x)?);
        let blocks: [Block; 2] = [(&self.norm1, &sa), (&self.norm2, &ff)];
        let y = residual_blocks(src, self.norm_first, &blocks)?;
        Ok((y, seen.into_inner().unwrap_or_else(|e| e.into_inner())))
    }
}

/// Each block `f` with its norm: `x + f(norm(x))` (pre-norm) or
/// `norm(x + f(x))` (post-norm), in turn.
type Block<'a> = (&'a LayerNorm, &'a dyn Fn(&Tensor) -> Result<Tensor>);

fn residual_blocks(x: &Tensor, norm_first: bool, blocks: &[Block]) -> Result<Tensor> {
    let mut x = x.clone();
    for (norm, f) in blocks {
        x = match norm_first {
            true => x.add(&f(&norm.forward(&x)?)?)?,
            false => norm.forward(&x.add(&f(&x)?)?)?,
        };
    }
    Ok(x)
}

impl Parameters for TransformerEncoderLayer {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("self_attn", self.self_attn.named_parameters());
        p.extend(self.ff.named_parameters());
        p.extend(prefixed("norm1", self.norm1.named_parameters()));
        p.extend(prefixed("norm2", self.norm2.named_parameters()));
        p
    }

    fn set_training(&self, on: bool) {
        self.self_attn.set_training(on);
        for d in [&self.ff.dropout, &self.dropout1, &self.dropout2] {
            d.set_training(on);
        }
    }

    fn describe(&self) -> String {
        format!(
            "TransformerEncoderLayer(d_model={}, nhead={}, dim_feedforward={})",
            self.self_attn.embed_dim,
            self.self_attn.num_heads,
            self.ff.linear1.out_features()
        )
    }
}

impl Module for TransformerEncoderLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, &Masks::default())
    }
}

/// `nn.TransformerDecoderLayer`.
pub struct TransformerDecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    ff: FeedForward,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    dropouts: [Dropout; 3],
    pub norm_first: bool,
}

impl TransformerDecoderLayer {
    pub fn new(c: &TransformerConfig) -> Result<Self> {
        Ok(TransformerDecoderLayer {
            self_attn: c.attention()?,
            multihead_attn: c.attention()?,
            ff: FeedForward::new(c),
            norm1: c.norm()?,
            norm2: c.norm()?,
            norm3: c.norm()?,
            dropouts: [0, 1, 2].map(|_| Dropout::new(c.dropout)),
            norm_first: c.norm_first,
        })
    }

    /// The layer on `tgt` attending to `memory`, with the masks of its
    /// self-attention (`tgt`) and of its cross-attention (`memory`).
    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        tgt_masks: &Masks,
        memory_masks: &Masks,
    ) -> Result<Tensor> {
        let sa = |x: &Tensor| {
            let (y, _) = self.self_attn.forward_with(x, x, x, &tgt_masks.args())?;
            self.dropouts[0].forward(&y)
        };
        let mha = |x: &Tensor| {
            let args = memory_masks.args();
            let (y, _) = self.multihead_attn.forward_with(x, memory, memory, &args)?;
            self.dropouts[1].forward(&y)
        };
        let ff = |x: &Tensor| self.dropouts[2].forward(&self.ff.forward(x)?);
        let blocks: [Block; 3] = [(&self.norm1, &sa), (&self.norm2, &mha), (&self.norm3, &ff)];
        residual_blocks(tgt, self.norm_first, &blocks)
    }
}

impl Parameters for TransformerDecoderLayer {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("self_attn", self.self_attn.named_parameters());
        p.extend(prefixed(
            "multihead_attn",
            self.multihead_attn.named_parameters(),
        ));
        p.extend(self.ff.named_parameters());
        for (name, n) in [
            ("norm1", &self.norm1),
            ("norm2", &self.norm2),
            ("norm3", &self.norm3),
        ] {
            p.extend(prefixed(name, n.named_parameters()));
        }
        p
    }

    fn set_training(&self, on: bool) {
        self.self_attn.set_training(on);
        self.multihead_attn.set_training(on);
        self.ff.dropout.set_training(on);
        self.dropouts.iter().for_each(|d| d.set_training(on));
    }

    fn describe(&self) -> String {
        format!(
            "TransformerDecoderLayer(d_model={}, nhead={})",
            self.self_attn.embed_dim, self.self_attn.num_heads
        )
    }
}

impl Module for TransformerDecoderLayer {
    /// The layer attending to its own input as memory, unmasked.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, x, &Masks::default(), &Masks::default())
    }
}

/// `n` layers made by `make`, and the final norm when asked for: what the
/// two stacks are built from.
fn stack<L>(
    c: &TransformerConfig,
    n: usize,
    final_norm: bool,
    make: impl Fn(&TransformerConfig) -> Result<L>,
) -> Result<(Vec<L>, Option<LayerNorm>)> {
    let layers = (0..n).map(|_| make(c)).collect::<Result<_>>()?;
    Ok((layers, final_norm.then(|| c.norm()).transpose()?))
}

/// `x` through the stack's final norm, if it has one.
fn finish(norm: &Option<LayerNorm>, x: Tensor) -> Result<Tensor> {
    match norm {
        Some(n) => n.forward(&x),
        None => Ok(x),
    }
}

/// The names and training switch shared by the two stacks.
fn stack_parameters<L: Module>(layers: &[L], norm: &Option<LayerNorm>) -> Vec<(String, Tensor)> {
    let mut p = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        p.extend(prefixed(&format!("layers.{i}"), l.named_parameters()));
    }
    if let Some(n) = norm {
        p.extend(prefixed("norm", n.named_parameters()));
    }
    p
}

/// `nn.TransformerEncoder`: `num_layers` encoder layers, then an optional
/// final norm.
pub struct TransformerEncoder {
    pub layers: Vec<TransformerEncoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// `num_layers` layers of config `c` (each initialized afresh, as
    /// PyTorch's copies of one layer are before training) and, with
    /// `final_norm`, a LayerNorm after them.
    pub fn new(c: &TransformerConfig, num_layers: usize, final_norm: bool) -> Result<Self> {
        let (layers, norm) = stack(c, num_layers, final_norm, TransformerEncoderLayer::new)?;
        Ok(TransformerEncoder { layers, norm })
    }

    pub fn forward_with(&self, src: &Tensor, masks: &Masks) -> Result<Tensor> {
        let mut x = src.clone();
        for l in &self.layers {
            x = l.forward_with(&x, masks)?;
        }
        finish(&self.norm, x)
    }
}

impl Parameters for TransformerEncoder {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        stack_parameters(&self.layers, &self.norm)
    }

    fn set_training(&self, on: bool) {
        self.layers.iter().for_each(|l| l.set_training(on));
    }

    fn describe(&self) -> String {
        format!("TransformerEncoder({} layers)", self.layers.len())
    }
}

impl Module for TransformerEncoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, &Masks::default())
    }

    fn forward_with_attention(&self, x: &Tensor) -> Option<Result<(Tensor, Vec<Tensor>)>> {
        let run = || {
            let (mut y, mut all) = (x.clone(), Vec::new());
            for l in &self.layers {
                let (out, w) = l.forward_with_weights(&y, &Masks::default())?;
                y = out;
                all.push(w);
            }
            Ok((finish(&self.norm, y)?, all))
        };
        Some(run())
    }
}

/// `nn.TransformerDecoder`: `num_layers` decoder layers, then an optional
/// final norm.
pub struct TransformerDecoder {
    pub layers: Vec<TransformerDecoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerDecoder {
    pub fn new(c: &TransformerConfig, num_layers: usize, final_norm: bool) -> Result<Self> {
        let (layers, norm) = stack(c, num_layers, final_norm, TransformerDecoderLayer::new)?;
        Ok(TransformerDecoder { layers, norm })
    }

    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        tgt_masks: &Masks,
        memory_masks: &Masks,
    ) -> Result<Tensor> {
        let mut x = tgt.clone();
        for l in &self.layers {
            x = l.forward_with(&x, memory, tgt_masks, memory_masks)?;
        }
        finish(&self.norm, x)
    }
}

impl Parameters for TransformerDecoder {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        stack_parameters(&self.layers, &self.norm)
    }

    fn set_training(&self, on: bool) {
        self.layers.iter().for_each(|l| l.set_training(on));
    }

    fn describe(&self) -> String {
        format!("TransformerDecoder({} layers)", self.layers.len())
    }
}

impl Module for TransformerDecoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, x, &Masks::default(), &Masks::default())
    }
}

/// `nn.Transformer`: an encoder and a decoder, each ending in a LayerNorm.
pub struct Transformer {
    pub encoder: TransformerEncoder,
    pub decoder: TransformerDecoder,
}

/// The masks of a [`Transformer`] call: the source's self-attention, the
/// target's self-attention and the target's attention to the memory.
#[derive(Clone, Debug, Default)]
pub struct TransformerMasks {
    pub src: Masks,
    pub tgt: Masks,
    pub memory: Masks,
}

impl Transformer {
    /// `nn.Transformer(d_model, nhead, num_encoder_layers,
    /// num_decoder_layers, …)` with the options of `c`.
    pub fn new(
        c: &TransformerConfig,
        encoder_layers: usize,
        decoder_layers: usize,
    ) -> Result<Self> {
        Ok(Transformer {
            encoder: TransformerEncoder::new(c, encoder_layers, true)?,
            decoder: TransformerDecoder::new(c, decoder_layers, true)?,
        })
    }

    /// The decoder's output for `tgt` over the encoded `src`.
    pub fn forward_with(&self, src: &Tensor, tgt: &Tensor, m: &TransformerMasks) -> Result<Tensor> {
        let memory = self.encoder.forward_with(src, &m.src)?;
        self.decoder.forward_with(tgt, &memory, &m.tgt, &m.memory)
    }
}

impl Parameters for Transformer {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("encoder", self.encoder.named_parameters());
        p.extend(prefixed("decoder", self.decoder.named_parameters()));
        p
    }

    fn set_training(&self, on: bool) {
        self.encoder.set_training(on);
        self.decoder.set_training(on);
    }

    fn describe(&self) -> String {
        format!(
            "Transformer({} encoder layers, {} decoder layers)",
            self.encoder.layers.len(),
            self.decoder.layers.len()
        )
    }
}

impl Module for Transformer {
    /// The source as its own target, unmasked.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, x, &TransformerMasks::default())
    }
}
