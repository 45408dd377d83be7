//! `nn.Sequential`: modules applied in order; parameters named `0.weight`,
//! `1.bias`, … by position, as PyTorch does.

use nabla_core::{Result, Tensor};

use crate::module::prefixed;
use crate::Module;

#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer (builder style): `Sequential::new().add(Linear::new(2, 8)).add(Tanh)`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.layers {
            y = layer.forward(&y)?;
        }
        Ok(y)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(prefixed(&i.to_string(), l.named_parameters()));
        }
        out
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![];
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(prefixed(&i.to_string(), l.named_buffers()));
        }
        out
    }

    fn set_training(&self, on: bool) {
        self.layers.iter().for_each(|l| l.set_training(on));
    }

    fn describe(&self) -> String {
        let inner: Vec<String> = self.layers.iter().map(|l| l.describe()).collect();
        format!("Sequential({})", inner.join(", "))
    }
}
