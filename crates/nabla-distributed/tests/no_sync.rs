//! Accumulated gradients on two ranks: the batches that do not end a step
//! communicate nothing (PyTorch's `no_sync`), and the steps are those of
//! one process with twice the batch.
//!
//! The test binary starts itself under `mpirun -np 2` (a plain `#[test]`
//! cannot be an MPI program: the harness would start MPI in a thread of
//! its own); run by `cargo test -p nabla-distributed --features mpi`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use nabla_data::{DataLoader, ImageDataset, Mnist};
use nabla_distributed::{Comm, DistributedDataParallel, Mpi, SyncStats};
use nabla_nn::optim::Sgd;
use nabla_nn::state_dict::{load_safetensors, save_safetensors, state_dict};
use nabla_nn::zoo::LeNet;
use nabla_nn::Parameters;
use nabla_train::Trainer;

/// Set for the two ranks: the folder the results go to.
const CHILD: &str = "NABLA_NO_SYNC_OUT";
const STEPS: usize = 4;
const ACCUM: usize = 2;

/// LeNet trained `STEPS` steps of `ACCUM` batches of `batch` on the
/// shipped digits; on `comm`'s ranks, each on its shard, with the
/// synchronizer's counters and bucket count.
fn train(batch: usize, comm: Option<Comm>) -> (LeNet, Option<(Arc<SyncStats>, usize)>) {
    nabla_core::manual_seed(1);
    let data = Mnist::shipped().unwrap();
    let mut train = DataLoader::new(ImageDataset::mnist_normalized(data.train), batch);
    if let Some(c) = &comm {
        train = train.shard(c.rank, c.size);
    }
    let model = LeNet::new();
    let sgd = Sgd::new(model.parameters(), 0.01).momentum(0.9);
    let mut trainer = Trainer::new(&model, sgd)
        .max_steps(Some(STEPS))
        .grad_accum(ACCUM)
        .without("console");
    let mut stats = None;
    if let Some(c) = comm {
        let ddp = DistributedDataParallel::new(c, &model);
        stats = Some((ddp.stats(), ddp.num_buckets()));
        trainer = trainer.sync_with(ddp);
    }
    trainer.fit(&train, None).unwrap();
    drop(trainer);
    (model, stats)
}

fn child(out: &Path) {
    let mpi = Mpi::init().unwrap();
    let comm = mpi.comm();
    let (model, stats) = train(16, Some(comm));
    let (stats, buckets) = stats.unwrap();
    if comm.rank == 0 {
        save_safetensors(out.join("two.safetensors"), &state_dict(&model)).unwrap();
        let line = format!(
            "{} {} {buckets}",
            SyncStats::get(&stats.steps),
            SyncStats::get(&stats.allreduces)
        );
        std::fs::write(out.join("stats"), line).unwrap();
    }
}

fn main() {
    if let Some(out) = std::env::var_os(CHILD) {
        return child(Path::new(&out));
    }
    let out = std::env::temp_dir().join(format!("nabla-no-sync-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env(CHILD, &out)
        .env("NABLA_NUM_THREADS", "1")
        .args([
            "--oversubscribe",
            "-x",
            CHILD,
            "-x",
            "NABLA_NUM_THREADS",
            "-np",
            "2",
        ])
        .arg(std::env::current_exe().unwrap())
        .status()
        .expect("mpirun runs (Open MPI installed)");
    assert!(status.success(), "the two ranks failed");

    // one sum a step, not one a batch: the accumulating batches sent nothing
    let stats = std::fs::read_to_string(out.join("stats")).unwrap();
    let v: Vec<u64> = stats.split(' ').map(|x| x.parse().unwrap()).collect();
    let (steps, sums, buckets) = (v[0], v[1], v[2]);
    assert_eq!(steps, STEPS as u64, "{stats}");
    assert_eq!(
        sums,
        STEPS as u64 * buckets,
        "{stats}: a sum per bucket per step"
    );

    // the steps of one process of twice the batch, to rounding
    let (one, _) = train(32, None);
    let two = load_safetensors(out.join("two.safetensors")).unwrap();
    for (name, a) in state_dict(&one) {
        let (_, b) = two
            .iter()
            .find(|(n, _)| *n == name)
            .expect("the same names");
        let (a, b) = (a.to_vec(), b.to_vec());
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-6 * scale, "{name}: {diff:e} of {scale}");
    }
    std::fs::remove_dir_all(&out).unwrap();
    println!("no_sync: {STEPS} steps of {ACCUM} batches, {sums} sums; the weights of one process");
}
