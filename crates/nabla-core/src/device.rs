//! Where a tensor's data lives. The device is a runtime value, not a type
//! parameter, so one model type runs anywhere and the CLI can pick with a flag.

use std::fmt;

use crate::{Error, Result};

/// A compute device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory, the fast CPU kernels.
    #[default]
    Cpu,
    /// Host memory, the reference backend: plain loops with f64
    /// accumulation, one thread. Slow and obviously right: the oracle every
    /// other backend is tested against.
    Reference,
    /// An NVIDIA GPU by ordinal. Not available in this build yet.
    Cuda(usize),
}

impl Device {
    /// Whether a CUDA device can be used by this build on this machine.
    pub fn cuda_is_available() -> bool {
        false
    }

    /// `Cuda(0)` when a GPU is available, else `Cpu` (PyTorch's
    /// `"cuda" if torch.cuda.is_available() else "cpu"`).
    pub fn best_available() -> Device {
        if Self::cuda_is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }
    }

    /// Checks that the device can hold tensors now.
    pub fn ensure_available(self) -> Result<()> {
        match self {
            Device::Cpu | Device::Reference => Ok(()),
            Device::Cuda(_) => Err(Error::Device {
                device: self.to_string(),
                reason: "this build of nabla has no CUDA backend yet; use the CPU".into(),
            }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Reference => write!(f, "reference"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "reference" => Ok(Device::Reference),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(i) => Ok(Device::Cuda(i)),
                None => Err(Error::arg(
                    "device",
                    format!("unknown device {s:?} (expected cpu, reference, cuda or cuda:N)"),
                )),
            },
        }
    }
}
