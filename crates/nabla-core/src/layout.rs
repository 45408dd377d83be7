//! Shape, strides and offset: how a tensor reads its storage.
//!
//! Element `[i0, i1, ..]` of a tensor lives at `offset + Σ ik·strides[k]` in
//! its storage. Views change only this triple; a stride of 0 repeats an
//! element (broadcasting) without copying it.

use crate::{Error, Result};

/// Shape, strides (in elements) and offset of a tensor view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major strides of a contiguous tensor of this shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i];
    }
    strides
}

impl Layout {
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            strides: contiguous_strides(shape),
            shape: shape.to_vec(),
            offset: 0,
        }
    }

    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout {
            shape,
            strides,
            offset,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the elements are stored in row-major order without gaps.
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] != 1 && self.strides[i] != acc {
                return false;
            }
            acc *= self.shape[i];
        }
        true
    }

    /// Calls `f` with the storage offset of every element, in row-major order.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let n = self.numel();
        if n == 0 {
            return;
        }
        if self.is_contiguous() {
            (self.offset..self.offset + n).for_each(f);
            return;
        }
        let rank = self.rank();
        let (inner, inner_stride) = (self.shape[rank - 1], self.strides[rank - 1]);
        let mut index = vec![0usize; rank];
        let mut base = self.offset;
        loop {
            for j in 0..inner {
                f(base + j * inner_stride);
            }
            // Advance the outer dims like an odometer.
            let mut k = rank - 1;
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                index[k] += 1;
                base += self.strides[k];
                if index[k] < self.shape[k] {
                    break;
                }
                base -= index[k] * self.strides[k];
                index[k] = 0;
            }
        }
    }

    /// Storage offset of the first element of row `row` when the tensor is
    /// seen as `[numel / last_dim, last_dim]`.
    pub fn row_offset(&self, row: usize) -> usize {
        let rank = self.rank();
        let mut rest = row;
        let mut off = self.offset;
        for k in (0..rank.saturating_sub(1)).rev() {
            let i = rest % self.shape[k];
            rest /= self.shape[k];
            off += i * self.strides[k];
        }
        off
    }
}

/// Turns a PyTorch-style dim (negative counts from the end) into an index.
/// As in PyTorch, a 0-d tensor takes dim 0 or −1 (as if it had one dim),
/// and gets 0: a caller that indexes the shape with it must treat 0-d
/// tensors apart, or use [`existing_dim`].
pub fn normalize_dim(op: &'static str, dim: isize, shape: &[usize]) -> Result<usize> {
    let rank = shape.len() as isize;
    let d = if dim < 0 { dim + rank.max(1) } else { dim };
    if d < 0 || d >= rank.max(1) {
        return Err(Error::Dim {
            op,
            dim,
            rank: shape.len(),
            shape: shape.to_vec(),
        });
    }
    Ok(d as usize)
}

/// [`normalize_dim`] for an op that needs the dimension to exist: a 0-d
/// tensor has none.
pub fn existing_dim(op: &'static str, dim: isize, shape: &[usize]) -> Result<usize> {
    if shape.is_empty() {
        return Err(Error::Dim {
            op,
            dim,
            rank: 0,
            shape: vec![],
        });
    }
    normalize_dim(op, dim, shape)
}

/// Normalizes a list of dims, rejecting repeats. An empty list means all
/// dims; a 0-d tensor's dim 0 (or −1) is none at all (the reduction of a
/// scalar over it is the scalar, as in PyTorch).
pub fn normalize_dims(op: &'static str, dims: &[isize], shape: &[usize]) -> Result<Vec<usize>> {
    if dims.is_empty() {
        return Ok((0..shape.len()).collect());
    }
    if shape.is_empty() {
        for &d in dims {
            normalize_dim(op, d, shape)?;
        }
        return Ok(vec![]);
    }
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = normalize_dim(op, d, shape)?;
        if out.contains(&d) {
            return Err(Error::arg(
                op,
                format!("dimension {d} repeated in {dims:?}"),
            ));
        }
        out.push(d);
    }
    out.sort_unstable();
    Ok(out)
}

/// The shape two shapes broadcast to (NumPy/PyTorch rules: align from the
/// right; sizes must match or one of them be 1).
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("shapes cannot be broadcast together: lhs {a:?}, rhs {b:?}"),
            ));
        };
    }
    Ok(out)
}

/// Strides that read a tensor of `layout` as if it had the (broadcast) shape
/// `target`: size-1 and missing leading dims get stride 0.
pub fn broadcast_strides(layout: &Layout, target: &[usize]) -> Vec<usize> {
    let extra = target.len() - layout.rank();
    let mut strides = vec![0; target.len()];
    for i in 0..layout.rank() {
        if layout.shape()[i] != 1 {
            strides[i + extra] = layout.strides()[i];
        }
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_a_transposed_view() {
        let l = Layout::new(vec![3, 2], vec![1, 3], 0);
        let mut seen = vec![];
        l.for_each_offset(|o| seen.push(o));
        assert_eq!(seen, vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
        assert_eq!(l.row_offset(2), 2);
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(
            broadcast_shapes("t", &[4, 1, 3], &[5, 1]).unwrap(),
            vec![4, 5, 3]
        );
        let e = broadcast_shapes("add", &[2, 3], &[4])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "add: shapes cannot be broadcast together: lhs [2, 3], rhs [4]"
        );
    }

    #[test]
    fn negative_dims() {
        assert_eq!(normalize_dim("t", -1, &[2, 3]).unwrap(), 1);
        assert!(normalize_dim("t", 2, &[2, 3]).is_err());
        // a 0-d tensor takes 0 and −1, as PyTorch's do; existing_dim none
        assert_eq!(normalize_dim("t", -1, &[]).unwrap(), 0);
        assert!(normalize_dim("t", 1, &[]).is_err() && normalize_dim("t", -2, &[]).is_err());
        assert!(existing_dim("t", 0, &[]).is_err());
        assert_eq!(normalize_dims("t", &[0], &[]).unwrap(), Vec::<usize>::new());
        assert!(normalize_dims("t", &[0, -2], &[2, 3]).is_err());
    }
}
