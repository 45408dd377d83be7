//! State dicts as safetensors files, with PyTorch's keys and layouts: a
//! `state_dict()` saved from PyTorch with `safetensors.torch.save_file`
//! loads into the equivalent nabla model, and the other way round.
//!
//! Loading checks everything before changing anything, and names every
//! missing key, unexpected key and shape mismatch in one error.

use std::collections::HashMap;
use std::path::Path;

use nabla_core::Tensor;
use safetensors::{Dtype, SafeTensors};

use crate::Module;

#[derive(Debug, thiserror::Error)]
pub enum StateDictError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {msg}")]
    Format { path: String, msg: String },
    #[error("state dict does not fit the model: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
}

pub type Result<T> = std::result::Result<T, StateDictError>;

/// Parameters then buffers of `model`, with their names.
pub fn state_dict(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut all = model.named_parameters();
    all.extend(model.named_buffers());
    all
}

/// Serializes named tensors as safetensors bytes (f32, little-endian).
pub fn to_safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.shape().to_vec(),
                t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = data
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| StateDictError::Mismatch(e.to_string()))?;
    safetensors::serialize(views, metadata).map_err(|e| StateDictError::Mismatch(e.to_string()))
}

/// Writes named tensors to `path` atomically (temporary file, then rename).
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_safetensors_bytes(tensors, None)?;
    nabla_core::io::write_atomically(path, &bytes).map_err(|source| StateDictError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Parses safetensors bytes into named f32 tensors (f16/bf16/f64 are converted).
pub fn from_safetensors_bytes(bytes: &[u8], source: &str) -> Result<Vec<(String, Tensor)>> {
    let bad = |msg: String| StateDictError::Format {
        path: source.to_string(),
        msg,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
                .collect(),
            other => {
                return Err(bad(format!(
                    "tensor {name:?} has unsupported dtype {other:?}"
                )))
            }
        };
        out.push((name, Tensor::from_vec(values, view.shape())?));
    }
    // safetensors stores keys sorted; keep a stable order
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads a safetensors file into named f32 tensors.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| StateDictError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_safetensors_bytes(&bytes, &path.display().to_string())
}

/// Copies `tensors` into the model's parameters and buffers by name.
/// Fails, changing nothing, if any key is missing, unexpected, or of
/// another shape; the error lists every problem.
pub fn load_state_dict(model: &dyn Module, tensors: &[(String, Tensor)]) -> Result<()> {
    let own = state_dict(model);
    let given: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut problems = Vec::new();
    for (name, t) in &own {
        match given.get(name.as_str()) {
            None => problems.push(format!("missing key {name:?}")),
            Some(g) if g.shape() != t.shape() => problems.push(format!(
                "{name:?} has shape {:?} in the file, {:?} in the model",
                g.shape(),
                t.shape()
            )),
            Some(_) => {}
        }
    }
    let known: Vec<&str> = own.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in tensors {
        if !known.contains(&name.as_str()) {
            problems.push(format!("unexpected key {name:?}"));
        }
    }
    if !problems.is_empty() {
        return Err(StateDictError::Mismatch(problems.join("; ")));
    }
    for (name, t) in &own {
        t.copy_from(given[name.as_str()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Linear, Sequential, Tanh};

    #[test]
    fn round_trip_and_mismatches() {
        nabla_core::manual_seed(3);
        let a = Sequential::new()
            .add(Linear::new(3, 4))
            .add(Tanh)
            .add(Linear::new(4, 2));
        let b = Sequential::new()
            .add(Linear::new(3, 4))
            .add(Tanh)
            .add(Linear::new(4, 2));
        let path =
            std::env::temp_dir().join(format!("nabla-sd-{}.safetensors", std::process::id()));
        save_safetensors(&path, &state_dict(&a)).unwrap();
        let loaded = load_safetensors(&path).unwrap();
        let keys: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(keys, ["0.bias", "0.weight", "2.bias", "2.weight"]);
        load_state_dict(&b, &loaded).unwrap();
        let x = Tensor::randn([5, 3]);
        assert_eq!(
            a.forward(&x).unwrap().to_vec(),
            b.forward(&x).unwrap().to_vec()
        );

        let c = Sequential::new()
            .add(Linear::new(3, 5))
            .add(Tanh)
            .add(Linear::new(5, 2))
            .add(Linear::new(2, 2));
        let e = load_state_dict(&c, &loaded).unwrap_err().to_string();
        assert!(e.contains("missing key \"3.weight\""), "{e}");
        assert!(
            e.contains("\"0.weight\" has shape [4, 3] in the file, [5, 3] in the model"),
            "{e}"
        );
        std::fs::write(&path, b"\x08\0\0\0\0\0\0\0{}garbage").unwrap();
        assert!(load_safetensors(&path)
            .unwrap_err()
            .to_string()
            .contains("not a valid safetensors file"));
        std::fs::remove_file(&path).unwrap();
        assert!(load_safetensors(&path).is_err());
    }
}
