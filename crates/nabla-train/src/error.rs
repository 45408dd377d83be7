//! Errors of training: each says what went wrong and where (the file, the
//! epoch and step), in one line.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed (a shape, a device, a bad argument).
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
    /// Reading or preparing the data failed.
    #[error(transparent)]
    Data(#[from] nabla_data::DataError),
    /// A weights file could not be read or written.
    #[error(transparent)]
    StateDict(#[from] nabla_nn::state_dict::StateDictError),
    /// A file of the run directory could not be read or written. (The
    /// cause is in the message, not `source()`: printed with its chain, it
    /// would appear twice.)
    #[error("{path}: {what}: {err}")]
    Io {
        path: String,
        what: String,
        err: std::io::Error,
    },
    /// The run directory or a checkpoint is not what it should be (in use,
    /// already holding a run, corrupt, from another run).
    #[error("{0}")]
    Run(String),
    /// A setting of the trainer that cannot work (a distillation's
    /// temperature, a teacher of other classes).
    #[error("{0}")]
    Config(String),
    /// The processes of a data-parallel run disagree or cannot talk (a
    /// different model or settings on one rank, an MPI failure).
    #[error("{0}")]
    Distributed(String),
    /// The training loss stopped being a finite number.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss is {loss} with lr {lr}; {}; \
         try a smaller learning rate or clipping the gradients' norm",
        match checkpoint {
            Some(p) => format!("the last good checkpoint is {}", p.display()),
            None => "no checkpoint was written before it".to_string(),
        }
    )]
    Diverged {
        epoch: usize,
        step: usize,
        loss: f32,
        lr: f32,
        checkpoint: Option<PathBuf>,
    },
}

pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    pub(crate) fn io(path: &Path, what: &str, err: std::io::Error) -> TrainError {
        TrainError::Io {
            path: path.display().to_string(),
            what: what.to_string(),
            err,
        }
    }
}
