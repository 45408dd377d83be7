//! Errors of data loading: each names the file (or source) and the problem.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read. (The cause is in the
    /// message, not `source()`: printed with its chain, it would appear
    /// twice.)
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    /// The file was read but its content is wrong.
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
    /// A tensor operation failed while building batches.
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
}

pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    pub(crate) fn invalid(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.as_ref().display().to_string(),
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        DataError::Io {
            path: path.as_ref().display().to_string(),
            err,
        }
    }
}
