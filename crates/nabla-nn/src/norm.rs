//! Normalization layers and embeddings.
//!
//! **BatchNorm** (`BatchNorm1d` over `[N, C]` or `[N, C, L]`, `BatchNorm2d`
//! over `[N, C, H, W]`): per channel c, in training
//! `y = (x − μ_B)/√(σ²_B + eps)·γ + β` with the batch mean and biased
//! variance over all dims but C, and the running statistics updated as
//! `r_mean = (1 − m)·r_mean + m·μ_B`, `r_var = (1 − m)·r_var + m·σ²_B·n/(n−1)`
//! (unbiased), m = momentum (0.1). In eval mode the running statistics
//! replace the batch ones. Names: `weight`, `bias`; buffers `running_mean`,
//! `running_var`, `num_batches_tracked`, as in PyTorch's state dicts.
//!
//! **LayerNorm** over the last dims given by `normalized_shape`:
//! `y = (x − μ)/√(σ² + eps)·γ + β` per sample (biased variance).
//!
//! **Embedding**: `weight [num, dim]` ~ N(0, 1); indices of any shape S give
//! `[S…, dim]`. Gradients of all three come from the composed tensor ops.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Module, Parameters};
use nabla_core::{no_grad, Error, Result, Tensor};

pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    pub eps: f32,
    pub momentum: f32,
    /// 2 for BatchNorm1d, 4 for BatchNorm2d (3-d input also allowed for 1d)
    rank: usize,
    training: AtomicBool,
}

/// `nn.BatchNorm1d(C)`.
pub type BatchNorm1d = BatchNorm;
/// `nn.BatchNorm2d(C)`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    fn make(channels: usize, rank: usize) -> BatchNorm {
        BatchNorm {
            weight: Tensor::ones([channels]).requires_grad_(true),
            bias: Tensor::zeros([channels]).requires_grad_(true),
            running_mean: Tensor::zeros([channels]),
            running_var: Tensor::ones([channels]),
            num_batches_tracked: Tensor::scalar(0.0),
            eps: 1e-5,
            momentum: 0.1,
            rank,
            training: AtomicBool::new(true),
        }
    }

    /// `nn.BatchNorm1d(channels)`: input `[N, C]` or `[N, C, L]`.
    pub fn new_1d(channels: usize) -> BatchNorm {
        BatchNorm::make(channels, 2)
    }

    /// `nn.BatchNorm2d(channels)`: input `[N, C, H, W]`.
    pub fn new_2d(channels: usize) -> BatchNorm {
        BatchNorm::make(channels, 4)
    }

    fn channels(&self) -> usize {
        self.weight.numel()
    }
}

impl Parameters for BatchNorm {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
            (
                "num_batches_tracked".into(),
                self.num_batches_tracked.clone(),
            ),
        ]
    }

    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!(
            "BatchNorm{}d({})",
            if self.rank == 4 { 2 } else { 1 },
            self.channels()
        )
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.channels();
        let ok_rank = x.rank() == self.rank || (self.rank == 2 && x.rank() == 3);
        if !ok_rank || x.shape()[1] != c {
            let want = if self.rank == 4 {
                "[N, C, H, W]"
            } else {
                "[N, C] or [N, C, L]"
            };
            return Err(Error::Shape {
                op: "batch_norm",
                msg: format!("expected input {want} with C = {c}, got {:?}", x.shape()),
            });
        }
        // reduce over every dim but the channels; parameters broadcast as [1, C, 1, …]
        let dims: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
        let mut bshape = vec![1usize; x.rank()];
        bshape[1] = c;
        let (mean, var) = if self.training.load(Ordering::Relaxed) {
            let n = x.numel() / c;
            if n < 2 {
                return Err(Error::Arg {
                    op: "batch_norm",
                    msg: format!(
                        "expected more than 1 value per channel when training, got input {:?}",
                        x.shape()
                    ),
                });
            }
            let mean = x.mean(&dims, true)?;
            let var = x.var(&dims, 0, true)?;
            no_grad(|| -> Result<()> {
                // running ← (1 − m)·running + m·batch (the variance unbiased)
                let (m, unbias) = (self.momentum, n as f32 / (n - 1) as f32);
                let update = |running: &Tensor, batch: Tensor| -> Result<()> {
                    running.copy_from(&running.mul_scalar(1.0 - m)?.add(&batch.reshape([c])?)?)
                };
                update(&self.running_mean, mean.mul_scalar(m)?)?;
                update(&self.running_var, var.mul_scalar(m)?.mul_scalar(unbias)?)?;
                let tracked = &self.num_batches_tracked;
                tracked.copy_from(&tracked.add_scalar(1.0)?)
            })?;
            (mean, var)
        } else {
            (
                self.running_mean.reshape(&bshape)?,
                self.running_var.reshape(&bshape)?,
            )
        };
        let normed = x.sub(&mean)?.div(&var.add_scalar(self.eps)?.sqrt()?)?;
        normed
            .mul(&self.weight.reshape(&bshape)?)?
            .add(&self.bias.reshape(&bshape)?)
    }
}

/// `nn.LayerNorm(normalized_shape)`.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        LayerNorm {
            weight: Tensor::ones(normalized_shape).requires_grad_(true),
            bias: Tensor::zeros(normalized_shape).requires_grad_(true),
            eps: 1e-5,
        }
    }
}

impl Parameters for LayerNorm {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }

    fn describe(&self) -> String {
        format!("LayerNorm({:?})", self.weight.shape())
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // the op checks the shapes (and names them)
        x.layer_norm(
            self.weight.shape(),
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
        )
    }
}

/// `nn.Embedding(num_embeddings, embedding_dim, padding_idx)`: weights
/// N(0, 1); the row of `padding_idx` (a padding token's) starts at zeros
/// and gets no gradient, as in PyTorch.
pub struct Embedding {
    pub weight: Tensor,
    pub padding_idx: Option<usize>,
}

impl Embedding {
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Embedding {
        Embedding {
            weight: Tensor::randn([num_embeddings, embedding_dim]).requires_grad_(true),
            padding_idx: None,
        }
    }

    /// With a padding token: its row zeroed now and kept out of training.
    /// An index past the table is an error.
    pub fn with_padding_idx(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: usize,
    ) -> Result<Embedding> {
        if padding_idx >= num_embeddings {
            return Err(Error::Arg {
                op: "embedding",
                msg: format!(
                    "padding_idx {padding_idx} is not a row of a table of {num_embeddings}"
                ),
            });
        }
        let mut values = Tensor::randn([num_embeddings, embedding_dim]).to_vec();
        values[padding_idx * embedding_dim..(padding_idx + 1) * embedding_dim].fill(0.0);
        Ok(Embedding {
            weight: Tensor::from_vec(values, [num_embeddings, embedding_dim])?.requires_grad_(true),
            padding_idx: Some(padding_idx),
        })
    }
}

impl Parameters for Embedding {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone())]
    }

    fn describe(&self) -> String {
        format!(
            "Embedding({}, {})",
            self.weight.shape()[0],
            self.weight.shape()[1]
        )
    }
}

impl Module for Embedding {
    /// `indices`: class indices of any shape (i64, as PyTorch's embedding
    /// takes them, or integer values in f32).
    fn forward(&self, indices: &Tensor) -> Result<Tensor> {
        let dim = self.weight.shape()[1];
        let flat = indices.reshape([-1])?;
        let mut rows = self.weight.index_select(0, &flat)?;
        if let Some(pad) = self.padding_idx {
            // the padding positions read the row without a graph, so no
            // gradient reaches it
            let n = flat.numel();
            let at_pad: Vec<f32> = flat
                .to_vec()
                .iter()
                .map(|&i| (i == pad as f32) as u8 as f32)
                .collect();
            let at_pad = Tensor::from_vec(at_pad, [n, 1])?;
            rows = Tensor::where_cond(&at_pad, &rows.detach(), &rows)?;
        }
        let mut shape = indices.shape().to_vec();
        shape.push(dim);
        rows.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::gradcheck::{gradcheck, rand_input};

    #[test]
    fn gradcheck_norms_and_embedding() {
        let f = |x: &[Tensor]| {
            let bn = BatchNorm::new_2d(3);
            let bn = BatchNorm {
                weight: x[1].clone(),
                bias: x[2].clone(),
                ..bn
            };
            bn.forward(&x[0])
        };
        let inputs = [
            rand_input(&[4, 3, 2, 2], 1),
            rand_input(&[3], 2),
            rand_input(&[3], 3),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap();
        let f = |x: &[Tensor]| {
            LayerNorm {
                weight: x[1].clone(),
                bias: x[2].clone(),
                eps: 1e-5,
            }
            .forward(&x[0])
        };
        let inputs = [
            rand_input(&[3, 5], 4),
            rand_input(&[5], 5),
            rand_input(&[5], 6),
        ];
        gradcheck(f, &inputs, Default::default()).unwrap();
        let idx = Tensor::from_vec(vec![1., 3., 1., 0.], [2, 2]).unwrap();
        let f = move |x: &[Tensor]| {
            Embedding {
                weight: x[0].clone(),
                padding_idx: None,
            }
            .forward(&idx)
        };
        gradcheck(f, &[rand_input(&[4, 3], 7)], Default::default()).unwrap();
    }

    #[test]
    fn the_padding_row_starts_at_zero_and_gets_no_gradient() {
        let e = Embedding::with_padding_idx(4, 3, 2).unwrap();
        let idx = Tensor::from_vec(vec![2., 1., 2., 3.], [2, 2]).unwrap();
        let y = e.forward(&idx).unwrap();
        assert_eq!(y.shape(), &[2, 2, 3]);
        assert_eq!(y.to_vec()[..3], [0.0; 3]);
        y.mul(&y)
            .unwrap()
            .add(&y)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = e.weight.grad().unwrap().to_vec();
        assert_eq!(g[6..9], [0.0; 3], "the padding row");
        assert!(g[3..6].iter().all(|&v| v != 0.0) && g[9..].iter().all(|&v| v != 0.0));
        assert_eq!(g[..3], [0.0; 3], "row 0 is not used");
        assert!(Embedding::with_padding_idx(4, 3, 4).is_err());
    }

    #[test]
    fn batch_norm_tracks_running_statistics_and_uses_them_in_eval() {
        let bn = BatchNorm::new_1d(2);
        let x = Tensor::from_vec(vec![1., 10., 3., 20.], [2, 2]).unwrap();
        let y = bn.forward(&x).unwrap().to_vec();
        assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3);
        // mean 2 and 15; unbiased var 2 and 50
        assert!((bn.running_mean.to_vec()[1] - 1.5).abs() < 1e-6);
        assert!((bn.running_var.to_vec()[1] - (0.9 + 5.0)).abs() < 1e-5);
        bn.eval();
        let y = bn.forward(&x).unwrap().to_vec();
        assert!((y[0] - (1.0 - 0.2) / (0.9f32 + 0.2 + 1e-5).sqrt()).abs() < 1e-5);
        assert!(bn.forward(&Tensor::zeros([2, 3])).is_err());
    }
}
