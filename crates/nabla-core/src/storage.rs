//! The buffer behind a tensor. Views (reshape, permute, narrow, expand) share
//! one storage and differ only in their [`Layout`](crate::Layout).
//!
//! [`Storage`] has a variant per backend (`backend/mod.rs`); the CPU and the
//! reference backends both keep their values in host memory, as a
//! [`HostData`] of one [`DType`] (`dtype.rs`).
//!
//! The kernels compute in f32. A tensor of another dtype reaches a kernel
//! through [`Storage::as_f32`]: bf16 and f16 widen exactly, i64 widens when
//! every value is an integer f32 holds exactly (|v| ≤ 2²⁴), else the op is
//! refused.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dtype::{DType, HostData};
use crate::layout::Layout;
use crate::{Device, Result};

static LIVE_BUFFERS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Number of tensor buffers alive in this process (all devices). Used to show
/// that training frees its graphs: the count stays flat step after step.
pub fn live_buffers() -> usize {
    LIVE_BUFFERS.load(Ordering::Relaxed)
}

/// Bytes held by live tensor buffers.
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A host buffer that is counted while alive.
#[derive(Debug)]
pub struct HostBuffer {
    data: HostData,
}

impl HostBuffer {
    /// A buffer of f32 values, the kernels' type.
    pub fn new(data: Vec<f32>) -> Self {
        HostBuffer::typed(HostData::F32(data))
    }

    /// A buffer of any dtype.
    pub fn typed(data: HostData) -> Self {
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(data.len() * data.dtype().size_in_bytes(), Ordering::Relaxed);
        HostBuffer { data }
    }

    pub fn data(&self) -> &HostData {
        &self.data
    }

    /// The f32 values. Kernels only ever see f32 buffers: the op layer
    /// widens other dtypes first ([`Storage::as_f32`]), so another dtype
    /// here is a bug in nabla, not in the caller.
    pub fn as_slice(&self) -> &[f32] {
        match &self.data {
            HostData::F32(v) => v,
            other => panic!("a kernel was handed a {} buffer", other.dtype()),
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        match &mut self.data {
            HostData::F32(v) => v,
            other => panic!("a kernel was handed a {} buffer", other.dtype()),
        }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        let bytes = self.data.len() * self.data.dtype().size_in_bytes();
        LIVE_BYTES.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Tensor data on some device: one variant per backend.
#[derive(Debug)]
pub enum Storage {
    /// Host memory computed by the CPU kernels.
    Cpu(HostBuffer),
    /// Host memory computed by the reference loops.
    Reference(HostBuffer),
}

impl Storage {
    /// A storage on a host device (both backends here are) holding `data`.
    pub fn on_host(device: Device, data: HostData) -> Result<Storage> {
        device.ensure_available()?;
        Ok(match device {
            Device::Reference => Storage::Reference(HostBuffer::typed(data)),
            _ => Storage::Cpu(HostBuffer::typed(data)),
        })
    }

    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Reference(_) => Device::Reference,
        }
    }

    fn buffer(&self) -> &HostBuffer {
        match self {
            Storage::Cpu(b) | Storage::Reference(b) => b,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.buffer().data().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        self.buffer().data().dtype()
    }

    /// The values in their own dtype.
    pub fn data(&self) -> &HostData {
        self.buffer().data()
    }

    pub(crate) fn data_mut(&mut self) -> &mut HostData {
        match self {
            Storage::Cpu(b) | Storage::Reference(b) => &mut b.data,
        }
    }

    /// This storage as the kernels of `op` read it through `view`: itself
    /// when it holds f32, else an f32 copy on the same device (see the
    /// module notes).
    pub fn as_f32(&self, op: &'static str, view: &Layout) -> Result<Option<Storage>> {
        let data = self.data();
        if data.dtype() == DType::F32 {
            return Ok(None);
        }
        let wide = HostData::F32(data.to_f32_exact(op, view)?);
        Storage::on_host(self.device(), wide).map(Some)
    }

    /// The f32 values of a host storage (both backends here keep them in
    /// host memory; a device backend's storage has none).
    pub fn host(&self) -> &[f32] {
        self.buffer().as_slice()
    }

    pub fn host_mut(&mut self) -> &mut [f32] {
        match self {
            Storage::Cpu(b) | Storage::Reference(b) => b.as_mut_slice(),
        }
    }
}
