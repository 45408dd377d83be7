//! nabla-train: what sits on top of a trained model. For now the
//! [`explain`] module (attribution maps); the training loop moves here from
//! the CLI as the library grows.

pub mod explain;
