//! Lower precisions against PyTorch: bf16 and f16 rounding, and int8
//! layers (fbgemm, the x86 engine). Fixtures from `tools/gen_fixtures.py
//! halves quantized quantized_lstm`.

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

/// A statically quantized convolution against PyTorch's: calibration over
/// the same batches gives PyTorch's MinMaxObserver's scale and zero point,
/// the weight PyTorch's integers and scales per channel, the output the
/// exact value of those integers, and PyTorch's own quantized convolution
/// (output requantized to 8 bits) within one of its output steps.
#[test]
fn static_quantized_conv_matches_pytorch() {
    use nabla_core::Conv2dParams;
    use nabla_nn::{Conv2d, Sequential};
    let (t, _) = load("quantized_conv");
    let conv = Conv2d {
        weight: t["weight"].clone(),
        bias: Some(t["bias"].clone()),
        params: Conv2dParams::default().padding(1),
    };
    let calib = &t["calib"];
    let batches: Vec<_> = (0..3).map(|i| calib.narrow(0, 8 * i, 8).unwrap()).collect();
    let net = Sequential::new().add(conv);
    let (lo, hi) = net.observe_inputs(batches).unwrap()[0];
    let input = QParams::choose(lo, hi, 0, 255);
    let torch_input = t["x_qparams"].to_vec();
    assert_eq!(
        (input.scale, input.zero_point as f32),
        (torch_input[0], torch_input[1]),
        "input scale and zero point"
    );
    let conv = &net.layers()[0];
    let q = conv.quantize_static(input, true).unwrap().unwrap();
    let (_, qw) = q.named_quantized().remove(0);
    let ints: Vec<f32> = qw.data.iter().map(|&v| v as f32).collect();
    assert_eq!(ints, t["qweight"].to_vec(), "weight integers");
    assert_eq!(qw.scales, t["scales"].to_vec(), "weight scales");
    let ours = q.forward(&t["x"]).unwrap().to_vec();
    assert_close("quantized conv", &ours, &t["exact"].to_vec(), 1e-5, 1e-5);
    let step = t["out_scale"].to_vec()[0];
    for (i, (a, b)) in ours.iter().zip(t["out"].to_vec()).enumerate() {
        assert!(
            (a - b).abs() <= 0.5 * step + 1e-5,
            "{i}: ours {a}, PyTorch's {b} (step {step})"
        );
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

/// bf16 and f16 rounding of edge values (zeros, infinities, NaN, the
/// largest and smallest values, subnormals, ties) and 2,000 random values
/// over 26 orders of magnitude: PyTorch's bits exactly.
#[test]
fn half_precision_rounds_as_pytorch() {
    use nabla_core::half::{Bf16, F16};
    let (t, _) = load("halves");
    let x = t["x"].to_vec();
    let (bf, f16) = (t["bf16_bits"].to_vec(), t["f16_bits"].to_vec());
    for (i, &v) in x.iter().enumerate() {
        let (b, h) = (Bf16::from_f32(v), F16::from_f32(v));
        if v.is_nan() {
            // a NaN's bits are an implementation's choice (PyTorch's own
            // scalar and vector paths give 0x7FC0 and 0xFFFF): a NaN
            assert!(b.to_f32().is_nan() && h.to_f32().is_nan());
            continue;
        }
        assert_eq!(b.0 as f32, bf[i], "bf16 of {v:e} ({:#010x})", v.to_bits());
        assert_eq!(h.0 as f32, f16[i], "f16 of {v:e} ({:#010x})", v.to_bits());
    }
}

/// A state dict PyTorch saved in bfloat16, float16 and int64 loads in those
/// dtypes with PyTorch's bits (nabla's own rounding of the f32 originals
/// gives the same), integers past 2^24 exact; a Linear holding the halves
/// gives PyTorch's logits, cross-entropy takes the int64 targets, and the
/// tensors save back in their dtypes.
#[test]
fn pytorch_dtypes_load_as_they_are() {
    use nabla_core::DType;
    use nabla_nn::state_dict::{from_safetensors_bytes, to_safetensors_bytes};
    let (t, _) = load("dtypes");
    let dtypes = ["weight", "bias", "targets", "big"].map(|k| t[k].dtype());
    assert_eq!(dtypes, [DType::BF16, DType::F16, DType::I64, DType::I64]);
    for (k, dtype) in [("weight", DType::BF16), ("bias", DType::F16)] {
        let ours = t[&format!("{k}_f32")].to_dtype(dtype).unwrap();
        assert_eq!(ours.to_host_data(), t[k].to_host_data(), "{k}");
    }
    let big = t["big"].to_vec_i64().unwrap();
    assert_eq!(big, [(1 << 24) + 1, (1 << 53) + 1, -(1 << 40) - 3]);

    let linear = Linear {
        weight: t["weight"].clone(),
        bias: Some(t["bias"].clone()),
    };
    let logits = linear.forward(&t["x"]).unwrap();
    assert_close(
        "logits",
        &logits.to_vec(),
        &t["logits"].to_vec(),
        1e-5,
        1e-6,
    );

    let logits = t["logits"].clone().requires_grad_(true);
    let loss = nabla_nn::loss::cross_entropy(&logits, &t["targets"]).unwrap();
    assert_close("loss", &loss.to_vec(), &t["loss"].to_vec(), 1e-6, 1e-6);
    loss.backward().unwrap();
    let grad = logits.grad().unwrap().to_vec();
    assert_close("grad", &grad, &t["grad_logits"].to_vec(), 1e-5, 1e-7);

    let named: Vec<(String, nabla_core::Tensor)> = ["weight", "bias", "big"]
        .map(|k| (k.to_string(), t[k].clone()))
        .into();
    let back =
        from_safetensors_bytes(&to_safetensors_bytes(&named, None).unwrap(), "saved").unwrap();
    for (name, tensor) in &back {
        assert_eq!(tensor.to_host_data(), t[name].to_host_data(), "{name}");
    }
}
