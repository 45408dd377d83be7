//! IDX parsing (raw and gzip) must return a value or an error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nabla_data::idx::decode_idx(data);
});
