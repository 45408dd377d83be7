//! The backend seam: every op reaches data through the [`Backend`] trait.
//!
//! A backend is a set of named primitives over its own [`Storage`]: memory
//! moves, elementwise maps named by [`UnaryOp`] / [`BinaryOp`] (an enum, not
//! a closure, so a GPU can run them), reductions, products, convolution and
//! pooling with their backward kernels, and indexing. Ops (`ops/*.rs`) check
//! shapes, pick the primitive, and record the backward rule; the backward
//! rules call primitives or other ops, never a kernel directly.
//!
//! Two backends run everywhere:
//!
//! - [`cpu`]: the fast kernels (threads, AVX2/FMA, packed products);
//! - [`reference`]: plain loops with f64 accumulation, one thread, written
//!   to be obviously right. It is the oracle the CPU backend is tested
//!   against (`Device::Reference`).
//!
//! Random values (init, dropout masks) come from the host's seeded generator
//! on every device, so a seed gives the same numbers wherever a model runs.
//!
//! Adding a backend: a `Storage` variant, an implementation of `Backend`,
//! and a `Device` that names it (see docs/ARCHITECTURE.md).

pub mod cpu;
pub mod reference;

use std::any::Any;

use crate::layout::Layout;
use crate::Device;

pub use crate::dtype::{DType, HostData};
pub use crate::storage::{HostBuffer, Storage};
pub use cpu::conv::ConvGeom;
pub use cpu::reduce::ReduceOp;

/// What a kernel keeps from a forward pass for its backward kernel (conv's
/// lowered images, max-pool's argmax): private to the backend that made it.
pub type Saved = Box<dyn Any + Send + Sync>;

/// Elementwise maps of one tensor, `y = f(x)`. Each op's file documents
/// its formula; each backend implements it and its derivative
/// ([`Backend::unary_grad`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Abs,
    Exp,
    Expm1,
    Log,
    Log1p,
    Sqrt,
    Tanh,
    Sigmoid,
    Relu,
    LeakyRelu(f32),
    Elu(f32),
    Selu,
    Gelu,
    GeluTanh,
    Silu,
    Mish,
    Softplus {
        beta: f32,
        threshold: f32,
    },
    Clamp {
        min: f32,
        max: f32,
    },
    /// `x^e` (PyTorch's special exponents as it computes them).
    Powf(f32),
    /// `x·mul + add` (`x·mul` exactly when add is 0, keeping −0).
    Affine {
        mul: f32,
        add: f32,
    },
    /// `x / v`, divided (not multiplied by 1/v).
    DivScalar(f32),
}

impl UnaryOp {
    /// The op's name, as its `Tensor` method is called (for errors).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::Selu => "selu",
            UnaryOp::Gelu | UnaryOp::GeluTanh => "gelu",
            UnaryOp::Silu => "silu",
            UnaryOp::Mish => "mish",
            UnaryOp::Softplus { .. } => "softplus",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::Powf(_) => "pow",
            UnaryOp::Affine { .. } => "affine",
            UnaryOp::DivScalar(_) => "div_scalar",
        }
    }
}

/// Elementwise maps of two tensors with broadcasting, `y = f(a, b)`.
/// Comparisons give 1.0 or 0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// The larger (a NaN wins, as in PyTorch).
    Maximum,
    /// The smaller (a NaN wins).
    Minimum,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `∂(aᵇ)/∂a = b·aᵇ⁻¹`, 0 where b = 0.
    PowGradBase,
    /// `∂(aᵇ)/∂b = aᵇ·ln a`, 0 where a = 0 and b ≥ 0.
    PowGradExponent,
    /// Share of `max(a, b)`'s gradient that goes to a: 0, ½ on a tie, 1.
    ShareOfLarger,
    /// `b·a`, selected to 0 (not multiplied) where a = 0: a gradient `b`
    /// scaled by a share `a`, so an infinite `b` never reaches a loser.
    ScaleByShare,
    /// `a / (2b)`, 0 where b = 0: the gradient of `b = √v` from `a = ∂/∂b`.
    HalfQuotientOrZero,
}

/// Normalizations along the last dim of each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOp {
    Softmax,
    LogSoftmax,
}

/// Arg-reductions along the last dim (NaN counts as the extreme).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgOp {
    Max,
    Min,
}

/// The targets of a fused cross-entropy over rows of logits `[N, C]`:
/// each row's class (None: ignored), the class weights `[C]` and the
/// label smoothing ε.
pub struct CrossEntropyRows<'a> {
    pub ids: &'a [Option<usize>],
    pub weight: &'a [f32],
    pub smoothing: f32,
}

/// One optimizer update of a parameter, with this step's hyperparameters
/// (PyTorch's formulas; nabla-nn's `optim/` derives them). The state
/// buffers come in the order listed for each rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    /// State: `[momentum_buffer]` when momentum ≠ 0, else none.
    /// `first_step` starts the buffer at the gradient.
    Sgd {
        lr: f32,
        momentum: f32,
        dampening: f32,
        weight_decay: f32,
        nesterov: bool,
        first_step: bool,
    },
    /// State: `[exp_avg, exp_avg_sq]`, and `max_exp_avg_sq` for AMSGrad.
    /// `step_size = lr / (1 − β1ᵗ)`, `bc2_sqrt = √(1 − β2ᵗ)`; `decoupled`
    /// is AdamW's weight decay.
    Adam {
        lr: f32,
        step_size: f32,
        bc2_sqrt: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        decoupled: bool,
    },
    /// State: `[square_avg]`, then `grad_avg` when centered, then
    /// `momentum_buffer` when momentum > 0.
    RmsProp {
        lr: f32,
        alpha: f32,
        eps: f32,
        weight_decay: f32,
        momentum: f32,
        centered: bool,
    },
    /// State: `[sum]`; `lr` is this step's decayed rate.
    Adagrad {
        lr: f32,
        eps: f32,
        weight_decay: f32,
    },
    /// State: `[square_avg, acc_delta]`.
    Adadelta {
        lr: f32,
        rho: f32,
        eps: f32,
        weight_decay: f32,
    },
}

/// Which cell a recurrent direction runs (PyTorch's gate orders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// `h' = f(W_ih·x + b_ih + W_hh·h + b_hh)`, f = tanh or ReLU; 1 gate.
    Rnn { relu: bool },
    /// Gates i, f, g, o; states h and c.
    Lstm,
    /// Gates r, z, n.
    Gru,
}

impl Cell {
    /// G: the pre-activations of a step are `G·H` wide.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn { .. } => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    /// The states the cell carries: h, and c for the LSTM.
    pub fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            _ => 1,
        }
    }
}

/// One recurrent direction over a sequence, as the op checked it: the
/// cell, steps T, batch rows N, input features I, hidden units H, the mask
/// `[T, N]` (1 inside a sequence, 0 past its end) and the direction.
#[derive(Clone, Copy, Debug)]
pub struct Recurrence<'a> {
    pub cell: Cell,
    pub t: usize,
    pub n: usize,
    pub i: usize,
    pub h: usize,
    pub mask: Option<&'a [f32]>,
    pub reverse: bool,
}

/// How an attention mask is read: `Keep` (nonzero: the key may be seen;
/// PyTorch's boolean mask) or `Add` (added to the scores; PyTorch's float
/// mask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    Keep,
    Add,
}

/// One attention call as the op checked it: `batch·heads` query matrices
/// `[L, E]`, `batch·kv_heads` key `[S, E]` and value `[S, Ev]` matrices
/// (`heads / kv_heads` query heads share one), the scale of the scores and
/// whether the mask is causal (key j seen from query i when j ≤ i).
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub l: usize,
    pub s: usize,
    pub e: usize,
    pub ev: usize,
    pub scale: f32,
    pub causal: bool,
    /// The precision of the products (the forward's
    /// [`autocast`](crate::autocast), which its backward keeps).
    pub precision: crate::autocast::Precision,
}

/// A tensor's storage and layout, as the kernels take them.
pub type View<'a> = (&'a Storage, &'a Layout);

/// The primitives a device offers. Outputs are new contiguous storages
/// (row-major) unless a method says otherwise; inputs are any layout
/// unless named "contiguous". Shapes have been checked by the op.
pub trait Backend: Send + Sync {
    /// The device whose tensors this backend computes.
    fn device(&self) -> Device;

    // ---- memory ----------------------------------------------------------

    /// A storage holding `data` (copied to the device).
    fn upload(&self, data: Vec<f32>) -> Storage;
    /// `n` copies of `value`.
    fn full(&self, n: usize, value: f32) -> Storage;
    /// The elements of a view in row-major order, on the host.
    fn to_vec(&self, x: View) -> Vec<f32>;
    /// A contiguous copy of a view (the strided copy).
    fn contiguous(&self, x: View) -> Storage;
    /// Writes `src`'s elements (row-major) into the elements of `view`
    /// over `dst`.
    fn write_view(&self, dst: &mut Storage, view: &Layout, src: View);

    // ---- elementwise -----------------------------------------------------

    fn unary(&self, op: UnaryOp, x: View) -> Storage;
    /// `dx = g · f'(x)` of a unary op from the upstream gradient `g`, its
    /// input `x` and output `y` (all contiguous, same shape); relu and
    /// clamp select 0 instead of multiplying, so an infinite `g` stops.
    fn unary_grad(&self, op: UnaryOp, g: View, x: View, y: View) -> Storage;
    /// `op(a, b)` broadcast to `shape`.
    fn binary(&self, op: BinaryOp, a: View, b: View, shape: &[usize]) -> Storage;
    /// `c ≠ 0 ? a : b`, broadcast to `shape`.
    fn select(&self, c: View, a: View, b: View, shape: &[usize]) -> Storage;

    // ---- reductions ------------------------------------------------------

    /// Reduces `x` over `dims` (sorted, distinct); the output has `x`'s
    /// shape with those dims of size 1.
    fn reduce(&self, op: ReduceOp, x: View, dims: &[usize]) -> Storage;
    /// Index of the extreme of each row (last dim, non-empty), as f32.
    fn arg_reduce(&self, op: ArgOp, x: View) -> Storage;
    /// The indices (as f32) of the `k` largest (or smallest) values of each
    /// row (last dim), in order: the first is the extreme; equal values in
    /// index order; NaN counts as the largest.
    fn topk_indices(&self, x: View, k: usize, largest: bool) -> Storage;
    /// Softmax or log-softmax of each row (last dim).
    fn row_op(&self, op: RowOp, x: View) -> Storage;
    /// Of each contiguous row of `len` values: the variance with Bessel's
    /// `correction` (or its square root), and the mean as a pair of f32
    /// (`hi + lo`, for an exact centring in the backward pass).
    fn row_spread(
        &self,
        x: View,
        len: usize,
        correction: usize,
        sqrt: bool,
    ) -> (Storage, Storage, Storage);

    // ---- products --------------------------------------------------------

    /// `a [.., m, k] · b [.., k, n]` with the batch dims broadcast to
    /// `batch` (each operand has rank ≥ 2).
    fn matmul(&self, a: View, b: View, batch: &[usize]) -> Storage;
    /// `x [m, in] · wᵀ + bias` with `w [out, in]`, `bias [out]`.
    fn linear(&self, x: View, w: View, bias: Option<View>) -> Storage;

    // ---- convolution and pooling (contiguous NCHW) -----------------------

    /// `y [N, O, OH, OW]` from `x [N, C, H, W]`, `w [O, C/groups, KH, KW]`;
    /// with `keep`, what [`conv2d_backward_params`](Self::conv2d_backward_params)
    /// needs from `x`.
    fn conv2d(
        &self,
        x: &Storage,
        w: &Storage,
        bias: Option<&Storage>,
        g: &ConvGeom,
        o: usize,
        groups: usize,
        keep: bool,
    ) -> (Storage, Option<Saved>);
    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> Storage;
    /// The weight gradient (when `saved` is given) and the bias gradient.
    fn conv2d_backward_params(
        &self,
        dy: &Storage,
        saved: Option<&Saved>,
        g: &ConvGeom,
        o: usize,
        groups: usize,
    ) -> (Option<Storage>, Storage);
    /// Max pooling of `planes` planes `[H, W]`; with `keep`, saves where
    /// each max came from (what the backward needs; evaluation does not).
    fn max_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        keep: bool,
    ) -> (Storage, Option<Saved>);
    fn max_pool2d_backward(
        &self,
        dy: &Storage,
        saved: &Saved,
        planes: usize,
        g: &ConvGeom,
    ) -> Storage;
    fn avg_pool2d(
        &self,
        x: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage;
    fn avg_pool2d_backward(
        &self,
        dy: &Storage,
        planes: usize,
        g: &ConvGeom,
        count_include_pad: bool,
    ) -> Storage;

    // ---- indexing --------------------------------------------------------

    /// Contiguous `x` (viewed as `[outer, size, inner]`) at `ids` along the
    /// middle: `[outer, ids.len(), inner]`.
    fn index_select(
        &self,
        x: &Storage,
        outer: usize,
        size: usize,
        inner: usize,
        ids: &[usize],
    ) -> Storage;
    /// The adjoint: `g [outer, ids.len(), inner]` added into zeros
    /// `[outer, size, inner]` at `ids`.
    fn index_add(
        &self,
        g: &Storage,
        outer: usize,
        size: usize,
        inner: usize,
        ids: &[usize],
    ) -> Storage;
    /// The elements of contiguous `x` at positions `at`.
    fn gather(&self, x: &Storage, at: &[usize]) -> Storage;
    /// The adjoint: `g`'s values added into `n` zeros at positions `at`.
    fn scatter_add(&self, g: &Storage, at: &[usize], n: usize) -> Storage;

    // ---- optimizers -------------------------------------------------------

    /// One optimizer update, in place: the parameter's values at `at` in
    /// `param`, its gradient (contiguous, as many values, negated first
    /// when `maximize`) and the rule's state buffers.
    fn update(
        &self,
        rule: &UpdateRule,
        param: &mut Storage,
        at: std::ops::Range<usize>,
        grad: View,
        state: &mut [&mut Storage],
        maximize: bool,
    );

    // ---- fused (optional: None sends the caller to its composed path) ----

    /// Softmax and cross-entropy of contiguous logits `[N, C]` in one pass:
    /// each row's loss `[N]` (with `total`, their sum `[1]`) and the
    /// probabilities `[N, C]` for the backward pass.
    fn cross_entropy(
        &self,
        _logits: &Storage,
        _rows: &CrossEntropyRows,
        _total: bool,
    ) -> Option<(Storage, Storage)> {
        None
    }
    /// `dx [N, C]` from the probabilities and each row's upstream gradient
    /// `scale [N]` (contiguous).
    fn cross_entropy_backward(
        &self,
        _probs: &Storage,
        _rows: &CrossEntropyRows,
        _scale: &Storage,
    ) -> Option<Storage> {
        None
    }

    /// Layer normalization of each row of `d` values of `x` with an
    /// optional weight and bias `[d]` (`ops/layer_norm.rs`).
    fn layer_norm(
        &self,
        _x: View,
        _d: usize,
        _affine: (Option<View>, Option<View>),
        _eps: f32,
    ) -> Option<(Storage, Saved)> {
        None
    }
    /// dx and the weight's and bias's gradients `[d]` from `dy`.
    fn layer_norm_backward(
        &self,
        _x: View,
        _d: usize,
        _weight: Option<View>,
        _saved: &Saved,
        _dy: View,
    ) -> Option<[Storage; 3]> {
        None
    }
    /// Scaled dot-product attention fused (`ops/attention.rs`): q `[…, L,
    /// E]`, k `[…, S, E]`, v `[…, S, Ev]` (any layout; the leading dims
    /// flatten to batch·heads), the mask, if any, expanded to `[…, L, S]`.
    /// The output is contiguous `[…, L, Ev]`.
    fn attention(
        &self,
        _a: &AttentionShape,
        _qkv: [View; 3],
        _mask: Option<(View, MaskKind)>,
    ) -> Option<(Storage, Saved)> {
        None
    }
    /// dq, dk, dv (contiguous, shaped as q, k, v) from the output's
    /// gradient.
    fn attention_backward(
        &self,
        _a: &AttentionShape,
        _saved: &Saved,
        _qkv: [View; 3],
        _mask: Option<(View, MaskKind)>,
        _dout: View,
    ) -> Option<[Storage; 3]> {
        None
    }
    /// A whole recurrent direction (`ops/lstm_sequence.rs` and its siblings
    /// give the formulas): x `[T, N, I]`, weights `[w_ih, w_hh, b_ih, b_hh]`,
    /// the initial states `[N, H]` (h, and c for the LSTM). The output is
    /// `[T + S, N, H]`: every step's output, then the S final states. With
    /// `keep`, what the backward kernel needs is kept.
    fn recurrent(
        &self,
        _r: &Recurrence,
        _x: View,
        _weights: [View; 4],
        _states: &[View],
        _keep: bool,
    ) -> Option<(Storage, Saved)> {
        None
    }
    /// The gradients of x, w_ih, w_hh, b_ih, b_hh and the initial states
    /// (those `want`ed) from the output's gradient `dy` `[T + S, N, H]`,
    /// the input and the weights as they are now.
    fn recurrent_backward(
        &self,
        _saved: &Saved,
        _dy: View,
        _x: View,
        _w_ih: View,
        _w_hh: View,
        _want: &[bool],
    ) -> Option<Vec<Option<Storage>>> {
        None
    }
    /// One LSTM cell from its gate pre-activations `z [N, 4H]` and `c
    /// [N, H]`: `[N, 2H]`, h' then c' (`ops/rnn_cells.rs`).
    fn lstm_cell(&self, _z: View, _c: View, _h: usize) -> Option<(Storage, Saved)> {
        None
    }
    /// dz `[N, 4H]` and dc `[N, H]` from the output's gradient `[N, 2H]`.
    fn lstm_cell_backward(&self, _saved: &Saved, _dy: View) -> Option<(Storage, Storage)> {
        None
    }
    /// One GRU cell from `a [N, 3H]`, `b [N, 3H]` and `h [N, H]`: `h' [N, H]`.
    fn gru_cell(&self, _a: View, _b: View, _h: View, _hidden: usize) -> Option<(Storage, Saved)> {
        None
    }
    /// da, db `[N, 3H]` and dh `[N, H]` from the output's gradient.
    fn gru_cell_backward(&self, _saved: &Saved, _dy: View) -> Option<[Storage; 3]> {
        None
    }
}

/// The backend that computes a device's tensors.
pub fn for_device(device: Device) -> &'static dyn Backend {
    match device {
        Device::Cpu => &cpu::CpuBackend,
        Device::Reference => &reference::ReferenceBackend,
        Device::Cuda(_) => unreachable!("no tensor lives on {device} in this build"),
    }
}
