//! Selection: `Tensor::where_cond(cond, a, b)` is `a` where `cond ≠ 0`, else
//! `b` (all three broadcast); `x.masked_fill(mask, v)` puts `v` where
//! `mask ≠ 0`. Backward: `da = sum_to(dy·[cond], a.shape)`,
//! `db = sum_to(dy·[¬cond], b.shape)`; nothing flows to `cond`.

use super::binary_map;
use crate::layout::broadcast_shapes;
use crate::{Result, Tensor};

impl Tensor {
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let shape = broadcast_shapes("where", cond.shape(), on_true.shape())?;
        let shape = broadcast_shapes("where", &shape, on_false.shape())?;
        let c = cond.detach().broadcast_to(&shape)?.to_vec();
        let a = on_true.detach().broadcast_to(&shape)?.to_vec();
        let b = on_false.detach().broadcast_to(&shape)?.to_vec();
        let out = c
            .iter()
            .zip(a.iter().zip(&b))
            .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
            .collect();
        let y = Tensor::from_cpu(out, &shape);
        let cond = cond.detach();
        Ok(
            y.attach("WhereBackward", &[on_true, on_false], move |g, inputs| {
                let keep_true =
                    binary_map("where", g, &cond, |g, c| if c != 0.0 { g } else { 0.0 })?;
                let keep_false =
                    binary_map("where", g, &cond, |g, c| if c != 0.0 { 0.0 } else { g })?;
                Ok(vec![
                    Some(keep_true.sum_to_shape(inputs[0].shape())?),
                    Some(keep_false.sum_to_shape(inputs[1].shape())?),
                ])
            }),
        )
    }

    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Result<Tensor> {
        Tensor::where_cond(mask, &Tensor::scalar(value), self)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn where_and_masked_fill() {
        let c = Tensor::from_vec(vec![1., 0., 1.], [3]).unwrap();
        let a = Tensor::from_vec(vec![1., 2., 3.], [3]).unwrap();
        assert_eq!(
            Tensor::where_cond(&c, &a, &Tensor::scalar(-1.0))
                .unwrap()
                .to_vec(),
            vec![1., -1., 3.]
        );
        assert_eq!(a.masked_fill(&c, 0.0).unwrap().to_vec(), vec![0., 2., 0.]);
    }

    #[test]
    fn gradcheck_where() {
        let c = Tensor::from_vec(vec![1., 0., 0., 1.], [4]).unwrap();
        gradcheck(
            move |x| Tensor::where_cond(&c, &x[0], &x[1]),
            &[rand_input(&[3, 4], 1), rand_input(&[3, 1], 2)],
            Default::default(),
        )
        .unwrap();
    }
}
