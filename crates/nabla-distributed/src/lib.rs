//! nabla-distributed: data-parallel training over MPI.
//!
//! `mpirun -np N nabla train --distributed …` starts N copies of a run;
//! each trains on its own shard of the data (nabla-data's
//! `DataLoader::shard`, PyTorch's `DistributedSampler`) and
//! `DistributedDataParallel` averages their gradients after every backward
//! pass, so all keep the same weights. In a program of one's own:
//!
//! ```text
//! let mpi = Mpi::init()?;                         // once, in main
//! let comm = mpi.comm();
//! let train = DataLoader::new(data, 32).shard(comm.rank, comm.size);
//! let ddp = DistributedDataParallel::new(comm, &model);
//! let mut trainer = Trainer::new(&model, sgd).sync_with(ddp);
//! if comm.rank != 0 { trainer = trainer.without("console"); }
//! trainer.fit(&train, Some(&test))?;
//! ```
//!
//! `examples/ddp_lenet.rs` is that program in full (`mpirun -np 2
//! target/release/examples/ddp_lenet`).
//!
//! The MPI parts need the `mpi` feature (and an MPI library: Debian's
//! `libopenmpi-dev openmpi-bin libclang-dev`); without it this crate holds
//! only the bucket plan.

pub mod buckets;
#[cfg(feature = "mpi")]
pub mod comm;
#[cfg(feature = "mpi")]
pub mod ddp;

#[cfg(feature = "mpi")]
pub use comm::{Comm, Mpi};
#[cfg(feature = "mpi")]
pub use ddp::{fingerprint, fingerprint_f32, DistributedDataParallel, SyncStats};

/// Whether this build has MPI (the `mpi` feature).
pub const ENABLED: bool = cfg!(feature = "mpi");
