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
    /// Mirrors left–right with probability `p` (torchvision's
    /// `RandomHorizontalFlip`; wrong for digits, right for clothes).
    RandomHorizontalFlip {
        p: f32,
    },
    /// With probability `p`, sets a rectangle to 0 (torchvision's
    /// `RandomErasing`, "cutout"): its area a fraction in [0.02, 0.33] of
    /// the image's, its aspect ratio in [0.3, 3.3] (log-uniform), its place
    /// uniform; redrawn up to 10 times until it fits, else no erasing.
    RandomErasing {
        p: f32,
    },
    /// Elastic distortion (Simard, Steinkraus & Platt 2003, the classic
    /// for MNIST): a smooth random displacement field, varying over about
    /// `sigma` pixels, as strong as Simard's uniform noise blurred by a
    /// Gaussian of std `sigma` and scaled by `alpha`, moves every pixel
    /// (bilinear, zeros outside).
    ElasticDistortion {
        alpha: f32,
        sigma: f32,
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
            Transform::RandomHorizontalFlip { p } => {
                if rng.uniform() < p {
                    img.chunks_mut(w).for_each(|row| row.reverse());
                }
            }
            Transform::RandomErasing { p } => {
                if rng.uniform() < p {
                    erase(img, h, w, rng);
                }
            }
            Transform::ElasticDistortion { alpha, sigma } => elastic(img, h, w, alpha, sigma, rng),
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

/// An `h×w` image with a border of zeros (one row and column before, two
/// after), so that bilinear sampling needs no bounds checks: a position is
/// clamped into the border, where every tap it reads is 0.
struct Padded {
    data: Vec<f32>,
    h: usize,
    w: usize,
}

impl Padded {
    fn new(src: &[f32], h: usize, w: usize) -> Padded {
        let pw = w + 3;
        let mut data = vec![0f32; (h + 3) * pw];
        for (y, row) in src.chunks(w).enumerate() {
            data[(y + 1) * pw + 1..(y + 1) * pw + 1 + w].copy_from_slice(row);
        }
        Padded { data, h, w }
    }

    /// The image at the real position (y, x): bilinear between the four
    /// pixels around it, zeros outside.
    #[inline(always)]
    fn sample(&self, y: f32, x: f32) -> f32 {
        // outside [−1, h] the clamped position lands on the border with a
        // weight of 0 on the inside (a NaN position reads the border too)
        let y = y.max(-1.0).min(self.h as f32) + 1.0;
        let x = x.max(-1.0).min(self.w as f32) + 1.0;
        let (y0, x0) = (y as usize, x as usize); // y, x ≥ 0: truncation is floor
        let (fy, fx) = (y - y0 as f32, x - x0 as f32);
        let pw = self.w + 3;
        let (a, b) = (self.data[y0 * pw + x0], self.data[y0 * pw + x0 + 1]);
        let (c, d) = (
            self.data[(y0 + 1) * pw + x0],
            self.data[(y0 + 1) * pw + x0 + 1],
        );
        (1.0 - fy) * ((1.0 - fx) * a + fx * b) + fy * ((1.0 - fx) * c + fx * d)
    }
}

/// Rotates about the centre by `theta` radians, bilinear, zeros outside.
fn rotate(img: &mut [f32], h: usize, w: usize, theta: f32) {
    let src = Padded::new(img, h, w);
    let (c, s) = (theta.cos(), theta.sin());
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    for y in 0..h {
        for x in 0..w {
            // source position of the output pixel: inverse rotation
            let (ry, rx) = (y as f32 - cy, x as f32 - cx);
            let sy = c * ry - s * rx + cy;
            let sx = s * ry + c * rx + cx;
            img[y * w + x] = src.sample(sy, sx);
        }
    }
}

/// Zeros a random rectangle ([`Transform::RandomErasing`]).
fn erase(img: &mut [f32], h: usize, w: usize, rng: &mut Generator) {
    let area = (h * w) as f32;
    for _ in 0..10 {
        let target = area * (0.02 + rng.uniform() * (0.33 - 0.02));
        let (lo, hi) = (0.3f32.ln(), (1.0f32 / 0.3).ln());
        let ratio = (lo + rng.uniform() * (hi - lo)).exp();
        let eh = (target * ratio).sqrt().round() as usize;
        let ew = (target / ratio).sqrt().round() as usize;
        if eh == 0 || ew == 0 || eh >= h || ew >= w {
            continue;
        }
        let (y0, x0) = (rng.below(h - eh + 1), rng.below(w - ew + 1));
        for row in img.chunks_mut(w).skip(y0).take(eh) {
            row[x0..x0 + ew].fill(0.0);
        }
        return;
    }
}

/// Elastic distortion ([`Transform::ElasticDistortion`]).
///
/// Simard's field is uniform noise in [−1, 1] blurred by a Gaussian of std
/// σ and scaled by α: a smooth random field whose values have std
/// `α·(1/√3)/(2√π·σ)` and which varies over about σ pixels. Blurring every
/// pixel's noise cost ~90 µs an image, most of an epoch at 2 threads; the
/// same kind of field is drawn here as independent uniform values on a
/// grid of spacing σ, with that std, interpolated bilinearly.
fn elastic(img: &mut [f32], h: usize, w: usize, alpha: f32, sigma: f32, rng: &mut Generator) {
    let sigma = sigma.max(0.5);
    let std = alpha * (1.0 / 3f32.sqrt()) / (2.0 * std::f32::consts::PI.sqrt() * sigma);
    let (gh, gw) = (
        (h as f32 / sigma).ceil() as usize + 2,
        (w as f32 / sigma).ceil() as usize + 2,
    );
    // uniform values of that std (as Simard's noise; a normal draw costs
    // several times more, and the field is a sum of many of them anyway)
    let half_width = std * 3f32.sqrt();
    let grid = |rng: &mut Generator| -> Vec<f32> {
        (0..gh * gw)
            .map(|_| (rng.uniform() * 2.0 - 1.0) * half_width)
            .collect()
    };
    // the grid interpolated to every pixel, along x then along y (every
    // position lies inside the grid: it is two points larger than needed)
    let cols: Vec<(usize, f32)> = (0..w)
        .map(|x| {
            let p = x as f32 / sigma;
            (p as usize, p.fract())
        })
        .collect();
    let upsample = |g: &[f32]| -> Vec<f32> {
        let mut rows = vec![0f32; gh * w];
        for (r, out) in rows.chunks_mut(w).enumerate() {
            let row = &g[r * gw..(r + 1) * gw];
            for (o, &(i, f)) in out.iter_mut().zip(&cols) {
                *o = (1.0 - f) * row[i] + f * row[i + 1];
            }
        }
        let mut field = vec![0f32; h * w];
        for (y, out) in field.chunks_mut(w).enumerate() {
            let p = y as f32 / sigma;
            let (i, f) = (p as usize, p.fract());
            let (r0, r1) = (&rows[i * w..(i + 1) * w], &rows[(i + 1) * w..(i + 2) * w]);
            for ((o, a), b) in out.iter_mut().zip(r0).zip(r1) {
                *o = (1.0 - f) * a + f * b;
            }
        }
        field
    };
    let (dy, dx) = (upsample(&grid(rng)), upsample(&grid(rng)));
    let src = Padded::new(img, h, w);
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            img[k] = src.sample(y as f32 + dy[k], x as f32 + dx[k]);
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

    /// A flip mirrors every row exactly; p = 0 never flips, p = 1 always.
    #[test]
    fn flips_are_exact() {
        let mut g = Generator::new(2);
        let mut img: Vec<f32> = (0..6).map(|v| v as f32).collect();
        apply(
            &[Transform::RandomHorizontalFlip { p: 1.0 }],
            &mut img,
            2,
            3,
            &mut g,
        );
        assert_eq!(img, vec![2., 1., 0., 5., 4., 3.]);
        apply(
            &[Transform::RandomHorizontalFlip { p: 0.0 }],
            &mut img,
            2,
            3,
            &mut g,
        );
        assert_eq!(img, vec![2., 1., 0., 5., 4., 3.]);
    }

    /// A quarter turn moves pixels exactly where they belong (to float
    /// rounding of cos and sin).
    #[test]
    fn a_quarter_turn_is_exact() {
        let mut img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        rotate(&mut img, 3, 3, std::f32::consts::FRAC_PI_2);
        // output (y, x) reads source (−rx, ry) about the centre: with rows
        // running down, a clockwise quarter turn on the screen
        let want = [6., 3., 0., 7., 4., 1., 8., 5., 2.];
        for (a, b) in img.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{img:?}");
        }
    }

    /// Erasing zeros one rectangle of 2–33% of the image and nothing else.
    #[test]
    fn erasing_zeros_one_rectangle() {
        let (h, w) = (28, 28);
        for seed in 0..50 {
            let mut img = vec![1.0f32; h * w];
            let mut g = Generator::new(seed);
            apply(
                &[Transform::RandomErasing { p: 1.0 }],
                &mut img,
                h,
                w,
                &mut g,
            );
            let zeros: Vec<(usize, usize)> = (0..h * w)
                .filter(|&k| img[k] == 0.0)
                .map(|k| (k / w, k % w))
                .collect();
            let (y0, y1) = (
                zeros.iter().map(|z| z.0).min().unwrap(),
                zeros.iter().map(|z| z.0).max().unwrap(),
            );
            let (x0, x1) = (
                zeros.iter().map(|z| z.1).min().unwrap(),
                zeros.iter().map(|z| z.1).max().unwrap(),
            );
            assert_eq!(zeros.len(), (y1 - y0 + 1) * (x1 - x0 + 1), "a rectangle");
            let frac = zeros.len() as f32 / (h * w) as f32;
            assert!((0.015..=0.35).contains(&frac), "{frac}");
        }
    }

    /// Without displacement (alpha 0) the elastic distortion is the
    /// identity; with it, the image changes but keeps its values' range and
    /// most of its mass; the same generator state gives the same image.
    #[test]
    fn elastic_distortion() {
        let img: Vec<f32> = (0..28 * 28)
            .map(|k| ((k % 28 > 8 && k % 28 < 20) as u8) as f32)
            .collect();
        let mut same = img.clone();
        elastic(&mut same, 28, 28, 0.0, 4.0, &mut Generator::new(1));
        assert_eq!(same, img);
        let (mut a, mut b) = (img.clone(), img.clone());
        elastic(&mut a, 28, 28, 34.0, 4.0, &mut Generator::new(7));
        elastic(&mut b, 28, 28, 34.0, 4.0, &mut Generator::new(7));
        assert_eq!(a, b);
        assert_ne!(a, img);
        assert!(a.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
        let (ma, mi) = (a.iter().sum::<f32>(), img.iter().sum::<f32>());
        assert!((ma / mi - 1.0).abs() < 0.25, "{ma} vs {mi}");
    }
}
