//! nabla-data: data sets and loading for nabla.
//!
//! - [`idx`]: the IDX format of MNIST-style files (raw or gzip);
//! - [`mnist`]: MNIST and Fashion-MNIST found in a folder, the shipped digits;
//! - [`Dataset`], [`ImageDataset`] with [`Transform`]s, [`DataLoader`];
//! - [`csv`]: numeric tables; [`text`]: character corpora.

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

pub use dataset::{check_input_shape, Dataset};
pub use error::{DataError, Result};
pub use image::ImageDataset;
pub use loader::{Batch, Batches, DataLoader};
pub use mnist::{ImageSet, Mnist};
pub use transform::Transform;

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so readers never see a partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}
