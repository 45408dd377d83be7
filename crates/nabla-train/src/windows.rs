//! Batches of a token stream for a language model: [`RandomWindows`] to
//! train on (nanoGPT's `get_batch`), [`Windows`] to evaluate on. Inputs
//! are `[batch, context]` token ids (i64, as nanoGPT's `get_batch` gives),
//! targets the ids one position on, flattened to `[batch · context]`.

use std::sync::Arc;

use nabla_core::Tensor;
use nabla_data::Batch;

use crate::error::{Result, TrainError};
use crate::evaluate::BatchSource;

/// The batch of the windows of `ids` starting at `starts`.
fn windows_at(ids: &[u32], starts: &[usize], context: usize) -> Result<Batch> {
    let (mut x, mut y) = (
        Vec::with_capacity(starts.len() * context),
        Vec::with_capacity(starts.len() * context),
    );
    for &s in starts {
        x.extend(ids[s..s + context].iter().map(|&i| i64::from(i)));
        y.extend(ids[s + 1..s + context + 1].iter().map(|&i| i64::from(i)));
    }
    let b = starts.len();
    Ok(Batch {
        inputs: Tensor::from_vec_i64(x, [b, context])?,
        targets: Tensor::from_vec_i64(y, [b * context])?,
    })
}

/// Training batches of `batch_size` windows of `context` tokens, each at
/// a start drawn uniformly from the global generator when its batch is
/// made, `per_epoch` batches an epoch. Drawn from the global generator,
/// a checkpoint (which saves it) resumes the same windows; the batches a
/// resumed epoch skips draw nothing.
pub struct RandomWindows {
    ids: Arc<[u32]>,
    batch_size: usize,
    context: usize,
    per_epoch: usize,
}

impl RandomWindows {
    /// An error when `ids` holds no window of `context + 1` tokens or a
    /// size is zero.
    pub fn new(
        ids: impl Into<Arc<[u32]>>,
        batch_size: usize,
        context: usize,
        per_epoch: usize,
    ) -> Result<RandomWindows> {
        let ids = ids.into();
        if batch_size == 0 || context == 0 || per_epoch == 0 {
            return Err(TrainError::Run(format!(
                "random windows: batch size {batch_size}, context {context} and batches an epoch {per_epoch} must be positive"
            )));
        }
        if ids.len() < context + 2 {
            return Err(TrainError::Run(format!(
                "random windows: {} tokens are too few for windows of {context} (and the next token)",
                ids.len()
            )));
        }
        Ok(RandomWindows {
            ids,
            batch_size,
            context,
            per_epoch,
        })
    }

    /// One batch, its starts drawn now.
    fn draw(&self) -> Result<Batch> {
        let starts = self.ids.len() - self.context - 1;
        let picks: Vec<usize> = (0..self.batch_size)
            .map(|_| {
                let u = nabla_core::with_global_generator(|g| g.uniform());
                ((u as f64 * starts as f64) as usize).min(starts - 1)
            })
            .collect();
        windows_at(&self.ids, &picks, self.context)
    }
}

impl BatchSource for RandomWindows {
    fn batches(&self, epoch: usize) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        self.batches_from(epoch, 0)
    }
    fn batches_from(&self, _: usize, first: usize) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        // lazily: each batch draws its starts when the trainer takes it,
        // after the previous step's dropout masks, as a hand-written loop would
        Box::new((first..self.per_epoch).map(|_| self.draw()))
    }
    fn num_batches(&self) -> usize {
        self.per_epoch
    }
    fn num_examples(&self) -> usize {
        self.per_epoch * self.batch_size
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// Every non-overlapping window of `context` tokens of `ids` (the last
/// token of each window predicted from the next window's first), in order,
/// `batch_size` windows a batch: an evaluation set of a text.
pub struct Windows {
    ids: Arc<[u32]>,
    batch_size: usize,
    context: usize,
}

impl Windows {
    /// An error when `ids` holds no window of `context + 1` tokens or a
    /// size is zero.
    pub fn new(ids: impl Into<Arc<[u32]>>, batch_size: usize, context: usize) -> Result<Windows> {
        let ids = ids.into();
        if batch_size == 0 || context == 0 {
            return Err(TrainError::Run(format!(
                "windows: batch size {batch_size} and context {context} must be positive"
            )));
        }
        if ids.len() < context + 1 {
            return Err(TrainError::Run(format!(
                "windows: {} tokens are too few for a window of {context} (and the next token)",
                ids.len()
            )));
        }
        Ok(Windows {
            ids,
            batch_size,
            context,
        })
    }

    fn starts(&self) -> Vec<usize> {
        (0..(self.ids.len() - 1) / self.context)
            .map(|w| w * self.context)
            .collect()
    }
}

impl BatchSource for Windows {
    fn batches(&self, _: usize) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        let starts = self.starts();
        let chunks: Vec<Vec<usize>> = starts
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        Box::new(
            chunks
                .into_iter()
                .map(|c| windows_at(&self.ids, &c, self.context)),
        )
    }
    fn num_batches(&self) -> usize {
        self.num_examples().div_ceil(self.batch_size)
    }
    fn num_examples(&self) -> usize {
        (self.ids.len() - 1) / self.context
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every window's targets are its inputs one token on, drawn from the
    /// global generator: the same seed gives the same windows, and a
    /// resumed epoch's batches are the whole epoch's from there on when
    /// the generator is restored to where the skipped ones had left it.
    #[test]
    fn random_windows_shift_targets_and_resume_without_drawing() {
        let ids: Vec<u32> = (0..50).collect();
        let w = RandomWindows::new(ids, 3, 4, 5).unwrap();
        assert_eq!(
            (w.num_batches(), w.num_examples(), w.batch_size()),
            (5, 15, 3)
        );
        nabla_core::manual_seed(11);
        let all: Vec<Batch> = w.batches(1).map(|b| b.unwrap()).collect();
        for b in &all {
            assert_eq!(b.inputs.shape(), &[3, 4]);
            let (x, y) = (b.inputs.to_vec(), b.targets.to_vec());
            assert!(x.iter().zip(&y).all(|(a, b)| b - a == 1.0), "{x:?} {y:?}");
            assert!(x
                .chunks(4)
                .all(|r| r.windows(2).all(|p| p[1] - p[0] == 1.0)));
        }
        nabla_core::manual_seed(11);
        let mut it = w.batches(1);
        it.next();
        it.next();
        drop(it);
        let rest: Vec<Vec<f32>> = w
            .batches_from(1, 2)
            .map(|b| b.unwrap().inputs.to_vec())
            .collect();
        let expected: Vec<Vec<f32>> = all[2..].iter().map(|b| b.inputs.to_vec()).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn windows_cover_a_text_in_order_and_too_short_ones_are_refused() {
        let ids: Vec<u32> = (0..11).collect();
        let w = Windows::new(ids, 2, 3).unwrap();
        assert_eq!((w.num_examples(), w.num_batches()), (3, 2));
        let firsts: Vec<f32> = w
            .batches(0)
            .flat_map(|b| b.unwrap().inputs.to_vec())
            .collect();
        assert_eq!(firsts, (0..9).map(|v| v as f32).collect::<Vec<_>>());
        let last = w.batches(0).last().unwrap().unwrap();
        assert_eq!(last.targets.to_vec(), vec![7.0, 8.0, 9.0]);
        let err = Windows::new(vec![1u32, 2], 2, 3).err().unwrap().to_string();
        assert!(err.contains("2 tokens are too few"), "{err}");
        assert!(RandomWindows::new(vec![0u32; 5], 2, 4, 1).is_err());
        assert!(RandomWindows::new(vec![0u32; 50], 0, 4, 1).is_err());
    }
}
