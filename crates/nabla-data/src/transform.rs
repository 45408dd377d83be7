//! Image transforms, applied when an example is read: `ToTensor` (bytes to
//! [0, 1]) always, then the augmentations, then `Normalize`.
//!
//! Augmentations draw from the example's own generator (see
//! [`Dataset::get`](crate::Dataset::get)):
//! - `RandomCrop { padding }`: pad by `padding` zeros on each side, cut a
//!   window of the original size at a random offset (torchvision's
//!   `RandomCrop(size, padding)`);
//! - `RandomShift { max }`: move the image by up to `max` pixels in x and y,
//!   filling with zeros;
//! - `RandomRotation { degrees }`: rotate by an angle in ±degrees about the
//!   centre (bilinear, zeros outside).

use nabla_core::Generator;

/// One image transform.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    RandomCrop {
        padding: usize,
    },
    RandomShift {
        max: usize,
    },
    RandomRotation {
        degrees: f32,
    },
    /// `(x − mean)/std` on every channel.
    Normalize {
        mean: f32,
        std: f32,
    },
}

impl Transform {
    /// Whether each output pixel depends only on the same input pixel (and
    /// no randomness): such transforms can be tabulated per byte value.
    pub fn is_per_pixel(&self) -> bool {
        matches!(self, Transform::Normalize { .. })
    }
}

/// Applies `transforms` in order to one `h×w` single-channel image in [0, 1].
pub fn apply(transforms: &[Transform], img: &mut [f32], h: usize, w: usize, rng: &mut Generator) {
    for t in transforms {
        match *t {
            Transform::RandomCrop { padding } => {
                let dy = rng.below(2 * padding + 1) as isize - padding as isize;
                let dx = rng.below(2 * padding + 1) as isize - padding as isize;
                shift(img, h, w, dy, dx);
            }
            Transform::RandomShift { max } => {
                let dy = rng.below(2 * max + 1) as isize - max as isize;
                let dx = rng.below(2 * max + 1) as isize - max as isize;
                shift(img, h, w, dy, dx);
            }
            Transform::RandomRotation { degrees } => {
                let angle = (rng.uniform() * 2.0 - 1.0) * degrees;
                rotate(img, h, w, angle.to_radians());
            }
            Transform::Normalize { mean, std } => {
                img.iter_mut().for_each(|v| *v = (*v - mean) / std)
            }
        }
    }
}

/// Moves the image content by (dy, dx), zeros where nothing lands. A crop
/// of the zero-padded image at offset (p + dy, p + dx) is exactly this.
fn shift(img: &mut [f32], h: usize, w: usize, dy: isize, dx: isize) {
    if dy == 0 && dx == 0 {
        return;
    }
    let src = img.to_vec();
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = (y as isize + dy, x as isize + dx);
            img[y * w + x] = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                src[sy as usize * w + sx as usize]
            } else {
                0.0
            };
        }
    }
}

/// Rotates about the centre by `theta` radians, bilinear, zeros outside.
fn rotate(img: &mut [f32], h: usize, w: usize, theta: f32) {
    let src = img.to_vec();
    let (c, s) = (theta.cos(), theta.sin());
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let at = |y: isize, x: isize| -> f32 {
        if y < 0 || x < 0 || y as usize >= h || x as usize >= w {
            0.0
        } else {
            src[y as usize * w + x as usize]
        }
    };
    for y in 0..h {
        for x in 0..w {
            // source position of the output pixel: inverse rotation
            let (ry, rx) = (y as f32 - cy, x as f32 - cx);
            let sy = c * ry - s * rx + cy;
            let sx = s * ry + c * rx + cx;
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as isize, x0 as isize);
            img[y * w + x] = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_rotations_and_normalize() {
        let mut img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        shift(&mut img, 3, 3, 1, 0); // content moves up one row
        assert_eq!(img, vec![3., 4., 5., 6., 7., 8., 0., 0., 0.]);
        let mut img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        rotate(&mut img, 3, 3, 0.0);
        assert_eq!(img, (0..9).map(|v| v as f32).collect::<Vec<_>>());
        rotate(&mut img, 3, 3, std::f32::consts::PI);
        let want: Vec<f32> = (0..9).rev().map(|v| v as f32).collect();
        img.iter()
            .zip(&want)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-4));
        let mut g = Generator::new(1);
        let mut v = vec![0.5f32; 4];
        apply(
            &[Transform::Normalize {
                mean: 0.5,
                std: 0.25,
            }],
            &mut v,
            2,
            2,
            &mut g,
        );
        assert_eq!(v, vec![0.0; 4]);
        // a crop keeps the image size and only moves content
        let mut img = vec![1.0f32; 28 * 28];
        apply(
            &[Transform::RandomCrop { padding: 4 }],
            &mut img,
            28,
            28,
            &mut g,
        );
        assert!(img.iter().all(|&v| v == 0.0 || v == 1.0));
    }
}
