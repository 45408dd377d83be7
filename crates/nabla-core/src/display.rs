//! Prints tensors the way PyTorch does:
//!
//! ```text
//! tensor([[ 1.0000, -2.5000],
//!         [ 3.0000,  4.0000]], requires_grad=True)
//! ```
//! Integral values print as `1.`, large tensors are summarized with `...`.

use std::fmt;

use crate::Tensor;

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

struct Printer {
    data: Vec<f32>,
    shape: Vec<usize>,
    width: usize,
    integral: bool,
    sci: bool,
    summarize: bool,
}

impl Printer {
    fn cell(&self, v: f32) -> String {
        format!(
            "{:>w$}",
            format_value(v, self.integral, self.sci),
            w = self.width
        )
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
            out.push_str(&self.cell(self.data[offset]));
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
        let data = self.to_vec();
        let finite: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
        let integral = finite.iter().all(|v| v.fract() == 0.0);
        let max_abs = finite.iter().fold(0f32, |m, v| m.max(v.abs()));
        let min_abs = finite
            .iter()
            .filter(|v| **v != 0.0)
            .fold(f32::INFINITY, |m, v| m.min(v.abs()));
        let sci = !integral && (max_abs >= 1e8 || (min_abs < 1e-4 && max_abs > 0.0));
        let sci = sci || (integral && max_abs >= 1e8);
        let width = data
            .iter()
            .map(|&v| format_value(v, integral, sci).len())
            .max()
            .unwrap_or(1);
        let p = Printer {
            summarize: data.len() > SUMMARIZE_OVER,
            data,
            shape: self.shape().to_vec(),
            width,
            integral,
            sci,
        };
        let mut s = String::from("tensor(");
        p.write(&mut s, 0, 0, "tensor(".len());
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
    fn summarizes_large_tensors() {
        let t = Tensor::arange(0.0, 2000.0, 1.0).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.])"
        );
    }
}
