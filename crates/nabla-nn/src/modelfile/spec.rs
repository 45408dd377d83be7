//! What a model file says: its name, the shape of one example and its
//! layers, as TOML (serde), with the defaults PyTorch's layers have.

use serde::Deserialize;

use crate::rnn::RnnKind;

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn half() -> f32 {
    0.5
}
fn one_f32() -> f32 {
    1.0
}
fn twenty() -> f32 {
    20.0
}
fn slope() -> f32 {
    0.01
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: Option<String>,
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
}

#[derive(Debug, Deserialize)]
pub struct LayerSpec {
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: LayerKind,
}

/// A convolution's padding: rows and columns of zeros on each side, or
/// PyTorch's words for it, `"same"` (the output as large as the input) and
/// `"valid"` (none).
#[derive(Clone, Copy, Debug, Default)]
pub enum Padding {
    Size(usize),
    #[default]
    Valid,
    Same,
}

impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Size(usize),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Size(p) => Ok(Padding::Size(p)),
            Raw::Word(w) if w == "same" => Ok(Padding::Same),
            Raw::Word(w) if w == "valid" => Ok(Padding::Valid),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "padding must be a number, \"same\" or \"valid\", got {w:?}"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerKind {
    Conv2d {
        out_channels: usize,
        kernel: usize,
        in_channels: Option<usize>,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "one")]
        dilation: usize,
        #[serde(default = "one")]
        groups: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    Maxpool2d {
        kernel: usize,
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        ceil_mode: bool,
    },
    Avgpool2d {
        kernel: usize,
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        ceil_mode: bool,
    },
    Linear {
        out_features: usize,
        in_features: Option<usize>,
        #[serde(default = "yes")]
        bias: bool,
    },
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    Leakyrelu {
        #[serde(default = "slope")]
        slope: f32,
    },
    Silu,
    Mish,
    Selu,
    Elu {
        #[serde(default = "one_f32")]
        alpha: f32,
    },
    Softplus {
        #[serde(default = "one_f32")]
        beta: f32,
        #[serde(default = "twenty")]
        threshold: f32,
    },
    Flatten,
    Dropout {
        #[serde(default = "half")]
        p: f32,
    },
    Batchnorm,
    /// A recurrent encoder (`lstm`, `gru`, `rnn`) reading an image row by
    /// row (or a `[T, F]` sequence); outputs its final hidden state.
    Lstm {
        hidden_size: usize,
        #[serde(default = "one")]
        num_layers: usize,
        #[serde(default)]
        bidirectional: bool,
    },
    Gru {
        hidden_size: usize,
        #[serde(default = "one")]
        num_layers: usize,
        #[serde(default)]
        bidirectional: bool,
    },
    Rnn {
        hidden_size: usize,
        #[serde(default = "one")]
        num_layers: usize,
        #[serde(default)]
        bidirectional: bool,
    },
    /// An image as patch tokens with a class token and learned positions.
    Patches {
        patch: usize,
        dim: usize,
    },
    /// Pre-norm Transformer encoder layers (GELU), then a LayerNorm.
    Encoder {
        layers: usize,
        heads: usize,
        ff: usize,
        #[serde(default)]
        dropout: f32,
    },
    /// The class token's features.
    Classtoken,
}

/// A recurrent layer as a model file describes it.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentLayer {
    pub kind: RnnKind,
    /// Gates a step computes: 4 (LSTM), 3 (GRU), 1 (plain RNN).
    pub gates: usize,
    pub hidden: usize,
    pub layers: usize,
    pub directions: usize,
}

impl LayerKind {
    /// The layer's recurrent shape, when it is `lstm`, `gru` or `rnn`.
    pub fn recurrent(&self) -> Option<RecurrentLayer> {
        let (kind, gates, hidden, layers, bidirectional) = match self {
            LayerKind::Lstm {
                hidden_size,
                num_layers,
                bidirectional,
            } => (RnnKind::Lstm, 4, hidden_size, num_layers, bidirectional),
            LayerKind::Gru {
                hidden_size,
                num_layers,
                bidirectional,
            } => (RnnKind::Gru, 3, hidden_size, num_layers, bidirectional),
            LayerKind::Rnn {
                hidden_size,
                num_layers,
                bidirectional,
            } => (RnnKind::RnnTanh, 1, hidden_size, num_layers, bidirectional),
            _ => return None,
        };
        Some(RecurrentLayer {
            kind,
            gates,
            hidden: *hidden,
            layers: (*layers).max(1),
            directions: if *bidirectional { 2 } else { 1 },
        })
    }
}
