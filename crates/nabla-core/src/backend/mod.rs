//! The backend seam (in progress): kernels for each device.

pub mod cpu;
