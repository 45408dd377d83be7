//! The buffer behind a tensor. Views (reshape, permute, narrow, expand) share
//! one storage and differ only in their [`Layout`](crate::Layout).
//!
//! The storage enum is the device seam: each op matches on it and calls the
//! backend's kernel. Only the CPU variant exists today; a CUDA variant slots in
//! beside it without changing anything above this crate.

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

/// A host buffer of f32 that is counted while alive.
#[derive(Debug)]
pub struct CpuStorage {
    data: Vec<f32>,
}

impl CpuStorage {
    pub fn new(data: Vec<f32>) -> Self {
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(data.len() * 4, Ordering::Relaxed);
        CpuStorage { data }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.data.len() * 4, Ordering::Relaxed);
    }
}

/// Tensor data on some device.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }
}
