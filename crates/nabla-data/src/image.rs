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
}
