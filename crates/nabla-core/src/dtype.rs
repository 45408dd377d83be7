//! Element types: [`DType`] names them, [`HostData`] holds values of one
//! in host memory and converts between them.
//!
//! A tensor of bf16 or f16 holds half the bytes of f32; one of i64 holds
//! integers exactly past 2²⁴ (labels, indices). Conversions round to
//! nearest, ties to even (`half.rs`); a float becomes an i64 only when it is
//! an integer. Views, copies, device moves, printing, state dicts and the
//! index arguments of ops (`gather`, `index_select`, cross-entropy's
//! targets) keep the dtype; the kernels compute in f32 (`storage.rs`).

use std::fmt;

use crate::half::{Bf16, F16};
use crate::layout::Layout;
use crate::{Error, Result};

/// The element type of a tensor (PyTorch's `torch.float32`, `bfloat16`,
/// `float16`, `int64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    BF16,
    F16,
    I64,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::I64 => 8,
        }
    }

    /// A number for the dtype (kept in an atomic beside a storage).
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> DType {
        [DType::F32, DType::BF16, DType::F16, DType::I64][usize::from(code)]
    }

    /// Whether values of this type are floating point (and may need a
    /// gradient).
    pub fn is_float(self) -> bool {
        self != DType::I64
    }

    /// The name PyTorch prints after `torch.`: `float32`, `bfloat16`, ...
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            DType::I64 => "int64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I64 => "i64",
        })
    }
}

/// The largest integer below which every integer is an f32: 2²⁴.
const F32_EXACT_INT: i64 = 1 << 24;

/// Values of one dtype in host memory.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    BF16(Vec<Bf16>),
    F16(Vec<F16>),
    I64(Vec<i64>),
}

impl HostData {
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::BF16(_) => DType::BF16,
            HostData::F16(_) => DType::F16,
            HostData::I64(_) => DType::I64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::BF16(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32: exact for f32, bf16 and f16; an i64 rounds to
    /// the nearest f32 past 2²⁴ (as PyTorch's `.float()` does).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v.clone(),
            HostData::BF16(v) => v.iter().map(|h| h.to_f32()).collect(),
            HostData::F16(v) => v.iter().map(|h| h.to_f32()).collect(),
            HostData::I64(v) => v.iter().map(|&i| i as f32).collect(),
        }
    }

    /// [`to_f32`](Self::to_f32), without a copy when they are f32.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v,
            other => other.to_f32(),
        }
    }

    /// The values as f32 for a kernel of `op` that reads the elements of
    /// `view`, refused where that would change one of them (an i64 past
    /// 2²⁴; values outside the view do not matter).
    pub fn to_f32_exact(&self, op: &'static str, view: &Layout) -> Result<Vec<f32>> {
        if let HostData::I64(v) = self {
            let mut first_big = None;
            view.for_each_offset(|o| {
                if first_big.is_none() && v[o].abs() > F32_EXACT_INT {
                    first_big = Some(v[o]);
                }
            });
            if let Some(big) = first_big {
                return Err(Error::DType {
                    op,
                    msg: format!(
                        "computes in f32, and the i64 value {big} has no exact f32 \
                         (integers are exact up to 2^24 = {F32_EXACT_INT})"
                    ),
                });
            }
        }
        Ok(self.to_f32())
    }

    /// The values as i64: exact for i64; a float must be an integer in
    /// i64's range (a NaN or 0.5 has no i64), and is refused naming `op`.
    pub fn into_i64(self, op: &'static str) -> Result<Vec<i64>> {
        if let HostData::I64(v) = self {
            return Ok(v);
        }
        self.into_f32()
            .into_iter()
            .map(|x| {
                // 2^63 is an f32; every integer f32 below it is an i64
                if x.fract() == 0.0 && x.abs() < 9.223_372e18 {
                    Ok(x as i64)
                } else {
                    Err(Error::DType {
                        op,
                        msg: format!("{x} is not an integer an i64 holds"),
                    })
                }
            })
            .collect()
    }

    /// The values converted to `dtype` (themselves when they have it):
    /// floats round to nearest, ties to even; a float becomes an i64 only
    /// when it is an integer (`op` names the refusal otherwise).
    pub fn convert(self, dtype: DType, op: &'static str) -> Result<HostData> {
        if dtype == self.dtype() {
            return Ok(self);
        }
        let wide = self.into_f32();
        Ok(match dtype {
            DType::F32 => HostData::F32(wide),
            DType::BF16 => HostData::BF16(wide.into_iter().map(Bf16::from_f32).collect()),
            DType::F16 => HostData::F16(wide.into_iter().map(F16::from_f32).collect()),
            DType::I64 => HostData::I64(HostData::F32(wide).into_i64(op)?),
        })
    }

    /// The elements of the view `layout` in row-major order (a copy).
    pub fn gather(&self, layout: &Layout) -> HostData {
        fn pick<T: Copy>(v: &[T], layout: &Layout) -> Vec<T> {
            if layout.is_contiguous() && layout.numel() > 0 {
                // (a state dict's tensors, a batch's labels: one copy)
                let at = layout.offset();
                return v[at..at + layout.numel()].to_vec();
            }
            let mut out = Vec::with_capacity(layout.numel());
            layout.for_each_offset(|o| out.push(v[o]));
            out
        }
        match self {
            HostData::F32(v) => HostData::F32(pick(v, layout)),
            HostData::BF16(v) => HostData::BF16(pick(v, layout)),
            HostData::F16(v) => HostData::F16(pick(v, layout)),
            HostData::I64(v) => HostData::I64(pick(v, layout)),
        }
    }

    /// The rows `ids` of values laid out `[outer, size, inner]` from
    /// position `at`, in order (`index_select` along the middle dim).
    pub fn select_rows(&self, at: usize, dims: (usize, usize, usize), ids: &[usize]) -> HostData {
        fn pick<T: Copy>(v: &[T], at: usize, dims: (usize, usize, usize), ids: &[usize]) -> Vec<T> {
            let (outer, size, inner) = dims;
            let mut out = Vec::with_capacity(outer * ids.len() * inner);
            for o in 0..outer {
                for &i in ids {
                    let s = at + (o * size + i) * inner;
                    out.extend_from_slice(&v[s..s + inner]);
                }
            }
            out
        }
        match self {
            HostData::F32(v) => HostData::F32(pick(v, at, dims, ids)),
            HostData::BF16(v) => HostData::BF16(pick(v, at, dims, ids)),
            HostData::F16(v) => HostData::F16(pick(v, at, dims, ids)),
            HostData::I64(v) => HostData::I64(pick(v, at, dims, ids)),
        }
    }

    /// Writes `src[k]` (of this dtype) at position `at`.
    pub(crate) fn set_from(&mut self, at: usize, src: &HostData, k: usize) {
        match (self, src) {
            (HostData::F32(d), HostData::F32(s)) => d[at] = s[k],
            (HostData::BF16(d), HostData::BF16(s)) => d[at] = s[k],
            (HostData::F16(d), HostData::F16(s)) => d[at] = s[k],
            (HostData::I64(d), HostData::I64(s)) => d[at] = s[k],
            (d, s) => panic!("set_from: {} into {}", s.dtype(), d.dtype()),
        }
    }

    /// The values as little-endian bytes (what safetensors stores).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            HostData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::BF16(v) => v.iter().flat_map(|x| x.0.to_le_bytes()).collect(),
            HostData::F16(v) => v.iter().flat_map(|x| x.0.to_le_bytes()).collect(),
            HostData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}
