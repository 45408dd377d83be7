//! Data-parallel training in a program of one's own: the reference LeNet
//! on the shipped digits, each rank on its shard, gradients averaged by
//! `DistributedDataParallel` (what `nabla train --distributed` does).
//!
//!     cargo build --release -p nabla-distributed --features mpi --example ddp_lenet
//!     mpirun -np 2 target/release/examples/ddp_lenet [EPOCHS]
use nabla_data::{DataLoader, ImageDataset, Mnist};
use nabla_distributed::{DistributedDataParallel, Mpi};
use nabla_nn::optim::Sgd;
use nabla_nn::zoo::LeNet;
use nabla_nn::Parameters;
use nabla_train::Trainer;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2);
    let mpi = Mpi::init()?; // once, for the whole program
    let comm = mpi.comm();
    nabla_core::manual_seed(1);
    let mnist = Mnist::locate("mnist", None)?; // the shipped digits
                                               // every rank its shard: 32 examples a batch here, 32·N a step
    let train = DataLoader::new(ImageDataset::mnist_normalized(mnist.train), 32)
        .shard(comm.rank, comm.size);
    let test = DataLoader::new(ImageDataset::mnist_normalized(mnist.test), 100)
        .shuffle(false)
        .shard(comm.rank, comm.size)
        .pad_shards(false); // each test digit once over all ranks
    let model = LeNet::new();
    let sgd = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    let mut trainer = Trainer::new(&model, sgd)
        .epochs(epochs)
        .sync_with(DistributedDataParallel::new(comm, &model));
    if comm.rank != 0 {
        trainer = trainer.without("console"); // rank 0 speaks for all
    }
    trainer.fit(&train, Some(&test))?;
    Ok(())
}
