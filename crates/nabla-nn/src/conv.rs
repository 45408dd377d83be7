//! 2-d convolution layer, `nn.Conv2d(in, out, kernel, stride, padding,
//! dilation, groups, bias)`. Weight `[out, in/groups, kh, kw]`, bias `[out]`;
//! the op itself (formula, shapes, gradients) is `Tensor::conv2d`.

use nabla_core::{Conv2dParams, ConvTranspose2dParams, Result, Tensor};

use crate::init::{default_weight_and_bias, fans, kaiming_uniform, uniform};
use crate::{Module, Parameters};

pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A square `kernel`×`kernel` convolution with stride 1, no padding.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Conv2d {
        Conv2d::with(
            in_channels,
            out_channels,
            kernel,
            Conv2dParams::default(),
            true,
        )
    }

    /// Any stride, padding, dilation, groups; with or without bias.
    pub fn with(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        params: Conv2dParams,
        bias: bool,
    ) -> Conv2d {
        let groups = params.groups.max(1);
        let shape = [out_channels, in_channels / groups, kernel, kernel];
        let (weight, bias) = default_weight_and_bias(&shape, bias);
        Conv2d {
            weight,
            bias,
            params,
        }
    }
}

impl Parameters for Conv2d {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }

    /// The int8 form where it pays: groups 1 and at least
    /// [`MIN_TAPS`](crate::quantized_conv::MIN_TAPS) taps.
    fn quantize_static(
        &self,
        input: nabla_core::quant::QParams,
        per_channel: bool,
    ) -> Option<Result<Box<dyn Module>>> {
        let s = self.weight.shape();
        if self.params.groups != 1 || s[1] * s[2] * s[3] < crate::quantized_conv::MIN_TAPS {
            return None;
        }
        Some(
            self.quantized(input, per_channel)
                .map(|q| Box::new(q) as Box<dyn Module>),
        )
    }

    fn describe(&self) -> String {
        let s = self.weight.shape();
        let p = &self.params;
        format!(
            "Conv2d({}, {}, kernel={}x{}, stride={:?}, padding={:?})",
            s[1] * p.groups,
            s[0],
            s[2],
            s[3],
            p.stride,
            p.padding
        )
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::layers::images(x, |x| {
            x.conv2d(&self.weight, self.bias.as_ref(), self.params)
        })
    }
}

/// `nn.ConvTranspose2d(in, out, kernel, stride, padding, output_padding,
/// groups, bias, dilation)`: weight `[in, out/groups, kh, kw]`, bias
/// `[out]`, PyTorch's default initialization (its fan-in is
/// `out/groups·kh·kw`, the weight's second dim); the op is
/// `Tensor::conv_transpose2d`.
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: ConvTranspose2dParams,
}

impl ConvTranspose2d {
    /// A square `kernel`×`kernel` transposed convolution, stride 1.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> ConvTranspose2d {
        ConvTranspose2d::with(
            in_channels,
            out_channels,
            kernel,
            ConvTranspose2dParams::default(),
            true,
        )
    }

    /// Any stride, padding, output padding, dilation, groups; with or
    /// without bias.
    pub fn with(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        params: ConvTranspose2dParams,
        bias: bool,
    ) -> ConvTranspose2d {
        let groups = params.groups.max(1);
        let shape = [in_channels, out_channels / groups, kernel, kernel];
        let weight = kaiming_uniform(&shape, 5f32.sqrt()).requires_grad_(true);
        let bound = 1.0 / (fans(&shape).0 as f32).sqrt();
        let bias = bias.then(|| uniform(&[out_channels], bound).requires_grad_(true));
        ConvTranspose2d {
            weight,
            bias,
            params,
        }
    }
}

impl Parameters for ConvTranspose2d {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }

    fn describe(&self) -> String {
        let s = self.weight.shape();
        let p = &self.params;
        format!(
            "ConvTranspose2d({}, {}, kernel={}x{}, stride={:?}, padding={:?})",
            s[0],
            s[1] * p.groups,
            s[2],
            s[3],
            p.stride,
            p.padding
        )
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::layers::images(x, |x| {
            x.conv_transpose2d(&self.weight, self.bias.as_ref(), self.params)
        })
    }
}
