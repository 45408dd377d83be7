//! Model files: a TOML list of layers, built with shape inference.
//!
//! ```toml
//! name = "lenet"
//! input = [1, 28, 28]          # one example: [C, H, W] or [features]
//! [[layers]]
//! type = "conv2d"              # conv2d maxpool2d avgpool2d relu sigmoid tanh gelu
//! name = "conv1"               # leakyrelu silu mish selu elu softplus flatten
//!                              # linear dropout batchnorm lstm gru rnn
//! out_channels = 6
//! kernel = 5
//! padding = 2                  # or "same" (stride 1)
//! ```
//!
//! Pooling layers take `kernel`, `stride`, `padding` and `ceil_mode`. A
//! Vision Transformer is `patches` (`patch`, `dim`: image → tokens with a
//! class token and positions), `encoder` (`layers`, `heads`, `ff`,
//! `dropout`: pre-norm GELU Transformer layers and a final norm) and
//! `classtoken` (the class token's features, for a `linear` head).
//!
//! Building walks the layers with the shape of one example, fills in what
//! can be inferred (`in_channels`, `in_features`) and refuses a model whose
//! layers do not fit, naming the layer and both shapes. Parameters are named
//! `NAME.weight` (the layer's `name`, else its position), so a model file
//! with PyTorch's layer names loads PyTorch state dicts.

use std::path::Path;

/// A model file that cannot be read or built: one line naming the file,
/// the layer and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelFileError(pub String);

pub type Result<T> = std::result::Result<T, ModelFileError>;

impl From<nabla_core::Error> for ModelFileError {
    fn from(e: nabla_core::Error) -> Self {
        ModelFileError(e.to_string())
    }
}

/// `return Err(...)` with a formatted message (as anyhow's `bail!`).
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(ModelFileError(format!($($arg)*)))
    };
}

/// A formatted error (as anyhow's `anyhow!`).
macro_rules! anyhow {
    ($($arg:tt)*) => {
        ModelFileError(format!($($arg)*))
    };
}
use crate::{
    Activation, AvgPool2d, BatchNorm, ClassToken, Conv2d, Dropout, Flatten, LeakyReLU, Linear,
    MaxPool2d, Mish, Module, Parameters, PatchEmbedding, ReLU, Sequential, SiLU, Sigmoid, Softplus,
    Tanh, TransformerConfig, TransformerEncoder, ELU, GELU, SELU,
};
use nabla_core::{Conv2dParams, Pool2d, Tensor};
pub mod prune;
mod size;
mod spec;

pub use size::MAX_ELEMENTS;
pub use spec::{LayerKind, LayerSpec, ModelFile, Padding, RecurrentLayer};

use size::largest_tensor;

use crate::zoo::MODEL_FILES as ZOO;

/// A model built from a file: a `Sequential` whose children carry the
/// layers' names (so its parameters are `conv1.weight`, …), and what a
/// summary shows of each layer.
pub struct FileModel {
    pub name: String,
    pub input: Vec<usize>,
    pub net: Sequential,
    pub layers: Vec<LayerInfo>,
}

impl FileModel {
    /// The model with its Linear and recurrent layers quantized to int8
    /// ([`Sequential::into_quantized`]); the summary's types say which.
    pub fn into_quantized(self, per_channel: bool) -> nabla_core::Result<FileModel> {
        self.into_quantized_static(per_channel, &[])
    }

    /// [`into_quantized`](Self::into_quantized), with the convolutions
    /// given an `inputs[i]` quantized statically
    /// ([`Sequential::into_quantized_static`]).
    pub fn into_quantized_static(
        self,
        per_channel: bool,
        inputs: &[Option<nabla_core::quant::QParams>],
    ) -> nabla_core::Result<FileModel> {
        let net = self.net.into_quantized_static(per_channel, inputs)?;
        let quantized: Vec<String> = net.named_quantized().into_iter().map(|(n, _)| n).collect();
        let layers = self
            .layers
            .into_iter()
            .map(|mut l| {
                if quantized
                    .iter()
                    .any(|q| q.starts_with(&format!("{}.", l.name)))
                {
                    l.kind = format!("{} int8", l.kind);
                }
                l
            })
            .collect();
        Ok(FileModel {
            net,
            layers,
            ..self
        })
    }

    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map_or(&self.input[..], |l| &l.out_shape[..])
    }
}

impl Parameters for FileModel {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.net.named_parameters()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.net.named_buffers()
    }

    fn named_quantized(&self) -> Vec<(String, nabla_core::quant::QTensor)> {
        self.net.named_quantized()
    }

    fn set_quantized(
        &self,
        name: &str,
        value: nabla_core::quant::QTensor,
    ) -> nabla_core::Result<()> {
        self.net.set_quantized(name, value)
    }

    fn set_training(&self, on: bool) {
        self.net.set_training(on)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

impl Module for FileModel {
    fn forward(&self, x: &Tensor) -> nabla_core::Result<Tensor> {
        self.net.forward(x)
    }
}

/// Whether `model` names a model file rather than a zoo model.
pub fn is_file_model(model: &str) -> bool {
    !ZOO.iter().any(|(n, _)| *n == model)
}

/// Reads a model by zoo name or from a TOML file.
pub fn load_spec(model: &str) -> Result<(ModelFile, String)> {
    let (text, source) = model_text(model)?;
    Ok((parse_spec(&text, &source)?, source))
}

/// A model file's TOML `text` read (errors name it `source`, with the line
/// and column): what [`prune::prune_structured`] writes is read so.
pub fn parse_spec(text: &str, source: &str) -> Result<ModelFile> {
    // (the whole message: it names the line and column)
    toml::from_str(text).map_err(|e| anyhow!("{source}: invalid model file: {e}"))
}

/// A model's TOML text (a zoo model's, or a file's) and how errors name it.
pub fn model_text(model: &str) -> Result<(String, String)> {
    Ok(match ZOO.iter().find(|(n, _)| *n == model) {
        Some((_, text)) => (text.to_string(), format!("zoo model {model:?}")),
        None => {
            let path = Path::new(model);
            if !path.is_file() {
                let names: Vec<&str> = ZOO.iter().map(|(n, _)| *n).collect();
                bail!(
                    "model {model:?}: not a zoo model ({}) and no such file",
                    names.join(", ")
                );
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("{model}: cannot read the model file: {e}"))?;
            (text, model.to_string())
        }
    })
}

fn product(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// Makes one layer (when the model is built, in the layers' order).
type Maker = Box<dyn FnOnce() -> nabla_core::Result<Box<dyn Module>>>;

/// A layer made when asked, from a constructor that cannot fail.
fn lazy<M: Module + 'static>(make: impl FnOnce() -> M + 'static) -> Maker {
    Box::new(move || Ok(Box::new(make()) as Box<dyn Module>))
}

/// What a summary shows of a layer.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    pub name: String,
    pub kind: String,
    pub out_shape: Vec<usize>,
    pub params: usize,
    /// multiply-adds per example
    pub macs: usize,
}

/// A layer checked and measured, not yet made.
pub struct Planned {
    pub info: LayerInfo,
    make: Maker,
}

/// A model file checked layer by layer, shapes inferred and sizes counted,
/// with nothing allocated: what `nabla summary` shows.
pub struct Plan {
    pub name: String,
    pub input: Vec<usize>,
    pub layers: Vec<Planned>,
}

/// Walks a model file's layers with the shape of one example, checking
/// each and counting its parameters and multiply-adds, without making any.
pub fn plan(spec: &ModelFile, source: &str, dropout: Option<f32>) -> Result<Plan> {
    if spec.input.is_empty() || spec.input.contains(&0) {
        bail!(
            "{source}: input shape {:?} must have positive sizes",
            spec.input
        );
    }
    let mut shape = spec.input.clone();
    let mut layers: Vec<Planned> = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let name = l.name.clone().unwrap_or_else(|| i.to_string());
        let kind = format!("{:?}", l.kind)
            .split([' ', '{'])
            .next()
            .unwrap_or("")
            .to_lowercase();
        let here = format!("{source}: layer {name} ({kind})");
        let image = |shape: &[usize]| -> Result<(usize, usize, usize)> {
            match shape {
                [c, h, w] => Ok((*c, *h, *w)),
                _ => bail!("{here}: expects an image [C, H, W], receives {shape:?} per example"),
            }
        };
        // checked before anything is allocated: a typo of 10^12 channels is
        // an error, not an aborted allocation
        let largest = largest_tensor(&l.kind, &shape);
        if largest > MAX_ELEMENTS {
            bail!(
                "{here}: would need a tensor of {largest} elements ({:.1} GB as f32); \
                 layers are built up to {MAX_ELEMENTS} elements",
                largest as f64 * 4.0 / 1e9
            );
        }
        let (make, out, params, macs): (Maker, Vec<usize>, usize, usize) = match &l.kind {
            LayerKind::Conv2d {
                out_channels,
                kernel,
                in_channels,
                stride,
                padding,
                dilation,
                groups,
                bias,
            } => {
                if *out_channels == 0 || *kernel == 0 {
                    bail!("{here}: out_channels and kernel must be at least 1");
                }
                let (c, h, w) = image(&shape)?;
                if let Some(ic) = in_channels {
                    if *ic != c {
                        bail!("{here}: expects {ic} input channels, receives {c} ({shape:?} per example)");
                    }
                }
                if *groups == 0
                    || c % groups != 0
                    || out_channels % groups != 0
                    || *stride == 0
                    || *dilation == 0
                {
                    bail!("{here}: groups {groups} must divide {c} input and {out_channels} output channels; stride and dilation must be positive");
                }
                let p = Conv2dParams {
                    stride: (*stride, *stride),
                    dilation: (*dilation, *dilation),
                    groups: *groups,
                    ..Default::default()
                };
                let pad = match *padding {
                    Padding::Same if *stride != 1 => {
                        bail!("{here}: padding \"same\" needs stride 1, as in PyTorch")
                    }
                    Padding::Same => None,
                    Padding::Valid => Some(0),
                    Padding::Size(pad) => Some(pad),
                };
                let p = match pad {
                    None => p.same(),
                    Some(pad) => p.padding(pad),
                };
                let Some((oh, ow)) = p.output_size((h, w), (*kernel, *kernel)) else {
                    bail!("{here}: kernel {kernel}×{kernel} does not fit the input {shape:?} (padding {:?})", p.padding);
                };
                let per = c / groups * kernel * kernel;
                let params = out_channels * per + if *bias { *out_channels } else { 0 };
                (
                    {
                        let (o, k, b) = (*out_channels, *kernel, *bias);
                        lazy(move || Conv2d::with(c, o, k, p, b))
                    },
                    vec![*out_channels, oh, ow],
                    params,
                    out_channels * oh * ow * per,
                )
            }
            LayerKind::Maxpool2d {
                kernel,
                stride,
                padding,
                ceil_mode,
            }
            | LayerKind::Avgpool2d {
                kernel,
                stride,
                padding,
                ceil_mode,
            } => {
                let (c, h, w) = image(&shape)?;
                let s = stride.unwrap_or(*kernel);
                if *kernel == 0 || s == 0 || padding * 2 > *kernel {
                    bail!("{here}: kernel and stride must be positive, padding at most half the kernel");
                }
                let pool = Pool2d::new(*kernel)
                    .stride(s)
                    .padding(*padding)
                    .ceil_mode(*ceil_mode);
                let (Some(oh), Some(ow)) = (
                    pool.out_len(h, *kernel, s, *padding),
                    pool.out_len(w, *kernel, s, *padding),
                ) else {
                    bail!("{here}: window {kernel}×{kernel} does not fit the input {shape:?}");
                };
                let m = if matches!(l.kind, LayerKind::Maxpool2d { .. }) {
                    lazy(move || MaxPool2d(pool))
                } else {
                    lazy(move || AvgPool2d(pool))
                };
                (m, vec![c, oh, ow], 0, 0)
            }
            LayerKind::Flatten => (lazy(|| Flatten), vec![shape.iter().product()], 0, 0),
            LayerKind::Linear {
                out_features,
                in_features,
                bias,
            } => {
                if *out_features == 0 {
                    bail!("{here}: out_features must be at least 1");
                }
                let [f] = shape[..] else {
                    bail!("{here}: expects features [F], receives {shape:?} per example; add a flatten layer before it");
                };
                if let Some(want) = in_features {
                    if *want != f {
                        bail!("{}", mismatch_message(&here, *want, f, &layers));
                    }
                }
                let params = out_features * f + if *bias { *out_features } else { 0 };
                (
                    {
                        let (o, b) = (*out_features, *bias);
                        lazy(move || Linear::with_bias(f, o, b))
                    },
                    vec![*out_features],
                    params,
                    out_features * f,
                )
            }
            LayerKind::Relu => (lazy(|| ReLU), shape.clone(), 0, 0),
            LayerKind::Sigmoid => (lazy(|| Sigmoid), shape.clone(), 0, 0),
            LayerKind::Tanh => (lazy(|| Tanh), shape.clone(), 0, 0),
            LayerKind::Gelu => (lazy(|| GELU), shape.clone(), 0, 0),
            LayerKind::Leakyrelu { slope } => (
                {
                    let slope = *slope;
                    lazy(move || LeakyReLU(slope))
                },
                shape.clone(),
                0,
                0,
            ),
            LayerKind::Silu => (lazy(|| SiLU), shape.clone(), 0, 0),
            LayerKind::Mish => (lazy(|| Mish), shape.clone(), 0, 0),
            LayerKind::Selu => (lazy(|| SELU), shape.clone(), 0, 0),
            LayerKind::Elu { alpha } => (
                {
                    let alpha = *alpha;
                    lazy(move || ELU(alpha))
                },
                shape.clone(),
                0,
                0,
            ),
            LayerKind::Softplus { beta, threshold } => {
                if !(*beta > 0.0 && beta.is_finite()) {
                    bail!("{here}: softplus beta must be a positive number, got {beta}");
                }
                let m = Softplus {
                    beta: *beta,
                    threshold: *threshold,
                };
                (lazy(move || m), shape.clone(), 0, 0)
            }
            LayerKind::Dropout { p } => {
                let p = dropout.unwrap_or(*p);
                if !(0.0..1.0).contains(&p) {
                    bail!("{here}: dropout probability must be in [0, 1), got {p}");
                }
                (lazy(move || Dropout::new(p)), shape.clone(), 0, 0)
            }
            LayerKind::Lstm { .. } | LayerKind::Gru { .. } | LayerKind::Rnn { .. } => {
                use crate::rnn::{LastHidden, Recurrent, RnnConfig};
                let Some(r) = l.kind.recurrent() else {
                    bail!("{here}: not a recurrent layer");
                };
                if r.hidden == 0 {
                    bail!("{here}: hidden_size must be at least 1");
                }
                let (t, f) = match shape[..] {
                    [1, t, f] | [t, f] => (t, f),
                    _ => bail!("{here}: expects a sequence [T, F] or a one-channel image [1, H, W], receives {shape:?}"),
                };
                let cfg = RnnConfig {
                    num_layers: r.layers,
                    bidirectional: r.directions == 2,
                    batch_first: true,
                    ..RnnConfig::new(f, r.hidden)
                };
                // per layer and direction: the gates' input and hidden
                // weights and their two biases; every step multiplies by
                // every weight matrix once
                let (h, dirs, gates) = (r.hidden, r.directions, r.gates);
                let weights: usize = (0..r.layers)
                    .map(|layer| {
                        let input = if layer == 0 { f } else { dirs * h };
                        dirs * gates * h * (input + h)
                    })
                    .sum();
                let params = weights + r.layers * dirs * 2 * gates * h;
                (
                    lazy(move || LastHidden(Recurrent::new(r.kind, cfg))),
                    vec![dirs * h],
                    params,
                    t * weights,
                )
            }
            LayerKind::Patches { patch, dim } => {
                let (c, h, w) = image(&shape)?;
                let (patch, dim) = (*patch, *dim);
                if patch == 0 || h % patch != 0 || w % patch != 0 || dim == 0 {
                    bail!("{here}: the image {h}×{w} must split into whole patches of {patch}, and dim {dim} be positive");
                }
                let tokens = 1 + (h / patch) * (w / patch);
                // the projection (weight and bias), the class token, the positions
                let params = dim * c * patch * patch + dim + dim + tokens * dim;
                (
                    Box::new(move || {
                        let p = PatchEmbedding::new([c, h, w], patch, dim)?;
                        Ok(Box::new(p) as Box<dyn Module>)
                    }) as Maker,
                    vec![tokens, dim],
                    params,
                    (tokens - 1) * dim * c * patch * patch,
                )
            }
            LayerKind::Encoder {
                layers: n,
                heads,
                ff,
                dropout: p,
            } => {
                let [t, d] = shape[..] else {
                    bail!(
                        "{here}: expects tokens [T, D] (after a patches layer), receives {shape:?}"
                    );
                };
                if *heads == 0 || d % heads != 0 || *n == 0 || *ff == 0 {
                    bail!("{here}: needs layers, heads and ff ≥ 1, and D = {d} divisible by heads = {heads}");
                }
                let p = dropout.unwrap_or(*p);
                if !(0.0..1.0).contains(&p) {
                    bail!("{here}: dropout probability must be in [0, 1), got {p}");
                }
                let c = TransformerConfig::new(d, *heads)
                    .dim_feedforward(*ff)
                    .dropout(p)
                    .activation(Activation::Gelu)
                    .batch_first(true)
                    .norm_first(true);
                // per layer: q, k, v and out projections with biases, the
                // MLP's two, two norms; then the final norm
                let per_layer = 4 * d * d + 4 * d + 2 * d * ff + ff + d + 4 * d;
                let params = n * per_layer + 2 * d;
                // per layer and token: q, k, v, out projections, the MLP, and the scores
                let macs = n * t * (4 * d * d + 2 * d * ff + 2 * t * d);
                let n = *n;
                (
                    Box::new(move || {
                        let e = TransformerEncoder::new(&c, n, true)?;
                        Ok(Box::new(e) as Box<dyn Module>)
                    }) as Maker,
                    shape.clone(),
                    params,
                    macs,
                )
            }
            LayerKind::Classtoken => match shape[..] {
                [_, d] => (lazy(|| ClassToken), vec![d], 0, 0),
                _ => bail!("{here}: expects tokens [T, D], receives {shape:?}"),
            },
            LayerKind::Batchnorm => match shape[..] {
                [c] => (lazy(move || BatchNorm::new_1d(c)), shape.clone(), 2 * c, 0),
                [c, _, _] => (lazy(move || BatchNorm::new_2d(c)), shape.clone(), 2 * c, 0),
                _ => bail!("{here}: expects [F] or [C, H, W], receives {shape:?}"),
            },
        };
        if layers.iter().any(|e| e.info.name == name) {
            bail!("{here}: another layer is already named {name:?}");
        }
        shape = out.clone();
        layers.push(Planned {
            info: LayerInfo {
                name,
                kind,
                out_shape: out,
                params,
                macs,
            },
            make,
        });
    }
    Ok(Plan {
        name: spec.name.clone().unwrap_or_else(|| "model".into()),
        input: spec.input.clone(),
        layers,
    })
}

/// Builds a model for examples of shape `spec.input`, checking every layer
/// (the [`plan`]), then making its layers in order (which is when weights
/// are drawn and allocated). `dropout` overrides every dropout layer's
/// probability.
pub fn build(spec: &ModelFile, source: &str, dropout: Option<f32>) -> Result<FileModel> {
    let plan = plan(spec, source, dropout)?;
    let (mut net, mut layers) = (Sequential::new(), Vec::with_capacity(plan.layers.len()));
    for Planned { info, make } in plan.layers {
        let module =
            make().map_err(|e| anyhow!("{source}: layer {} ({}): {e}", info.name, info.kind))?;
        net.push_named(info.name.clone(), module);
        layers.push(info);
    }
    Ok(FileModel {
        name: plan.name,
        input: plan.input,
        net,
        layers,
    })
}

/// The refusal for a linear layer fed the wrong number of features, with a
/// hint when an earlier 2×2 pooling would have made them fit.
fn mismatch_message(here: &str, want: usize, got: usize, before: &[Planned]) -> String {
    let image = before
        .iter()
        .rev()
        .find(|e| e.info.out_shape.len() == 3)
        .map(|e| e.info.out_shape.clone());
    let what = match &image {
        Some(s) if s.iter().product::<usize>() == got => format!("{got} = {}", product(s)),
        _ => got.to_string(),
    };
    let mut msg =
        format!("{here}: expects {want} input features but would receive {what} per example");
    if let Some(s) = image {
        for k in [2usize, 4] {
            let pooled = [s[0], s[1] / k, s[2] / k];
            if pooled.iter().product::<usize>() == want {
                let pool = if k == 2 {
                    "a 2×2 max-pool"
                } else {
                    "a 4×4 max-pool (or two 2×2)"
                };
                msg.push_str(&format!(
                    "; a pooling layer is missing: {pool} on the {} feature maps would give {} = {want} \
                     (nabla's lenet pads conv1 by 2 and max-pools after each convolution: 28→28→14→10→5)",
                    product(&s),
                    product(&pooled)
                ));
                break;
            }
        }
    }
    msg
}

#[cfg(test)]
mod tests;
