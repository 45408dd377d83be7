//! Log-softmax over one dimension, numerically stable.
//!
//! `y_i = (x_i − m) − ln Σ_j e^(x_j − m)` with `m = max_j x_j`.
//! Backward: `dx_i = dy_i − e^(y_i) · Σ_j dy_j`.

use super::softmax::{along_dim, map_rows};
use crate::{Result, Tensor};

fn log_softmax_row(r: &mut [f32]) {
    let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f32 = r.iter().map(|&v| (v - m).exp()).sum();
    // (x − m) − ln s, not x − (m + ln s): for large logits m + ln s rounds
    // to m's spacing and every output loses those bits
    let ln_s = s.ln();
    r.iter_mut().for_each(|v| *v = (*v - m) - ln_s);
}

fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let y = map_rows(x, log_softmax_row);
    let ys = y.detach();
    Ok(y.attach("LogSoftmaxBackward", &[x], move |g, _| {
        let s = g.sum(&[-1], true)?;
        Ok(vec![Some(g.sub(&ys.exp()?.mul(&s)?)?)])
    }))
}

impl Tensor {
    /// Log-softmax over `dim` (negative counts from the end).
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        along_dim(self, "log_softmax", dim, log_softmax_last)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn equals_log_of_softmax_and_stays_finite() {
        let x = Tensor::from_vec(vec![1000., 1001., 1002., -5., 0., 5.], [2, 3]).unwrap();
        let a = x.log_softmax(1).unwrap().to_vec();
        let b = x.softmax(1).unwrap().log().unwrap().to_vec();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn gradcheck_log_softmax() {
        let x = rand_input(&[3, 5], 1).mul_scalar(3.0).unwrap();
        gradcheck(|x| x[0].log_softmax(-1), &[x.clone()], Default::default()).unwrap();
        gradcheck(|x| x[0].log_softmax(0), &[x], Default::default()).unwrap();
    }

    /// Large logits keep their precision: PyTorch (f32, and f64 rounded)
    /// gives these values for logits near 1356.
    #[test]
    fn large_logits_lose_no_precision() {
        let x = Tensor::from_vec(vec![1356.6038, 1356.1819, 1358.5898], [3]).unwrap();
        let y = x.log_softmax(0).unwrap().to_vec();
        let want = [-2.190_844_f32, -2.612_719, -0.204_76];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() <= 2e-6, "{y:?}");
        }
    }
}
