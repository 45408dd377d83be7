//! Matrix product, with PyTorch's `matmul` rules.
//!
//! `a [.., m, k] · b [.., k, n] → [.., m, n]`; the batch dims (`..`)
//! broadcast. A 1-d `a` is a row vector `[1, k]`, a 1-d `b` a column
//! `[k, 1]`, and the added dim is removed from the result.
//! Backward: `da = sum_to(dy · bᵀ, a.shape)`, `db = sum_to(aᵀ · dy, b.shape)`.
//! Transposed views go to gemm as strides: no copies.

use crate::autocast::{autocast, product_precision};
use crate::layout::broadcast_shapes;
use crate::{Error, Result, Tensor};

impl Tensor {
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(Error::shape(
                "matmul",
                format!(
                    "both arguments need at least one dim: lhs {:?}, rhs {:?}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        if self.rank() == 1 {
            // a row [1, K] through the product, then that row dropped: [.., N],
            // or the 0-d dot product when rhs is 1-d too
            let y = self.unsqueeze(0)?.matmul(rhs)?;
            return y.squeeze(if rhs.rank() == 1 { 0 } else { -2 });
        }
        if rhs.rank() == 1 {
            return self.matmul(&rhs.unsqueeze(-1)?)?.squeeze(-1);
        }
        super::same_device("matmul", self, rhs)?;
        let (ra, rb) = (self.rank(), rhs.rank());
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (rhs.shape()[rb - 2], rhs.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner dimensions differ: lhs {:?}, rhs {:?}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let batch = broadcast_shapes("matmul", &self.shape()[..ra - 2], &rhs.shape()[..rb - 2])
            .map_err(|_| {
                Error::shape(
                    "matmul",
                    format!(
                        "batch dimensions cannot be broadcast: lhs {:?}, rhs {:?}",
                        self.shape(),
                        rhs.shape()
                    ),
                )
            })?;
        let out = super::with_views("matmul", &[self, rhs], |v| {
            self.backend().matmul(v[0], v[1], &batch)
        })?;
        let mut shape = batch.clone();
        shape.extend([m, n]);
        let y = Tensor::from_storage(out, &shape);
        // the backward products at the forward's precision (autocast.rs)
        let precision = product_precision();
        Ok(y.attach("MmBackward", &[self, rhs], move |g, inputs| {
            autocast(precision, || matmul_backward(g, inputs))
        }))
    }
}

/// `da = sum_to(dy · bᵀ)`, `db = sum_to(aᵀ · dy)`.
fn matmul_backward(g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    let da = match a.requires_grad() {
        true => Some(g.matmul(&b.transpose(-1, -2)?)?.sum_to_shape(a.shape())?),
        false => None,
    };
    let db = match b.requires_grad() {
        // b a transposed view (x·Wᵀ in a linear layer): compute
        // (gᵀ·a)ᵀ, a view whose transpose — the weight's gradient —
        // is contiguous, so accumulating it needs no transposing copy
        true if a.rank() == 2 && b.rank() == 2 && b.layout().strides()[0] == 1 => {
            Some(g.t()?.matmul(a)?.t()?)
        }
        true => Some(a.transpose(-1, -2)?.matmul(g)?.sum_to_shape(b.shape())?),
        false => None,
    };
    Ok(vec![da, db])
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_a_naive_product_including_transposed_views() {
        let (a, b) = (rand_input(&[5, 7], 1), rand_input(&[7, 3], 2));
        let c = a.matmul(&b).unwrap().to_vec();
        let want = naive(&a.to_vec(), &b.to_vec(), 5, 7, 3);
        c.iter()
            .zip(&want)
            .for_each(|(x, y)| assert!((x - y).abs() < 1e-5));
        let bt = rand_input(&[3, 7], 3);
        let c = a.matmul(&bt.t().unwrap()).unwrap().to_vec();
        let want = naive(&a.to_vec(), &bt.t().unwrap().to_vec(), 5, 7, 3);
        c.iter()
            .zip(&want)
            .for_each(|(x, y)| assert!((x - y).abs() < 1e-5));
    }

    /// A linear layer's x·Wᵀ: W's gradient is gᵀ·x, stored contiguous
    /// (no transposing copy), and gradcheck passes through that path.
    #[test]
    fn gradient_of_a_transposed_weight_is_contiguous_and_right() {
        let (x, w) = (rand_input(&[4, 5], 7), rand_input(&[3, 5], 8));
        let w = w.requires_grad_(true);
        x.matmul(&w.t().unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gw = w.grad().unwrap();
        assert!(gw.is_contiguous());
        // d(sum)/dW[j, k] = Σ_i x[i, k]
        let xs = x.to_vec();
        for (jk, v) in gw.to_vec().iter().enumerate() {
            let k = jk % 5;
            let want: f32 = (0..4).map(|i| xs[i * 5 + k]).sum();
            assert!((v - want).abs() < 1e-5, "{jk}: {v} vs {want}");
        }
        gradcheck(
            |t| t[0].matmul(&t[1].t()?)?.tanh(),
            &[rand_input(&[4, 5], 1), rand_input(&[3, 5], 2)],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros_not_old_memory() {
        // the output is written into fresh capacity: fill and free some
        // memory first so that a product that wrote nothing would show it
        drop(vec![f32::NAN; 1 << 16]);
        let c = Tensor::zeros([3, 0])
            .matmul(&Tensor::zeros([0, 4]))
            .unwrap();
        assert_eq!(c.shape(), &[3, 4]);
        assert_eq!(c.to_vec(), vec![0.0; 12]);
        let c = Tensor::zeros([2, 3, 0])
            .matmul(&Tensor::zeros([2, 0, 4]))
            .unwrap();
        assert_eq!(c.to_vec(), vec![0.0; 24]);
    }

    #[test]
    fn shapes_and_errors() {
        let a = Tensor::zeros([64, 1600]);
        let e = a
            .matmul(&Tensor::zeros([400, 120]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "matmul: inner dimensions differ: lhs [64, 1600], rhs [400, 120]"
        );
        assert_eq!(
            Tensor::zeros([2, 1, 3, 4])
                .matmul(&Tensor::zeros([5, 4, 6]))
                .unwrap()
                .shape(),
            &[2, 5, 3, 6]
        );
        assert_eq!(
            Tensor::zeros([4])
                .matmul(&Tensor::zeros([4, 6]))
                .unwrap()
                .shape(),
            &[6]
        );
        assert_eq!(
            Tensor::zeros([3, 4])
                .matmul(&Tensor::zeros([4]))
                .unwrap()
                .shape(),
            &[3]
        );
        assert!(Tensor::zeros([2, 3, 4])
            .matmul(&Tensor::zeros([3, 4, 2]))
            .is_err());
    }

    #[test]
    fn gradcheck_matmul_2d_batched_and_broadcast() {
        let f = |x: &[Tensor]| x[0].matmul(&x[1]);
        gradcheck(
            f,
            &[rand_input(&[3, 4], 1), rand_input(&[4, 2], 2)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[2, 3, 4], 3), rand_input(&[4, 2], 4)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[2, 1, 3, 4], 5), rand_input(&[3, 4, 2], 6)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[4], 7), rand_input(&[4, 3], 8)],
            Default::default(),
        )
        .unwrap();
        // 1-d by 1-d is the dot product, 0-d (torch.matmul's rule); 1-d by
        // a batch keeps the batch
        gradcheck(
            f,
            &[rand_input(&[5], 9), rand_input(&[5], 10)],
            Default::default(),
        )
        .unwrap();
        gradcheck(
            f,
            &[rand_input(&[4], 11), rand_input(&[2, 4, 3], 12)],
            Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn vector_products_have_torch_shapes() {
        let v = Tensor::from_vec(vec![1., 2., 3.], [3]).unwrap();
        let dot = v.matmul(&v).unwrap();
        assert_eq!(dot.shape(), &[] as &[usize]);
        assert_eq!(dot.item().unwrap(), 14.0);
        let shape = |a: &[usize], b: &[usize]| {
            Tensor::zeros(a.to_vec())
                .matmul(&Tensor::zeros(b.to_vec()))
                .unwrap()
                .shape()
                .to_vec()
        };
        assert_eq!(shape(&[3], &[2, 3, 5]), [2, 5]);
        assert_eq!(shape(&[2, 4, 3], &[3]), [2, 4]);
        assert!(v.matmul(&Tensor::zeros([4])).is_err());
    }
}
