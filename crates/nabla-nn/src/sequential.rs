//! `nn.Sequential`: modules applied in order; parameters named `0.weight`,
//! `1.bias`, … by position, as PyTorch does, or by each child's name when
//! it was added with one (PyTorch's `Sequential(OrderedDict(...))`:
//! `conv1.weight`).

use std::ops::Range;

use nabla_core::quant::{QParams, QTensor};
use nabla_core::{Error, Result, Tensor};

use crate::module::prefixed;
use crate::{Module, Parameters};

#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    /// Each child's name: its position, or the name it was added with.
    names: Vec<String>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer (builder style): `Sequential::new().add(Linear::new(2, 8)).add(Tanh)`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Sequential {
        self.push(Box::new(layer));
        self
    }

    /// Appends a layer named by its position.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        let name = self.layers.len().to_string();
        self.push_named(name, layer);
    }

    /// Appends a layer under `name`: its parameters are `NAME.weight`, ….
    pub fn push_named(&mut self, name: impl Into<String>, layer: Box<dyn Module>) {
        self.names.push(name.into());
        self.layers.push(layer);
    }

    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// The children's names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Runs the layers of `range` only (the features before a layer, the
    /// head after it: Grad-CAM, feature maps, a ViT's tokens).
    pub fn forward_range(&self, range: Range<usize>, x: &Tensor) -> Result<Tensor> {
        self.layers[range]
            .iter()
            .try_fold(x.clone(), |y, layer| layer.forward(&y))
    }

    /// The same network with each layer that has an int8 form replaced by
    /// it ([`Module::quantize_dynamic`]: Linear and recurrent layers), the
    /// others kept.
    pub fn into_quantized(self, per_channel: bool) -> Result<Sequential> {
        self.into_quantized_static(per_channel, &[])
    }

    /// [`into_quantized`](Self::into_quantized), and each layer `i` with an
    /// `inputs[i]` given and a static int8 form ([`Module::quantize_static`]:
    /// convolutions) replaced by it, its input quantized with those
    /// parameters (from [`observe_inputs`](Self::observe_inputs)).
    pub fn into_quantized_static(
        self,
        per_channel: bool,
        inputs: &[Option<QParams>],
    ) -> Result<Sequential> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.into_iter().enumerate() {
            let input = inputs.get(i).copied().flatten();
            let quantized = layer
                .quantize_dynamic(per_channel)
                .or_else(|| input.and_then(|q| layer.quantize_static(q, per_channel)));
            match quantized {
                Some(q) => layers.push(q?),
                None => layers.push(layer),
            }
        }
        Ok(Sequential {
            layers,
            names: self.names,
        })
    }

    /// The smallest and largest value each layer's input takes over
    /// `batches` (run without gradients): what static quantization
    /// calibrates on, as PyTorch's `MinMaxObserver`. The model should be
    /// in evaluation mode. Non-finite values are an error.
    pub fn observe_inputs(
        &self,
        batches: impl IntoIterator<Item = Tensor>,
    ) -> Result<Vec<(f32, f32)>> {
        let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); self.layers.len()];
        for batch in batches {
            nabla_core::no_grad(|| {
                let mut x = batch;
                for (i, layer) in self.layers.iter().enumerate() {
                    // (min and max pass NaN by: it is looked for apart)
                    let (lo, hi, finite) = x.read_data(|v| {
                        let start = (f32::INFINITY, f32::NEG_INFINITY, true);
                        v.iter().fold(start, |(a, b, ok), &v| {
                            (a.min(v), b.max(v), ok && v.is_finite())
                        })
                    });
                    if !finite {
                        return Err(Error::Arg {
                            op: "observe inputs",
                            msg: format!(
                                "the input of layer {} ({}) is not finite",
                                self.names[i],
                                layer.describe()
                            ),
                        });
                    }
                    ranges[i] = (ranges[i].0.min(lo), ranges[i].1.max(hi));
                    x = layer.forward(&x)?;
                }
                Ok(())
            })?;
        }
        Ok(ranges)
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Parameters for Sequential {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (name, l) in self.names.iter().zip(&self.layers) {
            out.extend(prefixed(name, l.named_parameters()));
        }
        out
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (name, l) in self.names.iter().zip(&self.layers) {
            out.extend(prefixed(name, l.named_buffers()));
        }
        out
    }

    fn named_quantized(&self) -> Vec<(String, QTensor)> {
        let mut out = vec![];
        for (name, l) in self.names.iter().zip(&self.layers) {
            out.extend(
                l.named_quantized()
                    .into_iter()
                    .map(|(n, q)| (format!("{name}.{n}"), q)),
            );
        }
        out
    }

    fn set_quantized(&self, name: &str, value: QTensor) -> Result<()> {
        let child = self.names.iter().zip(&self.layers).find_map(|(n, l)| {
            name.strip_prefix(n.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|rest| (rest, l))
        });
        match child {
            Some((rest, layer)) => layer.set_quantized(rest, value),
            None => Err(Error::Arg {
                op: "load quantized",
                msg: format!("the model has no layer for {name:?}"),
            }),
        }
    }

    fn set_training(&self, on: bool) {
        self.layers.iter().for_each(|l| l.set_training(on));
    }

    fn describe(&self) -> String {
        let inner: Vec<String> = self.layers.iter().map(|l| l.describe()).collect();
        format!("Sequential({})", inner.join(", "))
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_range(0..self.layers.len(), x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Linear, ReLU};

    #[test]
    fn children_are_named_by_position_or_by_name_and_run_by_range() {
        let mut s = Sequential::new().add(Linear::new(3, 4));
        s.push_named("act", Box::new(ReLU));
        s.push_named("head", Box::new(Linear::new(4, 2)));
        let names: Vec<String> = s.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["0.weight", "0.bias", "head.weight", "head.bias"]);
        assert_eq!(s.names(), ["0", "act", "head"]);
        let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], [1, 3]).unwrap();
        let features = s.forward_range(0..2, &x).unwrap();
        assert!(features.to_vec().iter().all(|&v| v >= 0.0));
        let whole = s.forward(&x).unwrap().to_vec();
        assert_eq!(s.forward_range(2..3, &features).unwrap().to_vec(), whole);
    }
}
