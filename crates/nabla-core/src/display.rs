//! Prints tensors the way PyTorch does:
//!
//! ```text
//! tensor([[ 1.0000, -2.5000],
//!         [ 3.0000,  4.0000]], requires_grad=True)
//! ```
//! Integral values print as `1.`, large tensors are summarized with `...`;
//! i64 values print as integers (`tensor([1, 2])`), and a dtype other than
//! f32 and i64 is named at the end (`dtype=torch.bfloat16`), as in PyTorch.

use std::fmt;

use crate::{DType, HostData, Tensor};

const SUMMARIZE_OVER: usize = 1000;
const EDGE_ITEMS: usize = 3;

fn format_value(v: f32, integral: bool, sci: bool) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if sci {
        format!("{v:.4e}")
    } else if integral {
        format!("{v:.0}.")
    } else {
        format!("{v:.4}")
    }
}

/// Float values formatted alike: integral ones as `1.`, scientific
/// notation when the magnitudes call for it, four decimals otherwise.
fn float_cells(data: &[f32]) -> Vec<String> {
    let finite: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
    let integral = finite.iter().all(|v| v.fract() == 0.0);
    let max_abs = finite.iter().fold(0f32, |m, v| m.max(v.abs()));
    let min_abs = finite
        .iter()
        .filter(|v| **v != 0.0)
        .fold(f32::INFINITY, |m, v| m.min(v.abs()));
    let sci = !integral && (max_abs >= 1e8 || (min_abs < 1e-4 && max_abs > 0.0));
    let sci = sci || (integral && max_abs >= 1e8);
    data.iter()
        .map(|&v| format_value(v, integral, sci))
        .collect()
}

struct Printer {
    /// Every value formatted, in row-major order.
    cells: Vec<String>,
    shape: Vec<usize>,
    width: usize,
    summarize: bool,
}

impl Printer {
    fn cell(&self, at: usize) -> String {
        format!("{:>w$}", self.cells[at], w = self.width)
    }
    /// Indices of dimension `size` that are shown (`None` marks the `...`).
    fn shown(&self, size: usize) -> Vec<Option<usize>> {
        if self.summarize && size > 2 * EDGE_ITEMS {
            let mut v: Vec<Option<usize>> = (0..EDGE_ITEMS).map(Some).collect();
            v.push(None);
            v.extend((size - EDGE_ITEMS..size).map(Some));
            v
        } else {
            (0..size).map(Some).collect()
        }
    }

    fn write(&self, out: &mut String, dim: usize, offset: usize, indent: usize) {
        let strides = crate::layout::contiguous_strides(&self.shape);
        if dim == self.shape.len() {
            out.push_str(&self.cell(offset));
            return;
        }
        out.push('[');
        let shown = self.shown(self.shape[dim]);
        let last = dim + 1 == self.shape.len();
        for (k, idx) in shown.iter().enumerate() {
            if k > 0 {
                out.push(',');
                if last {
                    out.push(' ');
                } else {
                    let blank = self.shape.len() - dim - 1;
                    out.push_str(&"\n".repeat(blank));
                    out.push_str(&" ".repeat(indent + 1));
                }
            }
            match idx {
                Some(i) => self.write(out, dim + 1, offset + i * strides[dim], indent + 1),
                None => out.push_str("..."),
            }
        }
        out.push(']');
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells = match self.to_host_data() {
            HostData::I64(v) => v.iter().map(i64::to_string).collect(),
            floats => float_cells(&floats.into_f32()),
        };
        let width = cells.iter().map(String::len).max().unwrap_or(1);
        let p = Printer {
            summarize: cells.len() > SUMMARIZE_OVER,
            cells,
            shape: self.shape().to_vec(),
            width,
        };
        let mut s = String::from("tensor(");
        p.write(&mut s, 0, 0, "tensor(".len());
        if !matches!(self.dtype(), DType::F32 | DType::I64) {
            s.push_str(&format!(", dtype=torch.{}", self.dtype().torch_name()));
        }
        if let Some(name) = self.grad_fn_name() {
            s.push_str(&format!(", grad_fn=<{name}>"));
        } else if self.requires_grad() {
            s.push_str(", requires_grad=True");
        }
        s.push(')');
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::from_vec(vec![1.0, -2.5, 3.0, 4.0], [2, 2]).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])"
        );
        let t = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3])
            .unwrap()
            .requires_grad_(true);
        assert_eq!(t.to_string(), "tensor([1., 2., 3.], requires_grad=True)");
        assert_eq!(Tensor::scalar(0.5).to_string(), "tensor(0.5000)");
    }

    #[test]
    fn prints_the_dtype_as_pytorch_does() {
        let ids = Tensor::from_vec_i64(vec![3, -12, 16_777_217], [3]).unwrap();
        assert_eq!(ids.to_string(), "tensor([       3,      -12, 16777217])");
        let x = Tensor::from_vec(vec![1.0, 2.5], [2]).unwrap();
        let half = x.to_dtype(crate::DType::BF16).unwrap();
        assert_eq!(
            half.to_string(),
            "tensor([1.0000, 2.5000], dtype=torch.bfloat16)"
        );
        let half = x.to_dtype(crate::DType::F16).unwrap();
        assert_eq!(
            half.to_string(),
            "tensor([1.0000, 2.5000], dtype=torch.float16)"
        );
    }

    #[test]
    fn summarizes_large_tensors() {
        let t = Tensor::arange(0.0, 2000.0, 1.0).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.])"
        );
    }
}
