pub use nabla_core::*;
