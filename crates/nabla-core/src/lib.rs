//! nabla-core: tensors on a device (f32, and bf16, f16, i64 held as such
//! and computed in f32), define-by-run reverse-mode autograd, and fast CPU
//! kernels.
//!
//! ```
//! use nabla_core::Tensor;
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).unwrap().requires_grad_(true);
//! let y = x.mul(&x).unwrap().sum_all().unwrap(); // Σ x²
//! y.backward().unwrap();
//! assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
//! ```

mod alloc;
pub mod autocast;
mod autograd;
pub mod backend;
mod device;
mod display;
mod dtype;
mod error;
pub mod gradcheck;
pub mod half;
pub mod io;
pub mod isa;
pub mod layout;
mod ops;
pub mod quant;
mod rng;
mod storage;
mod tensor;
pub mod threads;

pub use autograd::{is_grad_enabled, no_grad, Backward, NoGradGuard};
pub use device::Device;
pub use dtype::{DType, HostData};
pub use error::{Error, Result};
pub use isa::{check_isa, isa, Isa};
pub use layout::Layout;
pub use ops::{AttentionMask, AttentionParams, Conv2dParams, ConvTranspose2dParams, Pool2d};
pub use rng::{
    global_generator_state, manual_seed, set_global_generator_state, with_global_generator,
    Generator, GeneratorState,
};
pub use storage::{live_buffers, live_bytes};
pub use tensor::{ShapeArg, Tensor};
pub use threads::{in_pool, num_threads, set_num_threads};
