//! Data loading speed (issue: loading 60,000 Fashion-MNIST images into a
//! normalized tensor well under a second; a DataLoader epoch a small
//! fraction of a training epoch).
//!
//!     cargo bench -p nabla-data --bench loading
//!
//! Uses Debian's Fashion-MNIST (`apt-get install dataset-fashion-mnist`),
//! else the shipped digits.

use std::time::Instant;

use nabla_data::{DataLoader, ImageDataset, Mnist};

fn main() {
    let (name, dir) = if std::path::Path::new(nabla_data::mnist::DEBIAN_FASHION_MNIST).is_dir() {
        (
            "Fashion-MNIST",
            std::path::PathBuf::from(nabla_data::mnist::DEBIAN_FASHION_MNIST),
        )
    } else {
        ("shipped MNIST digits", Mnist::shipped_dir())
    };
    let mut best = f64::INFINITY;
    let mut n = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let m = Mnist::load(&dir).expect("data");
        let (x, _) = m.train.to_tensors(0.2860, 0.3530).expect("tensors");
        best = best.min(t.elapsed().as_secs_f64());
        n = x.shape()[0];
    }
    println!(
        "load_{n}_{}_normalized {:.3} s",
        name.replace(' ', "_"),
        best
    );
    let m = Mnist::load(&dir).expect("data");
    let loader = DataLoader::new(ImageDataset::mnist_normalized(m.train), 64).seed(1);
    let mut best = f64::INFINITY;
    for epoch in 0..3 {
        let t = Instant::now();
        let mut count = 0;
        for b in loader.epoch(epoch) {
            count += b.expect("batch").targets.numel();
        }
        assert_eq!(count, n);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("dataloader_epoch_{n}_batch64 {:.3} s", best);
}
