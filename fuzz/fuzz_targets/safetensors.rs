//! State-dict files: any bytes give tensors or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nabla_nn::state_dict::from_safetensors_bytes(data, "fuzz");
});
