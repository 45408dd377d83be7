//! Int8 inference: dynamically quantized layers and their state dicts.
//!
//! `QuantizedLinear` is PyTorch's `torch.ao.nn.quantized.dynamic.Linear`:
//! the weight `[out, in]` stored as signed 8-bit values with one scale (or
//! one per output neuron), the bias in f32, and each batch of activations
//! quantized to unsigned 8 bits from its own minimum and maximum when it
//! arrives (`nabla_core::quant`). A model becomes quantized with
//! [`Sequential::into_quantized`](crate::Sequential::into_quantized) or
//! `FileModel::into_quantized`; layers without an int8 form stay f32.
//!
//! A quantized state dict is a safetensors file whose int8 weights are
//! `I8` tensors, each with its scales beside it as `NAME.scale` (F32, one
//! or one per row), and whose other tensors are F32 as usual. Its metadata
//! says `nabla.quantization = dynamic-int8` (the format's name; a
//! statically quantized convolution, `QuantizedConv2d`, keeps its input's
//! fixed parameters there too, as the buffers `NAME.input_scale` and
//! `NAME.input_zero_point`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use nabla_core::quant::{QTensor, QuantizedLinearWeight};
use nabla_core::{Result, Tensor};
use safetensors::{Dtype, SafeTensors};

use crate::state_dict::{
    from_safetensors_bytes, load_state_dict, read_file, read_header, serialize, state_dict,
    write_file, StateDictError,
};
use crate::{Linear, Module, Parameters};

/// The metadata key and value that mark a quantized state dict.
pub const QUANTIZATION_KEY: &str = "nabla.quantization";
pub const DYNAMIC_INT8: &str = "dynamic-int8";

/// A Linear layer with int8 weights (PyTorch's dynamic quantized Linear).
pub struct QuantizedLinear {
    weight: RwLock<QuantizedLinearWeight>,
    pub bias: Option<Tensor>,
}

impl QuantizedLinear {
    /// From a quantized `[out, in]` weight and an optional f32 bias `[out]`.
    pub fn new(weight: QTensor, bias: Option<Tensor>) -> Result<QuantizedLinear> {
        let weight = QuantizedLinearWeight::new(weight)?;
        Ok(QuantizedLinear {
            weight: RwLock::new(weight),
            bias,
        })
    }

    /// `linear` quantized: its weight symmetric per tensor or per output
    /// neuron, its bias kept.
    pub fn from_linear(linear: &Linear, per_channel: bool) -> Result<QuantizedLinear> {
        let weight = QTensor::quantize(&linear.weight, per_channel)?;
        QuantizedLinear::new(weight, linear.bias.as_ref().map(Tensor::detach))
    }

    /// (in, out) features.
    pub fn features(&self) -> (usize, usize) {
        self.weight.read().unwrap().features()
    }
}

impl Parameters for QuantizedLinear {
    /// The bias is kept as a buffer: saved and loaded, never trained.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.bias
            .iter()
            .map(|b| ("bias".to_string(), b.clone()))
            .collect()
    }

    fn named_quantized(&self) -> Vec<(String, QTensor)> {
        vec![(
            "weight".into(),
            self.weight.read().unwrap().weight().clone(),
        )]
    }

    fn set_quantized(&self, name: &str, value: QTensor) -> Result<()> {
        let (ins, outs) = self.features();
        if name != "weight" || value.shape != [outs, ins] {
            return Err(nabla_core::Error::Arg {
                op: "load quantized",
                msg: format!(
                    "QuantizedLinear({ins}, {outs}) has a weight [{outs}, {ins}], not {name:?} {:?}",
                    value.shape
                ),
            });
        }
        *self.weight.write().unwrap() = QuantizedLinearWeight::new(value)?;
        Ok(())
    }

    fn describe(&self) -> String {
        let (ins, outs) = self.features();
        format!("QuantizedLinear({ins}, {outs}, int8)")
    }
}

impl Module for QuantizedLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.weight.read().unwrap();
        match &self.bias {
            Some(b) => b.read_data(|b| weight.forward(x, Some(b))),
            None => weight.forward(x, None),
        }
    }
}

impl Linear {
    /// This layer with int8 weights ([`QuantizedLinear::from_linear`]).
    pub fn quantized(&self, per_channel: bool) -> Result<QuantizedLinear> {
        QuantizedLinear::from_linear(self, per_channel)
    }
}

/// Bytes of a model's state at its precision: 4 a parameter or buffer
/// value, 1 an int8 value plus 4 a scale.
pub fn state_bytes(model: &dyn Parameters) -> usize {
    let f32s: usize = state_dict(model).iter().map(|(_, t)| 4 * t.numel()).sum();
    let q: usize = model
        .named_quantized()
        .iter()
        .map(|(_, q)| q.size_in_bytes())
        .sum();
    f32s + q
}

/// The model's state in f32, its int8 weights read back (`q · scale`):
/// it loads into the f32 form of the same architecture, for what needs
/// gradients (saliency maps) or runs where int8 does not.
pub fn dequantized_state(model: &dyn Parameters) -> Result<Vec<(String, Tensor)>> {
    // (a static convolution's input parameters have no f32 counterpart)
    let static_input = |name: &str| {
        crate::quantized_conv::INPUT_PARAMS
            .iter()
            .any(|p| name.rsplit('.').next() == Some(p))
    };
    let mut all: Vec<_> = state_dict(model)
        .into_iter()
        .filter(|(n, _)| !static_input(n))
        .collect();
    for (name, q) in model.named_quantized() {
        all.push((name, q.dequantize()?));
    }
    Ok(all)
}

/// Writes a quantized model's state (int8 weights with their scales, f32
/// parameters and buffers) to `path` atomically.
pub fn save_quantized(
    path: impl AsRef<Path>,
    model: &dyn Parameters,
) -> crate::state_dict::Result<()> {
    let path = path.as_ref();
    let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in state_dict(model) {
        let bytes = t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name, Dtype::F32, t.shape().to_vec(), bytes));
    }
    for (name, q) in model.named_quantized() {
        let scales = q.scales.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((
            format!("{name}.scale"),
            Dtype::F32,
            vec![q.scales.len()],
            scales,
        ));
        let values = q.data.iter().map(|&v| v as u8).collect();
        data.push((name, Dtype::I8, q.shape.clone(), values));
    }
    let meta = HashMap::from([(QUANTIZATION_KEY.to_string(), DYNAMIC_INT8.to_string())]);
    write_file(path, &serialize(data, Some(meta))?)
}

/// Whether the safetensors file at `path` holds a quantized state dict
/// (false for an f32 one; an unreadable file is an error).
pub fn is_quantized_file(path: impl AsRef<Path>) -> crate::state_dict::Result<bool> {
    Ok(read_header(path)?
        .metadata()
        .as_ref()
        .and_then(|m| m.get(QUANTIZATION_KEY))
        .is_some_and(|v| v == DYNAMIC_INT8))
}

/// The layers of `net` that the quantized state dict at `path` holds in
/// their static form (a convolution with its input's parameters,
/// `NAME.input_scale`), as [`Sequential::into_quantized_static`] takes
/// them: placeholders, which [`load_quantized`] then overwrites.
///
/// [`Sequential::into_quantized_static`]: crate::Sequential::into_quantized_static
pub fn static_inputs(
    path: impl AsRef<Path>,
    net: &crate::Sequential,
) -> crate::state_dict::Result<Vec<Option<nabla_core::quant::QParams>>> {
    let header = read_header(path)?;
    let names = header.tensors();
    Ok(net
        .names()
        .iter()
        .map(|layer| {
            names
                .contains_key(&format!(
                    "{layer}.{}",
                    crate::quantized_conv::INPUT_PARAMS[0]
                ))
                .then_some(nabla_core::quant::QParams {
                    scale: 1.0,
                    zero_point: 0,
                })
        })
        .collect())
}

/// Loads a quantized state dict into `model`, which must already have the
/// same quantized layers (`into_quantized` of the same architecture).
/// Everything is checked first: names, shapes, scales.
pub fn load_quantized(
    path: impl AsRef<Path>,
    model: &dyn Parameters,
) -> crate::state_dict::Result<()> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let bytes = read_file(path)?;
    let bad = |msg: String| StateDictError::Format {
        path: source.clone(),
        msg,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut quantized = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::I8 {
            continue;
        }
        let scale_name = format!("{name}.scale");
        let scales = st
            .tensor(&scale_name)
            .map_err(|_| bad(format!("int8 tensor {name:?} has no {scale_name:?}")))?;
        if scales.dtype() != Dtype::F32 {
            return Err(bad(format!("{scale_name:?} is not F32")));
        }
        let q = QTensor {
            data: view.data().iter().map(|&b| b as i8).collect(),
            shape: view.shape().to_vec(),
            scales: scales
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        };
        q.check(&name).map_err(|e| bad(e.to_string()))?;
        quantized.push((name, q));
    }
    // (safetensors lists its tensors in no fixed order)
    quantized.sort_by(|a, b| a.0.cmp(&b.0));
    // the model's int8 tensors, names and shapes (asked once: each answer
    // is a copy of the weights)
    let own: Vec<(String, Vec<usize>)> = model
        .named_quantized()
        .into_iter()
        .map(|(n, q)| (n, q.shape))
        .collect();
    let wanted: Vec<&String> = own.iter().map(|(n, _)| n).collect();
    let found: Vec<&String> = quantized.iter().map(|(n, _)| n).collect();
    let missing: Vec<&&String> = wanted.iter().filter(|n| !found.contains(n)).collect();
    if !missing.is_empty() || found.len() != wanted.len() {
        return Err(StateDictError::Mismatch(format!(
            "{source}: the model's int8 weights are {wanted:?}, the file has {found:?}"
        )));
    }
    // the f32 rest: everything that is neither an int8 tensor nor its scale
    let is_quantized = |n: &str| {
        quantized
            .iter()
            .any(|(q, _)| n == q || n.strip_suffix(".scale") == Some(q.as_str()))
    };
    let rest: Vec<(String, Tensor)> = from_safetensors_bytes(&bytes, &source)?
        .into_iter()
        .filter(|(n, _)| !is_quantized(n))
        .collect();
    for (name, q) in &quantized {
        let shape = own.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
        if shape.as_deref() != Some(&q.shape[..]) {
            return Err(StateDictError::Mismatch(format!(
                "{source}: {name} is {:?} in the file, {:?} in the model",
                q.shape,
                shape.unwrap_or_default()
            )));
        }
    }
    load_state_dict(model, &rest)?;
    for (name, q) in quantized {
        model.set_quantized(&name, q)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReLU, Sequential};

    fn net() -> Sequential {
        Sequential::new()
            .add(Linear::new(12, 8))
            .add(ReLU)
            .add(Linear::with_bias(8, 3, false))
    }

    /// A quantized network follows the f32 one closely, saves and loads
    /// back to the same outputs, and a wrong file is refused whole.
    #[test]
    fn quantized_networks_compute_save_and_load() {
        let f32_net = net();
        let x = Tensor::randn([5, 12]);
        let want = f32_net.forward(&x).unwrap().to_vec();
        let q = net();
        nabla_core::no_grad(|| {
            for (a, b) in q.parameters().iter().zip(f32_net.parameters()) {
                a.copy_from(&b).unwrap();
            }
        });
        let q = q.into_quantized(true).unwrap();
        assert!(q.describe().contains("QuantizedLinear(12, 8, int8)"));
        let got = q.forward(&x).unwrap().to_vec();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 0.05, "{g} vs {w}");
        }
        let names: Vec<String> = q.named_quantized().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["0.weight", "2.weight"]);
        assert!(
            q.parameters().is_empty(),
            "a quantized Linear trains nothing"
        );
        assert_eq!(state_bytes(&q), 4 * 8 + (96 + 4 * 8) + (24 + 4 * 3));

        let dir = std::env::temp_dir().join(format!("nabla-quantized-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.safetensors");
        save_quantized(&path, &q).unwrap();
        assert!(is_quantized_file(&path).unwrap());
        let other = net().into_quantized(true).unwrap();
        assert_ne!(other.forward(&x).unwrap().to_vec(), got);
        load_quantized(&path, &other).unwrap();
        assert_eq!(other.forward(&x).unwrap().to_vec(), got);

        // read back as f32, the weights give the f32 network's outputs
        // with the rounded weights: close to the int8 ones
        let back = net();
        load_state_dict(&back, &dequantized_state(&q).unwrap()).unwrap();
        let y = back.forward(&x).unwrap().to_vec();
        for (a, b) in y.iter().zip(&got) {
            assert!((a - b).abs() < 0.05, "{a} vs {b}");
        }

        // an f32 model, or a quantized one of another shape, is refused
        let err = load_quantized(&path, &net()).unwrap_err().to_string();
        assert!(err.contains("int8 weights are []"), "{err}");
        let wide = Sequential::new()
            .add(Linear::new(12, 9))
            .add(ReLU)
            .add(Linear::with_bias(9, 3, false))
            .into_quantized(false)
            .unwrap();
        let err = load_quantized(&path, &wide).unwrap_err().to_string();
        assert!(
            err.contains("0.weight is [8, 12] in the file, [9, 12]"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
