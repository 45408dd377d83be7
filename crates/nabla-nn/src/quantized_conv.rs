//! Static int8 convolution: PyTorch's `torch.ao.nn.quantized.Conv2d`
//! with an f32 output. The weight is stored as signed 8-bit values (one
//! scale, or one per output channel), the bias in f32, and the input is
//! quantized to unsigned 8 bits with a scale and zero point fixed in
//! advance from calibration batches (static quantization:
//! [`Sequential::observe_inputs`](crate::Sequential::observe_inputs), then
//! [`QParams::choose`] over the range seen, as PyTorch's `MinMaxObserver`
//! does, over all 256 levels: the int8 kernels handle the `VPMADDUBSW`
//! saturation that makes fbgemm keep 128). The product runs on the Linear
//! layers' int8 kernels (`nabla_core::quant::QuantizedConv2dWeight`).
//!
//! In a state dict the input's parameters are two one-value buffers,
//! `input_scale` and `input_zero_point`, beside the int8 `weight` and its
//! scales.

use std::sync::RwLock;

use nabla_core::quant::{QParams, QTensor, QuantizedConv2dWeight};
use nabla_core::{Conv2dParams, Error, Result, Tensor};

use crate::{Conv2d, Module, Parameters};

/// Taps (input channels × kernel height × width) below which a
/// convolution keeps its f32 form when a model is quantized: the int8
/// form quantizes and lowers each image to bytes and turns the result
/// around, which costs more than a product that short saves (LeNet's
/// conv1, 25 taps: 0.39× f32's speed; conv2, 150 taps: 1.38×).
pub const MIN_TAPS: usize = 64;

/// The buffers that hold a static convolution's input parameters.
pub const INPUT_PARAMS: [&str; 2] = ["input_scale", "input_zero_point"];

/// A convolution with int8 weights and statically quantized input.
pub struct QuantizedConv2d {
    weight: RwLock<QuantizedConv2dWeight>,
    input_scale: Tensor,
    input_zero_point: Tensor,
    pub bias: Option<Tensor>,
}

impl QuantizedConv2d {
    /// From a quantized `[O, C, KH, KW]` weight (groups 1), the
    /// convolution's parameters, the input's fixed parameters and an
    /// optional f32 bias `[O]`.
    pub fn new(
        weight: QTensor,
        params: Conv2dParams,
        input: QParams,
        bias: Option<Tensor>,
    ) -> Result<QuantizedConv2d> {
        let weight = QuantizedConv2dWeight::new(weight, params, input)?;
        Ok(QuantizedConv2d {
            weight: RwLock::new(weight),
            input_scale: Tensor::from_vec(vec![input.scale], [1])?,
            input_zero_point: Tensor::from_vec(vec![input.zero_point as f32], [1])?,
            bias,
        })
    }

    /// `conv` quantized: its weight symmetric per tensor or per output
    /// channel, its bias kept, its input quantized with `input`.
    pub fn from_conv(conv: &Conv2d, input: QParams, per_channel: bool) -> Result<QuantizedConv2d> {
        let weight = QTensor::quantize(&conv.weight, per_channel)?;
        let bias = conv.bias.as_ref().map(Tensor::detach);
        QuantizedConv2d::new(weight, conv.params, input, bias)
    }

    /// The input's scale and zero point, as the buffers hold them (a
    /// loaded state dict sets them).
    pub fn input_params(&self) -> Result<QParams> {
        let (scale, zero_point) = (self.input_scale.item()?, self.input_zero_point.item()?);
        if zero_point.fract() != 0.0 {
            return Err(Error::Arg {
                op: "quantized conv2d",
                msg: format!("input zero point {zero_point} is not a whole number"),
            });
        }
        Ok(QParams {
            scale,
            zero_point: zero_point as i32,
        })
    }

    /// `[O, C, KH, KW]`.
    fn shape(&self) -> Vec<usize> {
        self.weight.read().unwrap().weight().shape
    }
}

impl Parameters for QuantizedConv2d {
    /// The input's parameters and the bias: saved and loaded, never trained.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut b = vec![
            ("input_scale".to_string(), self.input_scale.clone()),
            (
                "input_zero_point".to_string(),
                self.input_zero_point.clone(),
            ),
        ];
        b.extend(self.bias.iter().map(|t| ("bias".to_string(), t.clone())));
        b
    }

    fn named_quantized(&self) -> Vec<(String, QTensor)> {
        vec![("weight".into(), self.weight.read().unwrap().weight())]
    }

    fn set_quantized(&self, name: &str, value: QTensor) -> Result<()> {
        let shape = self.shape();
        if name != "weight" || value.shape != shape {
            return Err(Error::Arg {
                op: "load quantized",
                msg: format!(
                    "QuantizedConv2d has a weight {shape:?}, not {name:?} {:?}",
                    value.shape
                ),
            });
        }
        let mut weight = self.weight.write().unwrap();
        *weight = QuantizedConv2dWeight::new(value, weight.params(), weight.input_params())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let s = self.shape();
        let p = self.weight.read().unwrap().params();
        format!(
            "QuantizedConv2d({}, {}, kernel={}x{}, stride={:?}, padding={:?}, int8)",
            s[1], s[0], s[2], s[3], p.stride, p.padding
        )
    }
}

impl Module for QuantizedConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let input = self.input_params()?;
        if input != self.weight.read().unwrap().input_params() {
            self.weight.write().unwrap().set_input_params(input)?;
        }
        let weight = self.weight.read().unwrap();
        crate::layers::images(x, |x| match &self.bias {
            Some(b) => b.read_data(|b| weight.forward(x, Some(b))),
            None => weight.forward(x, None),
        })
    }
}

impl Conv2d {
    /// This layer with int8 weights and its input quantized with `input`
    /// ([`QuantizedConv2d::from_conv`]).
    pub fn quantized(&self, input: QParams, per_channel: bool) -> Result<QuantizedConv2d> {
        QuantizedConv2d::from_conv(self, input, per_channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::{load_quantized, save_quantized, static_inputs};
    use crate::{Flatten, Linear, ReLU, Sequential};
    use nabla_core::{Conv2dParams, Generator};

    /// LeNet's first layers, with a convolution of 150 taps and one of 25.
    fn net(seed: u64) -> Sequential {
        nabla_core::manual_seed(seed);
        let mut s = Sequential::new();
        s.push_named(
            "conv1",
            Box::new(Conv2d::with(
                1,
                6,
                5,
                Conv2dParams::default().padding(2),
                true,
            )),
        );
        s.push_named("relu1", Box::new(ReLU));
        s.push_named("conv2", Box::new(Conv2d::new(6, 16, 5)));
        s.push_named("relu2", Box::new(ReLU));
        s.push_named("flatten", Box::new(Flatten));
        s.push_named("fc", Box::new(Linear::new(16 * 6 * 6, 10)));
        s
    }

    fn images(n: usize, seed: u64) -> Tensor {
        Tensor::randn_with([n, 1, 10, 10], &mut Generator::new(seed))
    }

    /// The int8 convolution equals the f32 convolution of its quantized
    /// operands read back (`(q − z)·s`), bias added: the only error is
    /// the quantization's.
    #[test]
    fn equals_the_convolution_of_its_quantized_operands() {
        let conv = Conv2d::with(6, 16, 5, Conv2dParams::default().padding(1), true);
        let x = Tensor::randn_with([3, 6, 9, 8], &mut Generator::new(3));
        let input = QParams::choose(-2.5, 3.0, 0, 255);
        for per_channel in [false, true] {
            let q = conv.quantized(input, per_channel).unwrap();
            let got = q.forward(&x).unwrap().to_vec();
            let xq: Vec<f32> = x
                .to_vec()
                .iter()
                .map(|&v| (input.quantize(v, 0, 255) - input.zero_point) as f32 * input.scale)
                .collect();
            let xq = Tensor::from_vec(xq, x.shape()).unwrap();
            let wq = q.named_quantized()[0].1.dequantize().unwrap();
            let want = xq
                .conv2d(&wq, conv.bias.as_ref(), conv.params)
                .unwrap()
                .to_vec();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{i}: {g} vs {w}");
            }
        }
    }

    /// Calibration sees each layer's input range; only the convolution
    /// long enough to gain becomes int8 (besides the Linear, dynamic); the
    /// model saves and loads into a fresh one with the same outputs, its
    /// input parameters included.
    #[test]
    fn calibrated_models_quantize_save_and_load() {
        let batches = [images(8, 1), images(8, 2)];
        let f32_net = net(7);
        f32_net.eval();
        let ranges = f32_net.observe_inputs(batches.iter().cloned()).unwrap();
        let lo = batches
            .iter()
            .flat_map(|b| b.to_vec())
            .fold(f32::INFINITY, f32::min);
        assert_eq!(ranges[0].0, lo, "the first layer's input is the images");
        assert!(ranges[2].0 >= 0.0, "conv2 reads ReLU's output");
        let inputs: Vec<Option<QParams>> = ranges
            .iter()
            .map(|&(a, b)| Some(QParams::choose(a, b, 0, 255)))
            .collect();
        let x = images(4, 3);
        let want = f32_net.forward(&x).unwrap().to_vec();
        let q = f32_net.into_quantized_static(false, &inputs).unwrap();
        let kinds: Vec<String> = q.layers().iter().map(|l| l.describe()).collect();
        assert!(kinds[0].starts_with("Conv2d"), "{kinds:?}");
        assert!(kinds[2].starts_with("QuantizedConv2d(6, 16"), "{kinds:?}");
        assert!(kinds[5].starts_with("QuantizedLinear"), "{kinds:?}");
        let got = q.forward(&x).unwrap().to_vec();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 0.05 * scale, "{g} vs {w}");
        }

        let dir = std::env::temp_dir().join(format!("nabla-qconv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.safetensors");
        save_quantized(&path, &q).unwrap();
        let fresh = net(99);
        let found = static_inputs(&path, &fresh).unwrap();
        assert_eq!(
            found.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, false, true, false, false, false]
        );
        let loaded = fresh.into_quantized_static(false, &found).unwrap();
        load_quantized(&path, &loaded).unwrap();
        assert_eq!(loaded.forward(&x).unwrap().to_vec(), got);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Grouped convolutions and those of fewer than MIN_TAPS taps have no
    /// static form; a non-finite activation stops calibration.
    #[test]
    fn short_or_grouped_convolutions_stay_f32_and_nan_stops_calibration() {
        let q = QParams::choose(0.0, 1.0, 0, 255);
        assert!(Conv2d::new(1, 6, 5).quantize_static(q, false).is_none());
        let grouped = Conv2d::with(8, 8, 3, Conv2dParams::default().groups(2), true);
        assert!(grouped.quantize_static(q, false).is_none());
        assert!(Conv2d::new(8, 8, 3).quantize_static(q, false).is_some());
        let mut bad = images(2, 4).to_vec();
        bad[17] = f32::NAN;
        let bad = Tensor::from_vec(bad, [2, 1, 10, 10]).unwrap();
        let err = net(1).observe_inputs([bad]).unwrap_err().to_string();
        assert!(err.contains("conv1") && err.contains("not finite"), "{err}");
    }
}
