//! A linear layer's product and bias as one op (PyTorch's `F.linear`).
//!
//! `y = x·Wᵀ + b`: x `[.., in]`, W `[out, in]`, b `[out]` (optional) →
//! y `[.., out]`. The product goes to gemm like `matmul` (a short, wide
//! one computed transposed, see `backend/cpu/matmul.rs`), and the bias is added to
//! its output in place: no second tensor, pass or graph node as with
//! `matmul` then `add`. The values are the same as theirs, bit for bit
//! (with batch dims, the weight gradient up to the order of its sum).
//! Backward: `dx = dy·W`, `dW = dyᵀ·x` (in W's layout), `db = Σ_rows dy`.

use crate::autocast::{autocast, product_precision};
use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let shape_error = |msg: String| Error::shape("linear", msg);
        let (out_f, in_f) = match weight.shape() {
            &[o, i] => (o, i),
            s => return Err(shape_error(format!("weight must be [out, in], got {s:?}"))),
        };
        if self.shape().last() != Some(&in_f) {
            return Err(shape_error(format!(
                "expected input [.., {in_f}], got {:?} (weight {:?})",
                self.shape(),
                weight.shape()
            )));
        }
        if let Some(b) = bias {
            if b.shape() != [out_f] {
                return Err(shape_error(format!(
                    "bias must be [{out_f}], got {:?}",
                    b.shape()
                )));
            }
            super::same_device("linear", self, b)?;
        }
        super::same_device("linear", self, weight)?;
        if self.rank() != 2 {
            // [.., in] as rows of a matrix and back
            let rows = self.shape()[..self.rank() - 1].iter().product::<usize>();
            let mut shape = self.shape()[..self.rank() - 1].to_vec();
            shape.push(out_f);
            return self
                .reshape([rows, in_f])?
                .linear(weight, bias)?
                .reshape(shape);
        }
        let m = self.shape()[0];
        let inputs: Vec<&Tensor> = [Some(self), Some(weight), bias]
            .into_iter()
            .flatten()
            .collect();
        let out = super::with_views("linear", &inputs, |v| {
            self.backend().linear(v[0], v[1], v.get(2).copied())
        })?;
        let y = Tensor::from_storage(out, &[m, out_f]);
        let inputs: Vec<&Tensor> = [self, weight].into_iter().chain(bias).collect();
        // the backward products at the forward's precision (autocast.rs)
        let precision = product_precision();
        Ok(y.attach("LinearBackward", &inputs, move |g, inputs| {
            autocast(precision, || linear_backward(g, inputs))
        }))
    }
}

/// `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ_rows dy`.
fn linear_backward(g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let (x, w) = (&inputs[0], &inputs[1]);
    let dx = x.requires_grad().then(|| g.matmul(w)).transpose()?;
    let dw = w.requires_grad().then(|| g.t()?.matmul(x)).transpose()?;
    let db = match inputs.get(2) {
        Some(b) if b.requires_grad() => Some(g.sum_to_shape(b.shape())?),
        _ => None,
    };
    Ok([dx, dw]
        .into_iter()
        .chain(inputs.get(2).map(|_| db))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    /// The same values as `matmul` then `add`, bit for bit, forward and
    /// backward: at the MLP's first layer (the transposed product), at
    /// shapes under the thresholds, through a transposed input view; with
    /// batch dims the weight gradient is summed in another order.
    #[test]
    fn equals_matmul_then_add() {
        for (x_shape, out_f, transposed_x) in [
            (vec![64, 784], 256, false),
            (vec![5, 3], 4, false),
            (vec![7, 9], 70, true),
            (vec![2, 3, 6], 5, false),
        ] {
            let in_f = *x_shape.last().unwrap();
            let x = match transposed_x {
                // a [rows, in] view of an [in, rows] tensor
                true => rand_input(&[in_f, x_shape[0]], 1).t().unwrap(),
                false => rand_input(&x_shape, 1),
            }
            .requires_grad_(true);
            let w = rand_input(&[out_f, in_f], 2).requires_grad_(true);
            let b = rand_input(&[out_f], 3).requires_grad_(true);
            let g = rand_input(
                &[x.shape()[..x.rank() - 1].to_vec(), vec![out_f]].concat(),
                4,
            );
            let run = |fused: bool| {
                let y = match fused {
                    true => x.linear(&w, Some(&b)).unwrap(),
                    false => x.matmul(&w.t().unwrap()).unwrap().add(&b).unwrap(),
                };
                y.backward_with_grad(&g).unwrap();
                let grads = [&x, &w, &b].map(|t| {
                    let v = t.grad().unwrap().to_vec();
                    t.zero_grad();
                    v
                });
                (y.to_vec(), grads)
            };
            let (fused, composed) = (run(true), run(false));
            if x_shape.len() == 2 {
                assert_eq!(fused, composed, "{x_shape:?} -> {out_f}");
            } else {
                // matmul sums a weight gradient over the batch dims as a sum
                // of per-matrix products; linear as one product of all rows
                assert_eq!(fused.0, composed.0);
                let all = |r: &(Vec<f32>, [Vec<f32>; 3])| r.1.concat();
                for (a, b) in all(&fused).iter().zip(all(&composed)) {
                    assert!((a - b).abs() < 1e-5, "{x_shape:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn gradcheck_linear_with_and_without_bias() {
        let inputs = [
            rand_input(&[3, 4], 5),
            rand_input(&[2, 4], 6),
            rand_input(&[2], 7),
        ];
        gradcheck(
            |x: &[Tensor]| x[0].linear(&x[1], Some(&x[2])),
            &inputs,
            Default::default(),
        )
        .unwrap();
        gradcheck(
            |x: &[Tensor]| x[0].linear(&x[1], None),
            &inputs[..2],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn shape_errors_name_the_shapes() {
        let (x, w) = (Tensor::zeros([2, 3]), Tensor::zeros([4, 3]));
        let err = |r: crate::Result<Tensor>| r.unwrap_err().to_string();
        assert_eq!(
            err(Tensor::zeros([2, 5]).linear(&w, None)),
            "linear: expected input [.., 3], got [2, 5] (weight [4, 3])"
        );
        assert_eq!(
            err(x.linear(&Tensor::zeros([4, 3, 1]), None)),
            "linear: weight must be [out, in], got [4, 3, 1]"
        );
        assert_eq!(
            err(x.linear(&w, Some(&Tensor::zeros([3])))),
            "linear: bias must be [4], got [3]"
        );
        // no rows, no outputs, no inputs
        assert_eq!(
            Tensor::zeros([0, 3]).linear(&w, None).unwrap().shape(),
            [0, 4]
        );
        let y = Tensor::ones([2, 0]).linear(&Tensor::zeros([4, 0]), Some(&Tensor::ones([4])));
        assert_eq!(y.unwrap().to_vec(), vec![1.0; 8]);
    }
}
