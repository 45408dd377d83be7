//! The buffer behind a tensor. Views (reshape, permute, narrow, expand) share
//! one storage and differ only in their [`Layout`](crate::Layout).
//!
//! [`Storage`] has a variant per backend (`backend/mod.rs`); the CPU and the
//! reference backends both keep their values in host memory.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Device;

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

/// The element type of a storage. Only f32 is computed today; the seam
/// names the others so that storages and kernels for them slot in (bf16 and
/// f16 halves, int8 with a scale, 64-bit integer indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
        }
    }
}

/// A host buffer of f32 that is counted while alive.
#[derive(Debug)]
pub struct HostBuffer {
    data: Vec<f32>,
}

impl HostBuffer {
    pub fn new(data: Vec<f32>) -> Self {
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(data.len() * 4, Ordering::Relaxed);
        HostBuffer { data }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.data.len() * 4, Ordering::Relaxed);
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
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Reference(_) => Device::Reference,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.host().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }

    /// The values of a host storage (both backends here keep them in host
    /// memory; a device backend's storage has none).
    pub fn host(&self) -> &[f32] {
        match self {
            Storage::Cpu(b) | Storage::Reference(b) => b.as_slice(),
        }
    }

    pub fn host_mut(&mut self) -> &mut [f32] {
        match self {
            Storage::Cpu(b) | Storage::Reference(b) => b.as_mut_slice(),
        }
    }
}
