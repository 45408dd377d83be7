//! Dropout (inverted): in training each element is zeroed with probability
//! `p` and the survivors are scaled by `1/(1−p)`, so the expected value is
//! unchanged and evaluation needs no rescaling. `y = x · m`,
//! `m_i ∈ {0, 1/(1−p)}` drawn from the seeded generator; `dx = dy · m`.

use crate::rng::with_global_generator;
use crate::{Error, Result, Tensor};

/// A dropout probability in [0, 1], or the error that says it is not.
fn check_probability(p: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::arg(
            "dropout",
            format!("probability has to be between 0 and 1, got {p}"),
        ));
    }
    Ok(())
}

impl Tensor {
    /// The dropout mask alone: `1/(1−p)` with probability `1−p`, else 0.
    pub fn dropout_mask(shape: &[usize], p: f32) -> Result<Tensor> {
        check_probability(p)?;
        let n = shape.iter().product();
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        let mask = with_global_generator(|g| {
            (0..n)
                .map(|_| if g.uniform() < p { 0.0 } else { scale })
                .collect()
        });
        Ok(Tensor::from_host(mask, shape, crate::Device::Cpu))
    }

    /// Applies dropout with probability `p` when `training`; identity
    /// otherwise (no mask drawn: evaluation leaves the generator as it is).
    pub fn dropout(&self, p: f32, training: bool) -> Result<Tensor> {
        check_probability(p)?;
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let mask = Tensor::dropout_mask(self.shape(), p)?;
        // (drawn on the host from the one generator, so a seed drops the
        // same elements on every device)
        self.mul(&mask.to(self.device())?)
    }

    /// Channel dropout (`nn.Dropout2d`, `F.dropout2d`): while training,
    /// each channel of `[N, C, H, W]` is zeroed whole with probability `p`
    /// and the others are scaled by `1/(1−p)` — neighbouring pixels of a
    /// feature map are correlated, so dropping single pixels would hardly
    /// regularize a convolution. `y = x · m` with `m` of shape
    /// `[N, C, 1, 1]`; `dx = dy · m`. Other ranks as PyTorch 2 takes them
    /// (with a deprecation warning there): `[N, C, L]` channel by channel
    /// (`m [N, C, 1]`), `[N, C]` element by element.
    pub fn dropout2d(&self, p: f32, training: bool) -> Result<Tensor> {
        let s = self.shape();
        let per_channel: Vec<usize> = match s.len() {
            4 => vec![s[0], s[1], 1, 1],
            3 => vec![s[0], s[1], 1],
            2 => s.to_vec(),
            _ => {
                return Err(Error::shape(
                    "dropout2d",
                    format!("expected [N, C, H, W] (or [N, C, L], [N, C]), got {s:?}"),
                ))
            }
        };
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "dropout2d",
                format!("probability has to be between 0 and 1, got {p}"),
            ));
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let mask = Tensor::dropout_mask(&per_channel, p)?;
        self.mul(&mask.to(self.device())?)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn dropout2d_drops_whole_channels() {
        crate::manual_seed(4);
        let x = Tensor::ones([8, 16, 3, 3]);
        let y = x.dropout2d(0.5, true).unwrap().to_vec();
        let planes: Vec<&[f32]> = y.chunks(9).collect();
        // every plane all zeros or all 2
        assert!(planes
            .iter()
            .all(|p| p.iter().all(|&v| v == 0.0) || p.iter().all(|&v| v == 2.0)));
        let dropped = planes.iter().filter(|p| p[0] == 0.0).count();
        assert!(
            (40..=88).contains(&dropped),
            "{dropped} of 128 channels dropped"
        );
        assert_eq!(x.dropout2d(0.5, false).unwrap().to_vec(), x.to_vec());
        // [N, C, L]: each (n, c) row whole, as PyTorch 2 reads 3-d input
        let rows = Tensor::ones([4, 3, 5])
            .dropout2d(0.5, true)
            .unwrap()
            .to_vec();
        assert!(rows.chunks(5).all(|r| r.iter().all(|&v| v == r[0])));
        assert!(x.dropout2d(1.5, true).is_err());
        assert!(Tensor::ones([2]).dropout2d(0.5, true).is_err());
    }

    #[test]
    fn keeps_the_expected_value() {
        crate::manual_seed(3);
        let y = Tensor::ones([100_000]).dropout(0.3, true).unwrap();
        let v = y.to_vec();
        let zeros = v.iter().filter(|&&x| x == 0.0).count() as f32 / v.len() as f32;
        assert!((zeros - 0.3).abs() < 0.01, "{zeros}");
        assert!((y.mean_all().unwrap().item().unwrap() - 1.0).abs() < 0.02);
        assert_eq!(
            Tensor::ones([3]).dropout(0.5, false).unwrap().to_vec(),
            vec![1.0; 3]
        );
        assert!(Tensor::ones([3]).dropout(1.5, true).is_err());
    }

    #[test]
    fn gradcheck_dropout_with_a_fixed_mask() {
        let mask = Tensor::dropout_mask(&[3, 4], 0.5).unwrap();
        gradcheck(
            move |x| x[0].mul(&mask),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
