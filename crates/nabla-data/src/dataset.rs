//! The [`Dataset`] trait (PyTorch's `Dataset`): numbered examples, each an
//! input and a target written into caller-provided buffers, so a batch is
//! assembled in one contiguous allocation with no per-example tensors.

use nabla_core::{DType, Generator};

use crate::error::Result;

pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one input, e.g. `[1, 28, 28]`.
    fn input_shape(&self) -> Vec<usize>;

    /// Shape of one target: `[]` for a class index or a single value,
    /// `[T]` for a sequence of them.
    fn target_shape(&self) -> Vec<usize> {
        vec![]
    }

    /// Writes example `index` into `input` and `target` (sized by the
    /// shapes above). `rng` drives random augmentation; the loader derives
    /// it from the seed, the epoch and the index, so results never depend
    /// on thread timing.
    fn get(
        &self,
        index: usize,
        input: &mut [f32],
        target: &mut [f32],
        rng: &mut Generator,
    ) -> Result<()>;

    /// A hint that example `index` will be read soon: a data set in memory
    /// can start fetching it into cache. The loader gives the hint for a
    /// whole batch before reading it, so the fetches overlap instead of
    /// each read waiting for memory in turn.
    fn prefetch(&self, index: usize) {
        let _ = index;
    }

    /// Number of classes, for classification data.
    fn classes(&self) -> Option<usize> {
        None
    }

    /// The dtype of a batch's inputs (`get` writes them as f32 values):
    /// f32, or i64 for token ids.
    fn input_dtype(&self) -> DType {
        DType::F32
    }

    /// The dtype of a batch's targets: i64 class labels for a data set
    /// with classes (as PyTorch's loaders give them), f32 otherwise.
    fn target_dtype(&self) -> DType {
        match self.classes() {
            Some(_) => DType::I64,
            None => DType::F32,
        }
    }
}

/// Checks that a data set's inputs have the shape a model expects, with an
/// error that names the data and both shapes.
pub fn check_input_shape(dataset: &dyn Dataset, expected: &[usize], source: &str) -> Result<()> {
    let got = dataset.input_shape();
    if got != expected {
        return Err(crate::error::DataError::Invalid {
            path: source.to_string(),
            msg: format!("inputs are {got:?} but the model expects {expected:?}"),
        });
    }
    Ok(())
}
