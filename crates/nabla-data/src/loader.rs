//! [`DataLoader`]: shuffled batches of a [`Dataset`], assembled ahead of
//! time as jobs on nabla's thread pool, so the training step rarely waits
//! for data.
//!
//! - `shuffle`: a new permutation every epoch, from `(seed, epoch)` only,
//!   so a run and its resumption see the same batches;
//! - `drop_last`: skip the final short batch;
//! - each batch is written straight into one contiguous buffer per tensor;
//! - `prefetch` batches are prepared ahead (bounded, so memory stays flat).
//!
//! Why pool jobs and not a thread of their own: a loader thread takes a
//! core from the kernels whenever it runs (the MLP's epoch at two threads
//! took 0.56 s with one, 0.46 s with the batches made beforehand). As pool
//! jobs, batches are made when a pool thread would otherwise wait; the
//! training loop, waiting for a batch nobody has started, makes it itself.
//!
//! Augmentation randomness comes from `(seed, epoch, index)`: the same
//! example gets the same crop in the same epoch whatever the threads do.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use nabla_core::{Device, Generator, Tensor};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// One batch: inputs `[B, input_shape…]` and targets `[B, target_shape…]`,
/// of the data set's `input_dtype` and `target_dtype` (f32 images; i64
/// class labels, as PyTorch's loaders give them; i64 token ids).
#[derive(Clone, Debug)]
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
}

impl Batch {
    /// The batch on `device` (one copy of each tensor, none when it is
    /// there already).
    pub fn to(&self, device: Device) -> Result<Batch> {
        Ok(Batch {
            inputs: self.inputs.to(device)?,
            targets: self.targets.to(device)?,
        })
    }
}

pub struct DataLoader<D: Dataset + 'static> {
    dataset: Arc<D>,
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    pub prefetch: usize,
    /// Where the batches are delivered (each moved once, as it is made).
    pub device: Device,
    /// This process's share of the data in a data-parallel run: see
    /// [`shard`](DataLoader::shard).
    pub shard: Option<Shard>,
}

/// A rank's share of the examples ([`DataLoader::shard`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
    /// Whether the order is padded to a multiple of `world` (every rank then
    /// has as many examples, some twice: training), or not (each example
    /// once over all ranks: evaluation).
    pub pad: bool,
}

/// The seed of the random stream for `(seed, a, b)`: the loader's
/// shuffles (a = epoch, b = 0) and examples (b = index + 1), and the
/// training loop's batch mixes (under a seed of their own).
pub fn stream_seed(seed: u64, a: u64, b: u64) -> u64 {
    // splitmix64 steps: well-spread, distinct streams per (seed, a, b)
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<D: Dataset + 'static> DataLoader<D> {
    /// Batches of `batch_size`, shuffled, last short batch kept, seed 0.
    pub fn new(dataset: D, batch_size: usize) -> DataLoader<D> {
        DataLoader {
            dataset: Arc::new(dataset),
            batch_size: batch_size.max(1),
            shuffle: true,
            drop_last: false,
            seed: 0,
            prefetch: 4,
            device: Device::Cpu,
            shard: None,
        }
    }

    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Delivers the batches on `device` (PyTorch's `x.to(device)` in the
    /// loop, done here once per batch, ahead of the step that needs it).
    pub fn to(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Rank `rank` of `world` processes takes every `world`-th example of
    /// each epoch's order, starting at its rank (PyTorch's
    /// `DistributedSampler`): the ranks' shards are disjoint and reshuffled
    /// each epoch from the shared seed. The order is padded with its first
    /// examples to a multiple of `world`, so every rank has as many batches
    /// (PyTorch pads the same way); `pad_shards(false)` keeps each example
    /// once, for evaluation.
    ///
    /// Rank r's k-th batch of B holds the examples of positions
    /// `k·B·world + r + world·j`: the N ranks' k-th batches together are
    /// the k-th batch of N·B of one process, in another order.
    pub fn shard(mut self, rank: usize, world: usize) -> Self {
        assert!(rank < world, "shard: rank {rank} of {world} processes");
        self.shard = Some(Shard {
            rank,
            world,
            pad: true,
        });
        self
    }
    /// Whether the shards are padded to equal sizes (see [`shard`](Self::shard)).
    pub fn pad_shards(mut self, on: bool) -> Self {
        if let Some(s) = &mut self.shard {
            s.pad = on;
        }
        self
    }

    /// Examples in an epoch: this rank's share when sharded.
    pub fn num_examples(&self) -> usize {
        let n = self.dataset.len();
        match self.shard {
            None => n,
            Some(s) if s.pad => n.div_ceil(s.world),
            Some(s) => n / s.world + usize::from(s.rank < n % s.world),
        }
    }

    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.num_examples();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The example order of `epoch` (this rank's share of it when sharded).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            Generator::new(stream_seed(self.seed, epoch as u64, 0)).shuffle(&mut order);
        }
        let Some(s) = self.shard else {
            return order;
        };
        if s.pad && !order.is_empty() {
            let total = order.len().div_ceil(s.world) * s.world;
            let mut k = 0;
            while order.len() < total {
                order.push(order[k]);
                k += 1;
            }
        }
        order.into_iter().skip(s.rank).step_by(s.world).collect()
    }

    /// Assembles one batch from the given example indices.
    pub fn make_batch(dataset: &D, indices: &[usize], seed: u64, epoch: usize) -> Result<Batch> {
        let (ishape, tshape) = (dataset.input_shape(), dataset.target_shape());
        let (isz, tsz) = (
            ishape.iter().product::<usize>(),
            tshape.iter().product::<usize>().max(1),
        );
        let b = indices.len();
        let mut inputs = vec![0f32; b * isz];
        let mut targets = vec![0f32; b * tsz];
        indices.iter().for_each(|&i| dataset.prefetch(i));
        for (k, &i) in indices.iter().enumerate() {
            // Every 8 examples, run whatever the pool has waiting: made on a
            // thread that was idle, a batch (about 25 µs) would otherwise
            // keep it from the half of a product the training thread just
            // offered it (the MLP's epoch at two threads 0.50 → 0.47 s)
            if k % 8 == 7 {
                nabla_core::threads::run_pending();
            }
            let mut rng = Generator::new(stream_seed(seed, epoch as u64, i as u64 + 1));
            dataset.get(
                i,
                &mut inputs[k * isz..(k + 1) * isz],
                &mut targets[k * tsz..(k + 1) * tsz],
                &mut rng,
            )?;
        }
        let mut in_shape = vec![b];
        in_shape.extend(ishape);
        let mut t_shape = vec![b];
        t_shape.extend(tshape);
        Ok(Batch {
            inputs: Tensor::from_vec(inputs, in_shape)?.to_dtype(dataset.input_dtype())?,
            targets: Tensor::from_vec(targets, t_shape)?.to_dtype(dataset.target_dtype())?,
        })
    }

    /// The batches of `epoch`, prepared ahead on the thread pool.
    pub fn epoch(&self, epoch: usize) -> Batches {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from the `first`-th on (a resumed epoch):
    /// the ones before are not read.
    pub fn epoch_from(&self, epoch: usize, first: usize) -> Batches {
        let order = self.order(epoch);
        let mut chunks: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if self.drop_last && chunks.last().is_some_and(|c| c.len() < self.batch_size) {
            chunks.pop();
        }
        let chunk_count = chunks.len();
        let (tx, rx) = channel();
        let dataset = Arc::clone(&self.dataset);
        let (seed, device) = (self.seed, self.device);
        let make = move |k: usize, chunk: Vec<usize>, tx: Sender<(usize, Result<Batch>)>| {
            let dataset = Arc::clone(&dataset);
            nabla_core::threads::spawn(move || {
                // a dataset that panics ends this batch with an error, not the process
                let batch = catch_unwind(AssertUnwindSafe(|| {
                    Self::make_batch(&dataset, &chunk, seed, epoch)?.to(device)
                }))
                .unwrap_or_else(|_| {
                    Err(DataError::Invalid {
                        path: "data loader".into(),
                        msg: format!("reading the examples of batch {k} panicked"),
                    })
                });
                // a closed receiver (the loop stopped early) drops the batch
                let _ = tx.send((k, batch));
            })
        };
        let mut batches = Batches {
            chunks: chunks.into_iter().map(Some).collect(),
            make: Box::new(make),
            tx,
            rx,
            ready: BTreeMap::new(),
            started: first.min(chunk_count),
            next: first.min(chunk_count),
            ahead: self.prefetch.max(1),
        };
        batches.start_ahead();
        batches
    }
}

type MakeBatch = Box<dyn Fn(usize, Vec<usize>, Sender<(usize, Result<Batch>)>) + Send>;

/// Iterator over one epoch's batches, in order.
pub struct Batches {
    /// Each batch's example indices, taken when its job starts.
    chunks: Vec<Option<Vec<usize>>>,
    make: MakeBatch,
    tx: Sender<(usize, Result<Batch>)>,
    rx: Receiver<(usize, Result<Batch>)>,
    /// Batches finished out of order, by number.
    ready: BTreeMap<usize, Result<Batch>>,
    started: usize,
    next: usize,
    ahead: usize,
}

impl Batches {
    /// Starts jobs until `ahead` batches past the next one are under way.
    fn start_ahead(&mut self) {
        while self.started < self.chunks.len() && self.started < self.next + self.ahead {
            let chunk = self.chunks[self.started]
                .take()
                .expect("each batch starts once");
            (self.make)(self.started, chunk, self.tx.clone());
            self.started += 1;
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next == self.chunks.len() {
            return None;
        }
        self.start_ahead();
        loop {
            if let Some(batch) = self.ready.remove(&self.next) {
                self.next += 1;
                self.start_ahead();
                return Some(batch);
            }
            let (k, batch) = match self.rx.try_recv() {
                Ok(got) => got,
                // Not made yet: run a waiting job here (with one pool thread
                // nobody else would), else the batch is being made on
                // another thread: wait for it.
                Err(TryRecvError::Empty) if nabla_core::threads::run_pending() => continue,
                Err(TryRecvError::Empty) => self.rx.recv().expect("Batches holds a sender"),
                Err(TryRecvError::Disconnected) => unreachable!("Batches holds a sender"),
            };
            self.ready.insert(k, batch);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.chunks.len() - self.next;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageDataset;
    use crate::mnist::ImageSet;
    use crate::transform::Transform;

    fn toy(n: usize) -> ImageDataset {
        let set = ImageSet {
            images: (0..n * 4).map(|v| (v % 256) as u8).collect(),
            labels: (0..n).map(|v| (v % 10) as u8).collect(),
            height: 2,
            width: 2,
            classes: 10,
        };
        ImageDataset::new(set, vec![])
    }

    #[test]
    fn shards_split_each_epoch_as_pytorchs_distributed_sampler() {
        // 10 examples over 3 ranks: padded to 12 with the order's first two
        let full = DataLoader::new(toy(10), 4).seed(7);
        let shards: Vec<_> = (0..3)
            .map(|r| DataLoader::new(toy(10), 4).seed(7).shard(r, 3))
            .collect();
        for epoch in [1, 2] {
            let order = full.order(epoch);
            let mut padded = order.clone();
            padded.extend_from_slice(&order[..2]);
            for (r, dl) in shards.iter().enumerate() {
                let want: Vec<usize> = padded.iter().copied().skip(r).step_by(3).collect();
                assert_eq!(dl.order(epoch), want, "rank {r}, epoch {epoch}");
                assert_eq!((dl.num_examples(), dl.len()), (4, 1));
            }
        }
        assert_ne!(
            shards[0].order(1),
            shards[0].order(2),
            "reshuffled per epoch"
        );
        // unpadded: every example exactly once over the ranks
        let mut all: Vec<usize> = (0..3)
            .flat_map(|r| {
                let dl = DataLoader::new(toy(10), 4)
                    .seed(7)
                    .shard(r, 3)
                    .pad_shards(false);
                assert_eq!(dl.num_examples(), dl.order(1).len());
                dl.order(1)
            })
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // N ranks' k-th batches of B are one process's k-th batch of N·B
        let (big, halves) = (
            DataLoader::new(toy(16), 8).seed(3),
            [0, 1].map(|r| DataLoader::new(toy(16), 4).seed(3).shard(r, 2)),
        );
        let big_order = big.order(1);
        for k in 0..2 {
            let mut joined: Vec<usize> = halves
                .iter()
                .flat_map(|h| h.order(1)[k * 4..k * 4 + 4].to_vec())
                .collect();
            let mut want = big_order[k * 8..k * 8 + 8].to_vec();
            joined.sort();
            want.sort();
            assert_eq!(joined, want, "batch {k}");
        }
    }

    #[test]
    fn batches_cover_the_data_once_and_shuffle_per_epoch() {
        let dl = DataLoader::new(toy(10), 4).seed(5);
        assert_eq!(dl.len(), 3);
        let labels = |e| -> Vec<f32> {
            dl.epoch(e)
                .flat_map(|b| b.unwrap().targets.to_vec())
                .collect()
        };
        let (e0, e1) = (labels(0), labels(1));
        let mut sorted = e0.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, (0..10).map(|v| v as f32).collect::<Vec<_>>());
        assert_ne!(e0, e1, "each epoch has its own order");
        assert_eq!(e0, labels(0), "the same seed and epoch give the same order");
        let first = dl.epoch(0).next().unwrap().unwrap();
        assert_eq!(first.inputs.shape(), &[4, 1, 2, 2]);
        let dl = DataLoader::new(toy(10), 4).drop_last(true).shuffle(false);
        let sizes: Vec<usize> = dl.epoch(0).map(|b| b.unwrap().targets.numel()).collect();
        assert_eq!(sizes, vec![4, 4]);
    }

    /// A resumed epoch's batches are the whole epoch's, from the one asked.
    #[test]
    fn an_epoch_can_start_at_any_batch() {
        let ds = ImageDataset::new(
            toy(10).set.as_ref().clone(),
            vec![Transform::RandomShift { max: 1 }],
        );
        let dl = DataLoader::new(ds, 3).seed(4);
        let all: Vec<Vec<f32>> = dl.epoch(2).map(|b| b.unwrap().inputs.to_vec()).collect();
        let rest: Vec<Vec<f32>> = dl
            .epoch_from(2, 2)
            .map(|b| b.unwrap().inputs.to_vec())
            .collect();
        assert_eq!(rest, all[2..]);
        assert_eq!(dl.epoch_from(2, 9).count(), 0);
    }

    #[test]
    fn augmentation_is_reproducible() {
        let ds = ImageDataset::new(
            toy(8).set.as_ref().clone(),
            vec![Transform::RandomShift { max: 1 }],
        );
        let dl = DataLoader::new(ds, 8).seed(3);
        let a = dl.epoch(2).next().unwrap().unwrap().inputs.to_vec();
        let b = dl.epoch(2).next().unwrap().unwrap().inputs.to_vec();
        assert_eq!(a, b);
    }

    /// Panics when asked for example 2.
    struct Fragile;

    impl Dataset for Fragile {
        fn len(&self) -> usize {
            6
        }
        fn input_shape(&self) -> Vec<usize> {
            vec![1]
        }
        fn get(&self, i: usize, input: &mut [f32], _: &mut [f32], _: &mut Generator) -> Result<()> {
            assert!(i != 2, "example 2 is broken");
            input[0] = i as f32;
            Ok(())
        }
    }

    #[test]
    fn a_dataset_that_panics_gives_an_error_for_that_batch_only() {
        let dl = DataLoader::new(Fragile, 2).shuffle(false);
        let batches: Vec<Result<Batch>> = dl.epoch(0).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].as_ref().unwrap().inputs.to_vec(), vec![0.0, 1.0]);
        let e = batches[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("batch 1 panicked"), "{e}");
        assert_eq!(batches[2].as_ref().unwrap().inputs.to_vec(), vec![4.0, 5.0]);
    }

    #[test]
    fn batches_come_in_order_whatever_finishes_first() {
        let dl = DataLoader::new(toy(100), 3).seed(9);
        dl.epoch(0).next(); // an epoch left early must not leak batches into the next
        let order = dl.order(1);
        for (k, b) in dl.epoch(1).enumerate() {
            let want: Vec<f32> = order[k * 3..(k * 3 + 3).min(100)]
                .iter()
                .map(|&i| (i % 10) as f32)
                .collect();
            assert_eq!(b.unwrap().targets.to_vec(), want);
        }
    }

    #[test]
    fn stopping_early_ends_the_worker() {
        let dl = DataLoader::new(toy(1000), 1);
        let mut it = dl.epoch(0);
        assert!(it.next().is_some());
        drop(it); // the producer sees the closed channel and returns
    }
}
