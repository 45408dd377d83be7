//! Command-line arguments (clap). `TrainArgs` is also the run's saved
//! configuration (`config.toml` in the run directory), so a run can be
//! repeated or resumed exactly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(name = "nabla", version, about = "Train, evaluate and inspect neural networks", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model (default: the reference CNN on the shipped MNIST digits)
    Train(Box<TrainArgs>),
    /// Evaluate trained weights: loss, accuracy, per-class precision and recall, confusion matrix
    Eval(EvalArgs),
    /// Classify images (PNG, JPEG, PGM) or data set examples: top-k classes with probabilities
    Predict(PredictArgs),
    /// Print a model's layers with output shapes, parameters and multiply-adds
    Summary(SummaryArgs),
    /// Explain predictions: a heatmap of what the model looks at, as PNG
    Explain(ExplainArgs),
    /// Draw a run as PNG: training curves, filters, feature maps, confusion matrix, mistakes
    Plot(PlotArgs),
    /// Write a self-contained HTML report of a run (curves, metrics, pictures)
    Report(ReportArgs),
    /// Prune a trained model (smallest weights, or with --structured whole channels and neurons) and fine-tune it
    Prune(PruneArgs),
    /// Quantize a trained model to int8 (its Linear and recurrent layers), compare it with the f32 model on the test set
    Quantize(QuantizeArgs),
    /// Continue a text with a trained language model (a gpt-char run), streaming it
    Generate(GenerateArgs),
}

#[derive(Clone, Debug, Args)]
pub struct GenerateArgs {
    /// The run directory of a gpt-char training
    pub run: PathBuf,
    /// The text to continue (characters of the training text's vocabulary)
    #[arg(long, default_value = "\n")]
    pub prompt: String,
    #[arg(long, default_value_t = 500)]
    pub max_new_tokens: usize,
    /// Softmax temperature: lower is more conservative, 0 always picks the likeliest
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Draw only among the K likeliest tokens
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Recompute the whole context for each token instead of using the KV cache
    #[arg(long)]
    pub no_cache: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlotKind {
    /// Loss, accuracy and learning rate per epoch and step (from metrics.csv and steps.csv)
    Curves,
    /// The weights of a convolution layer (--layer, default the first)
    Filters,
    /// The output of a layer (--layer, default the first convolution) for test image --index
    FeatureMaps,
    /// True against predicted class on the test set
    Confusion,
    /// The most confident mistakes on the test set
    Misclassified,
    /// Training images as the model sees them through the run's --augment, one row per epoch
    Augmentations,
}

impl PlotKind {
    pub fn name(self) -> &'static str {
        match self {
            PlotKind::Curves => "curves",
            PlotKind::Filters => "filters",
            PlotKind::FeatureMaps => "feature-maps",
            PlotKind::Confusion => "confusion",
            PlotKind::Misclassified => "misclassified",
            PlotKind::Augmentations => "augmentations",
        }
    }
}

/// Where a trained model comes from: a run directory (its config names
/// the model and data), or a weights file with `--model`.
#[derive(Clone, Debug, Args)]
pub struct TrainedArgs {
    /// A run directory, or a weights file (.safetensors) with --model
    pub weights: PathBuf,
    /// Zoo model or model file (for a weights file; default: the run's)
    #[arg(long)]
    pub model: Option<String>,
    /// Data folder (default: the run's)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Data set name (default: the run's, else mnist)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Use the run's int8 model (model.int8.safetensors, from `nabla quantize`)
    #[arg(long)]
    pub int8: bool,
}

#[derive(Clone, Debug, Args)]
pub struct PruneArgs {
    /// The run directory of a trained image classifier
    pub run: PathBuf,
    /// Share to remove: of the weights, or with --structured of each
    /// layer's channels and neurons
    #[arg(long, default_value_t = 0.5, value_parser = below_one)]
    pub amount: f32,
    /// Remove whole channels and neurons: a smaller, faster dense model
    #[arg(long)]
    pub structured: bool,
    /// Rank each layer's weights apart (unstructured; default: all together)
    #[arg(long)]
    pub per_layer: bool,
    /// Epochs of fine-tuning after pruning, with the run's settings
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub epochs: usize,
    /// Run directory of the pruned model (default: RUN-pruned)
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
}

/// What `nabla quantize` makes of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QuantizeTo {
    /// int8 weights, activations quantized as they come (faster, 4× smaller)
    Int8,
    /// weights rounded to bfloat16 (a file half the size; computed in f32)
    Bf16,
    /// weights rounded to IEEE float16 (a file half the size; computed in f32)
    F16,
}

#[derive(Clone, Debug, Args)]
pub struct QuantizeArgs {
    /// The run directory of a trained image classifier
    pub run: PathBuf,
    /// The precision to store the model in
    #[arg(long, value_enum, default_value = "int8")]
    pub to: QuantizeTo,
    /// One scale per output neuron instead of one per layer (int8)
    #[arg(long)]
    pub per_channel: bool,
    /// Also quantize the convolutions (static int8): their inputs' ranges
    /// observed over N training batches of 64 (int8)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub calibrate: Option<u64>,
    /// Output file (default: RUN/model.int8.safetensors, or model.bf16, model.f16)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Batch size of the comparison on the test set
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
}

#[derive(Clone, Debug, Args)]
pub struct PlotArgs {
    #[command(flatten)]
    pub trained: TrainedArgs,
    /// What to draw
    #[arg(long, value_enum, default_value = "curves")]
    pub kind: PlotKind,
    /// Layer for filters and feature maps
    #[arg(long)]
    pub layer: Option<String>,
    /// Test example whose feature maps to draw
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// How many misclassified examples (or training images, for augmentations) to show
    #[arg(long, default_value_t = 32)]
    pub count: usize,
    /// Output PNG (default: KIND.png)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// The run directory
    pub run: PathBuf,
    /// Output HTML (default: RUN/report.html)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Data folder (default: the run's)
    #[arg(long)]
    pub data: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainMethod {
    Saliency,
    Smoothgrad,
    IntegratedGradients,
    GradCam,
    /// Attention rollout of a Vision Transformer (--model vit)
    Attention,
}

#[derive(Clone, Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub trained: TrainedArgs,
    /// An image file to explain
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// A test-set example to explain
    #[arg(long)]
    pub index: Option<usize>,
    /// Explain the first K test examples in one sheet
    #[arg(long, value_name = "K", value_parser = at_least_one)]
    pub grid: Option<usize>,
    #[arg(long, value_enum, default_value = "saliency")]
    pub method: ExplainMethod,
    /// Class to explain (default: the predicted one)
    #[arg(long)]
    pub target: Option<usize>,
    /// Layer for Grad-CAM (default: the last one with image output)
    #[arg(long)]
    pub layer: Option<String>,
    /// Output PNG
    #[arg(short = 'o', long, default_value = "explain.png")]
    pub output: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
    Adagrad,
    /// ρ 0.9, eps 1e-6 (PyTorch's MNIST example: --lr 1.0 --scheduler exponential)
    Adadelta,
}

/// The precision of the products (`nabla_core::autocast`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionKind {
    /// f32 throughout
    #[default]
    F32,
    /// bfloat16 operands with f32 sums in the matrix products (linear,
    /// convolutional and recurrent layers, matmul, attention); weights, optimizer state,
    /// losses and the rest stay f32
    Bf16,
}

impl From<PrecisionKind> for nabla_core::autocast::Precision {
    fn from(p: PrecisionKind) -> Self {
        match p {
            PrecisionKind::F32 => Self::F32,
            PrecisionKind::Bf16 => Self::Bf16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    None,
    /// ×0.1 every third of the epochs
    Step,
    /// ×0.9 every epoch
    Exponential,
    /// cosine annealing to 0 over the epochs
    Cosine,
    /// one cycle up to --lr and down, stepped every batch; the momentum (Adam: β1) cycles 0.95 → 0.85 → 0.95
    Onecycle,
    /// ×0.1 when the test loss stops improving for 2 epochs
    Plateau,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// CUDA when available, else the CPU (as the reference program)
    Auto,
    Cpu,
    Cuda,
    /// The reference backend: plain loops in f64, one thread; slow, for
    /// checking results
    Reference,
}

#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Zoo model (lenet, mlp, lstm-rows, gru-rows, rnn-rows, lenet-as-written, gpt-char) or a model file (.toml)
    #[arg(long, default_value = "lenet")]
    pub model: String,
    /// Data folder (MNIST-style files, flat or torchvision's layout; default: shipped
    /// digits), or for gpt-char a text file (default: the shipped Devil's Dictionary)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// mnist or fashion-mnist
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Download the data set into --data (or data/downloads) first
    #[arg(long)]
    pub download: bool,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Examples per step (default 64; gpt-char: 12 windows, nanoGPT's CPU setting)
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value_t = 100)]
    pub test_batch_size: usize,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerKind,
    /// Learning rate
    #[arg(long, default_value_t = 0.001, value_parser = positive)]
    pub lr: f32,
    /// SGD and RMSprop momentum
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Adam betas, "b1,b2"
    #[arg(long, default_value = "0.9,0.999")]
    pub betas: String,
    /// RMSprop smoothing constant
    #[arg(long, default_value_t = 0.99)]
    pub alpha: f32,
    /// L1 penalty on all weights (added to the loss)
    #[arg(long, default_value_t = 0.0)]
    pub l1: f32,
    /// Override the probability of the model's dropout layers
    #[arg(long)]
    pub dropout: Option<f32>,
    #[arg(long, value_enum, default_value = "none")]
    pub scheduler: SchedulerKind,
    /// Clip the global gradient norm to this value
    #[arg(long)]
    pub clip_grad_norm: Option<f32>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads for the kernels (default: NABLA_NUM_THREADS or all cores;
    /// with --distributed, the cores shared among the ranks of a machine)
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Data-parallel training over MPI, started by `mpirun -np N nabla train
    /// --distributed …`: each rank trains on its shard of the data with
    /// --batch-size examples a batch (N times as many a step), gradients
    /// averaged; rank 0 prints and writes the run (needs a nabla built with
    /// --features distributed)
    #[arg(long)]
    #[serde(skip)]
    pub distributed: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceKind,
    /// Mixed precision: bf16 runs the matrix products on bfloat16 operands
    /// (VDPBF16PS where the CPU has AVX512-BF16) with f32 sums
    #[arg(long, value_enum, default_value = "f32")]
    #[serde(default)]
    pub precision: PrecisionKind,
    /// Stop after this many optimizer steps in all
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Stop when the test loss has not improved for PATIENCE epochs
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<usize>,
    /// Smallest test-loss decrease that counts as an improvement
    #[arg(long, default_value_t = 0.0)]
    pub min_delta: f32,
    /// Keep the data in file order
    #[arg(long)]
    pub no_shuffle: bool,
    /// Augment the training images, e.g. "crop:2,rotate:10": crop:P, shift:N,
    /// rotate:D, flip[:P], erase[:P] (cutout), elastic[:ALPHA:SIGMA], and one of
    /// mixup[:ALPHA] or cutmix[:ALPHA] on each batch
    #[arg(long, value_name = "SPEC", value_parser = augmentation)]
    #[serde(default)]
    pub augment: Option<String>,
    /// Train on this fraction of the training set, the same share of every
    /// class (a seeded choice), to study scarce data
    #[arg(long, value_name = "F", value_parser = fraction)]
    #[serde(default)]
    pub train_fraction: Option<f32>,
    /// Start from these weights (safetensors, PyTorch state-dict keys)
    #[arg(long)]
    pub init_weights: Option<PathBuf>,
    /// Keep the weights that are zero at zero (fine-tuning a pruned model)
    #[arg(long)]
    #[serde(default)]
    pub keep_zeros: bool,
    /// A trained run (same data and classes) that teaches this model: its
    /// softened predictions join the labels in the loss (knowledge distillation)
    #[arg(long, value_name = "RUN")]
    #[serde(default)]
    pub teacher: Option<PathBuf>,
    /// Distillation's softmax temperature, both models' logits divided by it
    /// [default with --teacher: 2]
    #[arg(long, value_name = "T", value_parser = positive)]
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Weight of the teacher's soft targets in the loss, from 0 to 1; the
    /// labels' cross-entropy gets the rest [default with --teacher: 0.25]
    #[arg(long, value_name = "A", value_parser = unit_interval)]
    #[serde(default)]
    pub distill_alpha: Option<f32>,
    /// Continue the run in this directory from its last checkpoint (--epochs and
    /// --max-steps may extend it; other flags must match the run's)
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Run directory (default: runs/MODEL-TIMESTAMP); one that holds a run is refused
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Replace the run in --out (its files only) instead of refusing
    #[arg(long)]
    #[serde(default, skip_serializing)]
    pub overwrite: bool,
    /// Batches between progress lines when output is not a terminal
    #[arg(long, default_value_t = 10)]
    pub log_interval: usize,
    #[command(flatten)]
    #[serde(default)]
    pub gpt: GptArgs,
}

impl TrainArgs {
    /// The batch size, or the model's default.
    pub fn batch_size(&self) -> usize {
        let default = if crate::lm::is_language_model(&self.model) {
            12
        } else {
            64
        };
        self.batch_size.unwrap_or(default)
    }

    /// Whether the flag `id` (clap's id: `grad_accum`) means something to
    /// a run of `model`: a language model trains with nanoGPT's recipe on
    /// the CPU (no optimizer, schedule or data-set flags; `--device` is
    /// checked apart, by [`check_device`](Self::check_device)), an image
    /// model has no `[gpt]` settings.
    pub fn applies(model: &str, id: &str) -> bool {
        /// What only the image models read.
        const IMAGE_ONLY: [&str; 21] = [
            "dataset",
            "download",
            "test_batch_size",
            "optimizer",
            "momentum",
            "nesterov",
            "weight_decay",
            "betas",
            "alpha",
            "scheduler",
            "early_stop",
            "min_delta",
            "no_shuffle",
            "augment",
            "train_fraction",
            "init_weights",
            "teacher",
            "temperature",
            "distill_alpha",
            "keep_zeros",
            "distributed",
        ];
        let lm_only = <GptArgs as Args>::augment_args(clap::Command::new("gpt"))
            .get_arguments()
            .any(|a| a.get_id() == id)
            || id == "gpt";
        match crate::lm::is_language_model(model) {
            true => !IMAGE_ONLY.contains(&id),
            false => !lm_only,
        }
    }

    /// A language model runs on the CPU: `--device cuda` or `reference`
    /// for one is refused rather than ignored.
    pub fn check_device(&self) -> Result<(), String> {
        match (crate::lm::is_language_model(&self.model), self.device) {
            (true, DeviceKind::Cuda | DeviceKind::Reference) => Err(format!(
                "--device {}: --model {} trains on the CPU only (--device cpu or auto)",
                match self.device {
                    DeviceKind::Cuda => "cuda",
                    _ => "reference",
                },
                self.model
            )),
            _ => Ok(()),
        }
    }
}

/// The shape and schedule of a gpt-char model (nanoGPT's CPU configuration
/// by default). Its "epoch" is `--steps-per-epoch` steps, each on random
/// windows of the training text, then the validation loss.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
pub struct GptArgs {
    /// Context length in characters
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    pub context: usize,
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub layers: usize,
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub heads: usize,
    /// Embedding width (a multiple of --heads)
    #[arg(long, default_value_t = 128, value_parser = at_least_one)]
    pub width: usize,
    /// learned, sinusoidal or rotary
    #[arg(long, default_value = "learned")]
    pub positions: String,
    /// Steps of linear learning-rate warm-up before the cosine decay to lr/10
    #[arg(long, default_value_t = 100)]
    pub warmup_steps: usize,
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    pub steps_per_epoch: usize,
    /// Micro-batches whose gradients are summed before each step
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub grad_accum: usize,
    /// char (one token a character) or bpe (byte-level BPE trained on the text's training part)
    #[arg(long, default_value = "char")]
    #[serde(default = "char_tokens")]
    pub tokenizer: String,
    /// Tokens of a bpe tokenizer (256 bytes and the merges)
    #[arg(long, default_value_t = 512)]
    #[serde(default = "bpe_vocab")]
    pub vocab_size: usize,
}

fn char_tokens() -> String {
    "char".into()
}

fn bpe_vocab() -> usize {
    512
}

impl Default for GptArgs {
    fn default() -> Self {
        GptArgs {
            context: 64,
            layers: 4,
            heads: 4,
            width: 128,
            positions: "learned".into(),
            warmup_steps: 100,
            steps_per_epoch: 200,
            grad_accum: 1,
            tokenizer: char_tokens(),
            vocab_size: bpe_vocab(),
        }
    }
}

/// A finite number > 0 (a bad value is a usage error, exit code 2).
fn positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// An augmentation spec that parses (a bad one is a usage error).
fn augmentation(s: &str) -> Result<String, String> {
    nabla_data::Augmentation::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// A fraction in (0, 1] (a bad value is a usage error).
fn fraction(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a fraction in (0, 1]")),
    }
}

/// A share from 0 to below 1 (a bad value is a usage error).
fn below_one(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share from 0 to below 1")),
    }
}

/// A number from 0 to 1 (a bad value is a usage error).
fn unit_interval(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

/// A whole number ≥ 1 (a bad value is a usage error, exit code 2).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

#[derive(Clone, Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub trained: TrainedArgs,
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
}

#[derive(Clone, Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub trained: TrainedArgs,
    /// Image files (PNG, JPEG, PGM), any size: converted to grayscale, resized, inverted if light-on-dark is needed
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Test-set example indices
    #[arg(long = "index", value_name = "N")]
    pub indices: Vec<usize>,
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub top_k: usize,
}

#[derive(Clone, Debug, Args)]
pub struct SummaryArgs {
    /// Zoo model, model file, run directory or checkpoint
    #[arg(default_value = "lenet")]
    pub model: String,
    /// The run's int8 model (model.int8.safetensors, from `nabla quantize`)
    #[arg(long)]
    pub int8: bool,
}
