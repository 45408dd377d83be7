//! Layers without parameters: pooling, flattening, dropout and the
//! activations as modules (`nn.ReLU()`, …). Each forwards to its tensor op,
//! where the formula and the gradient are documented.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Module, Parameters};
use nabla_core::{Error, Pool2d, Result, Tensor};

/// `nn.MaxPool2d(kernel, stride, padding)`.
pub struct MaxPool2d(pub Pool2d);
/// `nn.AvgPool2d(kernel, stride, padding)`.
pub struct AvgPool2d(pub Pool2d);

/// Runs `f` on a batch `[N, C, H, W]`, or on one unbatched image
/// `[C, H, W]` as a batch of one (PyTorch's conv and pooling layers take
/// both); other shapes go to `f`, whose error names them.
pub(crate) fn images(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match x.rank() {
        3 => f(&x.unsqueeze(0)?)?.squeeze(0),
        _ => f(x),
    }
}

impl Parameters for MaxPool2d {
    fn describe(&self) -> String {
        format!(
            "MaxPool2d(kernel={:?}, stride={:?})",
            self.0.kernel, self.0.stride
        )
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        images(x, |x| x.max_pool2d(self.0))
    }
}

impl Parameters for AvgPool2d {
    fn describe(&self) -> String {
        format!(
            "AvgPool2d(kernel={:?}, stride={:?})",
            self.0.kernel, self.0.stride
        )
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        images(x, |x| x.avg_pool2d(self.0))
    }
}

/// `nn.AdaptiveAvgPool2d((oh, ow))`: averages over the windows PyTorch
/// uses, `[⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)`, so any input size maps to `[oh, ow]`.
pub struct AdaptiveAvgPool2d(pub usize, pub usize);

impl Parameters for AdaptiveAvgPool2d {
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d({}, {})", self.0, self.1)
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        images(x, |x| self.pool(x))
    }
}

impl AdaptiveAvgPool2d {
    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (oh, ow) = (self.0, self.1);
        if oh == 0 || ow == 0 {
            return Err(Error::Arg {
                op: "adaptive_avg_pool2d",
                msg: "output size must be positive".into(),
            });
        }
        let mut rows = Vec::with_capacity(oh);
        for i in 0..oh {
            let (y0, y1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
            let mut cols = Vec::with_capacity(ow);
            for j in 0..ow {
                let (x0, x1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
                cols.push(
                    x.narrow(2, y0, y1 - y0)?
                        .narrow(3, x0, x1 - x0)?
                        .mean(&[2, 3], false)?,
                );
            }
            rows.push(Tensor::stack(&cols, -1)?);
        }
        Tensor::stack(&rows, -2)
    }
}

/// `nn.Flatten()`: `[N, …] → [N, ∏…]` (dims 1 to the last).
pub struct Flatten;

impl Parameters for Flatten {
    fn describe(&self) -> String {
        "Flatten()".into()
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() < 2 {
            return Ok(x.clone());
        }
        x.flatten(1, -1)
    }
}

/// `nn.Dropout(p)`: zeroes elements with probability p while training.
pub struct Dropout {
    pub p: f32,
    training: AtomicBool,
}

impl Dropout {
    pub fn new(p: f32) -> Dropout {
        Dropout {
            p,
            training: AtomicBool::new(true),
        }
    }
}

impl Parameters for Dropout {
    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.dropout(self.p, self.training.load(Ordering::Relaxed))
    }
}

/// `nn.Dropout2d(p)`: zeroes whole channels of `[N, C, H, W]` with
/// probability p while training (`[N, C, L]` and `[N, C]` as PyTorch 2
/// takes them; see `Tensor::dropout2d`).
pub struct Dropout2d {
    pub p: f32,
    training: AtomicBool,
}

impl Dropout2d {
    pub fn new(p: f32) -> Dropout2d {
        Dropout2d {
            p,
            training: AtomicBool::new(true),
        }
    }
}

impl Parameters for Dropout2d {
    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!("Dropout2d(p={})", self.p)
    }
}

impl Module for Dropout2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.dropout2d(self.p, self.training.load(Ordering::Relaxed))
    }
}

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl Parameters for $name {
            fn describe(&self) -> String {
                concat!(stringify!($name), "()").into()
            }
        }

        impl Module for $name {
            fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                $body
            }
        }
    };
}

activation!(/// `nn.ReLU()`
    ReLU, |x| x.relu());
activation!(/// `nn.Sigmoid()`
    Sigmoid, |x| x.sigmoid());
activation!(/// `nn.Tanh()`
    Tanh, |x| x.tanh());
activation!(/// `nn.GELU()` (exact form)
    GELU, |x| x.gelu());
activation!(/// `nn.SiLU()` (swish): `x·σ(x)`
    SiLU, |x| x.silu());
activation!(/// `nn.Mish()`: `x·tanh(softplus(x))`
    Mish, |x| x.mish());
activation!(/// `nn.SELU()`
    SELU, |x| x.selu());

/// `nn.ELU(alpha)` (PyTorch's default alpha is 1).
pub struct ELU(pub f32);

impl Parameters for ELU {
    fn describe(&self) -> String {
        format!("ELU(alpha={})", self.0)
    }
}

impl Module for ELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.elu(self.0)
    }
}

/// `nn.Softplus(beta, threshold)` (PyTorch's defaults: 1 and 20).
pub struct Softplus {
    pub beta: f32,
    pub threshold: f32,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl Parameters for Softplus {
    fn describe(&self) -> String {
        format!("Softplus(beta={}, threshold={})", self.beta, self.threshold)
    }
}

impl Module for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softplus(self.beta, self.threshold)
    }
}

/// `nn.LeakyReLU(negative_slope)` (PyTorch's default slope is 0.01).
pub struct LeakyReLU(pub f32);

impl Parameters for LeakyReLU {
    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.0)
    }
}

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }
}

/// `nn.Softmax(dim)`.
pub struct Softmax(pub isize);
/// `nn.LogSoftmax(dim)`.
pub struct LogSoftmax(pub isize);

impl Parameters for Softmax {
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.0)
    }
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.0)
    }
}

impl Parameters for LogSoftmax {
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.0)
    }
}

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.log_softmax(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_obeys_training_mode() {
        let d = Dropout::new(0.5);
        let x = Tensor::ones([1000]);
        assert!(d.forward(&x).unwrap().to_vec().contains(&0.0));
        d.eval();
        assert_eq!(d.forward(&x).unwrap().to_vec(), vec![1.0; 1000]);
    }

    #[test]
    fn gradcheck_adaptive_pool_and_sequential() {
        use nabla_core::gradcheck::{gradcheck, rand_input};
        let f = |x: &[Tensor]| AdaptiveAvgPool2d(2, 3).forward(&x[0]);
        gradcheck(f, &[rand_input(&[2, 2, 5, 7], 1)], Default::default()).unwrap();
        let f = |x: &[Tensor]| {
            let seq = crate::Sequential::new()
                .add(AvgPool2d(Pool2d::new(2)))
                .add(Flatten)
                .add(Tanh)
                .add(LeakyReLU(0.1));
            seq.forward(&x[0])
        };
        gradcheck(f, &[rand_input(&[2, 3, 4, 4], 2)], Default::default()).unwrap();
    }

    #[test]
    fn an_unbatched_image_runs_as_a_batch_of_one() {
        let x = nabla_core::gradcheck::rand_input(&[2, 6, 6], 3);
        let batch = x.unsqueeze(0).unwrap();
        let layers: Vec<Box<dyn Module>> = vec![
            Box::new(MaxPool2d(Pool2d::new(2))),
            Box::new(AvgPool2d(Pool2d::new(3))),
            Box::new(AdaptiveAvgPool2d(2, 2)),
            Box::new(crate::Conv2d::new(2, 4, 3)),
        ];
        for l in layers {
            let (one, many) = (l.forward(&x).unwrap(), l.forward(&batch).unwrap());
            assert_eq!(one.shape(), &many.shape()[1..], "{}", l.describe());
            assert_eq!(one.to_vec(), many.to_vec(), "{}", l.describe());
        }
        // other ranks are still refused, naming the shape
        let e = MaxPool2d(Pool2d::new(2))
            .forward(&Tensor::zeros([6, 6]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[6, 6]"), "{e}");
    }

    #[test]
    fn adaptive_pool_to_one_is_the_mean() {
        let x = Tensor::arange(0.0, 32.0, 1.0)
            .unwrap()
            .reshape([1, 2, 4, 4])
            .unwrap();
        let y = AdaptiveAvgPool2d(1, 1).forward(&x).unwrap();
        assert_eq!(y.shape(), &[1, 2, 1, 1]);
        assert_eq!(y.to_vec(), vec![7.5, 23.5]);
        let y = AdaptiveAvgPool2d(2, 2).forward(&x).unwrap();
        assert_eq!(y.to_vec()[..4], [2.5, 4.5, 10.5, 12.5]);
        assert_eq!(Flatten.forward(&y).unwrap().shape(), &[1, 8]);
    }
}
