//! [`ImageDataset`]: an [`ImageSet`] (grayscale images and labels as bytes)
//! read through transforms, as torchvision's MNIST with `transform=`.

use std::sync::Arc;

use nabla_core::Generator;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::mnist::ImageSet;
use crate::transform::{apply, Transform};

#[derive(Clone)]
pub struct ImageDataset {
    pub set: Arc<ImageSet>,
    transforms: Vec<Transform>,
    /// What each byte value becomes, when every transform works pixel by
    /// pixel (Normalize): a lookup instead of the arithmetic, same floats.
    table: Option<Arc<[f32; 256]>>,
}

impl ImageDataset {
    /// `ToTensor()` then `transforms` (e.g. augmentations, then Normalize).
    pub fn new(set: ImageSet, transforms: Vec<Transform>) -> ImageDataset {
        let table = transforms.iter().all(Transform::is_per_pixel).then(|| {
            let mut table = [0f32; 256];
            for (b, v) in table.iter_mut().enumerate() {
                let mut px = [b as f32 * (1.0 / 255.0)];
                // per-pixel transforms draw nothing from the generator
                apply(&transforms, &mut px, 1, 1, &mut Generator::new(0));
                *v = px[0];
            }
            Arc::new(table)
        });
        ImageDataset {
            set: Arc::new(set),
            transforms,
            table,
        }
    }

    pub fn transforms(&self) -> &[Transform] {
        &self.transforms
    }

    /// The reference program's pipeline: ToTensor, Normalize((0.1307,), (0.3081,)).
    pub fn mnist_normalized(set: ImageSet) -> ImageDataset {
        ImageDataset::new(
            set,
            vec![Transform::Normalize {
                mean: 0.1307,
                std: 0.3081,
            }],
        )
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![1, self.set.height, self.set.width]
    }

    fn get(
        &self,
        index: usize,
        input: &mut [f32],
        target: &mut [f32],
        rng: &mut Generator,
    ) -> Result<()> {
        let hw = self.set.height * self.set.width;
        let px = &self.set.images[index * hw..(index + 1) * hw];
        if let Some(table) = &self.table {
            for (o, &b) in input.iter_mut().zip(px) {
                *o = table[b as usize];
            }
            target[0] = self.set.labels[index] as f32;
            return Ok(());
        }
        for (o, &b) in input.iter_mut().zip(px) {
            *o = b as f32 * (1.0 / 255.0);
        }
        apply(
            &self.transforms,
            input,
            self.set.height,
            self.set.width,
            rng,
        );
        target[0] = self.set.labels[index] as f32;
        Ok(())
    }

    fn classes(&self) -> Option<usize> {
        Some(self.set.classes)
    }

    fn prefetch(&self, index: usize) {
        // 60,000 images are 47 MB, more than the cache: a shuffled batch
        // misses on each image's 13 lines of 64 bytes
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let hw = self.set.height * self.set.width;
            if let Some(px) = self.set.images.get(index * hw..(index + 1) * hw) {
                for line in px.chunks(64) {
                    // SAFETY: a prefetch only hints the cache; the address
                    // is inside the image
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::check_input_shape;
    use crate::Mnist;

    #[test]
    fn images_of_the_wrong_size_for_the_model_are_refused() {
        let m = Mnist::load(Mnist::shipped_dir()).unwrap();
        let ds = ImageDataset::mnist_normalized(m.test);
        check_input_shape(&ds, &[1, 28, 28], "data/mnist").unwrap();
        let e = check_input_shape(&ds, &[3, 32, 32], "data/mnist")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data/mnist: inputs are [1, 28, 28] but the model expects [3, 32, 32]"
        );
        // the normalized values match the reference transform
        let (mut x, mut y) = (vec![0f32; 784], [0f32]);
        ds.get(0, &mut x, &mut y, &mut Generator::new(0)).unwrap();
        assert!((x[0] - (0.0 - 0.1307) / 0.3081).abs() < 1e-6);
    }

    #[test]
    fn the_lookup_table_gives_the_computed_values_bit_for_bit() {
        let set = Mnist::load(Mnist::shipped_dir()).unwrap().test;
        let norm = Transform::Normalize {
            mean: 0.2860,
            std: 0.3530,
        };
        let ds = ImageDataset::new(set.clone(), vec![norm.clone(), norm]);
        assert!(ds.table.is_some());
        let mut computed = ds.clone();
        computed.table = None;
        for i in [0, 1, ds.len() - 1] {
            let (mut a, mut b) = (vec![0f32; 784], vec![0f32; 784]);
            let (mut ya, mut yb) = ([0f32], [0f32]);
            ds.get(i, &mut a, &mut ya, &mut Generator::new(0)).unwrap();
            computed
                .get(i, &mut b, &mut yb, &mut Generator::new(0))
                .unwrap();
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
            assert_eq!(ya, yb);
        }
        // a transform that moves pixels has no table
        let shifted = ImageDataset::new(set, vec![Transform::RandomShift { max: 1 }]);
        assert!(shifted.table.is_none());
    }
}
