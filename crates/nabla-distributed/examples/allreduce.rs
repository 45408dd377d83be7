//! Allreduce time against message size, for the scaling model of
//! docs/distributed.md: `Comm::start_sum_f32` and its wait, as a gradient
//! bucket uses them, timed over many repetitions per size.
//!
//!     cargo build --release -p nabla-distributed --features mpi --example allreduce
//!     mpirun -np 2 target/release/examples/allreduce [MiB]
//!
//! MiB (64 by default) is how much each size sends in all, at least 3
//! repetitions: a slow network wants less.
use std::time::Instant;

use nabla_distributed::Mpi;

fn main() -> nabla_train::Result<()> {
    let budget: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .map_err(|e| nabla_train::TrainError::Config(format!("MiB: {e}")))?
        .unwrap_or(64);
    let mpi = Mpi::init()?;
    let comm = mpi.comm();
    if comm.rank == 0 {
        println!("bytes,microseconds,GB/s (algorithm bandwidth: bytes / time)");
    }
    for shift in (10..=24).step_by(2) {
        let bytes = 1usize << shift;
        let n = bytes / 4;
        let send = vec![1.0f32; n];
        let mut recv = vec![0.0f32; n];
        let reps = ((budget << 20) / bytes).max(3);
        let mut best = f64::INFINITY;
        for round in 0..3 {
            let start = Instant::now();
            for _ in 0..reps {
                // SAFETY: both buffers stay as they are until the wait.
                let mut p = unsafe { comm.start_sum_f32(&send, &mut recv, "timing")? };
                comm.wait(&mut p, "timing")?;
            }
            let each = start.elapsed().as_secs_f64() / reps as f64;
            if round > 0 {
                best = best.min(each); // (the first round warms up)
            }
        }
        assert_eq!(recv[0], comm.size as f32);
        if comm.rank == 0 {
            println!("{bytes},{:.1},{:.2}", best * 1e6, bytes as f64 / best / 1e9);
        }
    }
    Ok(())
}
