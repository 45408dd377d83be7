//! What the PyTorch fixture tests share: loading a fixture (tensors and
//! metadata) and comparing values.
#![allow(dead_code)] // (each test file uses its own share)

use std::collections::HashMap;

use nabla_core::Tensor;
use nabla_nn::state_dict::load_safetensors;

pub fn path(name: &str) -> String {
    format!(
        "{}/../../tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    )
}

pub fn load(name: &str) -> (HashMap<String, Tensor>, HashMap<String, String>) {
    let tensors = load_safetensors(path(name)).unwrap().into_iter().collect();
    let bytes = std::fs::read(path(name)).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    (tensors, header.metadata().clone().unwrap_or_default())
}

pub fn assert_close(what: &str, ours: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= atol + rtol * b.abs(),
            "{what}[{i}]: ours {a} vs torch {b}"
        );
    }
}

/// Shapes equal and every value within 1e-5 absolute + 1e-4 relative.
pub fn close_tensors(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    assert_close(what, &a.to_vec(), &b.to_vec(), 1e-4, 1e-5);
}

/// The fixture's `param.`-prefixed tensors under their PyTorch names.
pub fn params(t: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    t.iter()
        .filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone())))
        .collect()
}
