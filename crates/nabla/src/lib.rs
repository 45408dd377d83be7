//! nabla: a deep-learning system in Rust.
//!
//! This facade re-exports the crates of the workspace: the tensor engine
//! ([`nabla_core`], at the top level), layers, losses and optimizers
//! ([`nn`], [`optim`]), data loading ([`data`]), training ([`train`]: the
//! `Trainer`, its callbacks and run directories) and pictures ([`explain`],
//! [`plot`], [`report`]). Most programs start with `use nabla::prelude::*;`.
//!
//! ```
//! use nabla::{Conv2dParams, Tensor};
//! # fn main() -> nabla::Result<()> {
//! nabla::manual_seed(1);
//! let x = Tensor::randn([64, 1, 28, 28]);
//! let w = Tensor::randn([6, 1, 5, 5]).requires_grad_(true);
//! let y = x
//!     .conv2d(&w, None, Conv2dParams::default().padding(2))? // [64, 6, 28, 28]
//!     .relu()?
//!     .max_pool2d(2)?; // [64, 6, 14, 14]
//! assert_eq!(y.shape(), &[64, 6, 14, 14]);
//! let loss = y.mean_all()?;
//! loss.backward()?;
//! assert_eq!(w.grad().unwrap().shape(), &[6, 1, 5, 5]);
//! println!("{}", w.grad().unwrap().narrow(0, 0, 1)?);
//! # Ok(())
//! # }
//! ```

pub use nabla_core::*;

/// Layers, losses, initialization, state dicts ([`nabla_nn`]).
pub mod nn {
    pub use nabla_nn::*;
}

/// Optimizers, learning-rate schedules and gradient clipping.
pub mod optim {
    pub use nabla_nn::optim::*;
    pub use nabla_nn::scheduler::*;
}

/// Attribution maps: saliency, SmoothGrad, integrated gradients, Grad-CAM.
pub mod explain {
    pub use nabla_vis::explain::*;
}

/// Pictures as PNG: line charts and training curves, filters, feature maps,
/// confusion matrices, image grids ([`nabla_vis::plot`], `canvas`, `curves`).
pub mod plot {
    pub use nabla_vis::canvas::*;
    pub use nabla_vis::curves::*;
    pub use nabla_vis::plot::*;
}

/// A self-contained HTML report builder.
pub mod report {
    pub use nabla_vis::report::*;
}

/// Training as a library: [`Trainer`](nabla_train::Trainer), callbacks,
/// run directories and checkpoints ([`nabla_train`]).
pub mod train {
    pub use nabla_train::*;
}

/// Data sets and loading ([`nabla_data`]).
pub mod data {
    pub use nabla_data::*;
}

/// What most training programs use.
pub mod prelude {
    pub use nabla_core::{manual_seed, no_grad, Conv2dParams, Device, Pool2d, Tensor};
    pub use nabla_nn::loss::{cross_entropy, mse_loss, Reduction};
    pub use nabla_nn::optim::{Adam, Optimizer, Sgd};
    pub use nabla_nn::{Conv2d, Linear, Module, Parameters, ReLU, Sequential};
    pub use nabla_train::{RunDir, Trainer};
}
