//! Int8 layers against PyTorch's (fbgemm, the x86 engine): fixtures from
//! `tools/gen_fixtures.py quantized`.

mod common;

use common::{assert_close, load};
use nabla_core::quant::{QParams, QTensor};
use nabla_core::Isa;
use nabla_nn::{Linear, Module, QuantizedLinear};

/// PyTorch's dynamically quantized Linear (activations on 8 bits): the
/// same weight integers and scales, the same activation scale and zero
/// point, and outputs to f32 rounding, on every int8 path this CPU has.
#[test]
fn dynamic_quantized_linear_matches_pytorch() {
    for (name, per_channel) in [
        ("quantized_linear", false),
        ("quantized_linear_per_channel", true),
    ] {
        let (t, _) = load(name);
        let linear = Linear {
            weight: t["weight"].clone(),
            bias: Some(t["bias"].clone()),
        };
        let q = QTensor::quantize(&linear.weight, per_channel).unwrap();
        let ints: Vec<f32> = q.data.iter().map(|&v| v as f32).collect();
        assert_eq!(ints, t["qweight"].to_vec(), "{name}: weight integers");
        assert_eq!(q.scales, t["scales"].to_vec(), "{name}: weight scales");
        let x = &t["x"];
        let act = QParams::for_activations(&x.to_vec());
        let torch_act = t["x_qparams"].to_vec();
        assert_eq!(
            (act.scale, act.zero_point as f32),
            (torch_act[0], torch_act[1]),
            "{name}: activation scale and zero point"
        );
        for isa in Isa::ALL {
            if !nabla_core::isa::int8_supported(isa) {
                continue;
            }
            let w = nabla_core::quant::QuantizedLinearWeight::with_isa(q.clone(), isa).unwrap();
            let ours = t["bias"].read_data(|b| w.forward(x, Some(b))).unwrap();
            assert_close(name, &ours.to_vec(), &t["out"].to_vec(), 1e-5, 1e-5);
        }
        // the layer as a model uses it
        let layer = QuantizedLinear::from_linear(&linear, per_channel).unwrap();
        let ours = layer.forward(x).unwrap();
        assert_close(name, &ours.to_vec(), &t["out"].to_vec(), 1e-5, 1e-5);
    }
}

/// A dynamically quantized LSTM against the same computation in PyTorch's
/// quantized ops: the sequence's input projection at once, then each step's
/// int8 hidden product and the cell.
#[test]
fn dynamic_quantized_lstm_matches_pytorch() {
    use nabla_nn::rnn::{Recurrent, RnnConfig};
    use nabla_nn::state_dict::load_state_dict;
    let (t, _) = load("quantized_lstm");
    let lstm = Recurrent::lstm(RnnConfig {
        batch_first: true,
        ..RnnConfig::new(6, 8)
    });
    load_state_dict(&lstm, &common::params(&t)).unwrap();
    let q = lstm.quantized(false).unwrap();
    let ours = q.forward(&t["x"]).unwrap();
    assert_eq!(ours.shape(), t["out"].shape());
    // (nabla's σ and tanh are within 3e-7 of the exact ones: here every
    // h quantizes to PyTorch's integers, and the outputs agree to 1e-6)
    assert_close(
        "quantized lstm",
        &ours.to_vec(),
        &t["out"].to_vec(),
        1e-5,
        1e-5,
    );
}
