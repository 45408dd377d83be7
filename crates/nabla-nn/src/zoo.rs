//! The zoo: the reference models, in one place. Every model by name as a
//! model file (`models/*.toml`, compiled in), which `nabla train --model
//! NAME` and Rust programs build alike (`build_model`); and `LeNet`, the
//! reference CNN written out in Rust as the classic PyTorch program writes
//! it (the same layers, names and shapes as the zoo's `lenet`: a test
//! checks).

use nabla_core::{Conv2dParams, Result, Tensor};

use crate::modelfile::{build, load_spec, FileModel};
use crate::module::prefixed;
use crate::{Conv2d, Linear, Module, Parameters};

/// The zoo's models as model files (`models/*.toml`), compiled in, by name.
pub const MODEL_FILES: &[(&str, &str)] = &[
    ("lenet", include_str!("../../../models/lenet.toml")),
    (
        "lenet-as-written",
        include_str!("../../../models/lenet-as-written.toml"),
    ),
    ("mlp", include_str!("../../../models/mlp.toml")),
    ("lstm-rows", include_str!("../../../models/lstm-rows.toml")),
    ("gru-rows", include_str!("../../../models/gru-rows.toml")),
    ("rnn-rows", include_str!("../../../models/rnn-rows.toml")),
    ("vit", include_str!("../../../models/vit.toml")),
];

/// The zoo's model names.
pub fn names() -> Vec<&'static str> {
    MODEL_FILES.iter().map(|(n, _)| *n).collect()
}

/// Builds the zoo model `name` (weights drawn from the global generator).
pub fn build_model(name: &str) -> std::result::Result<FileModel, crate::modelfile::ModelFileError> {
    let (spec, source) = load_spec(name)?;
    build(&spec, &source, None)
}

/// The reference CNN, in the working form of the classic PyTorch program:
/// conv1 (5×5, padding 2) → ReLU → max-pool 2 → conv2 (5×5) → ReLU →
/// max-pool 2 → flatten (16·5·5 = 400) → fc1 120 → ReLU → fc2 84 → ReLU →
/// fc3 10. Parameter names as PyTorch's (`conv1.weight`, …, `fc3.bias`).
pub struct LeNet {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

impl LeNet {
    pub fn new() -> LeNet {
        LeNet {
            conv1: Conv2d::with(1, 6, 5, Conv2dParams::default().padding(2), true),
            conv2: Conv2d::new(6, 16, 5),
            fc1: Linear::new(400, 120),
            fc2: Linear::new(120, 84),
            fc3: Linear::new(84, 10),
        }
    }
}

impl Default for LeNet {
    fn default() -> Self {
        LeNet::new()
    }
}

impl Parameters for LeNet {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("conv1", self.conv1.named_parameters());
        p.extend(prefixed("conv2", self.conv2.named_parameters()));
        p.extend(prefixed("fc1", self.fc1.named_parameters()));
        p.extend(prefixed("fc2", self.fc2.named_parameters()));
        p.extend(prefixed("fc3", self.fc3.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        "LeNet".into()
    }
}

impl Module for LeNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(x)?.relu()?.max_pool2d(2)?;
        let x = self.conv2.forward(&x)?.relu()?.max_pool2d(2)?;
        let x = x.reshape([-1, 400])?;
        let x = self.fc1.forward(&x)?.relu()?;
        let x = self.fc2.forward(&x)?.relu()?;
        self.fc3.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_in_rust_is_the_zoos_lenet() {
        let shapes = |m: &dyn Module| -> Vec<(String, Vec<usize>)> {
            m.named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.shape().to_vec()))
                .collect()
        };
        let zoo = build_model("lenet").unwrap();
        assert_eq!(shapes(&LeNet::new()), shapes(&zoo));
        let x = Tensor::zeros([2, 1, 28, 28]);
        assert_eq!(
            zoo.forward(&x).unwrap().shape(),
            LeNet::new().forward(&x).unwrap().shape()
        );
        assert!(names().contains(&"vit") && build_model("nope").is_err());
    }
}
