//! Data loading speed (issue: loading 60,000 Fashion-MNIST images into a
//! normalized tensor well under a second; a DataLoader epoch a small
//! fraction of a training epoch), and each augmentation's cost per image.
//!
//!     cargo bench -p nabla-data --bench loading
//!
//! Uses Debian's Fashion-MNIST (`apt-get install dataset-fashion-mnist`),
//! else the shipped digits.

use std::time::Instant;

use nabla_core::Generator;
use nabla_data::transform::{apply, Transform};
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
    augmentation_costs();
}

/// Microseconds an image for each augmentation on 28×28 images (each with
/// its own generator, as the loader draws them).
fn augmentation_costs() {
    let img: Vec<f32> = (0..784).map(|k| (k % 7) as f32 / 7.0).collect();
    for t in [
        Transform::RandomCrop { padding: 2 },
        Transform::RandomHorizontalFlip { p: 0.5 },
        Transform::RandomErasing { p: 0.5 },
        Transform::RandomRotation { degrees: 10.0 },
        Transform::ElasticDistortion {
            alpha: 34.0,
            sigma: 4.0,
        },
    ] {
        let n = 20_000;
        let start = Instant::now();
        let mut sink = 0f32;
        for i in 0..n {
            let mut x = img.clone();
            apply(
                std::slice::from_ref(&t),
                &mut x,
                28,
                28,
                &mut Generator::new(i),
            );
            sink += x[400];
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("augment {t:?}: {us:.2} us/image (checksum {sink})");
    }
}
