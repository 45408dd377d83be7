//! 2-d convolution (cross-correlation, as PyTorch's `conv2d`).
//!
//! Shapes: x `[N, C, H, W]`, weight `[O, C/G, KH, KW]`, bias `[O]`,
//! y `[N, O, OH, OW]` with `OH = (H + 2·ph − dh·(KH−1) − 1) / sh + 1`.
//! `y[n,o,i,j] = b[o] + Σ_{c∈group(o),ki,kj} w[o,c,ki,kj] · x[n, c, i·sh + ki·dh − ph, j·sw + kj·dw − pw]`.
//!
//! Lowered to GEMMs (im2col, on the CPU: `backend/cpu/conv/`), per image n and group g:
//! forward `y_n = W · cols_n`; backward `dW = Σ_n dy_n · cols_nᵀ`,
//! `dcols_n = Wᵀ · dy_n` then col2im, `db = Σ_{n,i,j} dy`. Each gradient is
//! computed only if its input needs it (the images of a CNN never do).

use crate::autocast::{autocast, product_precision};
use crate::backend::ConvGeom;
use crate::{Error, Result, Tensor};

/// Stride, padding, dilation and groups of a convolution; PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
    /// PyTorch's `padding='same'` (stride 1 only): the output as large as
    /// the input, `dh·(KH−1)` rows of zeros in all, half before and the
    /// rest (one more when odd) after; `padding` is then not used.
    pub same: bool,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            same: false,
        }
    }
}

impl Conv2dParams {
    pub fn stride(self, s: usize) -> Self {
        Conv2dParams {
            stride: (s, s),
            ..self
        }
    }
    pub fn padding(self, p: usize) -> Self {
        Conv2dParams {
            padding: (p, p),
            ..self
        }
    }
    pub fn dilation(self, d: usize) -> Self {
        Conv2dParams {
            dilation: (d, d),
            ..self
        }
    }
    pub fn groups(self, g: usize) -> Self {
        Conv2dParams { groups: g, ..self }
    }
    /// `padding='same'`: the output keeps the input's height and width.
    pub fn same(self) -> Self {
        Conv2dParams { same: true, ..self }
    }
    /// The output's height and width for an input of `(h, w)` and a kernel
    /// of `(kh, kw)`: `(h + 2·pad − dil·(k − 1) − 1) / stride + 1` each, or
    /// the input's with `same`; None when the kernel does not fit.
    pub fn output_size(
        &self,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
    ) -> Option<(usize, usize)> {
        if self.same {
            return Some((h, w));
        }
        Some((
            ConvGeom::out_size(h, kh, self.stride.0, self.padding.0, self.dilation.0)?,
            ConvGeom::out_size(w, kw, self.stride.1, self.padding.1, self.dilation.1)?,
        ))
    }
}

fn check(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<ConvGeom> {
    let (n, c, h, wd) = x.dims4().map_err(|_| {
        Error::shape(
            "conv2d",
            format!("expected input of shape [N, C, H, W], got {:?}", x.shape()),
        )
    })?;
    let (o, cg, kh, kw) = w.dims4().map_err(|_| {
        Error::shape(
            "conv2d",
            format!(
                "expected weight of shape [out, in/groups, kh, kw], got {:?}",
                w.shape()
            ),
        )
    })?;
    let g = p.groups;
    if g == 0 || p.stride.0 == 0 || p.stride.1 == 0 || p.dilation.0 == 0 || p.dilation.1 == 0 {
        return Err(Error::arg(
            "conv2d",
            format!("stride, dilation and groups must be positive: {p:?}"),
        ));
    }
    if c % g != 0 || o % g != 0 || cg * g != c {
        return Err(Error::shape(
            "conv2d",
            format!(
                "weight {:?} expects {} input channels ({cg} per group × {g} groups), input {:?} has {c}",
                w.shape(),
                cg * g,
                x.shape()
            ),
        ));
    }
    if let Some(b) = bias {
        if b.shape() != [o] {
            return Err(Error::shape(
                "conv2d",
                format!("bias must have shape [{o}], got {:?}", b.shape()),
            ));
        }
    }
    let oh = ConvGeom::out_size(h, kh, p.stride.0, p.padding.0, p.dilation.0);
    let ow = ConvGeom::out_size(wd, kw, p.stride.1, p.padding.1, p.dilation.1);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(Error::shape(
            "conv2d",
            format!(
                "kernel {kh}x{kw} (dilation {:?}) is larger than the padded input {}x{} (input {:?}, padding {:?})",
                p.dilation,
                h + 2 * p.padding.0,
                wd + 2 * p.padding.1,
                x.shape(),
                p.padding
            ),
        ));
    };
    Ok(ConvGeom {
        n,
        c,
        h,
        w: wd,
        kh,
        kw,
        sh: p.stride.0,
        sw: p.stride.1,
        ph: p.padding.0,
        pw: p.padding.1,
        dh: p.dilation.0,
        dw: p.dilation.1,
        oh,
        ow,
    })
}

impl Tensor {
    /// `padding='same'` as symmetric padding of ⌈total/2⌉; when the total is
    /// odd that pads one row (column) too many in front, whose output row
    /// is dropped, leaving PyTorch's extra row of zeros after.
    fn conv2d_same(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        if p.stride != (1, 1) {
            return Err(Error::arg(
                "conv2d",
                format!("padding 'same' needs stride 1, as in PyTorch: {p:?}"),
            ));
        }
        let symmetric = Conv2dParams { same: false, ..p };
        let &[_, _, kh, kw] = weight.shape() else {
            // (the usual check names the bad weight)
            return self.conv2d(weight, bias, symmetric);
        };
        let total = |k: usize, d: usize| d * k.saturating_sub(1);
        let (th, tw) = (total(kh, p.dilation.0), total(kw, p.dilation.1));
        let padded = Conv2dParams {
            padding: (th.div_ceil(2), tw.div_ceil(2)),
            ..symmetric
        };
        let mut y = self.conv2d(weight, bias, padded)?;
        for (dim, t) in [(2, th), (3, tw)] {
            if t % 2 == 1 {
                y = y.narrow(dim, 1, y.shape()[dim as usize] - 1)?;
            }
        }
        Ok(y)
    }

    /// Images of no rows or no columns, padded enough for outputs: these
    /// see only zeros, so they are the bias, and the input and weight get
    /// zero gradients (the kernels assume at least one row and column).
    fn conv2d_of_padding(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        g: &ConvGeom,
    ) -> Result<Tensor> {
        let o = weight.shape()[0];
        let (be, plane) = (self.backend(), g.oh * g.ow);
        let y = match bias {
            Some(b) => {
                // each output channel's plane holds its bias
                let b = b.reshape([1, o, 1, 1])?.detach();
                let shape = [g.n, o, g.oh, g.ow];
                let zero = Tensor::from_storage(be.full(g.n * o * plane, 0.0), &shape);
                zero.add(&b)?.detach()
            }
            None => Tensor::from_storage(be.full(g.n * o * plane, 0.0), &[g.n, o, g.oh, g.ow]),
        };
        let inputs: Vec<&Tensor> = [self, weight].into_iter().chain(bias).collect();
        Ok(y.attach("ConvolutionBackward", &inputs, |dy, inputs| {
            let zeros = |t: &Tensor| t.requires_grad().then(|| t.zeros_like());
            let db = inputs
                .get(2)
                .map(|_| dy.sum(&[0, 2, 3], false))
                .transpose()?;
            Ok(vec![zeros(&inputs[0]), zeros(&inputs[1]), db]
                .into_iter()
                .take(inputs.len())
                .collect())
        }))
    }

    /// Convolution of `self` `[N, C, H, W]` with `weight` `[O, C/groups, KH, KW]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        if p.same {
            return self.conv2d_same(weight, bias, p);
        }
        let g = check(self, weight, bias, &p)?;
        let (groups, o) = (p.groups, weight.shape()[0]);
        for t in [Some(weight), bias].into_iter().flatten() {
            super::same_device("conv2d", self, t)?;
        }
        if g.h == 0 || g.w == 0 {
            return self.conv2d_of_padding(weight, bias, &g);
        }
        let x = self.contiguous()?;
        let w = weight.contiguous()?.detach();
        let b = bias.map(|b| b.contiguous()).transpose()?;
        // The images are saved (as the backend likes them) only when the
        // weight gradient needs them.
        let keep = crate::is_grad_enabled() && weight.requires_grad();
        let be = self.backend();
        let bs = b.as_ref().map(|b| b.f32_storage("conv2d")).transpose()?;
        let (out, saved) = super::with_views("conv2d", &[&x, &w], |v| {
            be.conv2d(v[0].0, v[1].0, bs.as_deref(), &g, o, groups, keep)
        })?;
        drop(bs);
        let y = Tensor::from_storage(out, &[g.n, o, g.oh, g.ow]);
        let inputs: Vec<&Tensor> = match bias {
            Some(b) => vec![self, weight, b],
            None => vec![self, weight],
        };
        // the backward products at the forward's precision (autocast.rs)
        let precision = product_precision();
        Ok(y.attach("ConvolutionBackward", &inputs, move |dy, inputs| {
            autocast(precision, || {
                let dy = dy.contiguous()?;
                let dx = match inputs[0].requires_grad() {
                    true => {
                        let dx = super::with_views("conv2d", &[&dy, &w], |v| {
                            be.conv2d_backward_input(v[0].0, v[1].0, &g, o, groups)
                        })?;
                        Some(Tensor::from_storage(dx, &[g.n, g.c, g.h, g.w]))
                    }
                    false => None,
                };
                let want_dw = inputs[1].requires_grad() && saved.is_some();
                let want_db = inputs.len() == 3 && inputs[2].requires_grad();
                let (dw, db) = if want_dw || want_db {
                    let saved = if want_dw { saved.as_ref() } else { None };
                    let (dw, db) = dy.with_view("conv2d", |(d, _)| {
                        be.conv2d_backward_params(d, saved, &g, o, groups)
                    })?;
                    (dw, Some(db))
                } else {
                    (None, None)
                };
                let mut grads = vec![dx, dw.map(|dw| Tensor::from_storage(dw, inputs[1].shape()))];
                if inputs.len() == 3 {
                    grads.push(
                        db.filter(|_| want_db)
                            .map(|db| Tensor::from_storage(db, &[o])),
                    );
                }
                Ok(grads)
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Conv2dParams;
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    /// Direct definition of the convolution, as the reference.
    fn naive(x: &Tensor, w: &Tensor, b: &Tensor, p: Conv2dParams) -> Vec<f32> {
        let (n, c, h, wd) = x.dims4().unwrap();
        let (o, cg, kh, kw) = w.dims4().unwrap();
        let (xv, wv, bv) = (x.to_vec(), w.to_vec(), b.to_vec());
        let oh = (h + 2 * p.padding.0 - p.dilation.0 * (kh - 1) - 1) / p.stride.0 + 1;
        let ow = (wd + 2 * p.padding.1 - p.dilation.1 * (kw - 1) - 1) / p.stride.1 + 1;
        let og = o / p.groups;
        let mut out = vec![];
        for ni in 0..n {
            for oc in 0..o {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = bv[oc];
                        for ci in 0..cg {
                            let cin = (oc / og) * cg + ci;
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let y = (i * p.stride.0 + ki * p.dilation.0) as isize
                                        - p.padding.0 as isize;
                                    let xx = (j * p.stride.1 + kj * p.dilation.1) as isize
                                        - p.padding.1 as isize;
                                    if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                                        s += wv[((oc * cg + ci) * kh + ki) * kw + kj]
                                            * xv[((ni * c + cin) * h + y as usize) * wd
                                                + xx as usize];
                                    }
                                }
                            }
                        }
                        out.push(s);
                    }
                }
            }
        }
        let _ = c;
        out
    }

    #[test]
    fn matches_the_definition() {
        let cases = [
            Conv2dParams::default(),
            Conv2dParams::default().stride(2).padding(1),
            Conv2dParams::default().dilation(2).padding(2),
            Conv2dParams::default().groups(2).padding(1),
        ];
        for (i, p) in cases.into_iter().enumerate() {
            let x = rand_input(&[2, 4, 7, 6], 10 + i as u64);
            let w = rand_input(&[6, 4 / p.groups, 3, 3], 20 + i as u64);
            let b = rand_input(&[6], 30 + i as u64);
            let y = x.conv2d(&w, Some(&b), p).unwrap().to_vec();
            for (a, e) in y.iter().zip(naive(&x, &w, &b, p)) {
                assert!((a - e).abs() < 1e-4, "{p:?}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn gradcheck_conv2d_stride_padding_dilation_groups() {
        let f = |p: Conv2dParams| move |x: &[Tensor]| x[0].conv2d(&x[1], Some(&x[2]), p);
        let p = Conv2dParams::default().stride(2).padding(1).dilation(2);
        gradcheck(
            f(p),
            &[
                rand_input(&[2, 2, 6, 5], 1),
                rand_input(&[3, 2, 2, 3], 2),
                rand_input(&[3], 3),
            ],
            Default::default(),
        )
        .unwrap();
        let p = Conv2dParams::default().groups(2).padding(1);
        gradcheck(
            f(p),
            &[
                rand_input(&[1, 4, 4, 4], 4),
                rand_input(&[2, 2, 3, 3], 5),
                rand_input(&[2], 6),
            ],
            Default::default(),
        )
        .unwrap();
        // six channels or more: the input gradient comes from the wide
        // product; the forward lowers to strips, with and without padding
        // (cpu/conv/)
        for (pad, size) in [(0, 7), (1, 5)] {
            gradcheck(
                f(Conv2dParams::default().padding(pad)),
                &[
                    rand_input(&[2, 6, size, size], 7),
                    rand_input(&[3, 6, 3, 3], 8),
                    rand_input(&[3], 9),
                ],
                Default::default(),
            )
            .unwrap();
        }
    }

    #[test]
    fn shape_errors_name_both_shapes() {
        let x = Tensor::zeros([64, 3, 28, 28]);
        let e = x
            .conv2d(&Tensor::zeros([6, 1, 5, 5]), None, Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "conv2d: weight [6, 1, 5, 5] expects 1 input channels (1 per group × 1 groups), input [64, 3, 28, 28] has 3"
        );
        let e = Tensor::zeros([1, 1, 3, 3]).conv2d(
            &Tensor::zeros([1, 1, 5, 5]),
            None,
            Conv2dParams::default(),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("larger than the padded input 3x3"));
        assert!(Tensor::zeros([3, 28, 28])
            .conv2d(&Tensor::zeros([6, 3, 5, 5]), None, Conv2dParams::default())
            .is_err());
    }

    #[test]
    fn empty_batches_and_channels_give_the_bias_and_zero_gradients() {
        // (input, weight): no output channels, no images, no input channels
        for (xs, ws) in [
            ([2usize, 1, 5, 5], [0usize, 1, 3, 3]),
            ([0, 1, 5, 5], [2, 1, 3, 3]),
            ([2, 0, 5, 5], [2, 0, 3, 3]),
            ([0, 6, 5, 5], [3, 6, 5, 5]),
        ] {
            let x = Tensor::zeros(xs).requires_grad_(true);
            let w = Tensor::zeros(ws).requires_grad_(true);
            let b = Tensor::ones([ws[0]]).requires_grad_(true);
            let y = x.conv2d(&w, Some(&b), Conv2dParams::default()).unwrap();
            let side = 5 - ws[2] + 1;
            assert_eq!(y.shape(), &[xs[0], ws[0], side, side][..]);
            assert!(y.to_vec().iter().all(|&v| v == 1.0), "{xs:?} {ws:?}");
            y.sum_all().unwrap().backward().unwrap();
            assert_eq!(x.grad().unwrap().shape(), &xs[..]);
            let per_channel = (xs[0] * side * side) as f32;
            assert!(b.grad().unwrap().to_vec().iter().all(|&g| g == per_channel));
            assert!(w.grad().unwrap().to_vec().iter().all(|&g| g == 0.0));
        }
    }

    #[test]
    fn images_of_no_rows_padded_give_the_bias() {
        // H = 0 or W = 0, and padding enough for outputs
        for (xs, p) in [
            ([3usize, 1, 0, 1], Conv2dParams::default().padding(1)),
            ([2, 1, 4, 0], Conv2dParams::default().padding(2)),
        ] {
            let x = Tensor::zeros(xs).requires_grad_(true);
            let w = rand_input(&[2, 1, 2, 2], 3).requires_grad_(true);
            let b = Tensor::from_vec(vec![0.5, -1.0], [2])
                .unwrap()
                .requires_grad_(true);
            let y = x.conv2d(&w, Some(&b), p).unwrap();
            let plane = y.shape()[2] * y.shape()[3];
            assert!(plane > 0, "{xs:?}");
            let want: Vec<f32> = (0..xs[0] * 2)
                .flat_map(|k| vec![[0.5, -1.0][k % 2]; plane])
                .collect();
            assert_eq!(y.to_vec(), want);
            y.sum_all().unwrap().backward().unwrap();
            assert_eq!(x.grad().unwrap().shape(), &xs[..]);
            assert!(w.grad().unwrap().to_vec().iter().all(|&g| g == 0.0));
            assert_eq!(b.grad().unwrap().to_vec(), vec![(xs[0] * plane) as f32; 2]);
        }
    }

    #[test]
    fn no_input_gradient_when_the_input_needs_none() {
        let x = rand_input(&[2, 1, 6, 6], 1);
        let w = rand_input(&[2, 1, 3, 3], 2).requires_grad_(true);
        x.conv2d(&w, None, Conv2dParams::default())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(x.grad().is_none());
        assert_eq!(w.grad().unwrap().shape(), &[2, 1, 3, 3]);
    }
}
