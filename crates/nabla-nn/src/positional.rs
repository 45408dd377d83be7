//! Positional information for attention, which by itself ignores order.
//!
//! - **Learned**: an `Embedding` of positions (GPT's `wpe`), added to the
//!   token embeddings.
//! - **Sinusoidal** ("Attention Is All You Need"): `PE[p, 2i] = sin(p /
//!   10000^(2i/d))`, `PE[p, 2i+1] = cos(p / 10000^(2i/d))`, added; no
//!   parameters.
//! - **Rotary** (RoPE, Su et al. 2021): each query and key vector of a head
//!   (`d` features, halves `x₁ = x[..d/2]`, `x₂ = x[d/2..]`) rotated by its
//!   position, `rope(x, p) = [x₁·cos θ − x₂·sin θ, x₂·cos θ + x₁·sin θ]`
//!   with `θ_i = p / 10000^(2i/d)`; the score `q·k` then depends on the
//!   positions' difference only. Applied inside attention, not added.

use nabla_core::{Device, Error, Result, Tensor};

/// The sinusoidal table `[positions, d]`.
pub fn sinusoidal(positions: usize, d: usize, device: Device) -> Result<Tensor> {
    let mut v = vec![0f32; positions * d];
    for p in 0..positions {
        for i in 0..d {
            let freq = (10000f64).powf(-((i - i % 2) as f64) / d as f64);
            let angle = p as f64 * freq;
            v[p * d + i] = if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Tensor::from_vec_on(v, [positions, d], device)
}

/// The cosines and sines of rotary embeddings for positions `start..start
/// + len` of heads of `d` features, each `[len, d]` (both halves repeated),
/// ready for [`rope`].
pub fn rope_tables(start: usize, len: usize, d: usize, device: Device) -> Result<(Tensor, Tensor)> {
    if !d.is_multiple_of(2) {
        return Err(Error::Arg {
            op: "rope",
            msg: format!("rotary embeddings need an even head size, got {d}"),
        });
    }
    let half = d / 2;
    let (mut cos, mut sin) = (vec![0f32; len * d], vec![0f32; len * d]);
    for r in 0..len {
        for i in 0..half {
            let theta = (start + r) as f64 * (10000f64).powf(-((2 * i) as f64) / d as f64);
            for j in [i, i + half] {
                cos[r * d + j] = theta.cos() as f32;
                sin[r * d + j] = theta.sin() as f32;
            }
        }
    }
    Ok((
        Tensor::from_vec_on(cos, [len, d], device)?,
        Tensor::from_vec_on(sin, [len, d], device)?,
    ))
}

/// `x [.., T, d]` rotated by the tables of [`rope_tables`] (`[T, d]`):
/// `x·cos + rotate_half(x)·sin`, `rotate_half([x₁, x₂]) = [−x₂, x₁]`.
pub fn rope(x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> Result<Tensor> {
    let d = x.shape()[x.rank() - 1];
    let half = d / 2;
    let (x1, x2) = (x.narrow(-1, 0, half)?, x.narrow(-1, half, half)?);
    let rotated = Tensor::cat(&[x2.neg()?, x1], -1)?;
    x.mul(cos)?.add(&rotated.mul(sin)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::rand_input;

    #[test]
    fn sinusoidal_values() {
        let pe = sinusoidal(3, 4, Device::Cpu).unwrap().to_vec();
        // position 0: sin 0, cos 0 in each pair
        assert_eq!(pe[..4], [0.0, 1.0, 0.0, 1.0]);
        // position 2, pair 1: frequency 10000^(−2/4) = 0.01
        assert!((pe[2 * 4 + 2] - (0.02f32).sin()).abs() < 1e-7);
        assert!((pe[2 * 4 + 3] - (0.02f32).cos()).abs() < 1e-7);
    }

    /// A rotation keeps lengths, and the score of a rotated query and key
    /// depends only on how far apart their positions are.
    #[test]
    fn rope_scores_depend_on_relative_position() {
        let (q, k) = (rand_input(&[1, 8], 1), rand_input(&[1, 8], 2));
        let score = |pq: usize, pk: usize| {
            let rq = rope(&q, &rope_tables(pq, 1, 8, Device::Cpu).unwrap()).unwrap();
            let rk = rope(&k, &rope_tables(pk, 1, 8, Device::Cpu).unwrap()).unwrap();
            rq.mul(&rk).unwrap().sum_all().unwrap().item().unwrap()
        };
        assert!((score(5, 2) - score(13, 10)).abs() < 1e-5);
        assert!((score(5, 2) - score(5, 3)).abs() > 1e-3);
        let r = rope(&q, &rope_tables(7, 1, 8, Device::Cpu).unwrap()).unwrap();
        let norm = |t: &Tensor| t.mul(t).unwrap().sum_all().unwrap().item().unwrap();
        assert!((norm(&r) - norm(&q)).abs() < 1e-5);
        assert!(rope_tables(0, 1, 7, Device::Cpu).is_err());
    }
}
