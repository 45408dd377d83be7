//! 2-d max and average pooling.
//!
//! x `[N, C, H, W]` → y `[N, C, OH, OW]`, `OH = ⌊(H + 2·ph − KH) / sh⌋ + 1`
//! (with `ceil_mode`, ⌈…⌉ + 1 less a last window that would start past the
//! input and its left padding, PyTorch's rule; windows running past the
//! padded input are cut there).
//! Max: `y = max` over the window (padding is −∞); backward sends `dy` to
//! the element that won. Average: `y = mean` over the window (padding counts
//! as zeros when `count_include_pad`, PyTorch's default); backward spreads
//! `dy / window` over the window. Stride defaults to the kernel size.

use crate::backend::ConvGeom;
use crate::{Error, Result, Tensor};

/// Window of a pooling op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub count_include_pad: bool,
    /// PyTorch's `ceil_mode`: a last, partial window where the input does
    /// not divide evenly.
    pub ceil_mode: bool,
}

impl Pool2d {
    /// A k×k window with stride k and no padding (`nn.MaxPool2d(k)`).
    pub fn new(k: usize) -> Self {
        Pool2d {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
            count_include_pad: true,
            ceil_mode: false,
        }
    }
    pub fn stride(self, s: usize) -> Self {
        Pool2d {
            stride: (s, s),
            ..self
        }
    }
    pub fn padding(self, p: usize) -> Self {
        Pool2d {
            padding: (p, p),
            ..self
        }
    }
    pub fn count_include_pad(self, on: bool) -> Self {
        Pool2d {
            count_include_pad: on,
            ..self
        }
    }
    pub fn ceil_mode(self, on: bool) -> Self {
        Pool2d {
            ceil_mode: on,
            ..self
        }
    }
    /// The output length along one dim of `len` inputs (None when the
    /// window does not fit the padded input, or the stride is 0).
    pub fn out_len(&self, len: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
        let span = (len + 2 * pad).checked_sub(kernel)?;
        if stride == 0 {
            return None;
        }
        let steps = match self.ceil_mode {
            true => span.div_ceil(stride),
            false => span / stride,
        };
        // (ceil mode: the last window must start inside the input or its
        // left padding)
        Some(match self.ceil_mode && steps * stride >= len + pad {
            true => steps,
            false => steps + 1,
        })
    }
}

impl From<usize> for Pool2d {
    fn from(k: usize) -> Self {
        Pool2d::new(k)
    }
}

fn geometry(op: &'static str, x: &Tensor, p: &Pool2d) -> Result<ConvGeom> {
    let (n, c, h, w) = x.dims4().map_err(|_| {
        Error::shape(
            op,
            format!("expected input of shape [N, C, H, W], got {:?}", x.shape()),
        )
    })?;
    let (kh, kw) = p.kernel;
    if kh == 0 || kw == 0 || p.stride.0 == 0 || p.stride.1 == 0 {
        return Err(Error::arg(
            op,
            format!("kernel and stride must be positive: {p:?}"),
        ));
    }
    if p.padding.0 > kh / 2 || p.padding.1 > kw / 2 {
        return Err(Error::arg(
            op,
            format!(
                "padding {:?} must be at most half the kernel {:?}",
                p.padding, p.kernel
            ),
        ));
    }
    let oh = p.out_len(h, kh, p.stride.0, p.padding.0);
    let ow = p.out_len(w, kw, p.stride.1, p.padding.1);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(Error::shape(
            op,
            format!(
                "window {kh}x{kw} is larger than the padded input of shape {:?}",
                x.shape()
            ),
        ));
    };
    Ok(ConvGeom {
        n,
        c,
        h,
        w,
        kh,
        kw,
        sh: p.stride.0,
        sw: p.stride.1,
        ph: p.padding.0,
        pw: p.padding.1,
        dh: 1,
        dw: 1,
        oh,
        ow,
    })
}

impl Tensor {
    /// Max pooling: `x.max_pool2d(2)` or `x.max_pool2d(Pool2d::new(3).stride(2).padding(1))`.
    pub fn max_pool2d(&self, p: impl Into<Pool2d>) -> Result<Tensor> {
        let g = geometry("max_pool2d", self, &p.into())?;
        let (planes, be) = (g.n * g.c, self.backend());
        let x = self.contiguous()?;
        // where each maximum came from, only for a backward pass to come
        let keep = crate::is_grad_enabled() && self.requires_grad();
        let (out, arg) =
            x.with_view("max_pool2d", |(xs, _)| be.max_pool2d(xs, planes, &g, keep))?;
        let y = Tensor::from_storage(out, &[g.n, g.c, g.oh, g.ow]);
        Ok(y.attach("MaxPool2DBackward", &[self], move |dy, _| {
            let Some(arg) = &arg else {
                return Err(Error::arg(
                    "max_pool2d backward",
                    "the forward ran without gradients and kept no indices",
                ));
            };
            let dy = dy.contiguous()?;
            let dx = dy.with_view("max_pool2d", |(d, _)| {
                be.max_pool2d_backward(d, arg, planes, &g)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, &[g.n, g.c, g.h, g.w]))])
        }))
    }

    /// Average pooling: `x.avg_pool2d(2)`.
    pub fn avg_pool2d(&self, p: impl Into<Pool2d>) -> Result<Tensor> {
        let p = p.into();
        let g = geometry("avg_pool2d", self, &p)?;
        let (planes, be, cip) = (g.n * g.c, self.backend(), p.count_include_pad);
        let x = self.contiguous()?;
        let out = x.with_view("avg_pool2d", |(xs, _)| be.avg_pool2d(xs, planes, &g, cip))?;
        let y = Tensor::from_storage(out, &[g.n, g.c, g.oh, g.ow]);
        Ok(y.attach("AvgPool2DBackward", &[self], move |dy, _| {
            let dy = dy.contiguous()?;
            let dx = dy.with_view("avg_pool2d", |(d, _)| {
                be.avg_pool2d_backward(d, planes, &g, cip)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, &[g.n, g.c, g.h, g.w]))])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Pool2d;
    use crate::gradcheck::{distinct_input, gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn pool_values() {
        let x = Tensor::arange(0.0, 16.0, 1.0)
            .unwrap()
            .reshape([1, 1, 4, 4])
            .unwrap();
        assert_eq!(x.max_pool2d(2).unwrap().to_vec(), vec![5., 7., 13., 15.]);
        assert_eq!(
            x.avg_pool2d(2).unwrap().to_vec(),
            vec![2.5, 4.5, 10.5, 12.5]
        );
        let p = Pool2d::new(3).stride(2).padding(1);
        assert_eq!(x.max_pool2d(p).unwrap().to_vec(), vec![5., 7., 13., 15.]);
        // corner window sees 4 real pixels of 9: (0+1+4+5)/9
        assert!((x.avg_pool2d(p).unwrap().to_vec()[0] - 10.0 / 9.0).abs() < 1e-6);
        assert!((x.avg_pool2d(p.count_include_pad(false)).unwrap().to_vec()[0] - 2.5).abs() < 1e-6);
        assert!(x.max_pool2d(Pool2d::new(2).padding(2)).is_err());
        assert!(Tensor::zeros([4, 4]).max_pool2d(2).is_err());
    }

    #[test]
    fn nan_propagates_through_max_pooling() {
        let mut v: Vec<f32> = (0..16).map(|i| i as f32).collect();
        v[4] = f32::NAN; // in the first 2×2 window, not its first element
        let x = Tensor::from_vec(v, [1, 1, 4, 4]).unwrap();
        let y = x.max_pool2d(2).unwrap().to_vec();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &[7., 13., 15.]);
        let y = x.max_pool2d(Pool2d::new(3).stride(1)).unwrap().to_vec();
        assert!(y[0].is_nan() && y[2].is_nan() && !y[1].is_nan());
    }

    #[test]
    fn gradcheck_pools() {
        let x = distinct_input(&[2, 2, 5, 6], 1, 0.05);
        gradcheck(|x| x[0].max_pool2d(2), &[x.clone()], Default::default()).unwrap();
        gradcheck(
            |x| x[0].max_pool2d(Pool2d::new(3).stride(2).padding(1)),
            &[x],
            Default::default(),
        )
        .unwrap();
        let x = rand_input(&[2, 2, 5, 6], 2);
        gradcheck(
            |x| x[0].avg_pool2d(Pool2d::new(3).stride(2).padding(1)),
            &[x.clone()],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x| x[0].avg_pool2d(Pool2d::new(2).count_include_pad(false)),
            &[x],
            Default::default(),
        )
        .unwrap();
    }
}
