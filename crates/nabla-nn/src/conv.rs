//! 2-d convolution layer, `nn.Conv2d(in, out, kernel, stride, padding,
//! dilation, groups, bias)`. Weight `[out, in/groups, kh, kw]`, bias `[out]`;
//! the op itself (formula, shapes, gradients) is `Tensor::conv2d`.

use nabla_core::{Conv2dParams, Result, Tensor};

use crate::init::default_weight_and_bias;
use crate::Module;

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

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::layers::images(x, |x| {
            x.conv2d(&self.weight, self.bias.as_ref(), self.params)
        })
    }

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
