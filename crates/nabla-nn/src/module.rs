//! The [`Parameters`] and [`Module`] traits: a layer or a model with
//! named parameters, as PyTorch's `nn.Module`.
//!
//! [`Parameters`] is what every model has whatever its forward takes:
//! named parameters and buffers, training mode, the device, a summary
//! line. [`Module`] adds `forward` from one tensor to one, the common
//! case: layers, `Sequential`, what the `Trainer` trains. A model whose
//! forward takes or returns several tensors (a VAE's mean and
//! log-variance, a language model's carried state, a GAN's two inputs)
//! implements `Parameters` alone and gives itself a `forward` of its own
//! signature, as a PyTorch module does; optimizers, state dicts,
//! `to(device)`, `train()`/`eval()` and summaries all take it.
//!
//! Parameter names follow PyTorch, so state dicts interchange: a layer
//! names its own tensors (`weight`, `bias`), a container prefixes its
//! children's names with theirs (`conv1.weight`, `0.bias` in a
//! [`Sequential`](crate::Sequential)).

use nabla_core::quant::{QParams, QTensor};
use nabla_core::{DType, Device, Error, Result, Tensor};

/// A layer or a model's state and bookkeeping, whatever its forward
/// takes (see the module docs). Everything has a default but
/// `named_parameters` for a model that has parameters.
pub trait Parameters: Send + Sync {
    /// Trainable tensors with their names, in definition order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![]
    }

    /// Non-trainable state saved in the state dict (BatchNorm's running
    /// statistics), in definition order.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![]
    }

    /// Int8 tensors with their names (a quantized layer's weights and
    /// scales), saved in the state dict beside the f32 ones; none for an
    /// f32 module.
    fn named_quantized(&self) -> Vec<(String, QTensor)> {
        vec![]
    }

    /// Replaces the quantized tensor `name` (loading a state dict).
    fn set_quantized(&self, name: &str, _value: QTensor) -> Result<()> {
        Err(Error::Arg {
            op: "load quantized",
            msg: format!("the model has no quantized tensor {name:?}"),
        })
    }

    /// This layer with int8 weights and activations quantized batch by
    /// batch (PyTorch's `quantize_dynamic`), for the layers that have such
    /// a form (Linear, LSTM, GRU, RNN); None for the others, which stay f32. `per_channel`
    /// gives each output neuron its own scale.
    fn quantize_dynamic(&self, _per_channel: bool) -> Option<Result<Box<dyn Module>>> {
        None
    }

    /// This layer with int8 weights and its input quantized with the
    /// fixed parameters `input`, chosen from calibration batches (static
    /// quantization, PyTorch's `convert` after its observers ran), for the
    /// layers that have such a form (Conv2d, see
    /// [`QuantizedConv2d`](crate::QuantizedConv2d)); None for the others.
    fn quantize_static(
        &self,
        _input: QParams,
        _per_channel: bool,
    ) -> Option<Result<Box<dyn Module>>> {
        None
    }

    /// Switches training behaviour (dropout, batch statistics) on or off.
    fn set_training(&self, _on: bool) {}

    /// The parameters alone, for an optimizer: each tensor once, in the
    /// order it first appears, as PyTorch's `parameters()` (a weight tied
    /// between two layers, such as a language model's embedding and its
    /// output layer, is updated once per step, not twice).
    fn parameters(&self) -> Vec<Tensor> {
        let mut seen = std::collections::HashSet::new();
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| seen.insert(t.id()))
            .collect()
    }

    /// Number of trainable values (a tied weight counted once): the
    /// model's scale.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|t| t.numel()).sum()
    }

    /// Moves every parameter and buffer to `device`, in place
    /// (`model.to(device)`): an optimizer made before still holds them.
    fn to(&self, device: Device) -> Result<()> {
        for (_, t) in self
            .named_parameters()
            .into_iter()
            .chain(self.named_buffers())
        {
            t.move_to(device)?;
        }
        Ok(())
    }

    /// Converts every floating-point parameter and buffer to `dtype`, in
    /// place (`model.to(torch.bfloat16)`, `model.half()`): half the memory
    /// for bf16 or f16. The ops read such weights as their exact f32
    /// values and compute in f32; an optimizer refuses to step them (train
    /// in f32 with `autocast` for bf16 products).
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::DType {
                op: "to_dtype",
                msg: format!("a model's weights are floating point, not {dtype}"),
            });
        }
        for (_, t) in self
            .named_parameters()
            .into_iter()
            .chain(self.named_buffers())
        {
            if t.dtype().is_float() {
                t.set_dtype(dtype)?;
            }
        }
        Ok(())
    }

    /// The device of the first parameter (the CPU for a module without).
    fn device(&self) -> Device {
        self.named_parameters()
            .first()
            .map_or(Device::Cpu, |(_, t)| t.device())
    }

    /// Forgets the gradients of all parameters.
    fn zero_grad(&self) {
        for (_, p) in self.named_parameters() {
            p.zero_grad();
        }
    }

    /// Training mode on (`model.train()`).
    fn train(&self) {
        self.set_training(true)
    }

    /// Training mode off (`model.eval()`).
    fn eval(&self) {
        self.set_training(false)
    }

    /// A short description for summaries, e.g. `Linear(400, 120)`.
    fn describe(&self) -> String {
        "Module".into()
    }
}

/// A layer or a model applied to one tensor, giving one: PyTorch's
/// `nn.Module` in its common form.
pub trait Module: Parameters {
    /// Applies the module to a batch.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// For a module made of self-attention layers (a Transformer encoder):
    /// its output and each layer's attention weights `[N, T, T]`, averaged
    /// over the heads, for attention maps; None for any other module.
    fn forward_with_attention(&self, _x: &Tensor) -> Option<Result<(Tensor, Vec<Tensor>)>> {
        None
    }
}

/// Prefixes child names: `prefixed("conv1", [("weight", w)])` gives
/// `[("conv1.weight", w)]`. For models that hold layers as fields.
pub fn prefixed(prefix: &str, named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    named
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Linear;

    /// Two layers sharing one weight, as a language model ties its
    /// embedding and its output layer.
    struct Tied {
        a: Linear,
        b: Linear,
    }

    impl Parameters for Tied {
        fn named_parameters(&self) -> Vec<(String, Tensor)> {
            let mut p = prefixed("a", self.a.named_parameters());
            p.extend(prefixed("b", self.b.named_parameters()));
            p
        }
    }

    impl Module for Tied {
        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            self.b.forward(&self.a.forward(x)?)
        }
    }

    #[test]
    fn tied_weights_are_one_parameter() {
        let a = Linear::new(4, 4);
        let mut b = Linear::new(4, 4);
        b.weight = a.weight.clone();
        let m = Tied { a, b };
        assert_eq!(
            m.named_parameters().len(),
            4,
            "the state dict keeps both names"
        );
        let p = m.parameters();
        assert_eq!(p.len(), 3);
        assert!(p[0].shares_storage(&m.b.weight));
        assert_eq!(m.num_parameters(), 16 + 4 + 4);
    }
}
