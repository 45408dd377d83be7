//! nabla-nn: layers, losses, optimizers and state dicts with PyTorch's
//! semantics (names, layouts, initializations, update formulas), so a
//! PyTorch training program ports line by line.

mod attention;
pub mod init;
pub mod loss;
pub mod modelfile;
pub mod optim;
pub mod positional;
pub mod prune;
pub mod quantized;
pub mod quantized_conv;
pub mod regularization;
pub mod scheduler;
pub mod state_dict;

mod conv;
pub mod gpt;
mod layers;
mod linear;
pub mod lm;
mod module;
mod norm;
pub mod rnn;
mod sequential;
mod transformer;
mod vit;
pub mod zoo;

pub use attention::{InProj, MhaArgs, MhaMask, MhaOptions, MultiheadAttention};
pub use conv::{Conv2d, ConvTranspose2d};
pub use gpt::{Gpt, GptConfig, KvCache, Positions};
pub use layers::{
    AdaptiveAvgPool2d, AvgPool2d, Dropout, Dropout2d, Flatten, LeakyReLU, LogSoftmax, MaxPool2d,
    Mish, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh, ELU, GELU, SELU,
};
pub use linear::Linear;
pub use lm::{CharLm, LmState};
pub use module::{prefixed, Module, Parameters};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, Embedding, LayerNorm};
pub use quantized::QuantizedLinear;
pub use quantized_conv::QuantizedConv2d;
pub use rnn::{Recurrent, RecurrentCell};
pub use sequential::Sequential;
pub use transformer::{
    Activation, Masks, Transformer, TransformerConfig, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer, TransformerMasks,
};
pub use vit::{ClassToken, PatchEmbedding};
