//! Fully connected layer: `y = x·Wᵀ + b`.
//!
//! Shapes: x `[.., in]`, weight `[out, in]` (PyTorch's layout), bias
//! `[out]`, y `[.., out]`. The gradient comes from matmul's and add's:
//! `dW = dyᵀ·x`, `db = Σ dy`, `dx = dy·W`.

use nabla_core::{Result, Tensor};

use crate::init::default_weight_and_bias;
use crate::{Module, Parameters};

pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `nn.Linear(in_features, out_features)` with PyTorch's initialization.
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        Linear::with_bias(in_features, out_features, true)
    }

    pub fn with_bias(in_features: usize, out_features: usize, bias: bool) -> Linear {
        let (weight, bias) = default_weight_and_bias(&[out_features, in_features], bias);
        Linear { weight, bias }
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Parameters for Linear {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }

    fn quantize_dynamic(&self, per_channel: bool) -> Option<Result<Box<dyn Module>>> {
        Some(
            self.quantized(per_channel)
                .map(|q| Box::new(q) as Box<dyn Module>),
        )
    }

    fn describe(&self) -> String {
        format!("Linear({}, {})", self.in_features(), self.out_features())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // the op checks the shapes (and names them)
        x.linear(&self.weight, self.bias.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

    #[test]
    fn gradcheck_linear() {
        let f = |x: &[Tensor]| {
            let l = Linear {
                weight: x[1].clone(),
                bias: Some(x[2].clone()),
            };
            l.forward(&x[0])
        };
        let inputs = [
            rand_input(&[4, 3], 1),
            rand_input(&[2, 3], 2),
            rand_input(&[2], 3),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap();
    }

    #[test]
    fn names_and_shape_errors() {
        let l = Linear::new(400, 120);
        let names: Vec<String> = l.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(l.num_parameters(), 400 * 120 + 120);
        let e = l
            .forward(&Tensor::zeros([64, 1600]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "linear: expected input [.., 400], got [64, 1600] (weight [120, 400])"
        );
    }
}
