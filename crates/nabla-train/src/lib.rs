//! nabla-train: training as a library.
//!
//! - [`Trainer`] runs the loop (fit, evaluate, predict) over any
//!   [`BatchSource`] (a [`DataLoader`](nabla_data::DataLoader) is one);
//! - [`callbacks`] are its parts a user turns on, off or replaces
//!   (progress display, early stopping, schedules, mixup);
//! - [`distill`]: a trained teacher's soft targets in the loss;
//! - [`windows`] are the batches of a text for a language model;
//! - [`run_dir`] is the run directory (config, metrics, steps,
//!   checkpoints, final weights), written and read in one place, with the
//!   promises a run makes (one writer, epochs committed whole).
//!
//! A hand-written loop stays as easy as before: the trainer is a
//! convenience over `forward`, `backward` and `Optimizer::step`, not a
//! framework a model must live in.

pub mod callbacks;
pub mod distill;
pub mod error;
pub mod evaluate;
pub mod run_dir;
pub mod sync;
pub mod trainer;
pub mod windows;

pub use callbacks::{Callback, Ctx, EpochEnd, Flow, StepEnd};
pub use distill::Distillation;
pub use error::{Result, TrainError};
pub use evaluate::{
    cross_entropy_loss, evaluate, predict, token_cross_entropy_loss, BatchSource, Evaluation,
    LossFn,
};
pub use run_dir::checkpoint::{Checkpoint, TrainState};
pub use run_dir::csv::{EpochRow, History, StepRow};
pub use run_dir::RunDir;
pub use sync::GradientSync;
pub use trainer::{Outcome, Trainer};
pub use windows::{RandomWindows, Windows};

/// Prints a line on standard output; a closed pipe (`nabla train | head`)
/// or a full device ends printing quietly instead of panicking and losing
/// the run.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences [`say!`] in this process (the ranks of a data-parallel run
/// other than rank 0, which speaks for all).
pub fn set_quiet(on: bool) {
    QUIET.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[doc(hidden)]
pub fn print_line(args: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static BROKEN: AtomicBool = AtomicBool::new(false);
    if BROKEN.load(Ordering::Relaxed) || QUIET.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").and_then(|_| out.flush()).is_err() {
        BROKEN.store(true, Ordering::Relaxed);
    }
}
