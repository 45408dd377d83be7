//! Augmentation as one spec string (`nabla train --augment`), and the
//! batch-level mixes, mixup and CutMix.
//!
//! Spec: comma-separated items, each `name` or `name:value[:value]`:
//!
//! | item | transform |
//! |---|---|
//! | `crop:P` | random crop of the image zero-padded by P pixels |
//! | `shift:N` | random shift by up to N pixels each way |
//! | `rotate:D` | random rotation within ±D degrees |
//! | `flip` or `flip:P` | horizontal flip with probability P (0.5) |
//! | `erase` or `erase:P` | random erasing (cutout) with probability P (0.5) |
//! | `elastic` or `elastic:A:S` | elastic distortion, alpha A (34), sigma S (4) |
//! | `mixup` or `mixup:A` | mixup of the batch, λ ~ Beta(A, A) (A = 0.2) |
//! | `cutmix` or `cutmix:A` | CutMix of the batch, λ ~ Beta(A, A) (A = 1) |
//!
//! Per-image transforms run in the given order, before normalization;
//! mixup and CutMix (at most one) act on each batch, with soft targets.

use nabla_core::{Generator, Result as CoreResult, Tensor};

use crate::error::{DataError, Result};
use crate::transform::Transform;

/// A batch-level mix: each example is blended with another of the batch
/// (a seeded permutation), its target becoming `λ·y + (1 − λ)·y'`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchMix {
    /// `x = λ·x + (1 − λ)·x'` (Zhang et al. 2018).
    Mixup { alpha: f32 },
    /// A random box of `x'` pasted into `x`; λ is the part of `x` left
    /// (Yun et al. 2019).
    CutMix { alpha: f32 },
}

/// What a spec asks for: per-image transforms and an optional batch mix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augmentation {
    pub transforms: Vec<Transform>,
    pub mix: Option<BatchMix>,
}

fn bad(spec: &str, msg: String) -> DataError {
    DataError::Invalid {
        path: format!("augmentation {spec:?}"),
        msg,
    }
}

impl Augmentation {
    /// Parses a spec (see the module's table); an empty spec is no
    /// augmentation.
    pub fn parse(spec: &str) -> Result<Augmentation> {
        let mut aug = Augmentation::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut parts = item.split(':');
            let name = parts.next().unwrap_or_default();
            let values: Vec<f32> = parts
                .map(|v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| bad(spec, format!("{item}: {v:?} is not a number >= 0")))
                })
                .collect::<Result<_>>()?;
            let arg = |i: usize, default: Option<f32>| -> Result<f32> {
                values.get(i).copied().or(default).ok_or_else(|| {
                    bad(
                        spec,
                        format!("{item}: {name} needs a value, as in {name}:2"),
                    )
                })
            };
            let max_args = match name {
                "elastic" => 2,
                _ => 1,
            };
            if values.len() > max_args {
                return Err(bad(spec, format!("{item}: too many values")));
            }
            let prob = |p: f32| -> Result<f32> {
                match p <= 1.0 {
                    true => Ok(p),
                    false => Err(bad(
                        spec,
                        format!("{item}: a probability must be in [0, 1]"),
                    )),
                }
            };
            let whole = |v: f32| -> Result<usize> {
                match v.fract() == 0.0 {
                    true => Ok(v as usize),
                    false => Err(bad(spec, format!("{item}: pixels must be a whole number"))),
                }
            };
            let t = match name {
                "crop" => Transform::RandomCrop {
                    padding: whole(arg(0, None)?)?,
                },
                "shift" => Transform::RandomShift {
                    max: whole(arg(0, None)?)?,
                },
                "rotate" => Transform::RandomRotation {
                    degrees: arg(0, None)?,
                },
                "flip" => Transform::RandomHorizontalFlip {
                    p: prob(arg(0, Some(0.5))?)?,
                },
                "erase" => Transform::RandomErasing {
                    p: prob(arg(0, Some(0.5))?)?,
                },
                "elastic" => Transform::ElasticDistortion {
                    alpha: arg(0, Some(34.0))?,
                    sigma: arg(1, Some(4.0))?,
                },
                "mixup" | "cutmix" => {
                    let alpha = arg(0, Some(if name == "mixup" { 0.2 } else { 1.0 }))?;
                    if alpha <= 0.0 {
                        return Err(bad(spec, format!("{item}: alpha must be > 0")));
                    }
                    if aug.mix.is_some() {
                        return Err(bad(spec, "mixup and cutmix: one batch mix at most".into()));
                    }
                    aug.mix = Some(match name {
                        "mixup" => BatchMix::Mixup { alpha },
                        _ => BatchMix::CutMix { alpha },
                    });
                    continue;
                }
                _ => {
                    return Err(bad(
                        spec,
                        format!(
                            "unknown item {item:?}: use crop:P, shift:N, rotate:D, flip[:P], erase[:P], elastic[:A:S], mixup[:A] or cutmix[:A]"
                        ),
                    ))
                }
            };
            aug.transforms.push(t);
        }
        Ok(aug)
    }
}

/// Gamma(a, 1) by Marsaglia and Tsang (a < 1 through a + 1 and U^(1/a)).
fn gamma(a: f32, rng: &mut Generator) -> f32 {
    if a < 1.0 {
        let u = rng.uniform().max(f32::MIN_POSITIVE);
        return gamma(a + 1.0, rng) * u.powf(1.0 / a);
    }
    let d = a - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.uniform().max(f32::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// λ ~ Beta(a, a).
pub fn beta(a: f32, rng: &mut Generator) -> f32 {
    let (x, y) = (gamma(a, rng), gamma(a, rng));
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

/// Mixes a batch: `inputs [N, C, H, W]`, class `targets [N]` of `classes`
/// classes, into mixed inputs and soft targets `[N, classes]` (rows sum to
/// 1). `rng` should come from (seed, epoch, step), so a resumed run mixes
/// alike.
pub fn mix_batch(
    mix: BatchMix,
    inputs: &Tensor,
    targets: &Tensor,
    classes: usize,
    rng: &mut Generator,
) -> CoreResult<(Tensor, Tensor)> {
    let n = targets.numel();
    let mut perm: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut perm);
    let labels = targets.to_vec();
    let one_hot = |k: usize| -> Vec<f32> {
        let mut row = vec![0f32; classes];
        row[labels[k] as usize] = 1.0;
        row
    };
    let (alpha, cut) = match mix {
        BatchMix::Mixup { alpha } => (alpha, false),
        BatchMix::CutMix { alpha } => (alpha, true),
    };
    let mut lambda = beta(alpha, rng);
    let shape = inputs.shape().to_vec();
    let x = inputs.to_vec();
    let per = x.len() / n.max(1);
    let mut out = x.clone();
    if cut {
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        // a box of (1 − λ) of the area, centred anywhere, clipped
        let r = (1.0 - lambda).sqrt();
        let (bh, bw) = ((h as f32 * r) as usize, (w as f32 * r) as usize);
        let (cy, cx) = (rng.below(h), rng.below(w));
        let (y0, y1) = (cy.saturating_sub(bh / 2), (cy + bh / 2).min(h));
        let (x0, x1) = (cx.saturating_sub(bw / 2), (cx + bw / 2).min(w));
        for (i, &j) in perm.iter().enumerate() {
            for plane in (0..per / (h * w)).map(|c| c * h * w) {
                for y in y0..y1 {
                    let (dst, src) = (i * per + plane + y * w, j * per + plane + y * w);
                    out[dst + x0..dst + x1].copy_from_slice(&x[src + x0..src + x1]);
                }
            }
        }
        // λ as the part actually kept
        lambda = 1.0 - ((y1 - y0) * (x1 - x0)) as f32 / (h * w) as f32;
    } else {
        for (i, &j) in perm.iter().enumerate() {
            for k in 0..per {
                out[i * per + k] = lambda * x[i * per + k] + (1.0 - lambda) * x[j * per + k];
            }
        }
    }
    let mut soft = Vec::with_capacity(n * classes);
    for (i, &j) in perm.iter().enumerate() {
        let (a, b) = (one_hot(i), one_hot(j));
        soft.extend(
            a.iter()
                .zip(&b)
                .map(|(a, b)| lambda * a + (1.0 - lambda) * b),
        );
    }
    Ok((
        Tensor::from_vec_on(out, shape, inputs.device())?,
        Tensor::from_vec_on(soft, [n, classes], inputs.device())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let a =
            Augmentation::parse("crop:2, rotate:10,flip,erase:0.25,elastic:30:5,mixup").unwrap();
        assert_eq!(
            a.transforms,
            vec![
                Transform::RandomCrop { padding: 2 },
                Transform::RandomRotation { degrees: 10.0 },
                Transform::RandomHorizontalFlip { p: 0.5 },
                Transform::RandomErasing { p: 0.25 },
                Transform::ElasticDistortion {
                    alpha: 30.0,
                    sigma: 5.0
                },
            ]
        );
        assert_eq!(a.mix, Some(BatchMix::Mixup { alpha: 0.2 }));
        assert_eq!(Augmentation::parse("").unwrap(), Augmentation::default());
        for (spec, says) in [
            ("crop", "crop needs a value"),
            ("crop:1.5", "whole number"),
            ("flip:2", "probability"),
            ("rotate:-3", "not a number >= 0"),
            ("zoom:2", "unknown item"),
            ("mixup,cutmix", "one batch mix at most"),
            ("shift:1:2", "too many values"),
            ("mixup:0", "alpha must be > 0"),
        ] {
            let e = Augmentation::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    /// Mixed targets are distributions (rows sum to 1) over the two
    /// labels; mixup's inputs are the same blend; the same generator state
    /// mixes the same way.
    #[test]
    fn mixes_blend_inputs_and_targets_alike() {
        let x = Tensor::from_vec((0..4 * 16).map(|v| v as f32).collect(), [4, 1, 4, 4]).unwrap();
        let y = Tensor::from_vec(vec![0., 1., 2., 1.], [4]).unwrap();
        for mix in [
            BatchMix::Mixup { alpha: 0.4 },
            BatchMix::CutMix { alpha: 1.0 },
        ] {
            let (xm, t) = mix_batch(mix, &x, &y, 3, &mut Generator::new(3)).unwrap();
            let (xm2, t2) = mix_batch(mix, &x, &y, 3, &mut Generator::new(3)).unwrap();
            assert_eq!((xm.to_vec(), t.to_vec()), (xm2.to_vec(), t2.to_vec()));
            assert_eq!(t.shape(), &[4, 3]);
            for row in t.to_vec2().unwrap() {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
            }
            if let BatchMix::CutMix { .. } = mix {
                // every pixel comes from the image itself or its partner
                let (xv, mv) = (x.to_vec(), xm.to_vec());
                assert!(mv.iter().all(|v| xv.contains(v)));
            }
        }
        let mut g = Generator::new(5);
        let l: Vec<f32> = (0..2000).map(|_| beta(0.2, &mut g)).collect();
        assert!(l.iter().all(|v| (0.0..=1.0).contains(v)));
        let mean = l.iter().sum::<f32>() / l.len() as f32;
        assert!((mean - 0.5).abs() < 0.05, "Beta(a, a) has mean 1/2: {mean}");
    }
}
