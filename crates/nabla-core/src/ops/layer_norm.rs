//! Layer normalization, PyTorch's `F.layer_norm`: each row of the last `k`
//! dims (`d` values, the normalized shape) becomes
//! `y = (x − μ)/√(σ² + ε)·w + b`, with the row's mean μ and biased
//! variance σ², and an optional weight and bias of the normalized shape.
//!
//! Backward, with `x̂ = (x − μ)/σ` and `g = dy·w`:
//! `dx = (g − mean(g) − x̂·mean(g·x̂))/σ`, `dw = Σ_rows dy·x̂`,
//! `db = Σ_rows dy`.
//!
//! One fused kernel a pass on the CPU (`backend/cpu/norm.rs`); a backend
//! without it composes mean, variance and elementwise ops.

use crate::{Error, Result, Tensor};

impl Tensor {
    /// Normalizes over the last `normalized.len()` dims, which must equal
    /// `normalized`; `weight` and `bias`, when given, have that shape.
    pub fn layer_norm(
        &self,
        normalized: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let k = normalized.len();
        let r = self.rank();
        if k == 0 || r < k || self.shape()[r - k..] != *normalized {
            return Err(Error::Shape {
                op: "layer_norm",
                msg: format!(
                    "input {:?} does not end with the normalized shape {normalized:?}",
                    self.shape()
                ),
            });
        }
        for (what, t) in [("weight", weight), ("bias", bias)] {
            if let Some(t) = t {
                super::same_device("layer_norm", self, t)?;
                if t.shape() != normalized {
                    return Err(Error::Shape {
                        op: "layer_norm",
                        msg: format!("{what} has shape {:?}, expected {normalized:?}", t.shape()),
                    });
                }
            }
        }
        let d: usize = normalized.iter().product();
        let be = self.backend();
        let fused = {
            let wg = weight.map(|w| w.f32_storage("layer_norm")).transpose()?;
            let bg = bias.map(|b| b.f32_storage("layer_norm")).transpose()?;
            let wv = weight.zip(wg.as_ref()).map(|(w, g)| (&**g, w.layout()));
            let bv = bias.zip(bg.as_ref()).map(|(b, g)| (&**g, b.layout()));
            self.with_view("layer_norm", |x| be.layer_norm(x, d, (wv, bv), eps))?
        };
        let Some((out, saved)) = fused else {
            return self.layer_norm_composed(k, weight, bias, eps);
        };
        let y = Tensor::from_storage(out, self.shape());
        let inputs: Vec<&Tensor> = [Some(self), weight, bias].into_iter().flatten().collect();
        let has = (weight.is_some(), bias.is_some());
        Ok(
            y.attach("NativeLayerNormBackward", &inputs, move |dy, inputs| {
                let w = has.0.then(|| &inputs[1]);
                let grads = {
                    let wg = w.map(|w| w.f32_storage("layer_norm")).transpose()?;
                    let wv = w.zip(wg.as_ref()).map(|(w, g)| (&**g, w.layout()));
                    let dg = dy.f32_storage("layer_norm")?;
                    inputs[0].with_view("layer_norm", |x| {
                        be.layer_norm_backward(x, d, wv, &saved, (&dg, dy.layout()))
                    })?
                };
                let [dx, dw, db] = grads.ok_or_else(|| Error::Arg {
                    op: "layer_norm",
                    msg: format!("the {} backend has no backward kernel for it", be.device()),
                })?;
                let shape = inputs[0].shape();
                let normalized = &shape[shape.len() - k..];
                let mut out = vec![Some(Tensor::from_storage(dx, shape))];
                if has.0 {
                    out.push(Some(Tensor::from_storage(dw, normalized)));
                }
                if has.1 {
                    out.push(Some(Tensor::from_storage(db, normalized)));
                }
                Ok(out
                    .into_iter()
                    .zip(inputs)
                    .map(|(g, t)| g.filter(|_| t.requires_grad()))
                    .collect())
            }),
        )
    }

    /// The same with ordinary ops, for backends without the kernel.
    fn layer_norm_composed(
        &self,
        k: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let r = self.rank();
        let dims: Vec<isize> = (r - k..r).map(|d| d as isize).collect();
        let mean = self.mean(&dims, true)?;
        let var = self.var(&dims, 0, true)?;
        let mut y = self.sub(&mean)?.div(&var.add_scalar(eps)?.sqrt()?)?;
        if let Some(w) = weight {
            y = y.mul(w)?;
        }
        if let Some(b) = bias {
            y = y.add(b)?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn gradcheck_layer_norm_with_and_without_affine() {
        let x = rand_input(&[3, 2, 5], 1).mul_scalar(3.0).unwrap();
        let (w, b) = (rand_input(&[2, 5], 2), rand_input(&[2, 5], 3));
        let f = |t: &[Tensor]| t[0].layer_norm(&[2, 5], Some(&t[1]), Some(&t[2]), 1e-5);
        gradcheck(f, &[x.clone(), w, b], Default::default()).unwrap();
        let f = |t: &[Tensor]| t[0].layer_norm(&[5], None, None, 1e-5);
        gradcheck(f, &[x], Default::default()).unwrap();
    }

    /// Over many rows (several parallel blocks) the kernel gives the
    /// composed ops' values and gradients, and a strided input is read
    /// where it lies.
    #[test]
    fn the_kernel_equals_the_composed_ops() {
        let x = rand_input(&[300, 128], 4)
            .mul_scalar(2.0)
            .unwrap()
            .add_scalar(5.0)
            .unwrap();
        let x = x.t().unwrap().requires_grad_(true); // [128, 300], strided
        let (w, b) = (
            rand_input(&[300], 5).requires_grad_(true),
            rand_input(&[300], 6).requires_grad_(true),
        );
        let c = rand_input(&[128, 300], 7);
        let run = |fused: bool| {
            let y = match fused {
                true => x.layer_norm(&[300], Some(&w), Some(&b), 1e-5).unwrap(),
                false => x.layer_norm_composed(1, Some(&w), Some(&b), 1e-5).unwrap(),
            };
            [&x, &w, &b].iter().for_each(|t| t.zero_grad());
            y.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
            let mut all = vec![y.to_vec()];
            all.extend([&x, &w, &b].iter().map(|t| t.grad().unwrap().to_vec()));
            all
        };
        let (a, e) = (run(true), run(false));
        for (u, v) in a.iter().zip(&e) {
            let scale = v.iter().fold(1f32, |m, x| m.max(x.abs()));
            for (p, q) in u.iter().zip(v) {
                assert!((p - q).abs() <= 1e-5 * scale, "{p} vs {q}");
            }
        }
        let e = x
            .layer_norm(&[128], None, None, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("normalized shape [128]"), "{e}");
        let e = x
            .layer_norm(&[300], Some(&c), None, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight has shape [128, 300]"), "{e}");
    }
}
