//! Selection: `Tensor::where_cond(cond, a, b)` is `a` where `cond ≠ 0`, else
//! `b` (all three broadcast); `x.masked_fill(mask, v)` puts `v` where
//! `mask ≠ 0`. Backward: `da = sum_to(dy·[cond], a.shape)`,
//! `db = sum_to(dy·[¬cond], b.shape)`; nothing flows to `cond`.

use crate::layout::broadcast_shapes;
use crate::{Result, Tensor};

impl Tensor {
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let shape = broadcast_shapes("where", cond.shape(), on_true.shape())?;
        let shape = broadcast_shapes("where", &shape, on_false.shape())?;
        // scalars from the CPU follow the others' device
        let device = [cond, on_true, on_false]
            .iter()
            .find(|t| t.rank() > 0 || t.device() != crate::Device::Cpu)
            .map_or(crate::Device::Cpu, |t| t.device());
        let moved = |t: &Tensor| match t.rank() == 0 {
            true => t.to(device),
            false => Ok(t.clone()),
        };
        let (cond, on_true, on_false) = (moved(cond)?, moved(on_true)?, moved(on_false)?);
        super::same_device("where", &cond, &on_true)?;
        super::same_device("where", &cond, &on_false)?;
        let out = super::with_views("where", &[&cond, &on_true, &on_false], |v| {
            cond.backend().select(v[0], v[1], v[2], &shape)
        })?;
        let y = Tensor::from_storage(out, &shape);
        let cond = cond.detach();
        let y = y.attach("WhereBackward", &[&on_true, &on_false], move |g, inputs| {
            let zero = Tensor::scalar(0.0);
            let keep_true = Tensor::where_cond(&cond, g, &zero)?;
            let keep_false = Tensor::where_cond(&cond, &zero, g)?;
            Ok(vec![
                Some(keep_true.sum_to_shape(inputs[0].shape())?),
                Some(keep_false.sum_to_shape(inputs[1].shape())?),
            ])
        });
        super::keep_dtype(y, &[&on_true, &on_false])
    }

    /// `value` where `mask ≠ 0`, else this tensor's values, in this
    /// tensor's dtype (a value an i64 cannot hold is refused).
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Result<Tensor> {
        let y = Tensor::where_cond(mask, &Tensor::scalar(value), self)?;
        super::keep_dtype(y, &[self])
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
