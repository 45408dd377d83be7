//! Conversion between dtypes (PyTorch's `x.to(torch.bfloat16)`):
//! `y = round(x)` to nearest, ties to even, for a narrower float (exact
//! for a wider one); a float becomes an i64 only when it is an integer.
//! Shapes are kept. Backward between float dtypes: `dx = dy` converted to
//! x's dtype; an i64 takes no gradient.

use crate::storage::Storage;
use crate::{DType, Result, Tensor};

impl Tensor {
    /// The same values as `dtype` (PyTorch's `x.to(torch.bfloat16)`):
    /// this tensor when it has that dtype already, else a copy, rounded to
    /// nearest (ties to even) for a narrower float, refused for a float
    /// that is not an integer when `dtype` is i64. Between float dtypes
    /// the gradient flows back, converted to this tensor's dtype.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        let from = self.dtype();
        if from == dtype {
            return Ok(self.clone());
        }
        let data = self.to_host_data().convert(dtype, "to_dtype")?;
        let y = Tensor::from_host_data(data, self.shape(), self.device())?;
        if !(from.is_float() && dtype.is_float()) {
            return Ok(y);
        }
        Ok(y.attach("ToCopyBackward", &[self], move |g, _| {
            Ok(vec![Some(g.to_dtype(from)?)])
        }))
    }

    /// Converts this tensor's storage to `dtype` in place, its gradient
    /// too: every view and holder of it sees the new dtype (how
    /// `Parameters::to_dtype` converts a model, as PyTorch's
    /// `module.to(torch.bfloat16)` replaces `param.data`).
    pub fn set_dtype(&self, dtype: DType) -> Result<()> {
        if self.dtype() == dtype {
            return Ok(());
        }
        let converted = {
            let storage = self.storage();
            let data = storage.data().clone().convert(dtype, "set_dtype")?;
            Storage::on_host(storage.device(), data)?
        };
        self.replace_storage(converted);
        if let Some(g) = self.grad() {
            g.set_dtype(dtype)?;
        }
        Ok(())
    }
}
