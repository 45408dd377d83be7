//! `mpirun -np N nabla train --distributed …`: data-parallel training over
//! MPI (nabla-distributed), when this nabla is built with the
//! `distributed` feature.
//!
//! Every rank runs the same command. Each trains on its shard of the data
//! (`--batch-size` examples a batch, so N·B a step) and evaluates its share
//! of the test set; gradients, the epoch's loss and the test counts are
//! summed over the ranks. Rank 0 alone prints and writes the run
//! directory; `--resume` reads the run's config on every rank (the run
//! directory must be visible to all, as on a cluster's shared file system)
//! and rank 0 sends its checkpoint to the others. An error on one rank
//! ends the whole job (`MPI_Abort`), with the rank named.

use std::path::PathBuf;

use anyhow::Result;
use nabla_data::{DataLoader, Dataset};
use nabla_train::Trainer;

use crate::args::TrainArgs;

/// This process's place in a data-parallel run.
#[cfg(feature = "distributed")]
pub struct Ranks {
    comm: nabla_distributed::Comm,
    pub rank: usize,
    pub world: usize,
}

/// Without MPI there are no ranks: `--distributed` is refused at once.
#[cfg(not(feature = "distributed"))]
pub enum Ranks {}

/// `nabla train --distributed`, after the flags are checked.
#[cfg(not(feature = "distributed"))]
pub fn run(_: TrainArgs, _: PathBuf, _: bool) -> Result<i32> {
    Err(crate::common::usage(
        "--distributed: this nabla was built without MPI; build it with \
         `cargo build --release -p nabla-cli --features distributed` (Debian: \
         apt-get install libopenmpi-dev openmpi-bin libclang-dev) and start it with \
         `mpirun -np N nabla train --distributed …`",
    ))
}

#[cfg(not(feature = "distributed"))]
impl Ranks {
    pub fn is_main(&self) -> bool {
        match *self {}
    }
    pub fn shard<D: Dataset>(&self, _: DataLoader<D>, _: bool) -> DataLoader<D> {
        match *self {}
    }
    pub fn sync<'m>(
        &self,
        _: Trainer<'m>,
        _: &'m dyn nabla_nn::Module,
        _: &TrainArgs,
        _: u64,
    ) -> Result<Trainer<'m>> {
        match *self {}
    }
    pub fn resume(
        &self,
        _: &std::path::Path,
    ) -> Result<(Option<nabla_train::RunDir>, nabla_train::Checkpoint)> {
        match *self {}
    }
}

#[cfg(feature = "distributed")]
pub fn run(a: TrainArgs, run_dir: PathBuf, resume: bool) -> Result<i32> {
    let mpi = nabla_distributed::Mpi::init()?;
    let comm = mpi.comm();
    // the machine's cores shared among its ranks, unless told otherwise
    if a.threads.is_none() && std::env::var_os("NABLA_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        nabla_core::set_num_threads((cores / comm.local_size).max(1));
    }
    let ranks = Ranks {
        comm,
        rank: comm.rank,
        world: comm.size,
    };
    nabla_train::set_quiet(comm.rank != 0);
    if comm.rank == 0 {
        nabla_train::say!(
            "distributed: {} ranks × batch {} = {} examples a step, {} thread(s) a rank \
             (the learning rate is used as given)",
            comm.size,
            a.batch_size(),
            comm.size * a.batch_size(),
            nabla_core::num_threads()
        );
    }
    let result = nabla_core::in_pool(|| crate::train::train(a, run_dir, resume, Some(&ranks)));
    match result {
        Ok(code) => {
            drop(mpi); // MPI_Finalize, before the process exits
            Ok(code)
        }
        // one rank's error ends every rank, not just this one
        Err(e) if comm.size > 1 => comm.abort(&format!("rank {}: {e:#}", comm.rank)),
        Err(e) => Err(e),
    }
}

#[cfg(feature = "distributed")]
impl Ranks {
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// This rank's share of `loader`'s data: padded to equal shards for
    /// training, each example once for evaluation.
    pub fn shard<D: Dataset>(&self, loader: DataLoader<D>, training: bool) -> DataLoader<D> {
        loader.shard(self.rank, self.world).pad_shards(training)
    }

    /// `trainer` averaging its gradients over the ranks, after checking
    /// that they run the same settings on the same data.
    pub fn sync<'m>(
        &self,
        trainer: Trainer<'m>,
        model: &'m dyn nabla_nn::Module,
        a: &TrainArgs,
        data: u64,
    ) -> Result<Trainer<'m>> {
        use nabla_distributed::{fingerprint, fingerprint_f32, DistributedDataParallel};
        use nabla_train::callbacks::ConsoleLog;
        // the settings, less what may differ between ranks
        let shared = TrainArgs {
            threads: None,
            ..a.clone()
        };
        let weights = nabla_nn::state_dict::state_dict(model)
            .into_iter()
            .flat_map(|(_, t)| t.to_vec());
        let bucket_bytes = match std::env::var("NABLA_DIST_BUCKET_KIB") {
            Err(_) => nabla_distributed::ddp::DEFAULT_BUCKET_BYTES,
            Ok(v) => match v.trim().parse::<usize>() {
                Ok(k) if k > 0 => k << 10,
                _ => {
                    return Err(crate::common::usage(format!(
                        "NABLA_DIST_BUCKET_KIB={v:?}: expected a positive number of KiB"
                    )))
                }
            },
        };
        let ddp = DistributedDataParallel::with_bucket_bytes(self.comm, model, bucket_bytes)
            .check("settings", fingerprint(&toml::to_string(&shared)?))
            .check("data", data)
            .check("initial weights", fingerprint_f32(weights))
            .verify_parameters(std::env::var_os("NABLA_DIST_VERIFY").is_some());
        let trainer = trainer.sync_with(ddp).without("console");
        Ok(match self.rank {
            0 => trainer.callback(ConsoleLog::new(a.log_interval).lines()),
            _ => trainer,
        })
    }

    /// Rank 0 reopens the run and sends its checkpoint to the others, which
    /// continue from it without a run directory.
    pub fn resume(
        &self,
        run_dir: &std::path::Path,
    ) -> Result<(Option<nabla_train::RunDir>, nabla_train::Checkpoint)> {
        let what = "sending rank 0's checkpoint";
        if self.rank == 0 {
            let (run, checkpoint) = nabla_train::RunDir::resume(run_dir)?;
            self.comm.broadcast_bytes(checkpoint.to_bytes()?, what)?;
            return Ok((Some(run), checkpoint));
        }
        let bytes = self.comm.broadcast_bytes(Vec::new(), what)?;
        let checkpoint = nabla_train::Checkpoint::from_bytes(&bytes, "rank 0's checkpoint")?;
        Ok((None, checkpoint))
    }
}
