//! How large a layer's tensors would be, known before anything is
//! allocated: a model file asking for 10^12 channels is refused with its
//! size instead of aborting an allocation.

use super::spec::{LayerKind, Padding};

/// The most elements a layer's tensor may hold (16 GB of f32).
pub const MAX_ELEMENTS: u128 = 1 << 32;

/// About the most elements one tensor of the layer holds (its weights, or
/// one example's activations), computed in u128 so no size overflows.
pub fn largest_tensor(kind: &LayerKind, shape: &[usize]) -> u128 {
    let s: Vec<u128> = shape.iter().map(|&d| d as u128).collect();
    let input: u128 = s.iter().product();
    let first = s.first().copied().unwrap_or(1);
    let last = s.last().copied().unwrap_or(1);
    let n = |v: usize| v as u128;
    let spatial = input / first.max(1);
    if let Some(r) = kind.recurrent() {
        // each layer's and direction's gate weights, input and hidden
        let (h, dirs) = (n(r.hidden), n(r.directions));
        let per_layer = n(r.gates) * h * (last.max(dirs * h) + h) * dirs;
        return (per_layer * n(r.layers)).max(input);
    }
    let weights = match kind {
        LayerKind::Conv2d {
            out_channels,
            kernel,
            groups,
            padding,
            ..
        } => {
            let pad = match padding {
                Padding::Size(p) => n(*p),
                _ => n(*kernel),
            };
            let out = n(*out_channels);
            let grown = s.iter().skip(1).map(|d| d + 2 * pad).product::<u128>();
            (out * first / n(*groups).max(1) * n(*kernel) * n(*kernel)).max(out * grown)
        }
        LayerKind::Linear { out_features, .. } => n(*out_features) * input.max(1),
        LayerKind::Patches { patch, dim } => {
            let p = n(*patch).max(1);
            n(*dim) * (first * p * p + spatial / (p * p) + 1)
        }
        LayerKind::Encoder {
            layers, heads, ff, ..
        } => n(*layers) * (4 * last * last + 2 * last * n(*ff)) + n(*heads) * first * first,
        _ => input,
    };
    weights.max(input)
}
