//! Slicing view: `narrow(dim, start, len)` keeps `start..start+len` of `dim`
//! (PyTorch's `x[:, start:start+len]`). Backward: `dx` is zero except the
//! slice, which receives `dy`.

use crate::layout::{existing_dim, Layout};
use crate::{Error, Result, Tensor};

/// The layout of `shape`'s contiguous buffer narrowed along `dim`.
pub(crate) fn narrowed(shape: &[usize], dim: usize, start: usize, len: usize) -> Layout {
    let full = Layout::contiguous(shape);
    let mut s = shape.to_vec();
    s[dim] = len;
    Layout::new(s, full.strides().to_vec(), start * full.strides()[dim])
}

impl Tensor {
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = existing_dim("narrow", dim, self.shape())?;
        let size = self.shape()[d];
        if start + len > size {
            return Err(Error::shape(
                "narrow",
                format!(
                    "range {start}..{} out of bounds for dim {d} of shape {:?}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        let l = self.layout();
        let mut shape = l.shape().to_vec();
        shape[d] = len;
        let y = self.view_with(Layout::new(
            shape,
            l.strides().to_vec(),
            l.offset() + start * l.strides()[d],
        ));
        Ok(y.attach("NarrowBackward", &[self], move |g, inputs| {
            let in_shape = inputs[0].shape();
            let be = g.backend();
            let mut dx = be.full(inputs[0].numel(), 0.0);
            g.with_view("narrow", |vg| {
                be.write_view(&mut dx, &narrowed(in_shape, d, start, len), vg)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, in_shape))])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{gradcheck, rand_input};
    use crate::Tensor;

    #[test]
    fn narrow_values_and_errors() {
        let x = Tensor::arange(0.0, 12.0, 1.0)
            .unwrap()
            .reshape([3, 4])
            .unwrap();
        assert_eq!(
            x.narrow(1, 1, 2).unwrap().to_vec(),
            vec![1., 2., 5., 6., 9., 10.]
        );
        let e = x.narrow(0, 2, 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "narrow: range 2..4 out of bounds for dim 0 of shape [3, 4]"
        );
    }

    #[test]
    fn gradcheck_narrow() {
        gradcheck(
            |x| x[0].narrow(1, 1, 2),
            &[rand_input(&[3, 4], 1)],
            Default::default(),
        )
        .unwrap();
    }
}
