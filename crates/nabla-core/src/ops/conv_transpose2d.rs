//! Transposed convolution (PyTorch's `conv_transpose2d`, the
//! "deconvolution" of DCGAN's generator): the adjoint of a convolution,
//! which spreads each input pixel over a window of the output.
//!
//! x `[N, C_in, H, W]`, weight `[C_in, C_out/groups, KH, KW]`, bias
//! `[C_out]` → y `[N, C_out, H_out, W_out]` with
//! `H_out = (H − 1)·s − 2p + d·(KH − 1) + output_padding + 1`:
//!
//! `y[n, o, i·s − p + a·d, j·s − p + b·d] += Σ_c x[n, c, i, j] · w[c, o, a, b]`
//! (within a group), plus the bias.
//!
//! It is exactly the input gradient of `conv2d` from `[N, C_out, H_out,
//! W_out]` to `[N, C_in, H, W]` with the same weight, so every backend runs
//! it with its convolution kernels: forward = conv2d's input-gradient
//! kernel; `dx` = conv2d of `dy` (the convolution itself); `dw` = conv2d's
//! weight-gradient kernel with x in the place of the output gradient and
//! `dy` in the place of the images; `db = Σ dy` over N, H, W.

use crate::autocast::{autocast, product_precision};
use crate::backend::ConvGeom;
use crate::{Error, Result, Tensor};

/// Stride, padding, output padding, dilation and groups of a transposed
/// convolution: `ConvTranspose2dParams::default().stride(2).padding(1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    /// Extra rows and columns at the bottom and right of the output (to
    /// pick among the output sizes a strided convolution maps to one
    /// input size); less than the stride or the dilation.
    pub output_padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl ConvTranspose2dParams {
    pub fn stride(self, s: usize) -> Self {
        ConvTranspose2dParams {
            stride: (s, s),
            ..self
        }
    }
    pub fn padding(self, p: usize) -> Self {
        ConvTranspose2dParams {
            padding: (p, p),
            ..self
        }
    }
    pub fn output_padding(self, p: usize) -> Self {
        ConvTranspose2dParams {
            output_padding: (p, p),
            ..self
        }
    }
    pub fn dilation(self, d: usize) -> Self {
        ConvTranspose2dParams {
            dilation: (d, d),
            ..self
        }
    }
    pub fn groups(self, g: usize) -> Self {
        ConvTranspose2dParams { groups: g, ..self }
    }
}

/// The geometry of the convolution whose input gradient this is: from
/// the output `[N, C_out, H_out, W_out]` back to x's `[H, W]`.
fn check(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: &ConvTranspose2dParams,
) -> Result<(ConvGeom, usize)> {
    let op = "conv_transpose2d";
    let (n, c_in, h, wd) = x.dims4().map_err(|_| {
        Error::shape(
            op,
            format!("expected input of shape [N, C, H, W], got {:?}", x.shape()),
        )
    })?;
    let (wc, og, kh, kw) = w.dims4().map_err(|_| {
        Error::shape(
            op,
            format!(
                "expected weight of shape [in, out/groups, kh, kw], got {:?}",
                w.shape()
            ),
        )
    })?;
    let g = p.groups;
    let positive = [
        p.stride.0,
        p.stride.1,
        p.dilation.0,
        p.dilation.1,
        g,
        kh,
        kw,
    ];
    if positive.contains(&0) {
        return Err(Error::arg(
            op,
            format!("stride, dilation, groups and the kernel must be positive: {p:?}"),
        ));
    }
    if wc != c_in || c_in % g != 0 {
        return Err(Error::shape(
            op,
            format!(
                "weight {:?} takes {wc} input channels in {g} groups, input {:?} has {c_in}",
                w.shape(),
                x.shape()
            ),
        ));
    }
    let c_out = og * g;
    if let Some(b) = bias {
        if b.shape() != [c_out] {
            return Err(Error::shape(
                op,
                format!("bias must have shape [{c_out}], got {:?}", b.shape()),
            ));
        }
    }
    let fits = |op_: usize, s: usize, d: usize| op_ < s || op_ < d;
    if !fits(p.output_padding.0, p.stride.0, p.dilation.0)
        || !fits(p.output_padding.1, p.stride.1, p.dilation.1)
    {
        return Err(Error::arg(
            op,
            format!("output padding must be smaller than either stride or dilation: {p:?}"),
        ));
    }
    let out = |len: usize, s: usize, pad: usize, d: usize, k: usize, extra: usize| {
        ((len as isize - 1) * s as isize - 2 * pad as isize
            + (d * (k - 1)) as isize
            + extra as isize
            + 1)
        .max(0) as usize
    };
    let oh = out(
        h,
        p.stride.0,
        p.padding.0,
        p.dilation.0,
        kh,
        p.output_padding.0,
    );
    let ow = out(
        wd,
        p.stride.1,
        p.padding.1,
        p.dilation.1,
        kw,
        p.output_padding.1,
    );
    if h == 0 || wd == 0 || oh == 0 || ow == 0 {
        return Err(Error::shape(
            op,
            format!(
                "input {:?} with {p:?} and a {kh}x{kw} kernel gives an empty output {oh}x{ow}",
                x.shape()
            ),
        ));
    }
    let geom = ConvGeom {
        n,
        c: c_out,
        h: oh,
        w: ow,
        kh,
        kw,
        sh: p.stride.0,
        sw: p.stride.1,
        ph: p.padding.0,
        pw: p.padding.1,
        dh: p.dilation.0,
        dw: p.dilation.1,
        oh: h,
        ow: wd,
    };
    Ok((geom, c_in))
}

impl Tensor {
    /// Transposed convolution of `self` `[N, C_in, H, W]` with `weight`
    /// `[C_in, C_out/groups, KH, KW]`; see the module docs.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: ConvTranspose2dParams,
    ) -> Result<Tensor> {
        let (g, c_in) = check(self, weight, bias, &p)?;
        for t in [Some(weight), bias].into_iter().flatten() {
            super::same_device("conv_transpose2d", self, t)?;
        }
        let groups = p.groups;
        let (x, w) = (self.contiguous()?.detach(), weight.contiguous()?.detach());
        let be = self.backend();
        let out = super::with_views("conv_transpose2d", &[&x, &w], |v| {
            be.conv2d_backward_input(v[0].0, v[1].0, &g, c_in, groups)
        })?;
        let shape = [g.n, g.c, g.h, g.w];
        let mut y = Tensor::from_storage(out, &shape);
        if let Some(b) = bias {
            y = y.add(&b.detach().reshape([1, g.c, 1, 1])?)?;
        }
        let inputs: Vec<&Tensor> = [self, weight].into_iter().chain(bias).collect();
        // the backward products at the forward's precision (autocast.rs)
        let precision = product_precision();
        Ok(
            y.attach("ConvTranspose2DBackward", &inputs, move |dy, inputs| {
                autocast(precision, || {
                    let dy = dy.contiguous()?;
                    let want_dw = inputs[1].requires_grad();
                    let mut grads = vec![None, None];
                    if inputs[0].requires_grad() || want_dw {
                        // the convolution of dy: x's gradient, and dy lowered as
                        // the weight gradient needs it
                        let (dx, saved) = super::with_views("conv_transpose2d", &[&dy, &w], |v| {
                            be.conv2d(v[0].0, v[1].0, None, &g, c_in, groups, want_dw)
                        })?;
                        if inputs[0].requires_grad() {
                            grads[0] = Some(Tensor::from_storage(dx, &[g.n, c_in, g.oh, g.ow]));
                        }
                        if want_dw {
                            let (dw, _) = x.with_view("conv_transpose2d", |(xs, _)| {
                                be.conv2d_backward_params(xs, saved.as_ref(), &g, c_in, groups)
                            })?;
                            grads[1] = dw.map(|dw| Tensor::from_storage(dw, inputs[1].shape()));
                        }
                    }
                    if inputs.len() == 3 {
                        grads.push(
                            inputs[2]
                                .requires_grad()
                                .then(|| dy.sum(&[0, 2, 3], false))
                                .transpose()?,
                        );
                    }
                    Ok(grads)
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::ConvTranspose2dParams;
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    /// The definition, scattered pixel by pixel.
    fn naive(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        p: ConvTranspose2dParams,
    ) -> (Vec<usize>, Vec<f32>) {
        let (n, c, h, wd) = x.dims4().unwrap();
        let (_, og, kh, kw) = w.dims4().unwrap();
        let (xv, wv, bv) = (x.to_vec(), w.to_vec(), b.to_vec());
        let size = |l: usize, s: usize, pad: usize, d: usize, k: usize, e: usize| {
            (l - 1) * s + d * (k - 1) + e + 1 - 2 * pad
        };
        let oh = size(
            h,
            p.stride.0,
            p.padding.0,
            p.dilation.0,
            kh,
            p.output_padding.0,
        );
        let ow = size(
            wd,
            p.stride.1,
            p.padding.1,
            p.dilation.1,
            kw,
            p.output_padding.1,
        );
        let (g, cg) = (p.groups, c / p.groups);
        let o = og * g;
        let mut y = vec![0f32; n * o * oh * ow];
        for ni in 0..n {
            for ci in 0..c {
                let group = ci / cg;
                for i in 0..h {
                    for j in 0..wd {
                        let v = xv[((ni * c + ci) * h + i) * wd + j];
                        for oo in 0..og {
                            for a in 0..kh {
                                for bb in 0..kw {
                                    let r = (i * p.stride.0 + a * p.dilation.0) as isize
                                        - p.padding.0 as isize;
                                    let s = (j * p.stride.1 + bb * p.dilation.1) as isize
                                        - p.padding.1 as isize;
                                    if r < 0 || s < 0 || r >= oh as isize || s >= ow as isize {
                                        continue;
                                    }
                                    let oc = group * og + oo;
                                    let wgt = wv[((ci * og + oo) * kh + a) * kw + bb];
                                    y[((ni * o + oc) * oh + r as usize) * ow + s as usize] +=
                                        v * wgt;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (k, v) in y.iter_mut().enumerate() {
            *v += bv[(k / (oh * ow)) % o];
        }
        (vec![n, o, oh, ow], y)
    }

    fn cases() -> Vec<([usize; 4], [usize; 4], ConvTranspose2dParams)> {
        let p = ConvTranspose2dParams::default;
        vec![
            ([2, 3, 4, 5], [3, 2, 3, 3], p()),
            ([1, 4, 3, 3], [4, 3, 4, 4], p().stride(2).padding(1)),
            ([2, 2, 3, 4], [2, 2, 3, 2], p().stride(2).output_padding(1)),
            (
                [1, 4, 3, 3],
                [4, 1, 3, 3],
                p().groups(2).dilation(2).padding(1),
            ),
        ]
    }

    #[test]
    fn matches_the_definition() {
        for (k, (xs, ws, p)) in cases().into_iter().enumerate() {
            let (x, w) = (rand_input(&xs, k as u64), rand_input(&ws, 10 + k as u64));
            let out = ws[1] * p.groups;
            let b = rand_input(&[out], 20 + k as u64);
            let y = x.conv_transpose2d(&w, Some(&b), p).unwrap();
            let (shape, want) = naive(&x, &w, &b, p);
            assert_eq!(y.shape(), shape, "{p:?}");
            for (a, b) in y.to_vec().iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{p:?}: {a} against {b}");
            }
        }
    }

    #[test]
    fn gradcheck_conv_transpose2d() {
        for (k, (xs, ws, p)) in cases().into_iter().enumerate() {
            let out = ws[1] * p.groups;
            let inputs = [
                rand_input(&xs, k as u64),
                rand_input(&ws, 10 + k as u64),
                rand_input(&[out], 20 + k as u64),
            ];
            gradcheck(
                |v: &[Tensor]| v[0].conv_transpose2d(&v[1], Some(&v[2]), p),
                &inputs,
                Default::default(),
            )
            .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = Tensor::zeros([1, 2, 3, 3]);
        let p = ConvTranspose2dParams::default();
        let e = x
            .conv_transpose2d(&Tensor::zeros([3, 2, 3, 3]), None, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes 3 input channels"), "{e}");
        let e = x
            .conv_transpose2d(
                &Tensor::zeros([2, 2, 3, 3]),
                None,
                p.stride(2).output_padding(2),
            )
            .unwrap_err();
        assert!(e.to_string().contains("output padding"), "{e}");
        let e = x
            .conv_transpose2d(&Tensor::zeros([2, 2, 3, 3]), Some(&Tensor::zeros([3])), p)
            .unwrap_err();
        assert!(e.to_string().contains("bias"), "{e}");
    }
}
