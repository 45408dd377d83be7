//! `y = min(max(x, lo), hi)`. Backward: `dx = dy` where `lo ≤ x ≤ hi`, else 0.

use super::unary_op;
use crate::{Result, Tensor};

impl Tensor {
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi {
            return Err(crate::Error::Arg {
                op: "clamp",
                msg: format!("min {lo} is greater than max {hi}"),
            });
        }
        unary_op(
            self,
            "ClampBackward",
            move |x| x.max(lo).min(hi),
            move |x, _| {
                if x >= lo && x <= hi {
                    1.0
                } else {
                    0.0
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    #[allow(unused_imports)]
    use crate::Tensor;

    #[test]
    fn gradcheck_clamp() {
        gradcheck(
            |x| x[0].clamp(-0.45, 0.55),
            &[distinct_input(&[4, 5], 1, 0.1)],
            Default::default(),
        )
        .unwrap();
        assert!(Tensor::zeros([1]).clamp(1.0, 0.0).is_err());
    }
}
