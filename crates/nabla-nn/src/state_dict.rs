//! State dicts as safetensors files, with PyTorch's keys and layouts: a
//! `state_dict()` saved from PyTorch with `safetensors.torch.save_file`
//! loads into the equivalent nabla model, and the other way round.
//!
//! Tensors keep their dtype both ways: f32, bf16, f16 and i64 are written
//! as `F32`, `BF16`, `F16` and `I64` and read back as such (a PyTorch bf16
//! state dict loads as bf16 tensors); other integer types widen to i64,
//! f64 narrows to f32 (nabla has no f64 tensors). Loading into a model
//! converts each tensor to its parameter's dtype.
//!
//! Loading checks everything before changing anything, and names every
//! missing key, unexpected key and shape mismatch in one error.

use std::collections::HashMap;
use std::path::Path;

use crate::Parameters;
use nabla_core::half::{Bf16, HalfKind, F16};
use nabla_core::{DType, Device, HostData, Tensor};
use safetensors::{Dtype, SafeTensors};

#[derive(Debug, thiserror::Error)]
pub enum StateDictError {
    // (the cause in the message, not as `source()`: printed with its
    // chain, it would appear twice)
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not a valid safetensors file: {msg}")]
    Format { path: String, msg: String },
    #[error("state dict does not fit the model: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
}

pub type Result<T> = std::result::Result<T, StateDictError>;

/// Parameters then buffers of `model`, with their names.
pub fn state_dict(model: &dyn Parameters) -> Vec<(String, Tensor)> {
    let mut all = model.named_parameters();
    all.extend(model.named_buffers());
    all
}

/// Serializes named tensors as safetensors bytes, each in its dtype
/// (little-endian).
pub fn to_safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    to_safetensors_bytes_as(tensors, metadata, None)
}

/// [`to_safetensors_bytes`] with the float values rounded to a 16-bit
/// format (`BF16` or `F16` tensors, which PyTorch loads as
/// `torch.bfloat16` and `torch.float16`), or each tensor kept in its
/// dtype (`None`). Integer tensors stay i64.
pub fn to_safetensors_bytes_as(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
    half: Option<HalfKind>,
) -> Result<Vec<u8>> {
    let entries = tensors
        .iter()
        .map(|(n, t)| {
            let dtype = match (half, t.dtype()) {
                (_, DType::I64) => DType::I64,
                (Some(HalfKind::Bf16), _) => DType::BF16,
                (Some(HalfKind::F16), _) => DType::F16,
                (None, own) => own,
            };
            let data = t.to_host_data().convert(dtype, "save")?;
            Ok((
                n.clone(),
                file_dtype(dtype),
                t.shape().to_vec(),
                data.to_le_bytes(),
            ))
        })
        .collect::<Result<_>>()?;
    serialize(entries, metadata)
}

/// The safetensors name of a dtype.
fn file_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::BF16 => Dtype::BF16,
        DType::F16 => Dtype::F16,
        DType::I64 => Dtype::I64,
    }
}

/// Raw tensors (name, dtype, shape, little-endian bytes) as safetensors
/// bytes: the one place a file's bytes are made.
pub(crate) fn serialize(
    entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let fail = |e: safetensors::SafeTensorError| StateDictError::Mismatch(e.to_string());
    let views = entries
        .iter()
        .map(|(n, d, s, b)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(fail)?;
    safetensors::serialize(views, metadata).map_err(fail)
}

/// `bytes` written to `path` atomically (temporary file, then rename).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    nabla_core::io::write_atomically(path, bytes).map_err(|err| StateDictError::Io {
        path: path.display().to_string(),
        err,
    })
}

/// A file's bytes, or an error naming it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| StateDictError::Io {
        path: path.display().to_string(),
        err,
    })
}

/// The header of a safetensors file (its metadata, and each tensor's
/// dtype, shape and place), read without reading the tensors: 8 bytes of
/// length, then that much JSON. A summary or a format check of a large
/// file reads kilobytes, not the whole file.
pub fn read_header(path: impl AsRef<Path>) -> Result<safetensors::tensor::Metadata> {
    use std::io::Read;
    let path = path.as_ref();
    let io = |err| StateDictError::Io {
        path: path.display().to_string(),
        err,
    };
    let bad = |msg: String| StateDictError::Format {
        path: path.display().to_string(),
        msg,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad(format!("{size} bytes: shorter than a header")))?;
    let len = u64::from_le_bytes(len);
    // (safetensors' own limit on a header: 100 MB)
    if len > size - 8 || len > 100_000_000 {
        return Err(bad(format!("a header of {len} bytes in a file of {size}")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("invalid header: {e}")))?;
    let end = header
        .tensors()
        .values()
        .map(|t| t.data_offsets.1)
        .max()
        .unwrap_or(0) as u64;
    if 8 + len + end != size {
        return Err(bad(format!(
            "{size} bytes, where the header describes {}: truncated or padded",
            8 + len + end
        )));
    }
    Ok(header)
}

/// Writes named tensors to `path` atomically (temporary file, then rename).
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<()> {
    save_safetensors_as(path, tensors, None)
}

/// [`save_safetensors`] in a 16-bit format (half the file; PyTorch loads
/// it as bfloat16 or float16 tensors), or f32 (`None`).
pub fn save_safetensors_as(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    half: Option<HalfKind>,
) -> Result<()> {
    write_file(
        path.as_ref(),
        &to_safetensors_bytes_as(tensors, None, half)?,
    )
}

/// Parses safetensors bytes into named tensors: f32, bf16, f16 and i64 as
/// they are, other integer and bool tensors as i64, f64 as f32.
pub fn from_safetensors_bytes(bytes: &[u8], source: &str) -> Result<Vec<(String, Tensor)>> {
    let bad = |msg: String| StateDictError::Format {
        path: source.to_string(),
        msg,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let halves = || {
            data.chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let values = match view.dtype() {
            Dtype::F32 => HostData::F32(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Dtype::F64 => HostData::F32(
                data.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
            ),
            Dtype::BF16 => HostData::BF16(halves().map(Bf16).collect()),
            Dtype::F16 => HostData::F16(halves().map(F16).collect()),
            // integer buffers (BatchNorm's num_batches_tracked), masks
            Dtype::I64 => HostData::I64(
                data.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
            ),
            Dtype::I32 => HostData::I64(
                data.chunks_exact(4)
                    .map(|b| i64::from(i32::from_le_bytes(b.try_into().unwrap())))
                    .collect(),
            ),
            Dtype::I16 => HostData::I64(halves().map(|h| i64::from(h as i16)).collect()),
            Dtype::I8 => HostData::I64(data.iter().map(|&b| i64::from(b as i8)).collect()),
            Dtype::U8 | Dtype::BOOL => HostData::I64(data.iter().map(|&b| i64::from(b)).collect()),
            other => {
                return Err(bad(format!(
                    "tensor {name:?} has unsupported dtype {other:?}"
                )))
            }
        };
        out.push((
            name,
            Tensor::from_host_data(values, view.shape(), Device::Cpu)?,
        ));
    }
    // safetensors stores keys sorted; keep a stable order
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads a safetensors file into named tensors (dtypes as
/// [`from_safetensors_bytes`] says).
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    from_safetensors_bytes(&read_file(path)?, &path.display().to_string())
}

/// Copies `tensors` into the model's parameters and buffers by name.
/// Fails, changing nothing, if any key is missing, unexpected, or of
/// another shape; the error lists every problem.
pub fn load_state_dict(model: &dyn Parameters, tensors: &[(String, Tensor)]) -> Result<()> {
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
    use crate::{Linear, Module, Sequential, Tanh};

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

    /// PyTorch saves half-precision, double and integer tensors too: each
    /// is read in its dtype (f16, bf16, i64) or the nearest nabla has (f64
    /// as f32, int8 and bool as i64), with the values it stands for.
    #[test]
    fn other_dtypes_load_in_theirs() {
        use safetensors::tensor::TensorView;
        // f16 bit patterns: 1, −2, 0.5, the largest finite, the smallest
        // subnormal, −0, +∞
        let halves: [u16; 7] = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00];
        let f16: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        let bf16: Vec<u8> = [0x3f80u16, 0xc040]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let f64s: Vec<u8> = [0.25f64, -3.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let i64s: Vec<u8> = [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i8s = vec![0xffu8, 5];
        let views = [
            ("half", TensorView::new(Dtype::F16, vec![7], &f16).unwrap()),
            (
                "bf16",
                TensorView::new(Dtype::BF16, vec![2], &bf16).unwrap(),
            ),
            (
                "double",
                TensorView::new(Dtype::F64, vec![2], &f64s).unwrap(),
            ),
            ("long", TensorView::new(Dtype::I64, vec![2], &i64s).unwrap()),
            ("int8", TensorView::new(Dtype::I8, vec![2], &i8s).unwrap()),
            (
                "mask",
                TensorView::new(Dtype::BOOL, vec![2], &[1u8, 0][..]).unwrap(),
            ),
        ];
        let bytes =
            safetensors::serialize(views.iter().map(|(n, v)| (*n, v.clone())), None).unwrap();
        let got = from_safetensors_bytes(&bytes, "test").unwrap();
        let tensor = |name: &str| got.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let value = |name: &str| tensor(name).to_vec();
        let dtypes = ["half", "bf16", "double", "long", "int8", "mask"].map(|n| tensor(n).dtype());
        use nabla_core::DType::{BF16, F16 as Half, F32, I64};
        assert_eq!(dtypes, [Half, BF16, F32, I64, I64, I64]);
        let half = value("half");
        assert_eq!(half[..4], [1.0, -2.0, 0.5, 65504.0]);
        assert_eq!(half[4], 2f32.powi(-24));
        assert!(half[5] == 0.0 && half[5].is_sign_negative());
        assert_eq!(half[6], f32::INFINITY);
        assert!(nabla_core::half::F16(0x7e00).to_f32().is_nan());
        assert_eq!(value("bf16"), [1.0, -3.0]);
        // and written back in 16 bits: the same values (they are exact)
        let named: Vec<(String, Tensor)> = got
            .iter()
            .filter(|(n, _)| n == "half" || n == "bf16")
            .cloned()
            .collect();
        for kind in [HalfKind::Bf16, HalfKind::F16] {
            let bytes = to_safetensors_bytes_as(&named, None, Some(kind)).unwrap();
            let back = from_safetensors_bytes(&bytes, "test").unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let dtype = st.tensor("bf16").unwrap().dtype();
            assert_eq!(
                dtype,
                if kind == HalfKind::Bf16 {
                    Dtype::BF16
                } else {
                    Dtype::F16
                }
            );
            assert_eq!(back[0].1.to_vec(), [1.0, -3.0]);
            if kind == HalfKind::F16 {
                assert_eq!(back[1].1.to_vec()[..4], [1.0, -2.0, 0.5, 65504.0]);
            }
        }
        assert_eq!(value("double"), [0.25, -3.5]);
        assert_eq!(value("long"), [7.0, -1.0]);
        assert_eq!(value("int8"), [-1.0, 5.0]);
        assert_eq!(value("mask"), [1.0, 0.0]);
    }

    /// `model.to_dtype(BF16)` halves the weights in place: the forward
    /// reads them as the f32 they stand for, the state dict saves them as
    /// BF16, an optimizer refuses to step them; back in f32 it trains.
    #[test]
    fn a_model_converted_to_bf16() {
        use crate::optim::{Optimizer, Sgd};
        use nabla_core::DType;
        nabla_core::manual_seed(4);
        let model = Sequential::new()
            .add(Linear::new(3, 4))
            .add(Tanh)
            .add(Linear::new(4, 2));
        let x = Tensor::randn([5, 3]);
        let rounded = Sequential::new()
            .add(Linear::new(3, 4))
            .add(Tanh)
            .add(Linear::new(4, 2));
        for ((_, p), (_, r)) in model
            .named_parameters()
            .iter()
            .zip(rounded.named_parameters())
        {
            r.copy_from(&p.to_dtype(DType::BF16).unwrap()).unwrap();
        }
        let mut sgd = Sgd::new(model.parameters(), 0.1);
        model.to_dtype(DType::BF16).unwrap();
        assert!(model.parameters().iter().all(|p| p.dtype() == DType::BF16));
        let y = model.forward(&x).unwrap();
        assert_eq!(y.to_vec(), rounded.forward(&x).unwrap().to_vec());
        let bytes = to_safetensors_bytes(&state_dict(&model), None).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert!(st.tensors().iter().all(|(_, v)| v.dtype() == Dtype::BF16));
        y.sum_all().unwrap().backward().unwrap();
        let e = sgd.step().unwrap_err().to_string();
        assert!(e.contains("this tensor is bf16"), "{e}");
        model.to_dtype(DType::F32).unwrap();
        sgd.step().unwrap();
        assert!(model.to_dtype(DType::I64).is_err());
    }

    /// The header alone gives the metadata and the tensors' places; a
    /// truncated file, a wild length or a file too short are errors.
    #[test]
    fn headers_read_without_the_tensors() {
        let dir = std::env::temp_dir().join(format!("nabla-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let t = vec![("w".to_string(), Tensor::ones([3, 2]))];
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        let bytes = to_safetensors_bytes(&t, Some(meta)).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let header = read_header(&path).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["k"], "v");
        assert_eq!(header.tensors()["w"].data_offsets, (0, 24));
        for (cut, what) in [(bytes.len() - 1, "truncated"), (5, "shorter than a header")] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = read_header(&path).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("w.safetensors"), "{e}");
        }
        let mut wild = bytes.clone();
        wild[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, &wild).unwrap();
        assert!(read_header(&path)
            .unwrap_err()
            .to_string()
            .contains("a header of"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
