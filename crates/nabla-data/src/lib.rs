//! nabla-data: data sets and loading for nabla.
//!
//! - [`idx`]: the IDX format of MNIST-style files (raw or gzip);
//! - [`mnist`]: MNIST and Fashion-MNIST found in a folder, the shipped digits;
//! - [`Dataset`], [`ImageDataset`] with [`Transform`]s, [`DataLoader`];
//! - [`augment`]: augmentation specs, mixup and CutMix;
//! - [`csv`]: numeric tables; [`text`]: character corpora.

pub mod augment;
pub mod bpe;
pub mod csv;
pub mod dataset;
pub mod download;
pub mod error;
pub mod idx;
pub mod image;
pub mod loader;
pub mod mnist;
pub mod text;
pub mod transform;

pub use augment::{Augmentation, BatchMix};
pub use bpe::Bpe;
pub use dataset::{check_input_shape, Dataset};
pub use error::{DataError, Result};
pub use image::ImageDataset;
pub use loader::{Batch, Batches, DataLoader, Shard};
pub use mnist::{ImageSet, Mnist};
pub use text::{CharSequences, TextCorpus};
pub use transform::Transform;

use std::path::Path;

/// Writes `bytes` to `path` atomically (see [`nabla_core::io::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    nabla_core::io::write_atomically(path, bytes).map_err(|e| DataError::io(path, e))
}
