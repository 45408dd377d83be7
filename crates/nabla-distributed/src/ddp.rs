//! [`DistributedDataParallel`]: gradients averaged over the ranks of an
//! MPI job, in buckets sent while the backward pass goes on.
//!
//! Each rank holds a whole copy of the model and trains on its own shard
//! of every batch (`DataLoader::shard`). After each backward pass every
//! gradient is replaced by its mean over the ranks,
//!
//! ```text
//! g ← (g₀ + g₁ + … + g_{N−1}) / N
//! ```
//!
//! so that N ranks of batch B take the step one process of batch N·B
//! would take (to rounding: the sum runs in another order), and the
//! parameters stay identical on every rank, step after step (the
//! allreduce hands every rank the same sum).
//!
//! A step's data flow: the hook of the backward pass copies each
//! parameter's gradient into its bucket ([`crate::buckets`]) as soon as it
//! is complete; a full bucket starts its `MPI_Iallreduce` (in plan order)
//! and the pass goes on to the layers below; every later hook gives MPI a
//! chance to progress the sums under way; at the end of the pass the rest
//! are sent, all are waited for, and the means written back as `.grad`.
//! The last bucket carries one more number: how many ranks were asked to
//! stop (Ctrl-C), so that all stop after the same step.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nabla_core::Tensor;
use nabla_nn::state_dict::state_dict;
use nabla_nn::Parameters;
use nabla_train::{GradientSync, Result};

use crate::buckets::{bucket_len, plan, Slot};
use crate::comm::{dist, Comm, Pending};

/// PyTorch DDP's first bucket size; nabla's models are small, so every
/// bucket is of this size (measured in docs/benchmarks.md).
pub const DEFAULT_BUCKET_BYTES: usize = 1 << 20;

struct Bucket {
    slots: Vec<Slot>,
    send: Vec<f32>,
    recv: Vec<f32>,
    /// Gradients still to come in this backward pass.
    missing: usize,
    pending: Option<Pending>,
}

/// Data-parallel training over MPI: see the [module docs](self). Hand it to
/// [`Trainer::sync_with`](nabla_train::Trainer::sync_with).
pub struct DistributedDataParallel {
    comm: Comm,
    params: Vec<Tensor>,
    /// Running statistics (BatchNorm's): rank 0's after every step.
    buffers: Vec<Tensor>,
    /// A parameter's bucket and place, by tensor id.
    slot_of: HashMap<u64, Slot>,
    buckets: Vec<Bucket>,
    /// Whether this backward pass is reduced (not a `no_sync` one).
    reduce: bool,
    /// Buckets started in this pass (always a prefix of the plan).
    launched: usize,
    /// Settings the ranks must share: (what, fingerprint).
    checks: Vec<(String, u64)>,
    verify: bool,
    steps: usize,
    stats: Arc<SyncStats>,
}

/// What a [`DistributedDataParallel`] has sent and waited for, readable
/// while it trains ([`DistributedDataParallel::stats`]).
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Optimizer steps whose gradients were averaged.
    pub steps: AtomicU64,
    /// Bucket sums started (`MPI_Iallreduce` calls).
    pub allreduces: AtomicU64,
    /// Bytes of gradients summed.
    pub bytes: AtomicU64,
    /// Microseconds from the end of each backward pass until its averaged
    /// gradients are in place: the communication the pass did not hide.
    pub wait_micros: AtomicU64,
}

impl SyncStats {
    fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }
    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl DistributedDataParallel {
    /// Gradient averaging of `model`'s parameters over `comm`'s ranks.
    pub fn new(comm: Comm, model: &dyn Parameters) -> DistributedDataParallel {
        Self::with_bucket_bytes(comm, model, DEFAULT_BUCKET_BYTES)
    }

    /// As [`new`](Self::new), with buckets of about `bytes`.
    pub fn with_bucket_bytes(comm: Comm, model: &dyn Parameters, bytes: usize) -> Self {
        let params = model.parameters();
        let sizes: Vec<usize> = params.iter().map(Tensor::numel).collect();
        let mut buckets: Vec<Bucket> = plan(&sizes, bytes)
            .into_iter()
            .map(|slots| {
                let n = bucket_len(&slots);
                Bucket {
                    missing: slots.len(),
                    slots,
                    send: vec![0.0; n],
                    recv: vec![0.0; n],
                    pending: None,
                }
            })
            .collect();
        if buckets.is_empty() {
            buckets.push(Bucket {
                slots: vec![],
                send: vec![],
                recv: vec![],
                missing: 0,
                pending: None,
            });
        }
        // the stop flag rides at the end of the last bucket
        let last = buckets.last_mut().expect("one bucket at least");
        last.send.push(0.0);
        last.recv.push(0.0);
        let slot_of = buckets
            .iter()
            .flat_map(|b| &b.slots)
            .map(|s| (params[s.param].id(), *s))
            .collect();
        DistributedDataParallel {
            comm,
            params,
            buffers: model.named_buffers().into_iter().map(|(_, t)| t).collect(),
            slot_of,
            buckets,
            reduce: false,
            launched: 0,
            checks: Vec::new(),
            verify: false,
            steps: 0,
            stats: Arc::default(),
        }
    }

    /// Adds a setting every rank must share, compared at the start: an
    /// error names the first rank whose `fingerprint` differs from rank
    /// 0's (different data files, a different configuration).
    pub fn check(mut self, what: impl Into<String>, fingerprint: u64) -> Self {
        self.checks.push((what.into(), fingerprint));
        self
    }

    /// Compares the ranks' parameters after every step (one small
    /// collective a step): a debugging aid, and the tests' proof that the
    /// ranks stay identical.
    pub fn verify_parameters(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }

    /// Counters of what it has sent and waited for (a handle that stays
    /// readable after the synchronizer is handed to a `Trainer`).
    pub fn stats(&self) -> Arc<SyncStats> {
        Arc::clone(&self.stats)
    }

    /// The number of buckets (their plan: [`crate::buckets`]).
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Errors when some rank's `value` differs from rank 0's.
    fn same_everywhere(&self, what: &str, value: u64) -> Result<()> {
        let all = self
            .comm
            .all_gather_u64(value, &format!("comparing {what}"))?;
        match all.iter().position(|&v| v != all[0]) {
            None => Ok(()),
            Some(r) => Err(dist(format!(
                "the ranks differ: rank {r} of {} has another {what} than rank 0; start every \
                 rank with the same settings, data and model files",
                self.comm.size
            ))),
        }
    }

    /// Starts the sums of the full buckets not yet started, in plan order.
    fn launch_ready(&mut self) -> Result<()> {
        while self.launched < self.buckets.len() && self.buckets[self.launched].missing == 0 {
            self.launch(self.launched)?;
        }
        Ok(())
    }

    fn launch(&mut self, k: usize) -> Result<()> {
        let what = format!(
            "averaging the gradients of step {} (bucket {k})",
            self.steps + 1
        );
        let b = &mut self.buckets[k];
        // SAFETY: the buffers are neither touched nor reallocated until
        // `end_backward` has waited on this request.
        b.pending = Some(unsafe { self.comm.start_sum_f32(&b.send, &mut b.recv, &what)? });
        SyncStats::add(&self.stats.allreduces, 1);
        SyncStats::add(&self.stats.bytes, 4 * b.send.len() as u64);
        self.launched = k + 1;
        Ok(())
    }
}

/// Rank 0's values of `tensors` on every rank, in one message.
fn broadcast_tensors(comm: &Comm, tensors: &[Tensor], what: &str) -> Result<()> {
    let mut all: Vec<f32> = Vec::new();
    for t in tensors {
        t.read_data(|v| all.extend_from_slice(v));
    }
    comm.broadcast_f32(&mut all, what)?;
    let mut at = 0;
    for t in tensors {
        let n = t.numel();
        t.copy_from(&Tensor::from_slice(&all[at..at + n], t.shape())?)?;
        at += n;
    }
    Ok(())
}

/// A fingerprint of f32 values (their bits), the same on every rank that
/// runs this binary.
pub fn fingerprint_f32(values: impl IntoIterator<Item = f32>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// A fingerprint of anything hashable (settings, names and shapes).
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl GradientSync for DistributedDataParallel {
    fn rank(&self) -> usize {
        self.comm.rank
    }
    fn world_size(&self) -> usize {
        self.comm.size
    }

    fn start(&mut self, model: &dyn Parameters) -> Result<()> {
        let ids: Vec<u64> = model.parameters().iter().map(Tensor::id).collect();
        if ids != self.params.iter().map(Tensor::id).collect::<Vec<_>>() {
            // its hooks would find none of the trained parameters
            return Err(dist(
                "this DistributedDataParallel was made for another model than the one \
                 trained: make it from the trainer's model",
            ));
        }
        let tensors = state_dict(model);
        let layout: Vec<(&str, &[usize])> = tensors
            .iter()
            .map(|(n, t)| (n.as_str(), t.shape()))
            .collect();
        self.same_everywhere("model (parameter names and shapes)", fingerprint(&layout))?;
        for (what, value) in &self.checks {
            self.same_everywhere(what, *value)?;
        }
        let tensors: Vec<Tensor> = tensors.into_iter().map(|(_, t)| t).collect();
        broadcast_tensors(
            &self.comm,
            &tensors,
            "copying rank 0's parameters to every rank",
        )
    }

    fn begin_backward(&mut self, reduce: bool, stop: bool) -> Result<()> {
        self.reduce = reduce;
        if !reduce {
            return Ok(());
        }
        if self.verify && self.steps > 0 {
            let values = self.params.iter().flat_map(|p| p.to_vec());
            let what = format!("parameters after step {}", self.steps);
            self.same_everywhere(&what, fingerprint_f32(values))?;
        }
        self.launched = 0;
        for b in &mut self.buckets {
            b.send.fill(0.0);
            b.missing = b.slots.len();
        }
        let last = self.buckets.last_mut().expect("one bucket at least");
        *last.send.last_mut().expect("the stop flag") = if stop { 1.0 } else { 0.0 };
        // a model with no parameters still shares the stop flag
        self.launch_ready()
    }

    fn grad_ready(&mut self, param: &Tensor) -> Result<()> {
        if !self.reduce {
            return Ok(());
        }
        let Some(slot) = self.slot_of.get(&param.id()).copied() else {
            return Ok(()); // a leaf that is not one of the model's parameters
        };
        let Some(grad) = param.grad() else {
            return Ok(());
        };
        let b = &mut self.buckets[slot.bucket];
        if slot.bucket < self.launched {
            // a parameter used again after its bucket left: its gradient
            // changed, and the sum under way has its old value
            return Err(dist(format!(
                "a parameter's gradient (bucket {}) was completed twice in one backward pass",
                slot.bucket
            )));
        }
        grad.read_data(|g| b.send[slot.offset..slot.offset + slot.len].copy_from_slice(g));
        b.missing -= 1;
        self.launch_ready()?;
        // give MPI a turn at the sums under way
        if let Some(p) = self.buckets[..self.launched]
            .iter_mut()
            .find_map(|b| b.pending.as_mut())
        {
            self.comm.test(p);
        }
        Ok(())
    }

    fn end_backward(&mut self) -> Result<bool> {
        if !self.reduce {
            return Ok(false);
        }
        // parameters that got no gradient this pass count as zeros
        for k in self.launched..self.buckets.len() {
            self.launch(k)?;
        }
        let scale = 1.0 / self.comm.size as f32;
        let step = self.steps + 1;
        let waiting = Instant::now();
        for (k, b) in self.buckets.iter_mut().enumerate() {
            if let Some(mut p) = b.pending.take() {
                let what = format!("averaging the gradients of step {step} (bucket {k})");
                self.comm.wait(&mut p, &what)?;
            }
            for s in &b.slots {
                let p = &self.params[s.param];
                let mean: Vec<f32> = b.recv[s.offset..s.offset + s.len]
                    .iter()
                    .map(|v| v * scale)
                    .collect();
                p.set_grad(Some(Tensor::from_vec_on(mean, p.shape(), p.device())?));
            }
        }
        SyncStats::add(
            &self.stats.wait_micros,
            waiting.elapsed().as_micros() as u64,
        );
        SyncStats::add(&self.stats.steps, 1);
        self.steps = step;
        if !self.buffers.is_empty() {
            // each rank's BatchNorm saw its own batches: rank 0's running
            // statistics everywhere, as PyTorch's `broadcast_buffers`
            broadcast_tensors(
                &self.comm,
                &self.buffers,
                "copying rank 0's running statistics",
            )?;
        }
        let stops = *self
            .buckets
            .last()
            .and_then(|b| b.recv.last())
            .expect("the stop flag");
        Ok(stops > 0.0)
    }

    fn sum(&mut self, values: &mut [f64]) -> Result<()> {
        self.comm.sum_f64(values, "adding up the epoch's metrics")
    }
}
