//! nabla: a deep-learning system in Rust.
//!
//! This facade re-exports the crates of the workspace: the tensor engine
//! ([`nabla_core`], at the top level) and data loading ([`data`]).

pub use nabla_core::*;

/// Data sets and loading ([`nabla_data`]).
pub mod data {
    pub use nabla_data::*;
}
