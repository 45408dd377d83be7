//! The one error type of the library. Every message names the operation that
//! failed and, for shape problems, the shapes involved, e.g.
//! `matmul: inner dimensions differ: lhs [64, 1600], rhs [400, 120]`.

/// Errors returned by tensor operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit the operation.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },

    /// A dimension argument outside `-rank..rank`.
    #[error("{op}: dimension {dim} out of range for a tensor of rank {rank} (shape {shape:?})")]
    Dim {
        op: &'static str,
        dim: isize,
        rank: usize,
        shape: Vec<usize>,
    },

    /// An index (gather, index_select, labels) outside `0..size`.
    #[error("{op}: index {index} out of range for a dimension of size {size}")]
    Index {
        op: &'static str,
        index: f64,
        size: usize,
    },

    /// A tensor whose dtype the operation cannot take (or a value that
    /// has no exact form in the dtype asked for).
    #[error("{op}: {msg}")]
    DType { op: &'static str, msg: String },

    /// A bad argument that is not about shapes (negative probability, zero stride, ...).
    #[error("{op}: {msg}")]
    Arg { op: &'static str, msg: String },

    /// Misuse of autograd: backward on a non-scalar, twice through a freed graph, ...
    #[error("backward: {0}")]
    Backward(String),

    /// The requested device is not available in this build or on this machine.
    #[error("device {device} is not available: {reason}")]
    Device { device: String, reason: String },

    /// Two tensors on different devices met in one operation.
    #[error("{op}: tensors are on different devices: {lhs} and {rhs}")]
    DeviceMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }

    pub(crate) fn arg(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Arg {
            op,
            msg: msg.into(),
        }
    }
}
