//! Sampling classes from rows of non-negative weights (PyTorch's
//! `torch.multinomial`; a Categorical distribution's `sample`): row `[C]`
//! or rows `[N, C]` of weights (probabilities, or anything proportional to
//! them) give `num_samples` class indices per row (i64), drawn from the
//! global seeded generator. Without replacement a drawn class leaves the
//! row. Not differentiable (the result is indices).

use crate::rng::with_global_generator;
use crate::{Error, HostData, Result, Tensor};

/// One draw from `weights` (total `total` > 0): the class whose
/// cumulative weight first exceeds `u·total`.
fn draw(weights: &[f64], total: f64, u: f64) -> usize {
    let target = u * total;
    let mut sum = 0.0;
    for (k, &w) in weights.iter().enumerate() {
        sum += w;
        if target < sum && w > 0.0 {
            return k;
        }
    }
    // rounding left the target at the very top: the last class with weight
    weights
        .iter()
        .rposition(|&w| w > 0.0)
        .expect("a row with weight")
}

impl Tensor {
    /// `num_samples` class indices per row of weights `[C]` or `[N, C]`.
    pub fn multinomial(&self, num_samples: usize, replacement: bool) -> Result<Tensor> {
        let op = "multinomial";
        let (rows, c) = match *self.shape() {
            [c] => (1, c),
            [n, c] => (n, c),
            _ => {
                return Err(Error::shape(
                    op,
                    format!("expected weights [C] or [N, C], got {:?}", self.shape()),
                ))
            }
        };
        if num_samples == 0 || c == 0 {
            return Err(Error::arg(
                op,
                format!("cannot draw {num_samples} samples from {c} classes"),
            ));
        }
        let values = self.to_vec();
        if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::arg(
                op,
                format!("weights must be finite and non-negative, got {v}"),
            ));
        }
        let mut out = Vec::with_capacity(rows * num_samples);
        for (r, row) in values.chunks(c).enumerate() {
            let mut weights: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            let classes = weights.iter().filter(|&&w| w > 0.0).count();
            if classes == 0 || (!replacement && num_samples > classes) {
                return Err(Error::arg(
                    op,
                    format!(
                        "row {r} has {classes} classes of positive weight: too few for {num_samples} samples{}",
                        if replacement { "" } else { " without replacement" }
                    ),
                ));
            }
            with_global_generator(|g| {
                for _ in 0..num_samples {
                    let total: f64 = weights.iter().sum();
                    let k = draw(&weights, total, g.uniform() as f64);
                    if !replacement {
                        weights[k] = 0.0;
                    }
                    out.push(k as i64);
                }
            });
        }
        let shape: Vec<usize> = if self.rank() == 1 {
            vec![num_samples]
        } else {
            vec![rows, num_samples]
        };
        Tensor::from_host_data(HostData::I64(out), shape, self.device())
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn draws_follow_the_weights() {
        crate::manual_seed(5);
        let w = Tensor::from_vec(vec![1.0, 0.0, 3.0, 6.0], [4]).unwrap();
        let n = 20_000;
        let s = w.multinomial(n, true).unwrap();
        assert_eq!(s.dtype(), crate::DType::I64);
        let s = s.to_vec();
        let count = |k: f32| s.iter().filter(|&&v| v == k).count() as f64 / n as f64;
        assert_eq!(count(1.0), 0.0, "a class of weight 0 is never drawn");
        // three standard deviations of a binomial share
        for (k, p) in [(0.0, 0.1), (2.0, 0.3), (3.0, 0.6)] {
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (count(k) - p).abs() < 3.0 * sd,
                "class {k}: {} against {p}",
                count(k)
            );
        }
    }

    #[test]
    fn without_replacement_every_class_once() {
        crate::manual_seed(6);
        let w = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.4, 5.0, 1.0, 1.0, 0.0], [2, 4]).unwrap();
        let s = w.multinomial(3, false).unwrap();
        assert_eq!(s.shape(), [2, 3]);
        for row in s.to_vec().chunks(3) {
            let mut r = row.to_vec();
            r.sort_by(f32::total_cmp);
            r.dedup();
            assert_eq!(r.len(), 3, "{row:?}");
        }
        assert!(s.to_vec()[3..].iter().all(|&k| k != 3.0));
        let e = w.multinomial(4, false).unwrap_err().to_string();
        assert!(e.contains("row 1 has 3 classes"), "{e}");
    }

    #[test]
    fn bad_weights_are_errors() {
        for bad in [vec![1.0, -0.5], vec![f32::NAN, 1.0], vec![0.0, 0.0]] {
            assert!(Tensor::from_vec(bad, [2])
                .unwrap()
                .multinomial(1, true)
                .is_err());
        }
        assert!(Tensor::ones([2, 2, 2]).multinomial(1, true).is_err());
        assert!(Tensor::ones([3]).multinomial(0, true).is_err());
    }
}
