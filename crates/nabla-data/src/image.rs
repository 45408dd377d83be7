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
    pub transforms: Vec<Transform>,
}

impl ImageDataset {
    /// `ToTensor()` then `transforms` (e.g. augmentations, then Normalize).
    pub fn new(set: ImageSet, transforms: Vec<Transform>) -> ImageDataset {
        ImageDataset {
            set: Arc::new(set),
            transforms,
        }
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
}
