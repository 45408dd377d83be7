//! CSV tables: any text gives a data set or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nabla_data::csv::CsvDataset::parse(text, nabla_data::csv::TargetColumn::Last);
    }
});
