//! MNIST and Fashion-MNIST: four IDX files, found in the common layouts.
//!
//! Looked for, in order, under a root folder: the files directly
//! (`ROOT/train-images-idx3-ubyte[.gz]`), torchvision's
//! `ROOT/MNIST/raw/…` and `ROOT/FashionMNIST/raw/…`.

use std::path::{Path, PathBuf};

use nabla_core::Tensor;

use crate::error::{DataError, Result};
use crate::idx::{decode_idx, read_idx, IdxArray};

/// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Labelled grayscale images, as bytes.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// `len × height × width` pixels, row-major.
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A class-balanced subset for studying scarce data: `fraction` of
    /// each class's examples (rounded, at least one), picked by a shuffle
    /// seeded with `seed`, kept in their original order.
    pub fn balanced_subset(&self, fraction: f32, seed: u64) -> ImageSet {
        let hw = self.height * self.width;
        let mut keep = Vec::new();
        for class in 0..self.classes {
            let mut members: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] as usize == class)
                .collect();
            if members.is_empty() {
                continue;
            }
            let n =
                ((members.len() as f64 * fraction as f64).round() as usize).clamp(1, members.len());
            nabla_core::Generator::new(seed ^ (class as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .shuffle(&mut members);
            keep.extend_from_slice(&members[..n]);
        }
        keep.sort_unstable();
        ImageSet {
            images: keep
                .iter()
                .flat_map(|&i| &self.images[i * hw..(i + 1) * hw])
                .copied()
                .collect(),
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
            classes: self.classes,
        }
    }

    /// Images as `[N, 1, H, W]` in [0, 1] normalized by `(x − mean) / std`
    /// (ToTensor then Normalize), and labels as `[N]` class indices.
    pub fn to_tensors(&self, mean: f32, std: f32) -> Result<(Tensor, Tensor)> {
        let (inv, shift) = (1.0 / (255.0 * std), mean / std);
        let x: Vec<f32> = self
            .images
            .iter()
            .map(|&b| b as f32 * inv - shift)
            .collect();
        let x = Tensor::from_vec(x, [self.len(), 1, self.height, self.width])?;
        let y = Tensor::from_vec(
            self.labels.iter().map(|&l| l as f32).collect(),
            [self.len()],
        )?;
        Ok((x, y))
    }
}

/// The training and test splits of an MNIST-style data set.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: ImageSet,
    pub test: ImageSet,
}

fn find(root: &Path, name: &str) -> Option<PathBuf> {
    let dirs = [
        root.to_path_buf(),
        root.join("MNIST/raw"),
        root.join("FashionMNIST/raw"),
    ];
    for dir in &dirs {
        for file in [name.to_string(), format!("{name}.gz")] {
            let p = dir.join(file);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn load_split(root: &Path, prefix: &str) -> Result<ImageSet> {
    let missing = |name: &str| {
        DataError::invalid(
            root,
            format!("{name}[.gz] not found (looked in the folder itself, MNIST/raw and FashionMNIST/raw)"),
        )
    };
    let img_name = format!("{prefix}-images-idx3-ubyte");
    let lbl_name = format!("{prefix}-labels-idx1-ubyte");
    let img_path = find(root, &img_name).ok_or_else(|| missing(&img_name))?;
    let lbl_path = find(root, &lbl_name).ok_or_else(|| missing(&lbl_name))?;
    image_set(
        read_idx(&img_path)?,
        &img_path,
        read_idx(&lbl_path)?,
        &lbl_path,
    )
}

/// Images and labels read from their files (named in errors), checked
/// against each other.
fn image_set(
    images: IdxArray,
    img_path: &Path,
    labels: IdxArray,
    lbl_path: &Path,
) -> Result<ImageSet> {
    if images.dims.len() != 3 {
        return Err(DataError::invalid(
            img_path,
            format!(
                "expected images [N, H, W], found dimensions {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(DataError::invalid(
            lbl_path,
            format!("expected labels [N], found dimensions {:?}", labels.dims),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::invalid(
            lbl_path,
            format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                img_path.display()
            ),
        ));
    }
    if let Some((i, l)) = labels.data.iter().enumerate().find(|(_, &l)| l >= 10) {
        return Err(DataError::invalid(
            lbl_path,
            format!("label {l} of item {i} is out of range 0..10"),
        ));
    }
    Ok(ImageSet {
        images: images.data,
        labels: labels.data,
        height: images.dims[1],
        width: images.dims[2],
        classes: 10,
    })
}

/// The shipped digits' four files: train images and labels, test images and labels.
const SHIPPED: [&[u8]; 4] = [
    include_bytes!("../../../data/mnist/train-images-idx3-ubyte.gz"),
    include_bytes!("../../../data/mnist/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../../data/mnist/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../../data/mnist/t10k-labels-idx1-ubyte.gz"),
];

impl Mnist {
    /// Loads `train-*` and `t10k-*` from `root` (see the module docs for layouts).
    pub fn load(root: impl AsRef<Path>) -> Result<Mnist> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(DataError::invalid(root, "data folder not found"));
        }
        Ok(Mnist {
            train: load_split(root, "train")?,
            test: load_split(root, "t10k")?,
        })
    }

    /// Finds a data set by name, `mnist` or `fashion-mnist`: in `data` when
    /// given (any layout [`load`](Self::load) knows), else MNIST from the
    /// shipped digits and Fashion-MNIST from Debian's package when installed.
    pub fn locate(name: &str, data: Option<&Path>) -> Result<Mnist> {
        match (name, data) {
            ("mnist" | "fashion-mnist", Some(dir)) => Mnist::load(dir),
            ("mnist", None) => Mnist::shipped(),
            ("fashion-mnist", None) if Path::new(DEBIAN_FASHION_MNIST).is_dir() => {
                Mnist::load(DEBIAN_FASHION_MNIST)
            }
            ("fashion-mnist", None) => Err(DataError::invalid(
                DEBIAN_FASHION_MNIST,
                "Fashion-MNIST not found: give its folder, or install Debian's package \
                 (apt-get install dataset-fashion-mnist)",
            )),
            (other, _) => Err(DataError::invalid(
                other,
                "unknown data set (expected mnist or fashion-mnist)",
            )),
        }
    }

    /// The 10,000 real digits shipped in the repository's `data/mnist`
    /// (7,996 to train on, 2,004 to test), compiled into the library (1.6 MB
    /// of gzip), so a program finds them wherever it was installed.
    pub fn shipped() -> Result<Mnist> {
        let split = |images: &[u8], labels: &[u8], prefix: &str| -> Result<ImageSet> {
            let name = |kind: &str| PathBuf::from(format!("(shipped) {prefix}-{kind}-ubyte.gz"));
            let decode = |bytes: &[u8], path: &Path| {
                decode_idx(bytes).map_err(|msg| DataError::invalid(path, msg))
            };
            let (img_path, lbl_path) = (name("images-idx3"), name("labels-idx1"));
            image_set(
                decode(images, &img_path)?,
                &img_path,
                decode(labels, &lbl_path)?,
                &lbl_path,
            )
        };
        Ok(Mnist {
            train: split(SHIPPED[0], SHIPPED[1], "train")?,
            test: split(SHIPPED[2], SHIPPED[3], "t10k")?,
        })
    }

    /// Where the shipped digits lie in the source tree (`data/mnist`).
    pub fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::write_idx;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nabla-mnist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_the_shipped_digits() {
        let m = Mnist::shipped().unwrap();
        let on_disk = Mnist::load(Mnist::shipped_dir()).unwrap();
        assert_eq!(m.train.images, on_disk.train.images);
        assert_eq!(m.test.labels, on_disk.test.labels);
        assert_eq!((m.train.len(), m.test.len()), (7996, 2004));
        assert_eq!((m.train.height, m.train.width), (28, 28));
        let (x, y) = m.test.to_tensors(0.1307, 0.3081).unwrap();
        assert_eq!(x.shape(), &[2004, 1, 28, 28]);
        assert_eq!(y.to_vec()[0], 0.0);
    }

    #[test]
    fn truncated_gzip_is_rejected() {
        let root = tmpdir("gz");
        let full = std::fs::read(Mnist::shipped_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let cut = root.join("cut.gz");
        std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
        let e = crate::idx::read_idx(&cut).unwrap_err().to_string();
        assert!(e.contains("corrupt or truncated gzip data"), "{e}");
        assert!(Mnist::locate("cifar", None)
            .unwrap_err()
            .to_string()
            .contains("unknown data set"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_torchvision_layout_and_reports_problems() {
        let root = tmpdir("layout");
        let raw = root.join("MNIST/raw");
        std::fs::create_dir_all(&raw).unwrap();
        for p in ["train", "t10k"] {
            write_idx(
                raw.join(format!("{p}-images-idx3-ubyte")),
                &[2, 2, 2],
                &[0; 8],
            )
            .unwrap();
            write_idx(raw.join(format!("{p}-labels-idx1-ubyte")), &[2], &[1, 9]).unwrap();
        }
        assert_eq!(Mnist::load(&root).unwrap().train.len(), 2);

        write_idx(raw.join("t10k-labels-idx1-ubyte"), &[3], &[1, 2, 3]).unwrap();
        let e = Mnist::load(&root).unwrap_err().to_string();
        assert!(e.contains("3 labels for 2 images"), "{e}");

        write_idx(raw.join("t10k-labels-idx1-ubyte"), &[2], &[1, 12]).unwrap();
        let e = Mnist::load(&root).unwrap_err().to_string();
        assert!(
            e.ends_with("label 12 of item 1 is out of range 0..10"),
            "{e}"
        );

        std::fs::remove_file(raw.join("t10k-labels-idx1-ubyte")).unwrap();
        let e = Mnist::load(&root).unwrap_err().to_string();
        assert!(e.contains("t10k-labels-idx1-ubyte[.gz] not found"), "{e}");

        let e = Mnist::load(root.join("nope")).unwrap_err().to_string();
        assert!(e.ends_with("nope: data folder not found"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A balanced subset keeps each class's share, picks by seed, and
    /// keeps images with their labels.
    #[test]
    fn balanced_subsets() {
        let labels: Vec<u8> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let set = ImageSet {
            images: (0..100).map(|i| i as u8).collect(),
            labels,
            height: 1,
            width: 1,
            classes: 2,
        };
        let s = set.balanced_subset(0.1, 7);
        assert_eq!(s.labels.iter().filter(|&&l| l == 0).count(), 8);
        assert_eq!(s.labels.iter().filter(|&&l| l == 1).count(), 2);
        for (img, l) in s.images.iter().zip(&s.labels) {
            assert_eq!(*l, if *img < 80 { 0 } else { 1 });
        }
        assert_eq!(s.images, set.balanced_subset(0.1, 7).images);
        assert_ne!(s.images, set.balanced_subset(0.1, 8).images);
        assert_eq!(
            set.balanced_subset(0.001, 1).len(),
            2,
            "at least one per class"
        );
        assert_eq!(set.balanced_subset(1.0, 1).images, set.images);
    }
}
