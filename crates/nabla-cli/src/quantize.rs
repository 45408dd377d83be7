//! `nabla quantize RUN`: the run's model with int8 Linear and recurrent
//! layers (dynamic quantization: int8 weights, activations quantized batch
//! by batch, a recurrent layer's hidden state step by step) and, with
//! `--calibrate N`, int8 convolutions (static quantization: each input's
//! range observed over N training batches, then fixed), written as
//! `RUN/model.int8.safetensors`; or (`--to bf16`, `f16`) its weights
//! rounded to 16 bits, `RUN/model.bf16.safetensors`. Either is compared
//! with the f32 model on the test set: size, accuracy, time.

use anyhow::{anyhow, bail, Result};
use nabla_core::half::HalfKind;
use nabla_core::quant::QParams;
use nabla_nn::modelfile::{build, load_spec};
use nabla_nn::quantized::save_quantized;
use nabla_nn::state_dict::{
    load_safetensors, load_state_dict, save_safetensors_as, state_dict, to_safetensors_bytes,
};
use nabla_nn::Parameters;
use nabla_train::say;

use crate::args::{QuantizeArgs, QuantizeTo};
use crate::common::{accuracy_and_time, usage};
use crate::inspect::{load_trained, thousands, INT8_WEIGHTS};

/// Images per calibration batch (`--calibrate N` runs N of them).
const CALIBRATION_BATCH: usize = 64;

/// Each layer's input parameters for static quantization: the range its
/// input takes over the first `batches` batches of the training set
/// (PyTorch's `MinMaxObserver`), mapped onto u8.
/// Also the number of images seen (the training set may hold fewer).
fn calibrate(t: &crate::inspect::Trained, batches: usize) -> Result<(Vec<Option<QParams>>, usize)> {
    let images = t.train_images()?;
    let n = images.shape()[0].min(batches.saturating_mul(CALIBRATION_BATCH));
    let chunks = (0..n)
        .step_by(CALIBRATION_BATCH)
        .map(|i| images.narrow(0, i, CALIBRATION_BATCH.min(n - i)))
        .collect::<nabla_core::Result<Vec<_>>>()?;
    // (the model is in evaluation mode: run() set it)
    let ranges = t.model.net.observe_inputs(chunks)?;
    let inputs = ranges
        .into_iter()
        .map(|(lo, hi)| Some(QParams::choose(lo, hi, 0, 255)))
        .collect();
    Ok((inputs, n))
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    if !a.run.is_dir() {
        bail!("{}: not a run directory", a.run.display());
    }
    if a.per_channel && a.to != QuantizeTo::Int8 {
        return Err(usage(
            "--per-channel sets int8 scales; it does not apply to --to bf16 or f16",
        ));
    }
    if a.calibrate.is_some() && a.to != QuantizeTo::Int8 {
        return Err(usage(
            "--calibrate quantizes convolutions to int8; it does not apply to --to bf16 or f16",
        ));
    }
    let t = load_trained(&a.run, None, None, None, false)?;
    if t.quantized {
        bail!("{}: the run's weights are already int8", a.run.display());
    }
    let (x, y, _) = t.test_tensors()?;
    let labels = y.to_vec();
    t.model.eval();
    let f32_file = to_safetensors_bytes(&state_dict(&t.model), None)?.len();
    let batch = a.batch_size as usize;
    let (f32_correct, f32_secs) = accuracy_and_time(&t.model, &x, &labels, batch)?;
    let n = labels.len();
    let (label, out, correct, secs) = match a.to {
        QuantizeTo::Int8 => {
            let (q, calibration) = match a.calibrate {
                None => (t.model.into_quantized(a.per_channel)?, String::new()),
                Some(_) if !t.model.layers.iter().any(|l| l.kind.starts_with("conv2d")) => {
                    let q = t.model.into_quantized(a.per_channel)?;
                    (q, "; no convolution to calibrate".to_string())
                }
                Some(batches) => {
                    let (inputs, images) = calibrate(&t, batches as usize)?;
                    let q = t.model.into_quantized_static(a.per_channel, &inputs)?;
                    let seen = match images.div_ceil(CALIBRATION_BATCH) {
                        b if b == batches as usize => format!("{b} batches of {CALIBRATION_BATCH}"),
                        _ => format!("the {images} training images"),
                    };
                    (q, format!("; convolutions' inputs calibrated on {seen}"))
                }
            };
            let mut layers: Vec<String> = vec![];
            for (name, _) in q.named_quantized() {
                let layer = name.split_once('.').map_or(name.as_str(), |(l, _)| l);
                if !layers.iter().any(|l| l == layer) {
                    layers.push(layer.to_string());
                }
            }
            if layers.is_empty() {
                bail!(
                    "{}: no layer of this model has an int8 form (Linear and recurrent layers do)",
                    a.run.display()
                );
            }
            let out = a.output.clone().unwrap_or_else(|| a.run.join(INT8_WEIGHTS));
            save_quantized(&out, &q)?;
            let scales = if a.per_channel {
                "a scale per neuron"
            } else {
                "a scale per layer"
            };
            let f32_convs: Vec<&str> = q
                .layers
                .iter()
                .filter(|l| l.kind.starts_with("conv2d") && !l.kind.ends_with("int8"))
                .map(|l| l.name.as_str())
                .collect();
            let kept = match (a.calibrate, f32_convs.is_empty()) {
                (_, true) => String::new(),
                (None, false) => " (convolutions stay f32 without --calibrate N)".to_string(),
                (Some(_), false) => format!(
                    " ({} f32: fewer than {} taps, where int8 is slower)",
                    f32_convs.join(", "),
                    nabla_nn::quantized_conv::MIN_TAPS
                ),
            };
            say!("int8 ({scales}{calibration}): {}{kept}", layers.join(", "));
            let (correct, secs) = accuracy_and_time(&q, &x, &labels, batch)?;
            ("int8", out, correct, secs)
        }
        QuantizeTo::Bf16 | QuantizeTo::F16 => {
            let (kind, label) = match a.to {
                QuantizeTo::Bf16 => (HalfKind::Bf16, "bf16"),
                _ => (HalfKind::F16, "f16"),
            };
            let out = a
                .output
                .clone()
                .unwrap_or_else(|| a.run.join(format!("model.{label}.safetensors")));
            save_safetensors_as(&out, &state_dict(&t.model), Some(kind))?;
            say!("{label}: every weight rounded to {label} (computed in f32 once loaded)");
            // the file read back, as eval will read it
            let (spec, source) = load_spec(&t.model_name)?;
            let back = build(&spec, &source, None)?;
            let weights = load_safetensors(&out).map_err(|e| anyhow!("{e}"))?;
            load_state_dict(&back, &weights).map_err(|e| anyhow!("{e}"))?;
            back.eval();
            let (correct, secs) = accuracy_and_time(&back, &x, &labels, batch)?;
            (label, out, correct, secs)
        }
    };
    let file = std::fs::metadata(&out)?.len() as usize;
    say!(
        "\n{:<6} {:>12} {:>14} {:>22}",
        "model",
        "file",
        "test accuracy",
        format!("forward, {} images", thousands(n))
    );
    for (name, bytes, correct, secs) in [
        ("f32", f32_file, f32_correct, f32_secs),
        (label, file, correct, secs),
    ] {
        say!(
            "{name:<6} {:>9.1} kB {:>13.2}% {:>20.3} s",
            bytes as f64 / 1e3,
            100.0 * correct as f64 / n as f64,
            secs
        );
    }
    let evaluate = match a.to {
        QuantizeTo::Int8 if a.output.is_none() => format!("nabla eval {} --int8", a.run.display()),
        _ => format!("nabla eval {}", out.display()),
    };
    say!(
        "\nwrote {} ({:.1}× smaller); `{evaluate}` evaluates it",
        out.display(),
        f32_file as f64 / file as f64,
    );
    Ok(())
}
