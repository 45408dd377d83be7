//! Pictures of one layer: a convolution's filters (on one colour scale,
//! drawn under them) and the feature maps of one input (each on its own
//! range, written above it).

use nabla_core::{Result, Tensor};

use crate::canvas::{diverging, gray, text_width, Canvas, GRAY, LIGHT_GRAY, WHITE};
use crate::plot::dims;

/// The filters of a convolution, weight `[out, in, kh, kw]`, blue for
/// negative and red for positive weights, all on one scale (the layer's
/// largest magnitude) so filters compare. With one input channel the
/// filters fill rows of eight, each numbered; otherwise each row is one
/// output channel (numbered) with a tile per input channel (the first 16).
/// Under the tiles, the colour scale with its ends' values.
pub fn filters(weight: &Tensor) -> Result<Canvas> {
    let [o, i, kh, kw] = dims::<4>(weight, "filters", "[out, in, kh, kw]")?;
    let w = weight.to_vec();
    let top = w.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let cell = (96 / kh.max(kw)).clamp(2, 16);
    let (tw, th) = (kw * cell + 6, kh * cell + 6);
    // (output channel, input channel, column, row) of each tile
    let (cols, tiles): (usize, Vec<(usize, usize, usize, usize)>) = if i == 1 {
        let cols = o.min(8);
        (
            cols,
            (0..o).map(|oc| (oc, 0, oc % cols, oc / cols)).collect(),
        )
    } else {
        let cols = i.min(16);
        let t = (0..o).flat_map(|oc| (0..cols).map(move |ic| (oc, ic, ic, oc)));
        (cols, t.collect())
    };
    let rows = tiles.iter().map(|t| t.3 + 1).max().unwrap_or(0);
    let label = 16;
    let left = if i == 1 {
        0
    } else {
        text_width(&o.to_string(), 2) + 8
    };
    let bar_width = 160;
    let scale_height = 40;
    let grid_height = rows * (th + label) + 2;
    let width = (left + cols * tw + 2).max(bar_width + 2 * text_width("-0.000", 2) + 24);
    let mut c = Canvas::new(width, grid_height + scale_height, WHITE);
    draw_weight_scale(&mut c, grid_height as i64 + 8, bar_width, top);
    for &(oc, ic, col, row) in &tiles {
        let (x, y) = (left + col * tw, row * (th + label));
        if i == 1 {
            c.text(x as i64 + 3, y as i64 + 3, &oc.to_string(), 2, GRAY);
        } else if ic == 0 {
            c.text(2, (y + label + th / 2) as i64 - 5, &oc.to_string(), 2, GRAY);
        }
        if i > 1 && oc == 0 {
            c.text(x as i64 + 3, y as i64 + 3, &ic.to_string(), 2, LIGHT_GRAY);
        }
        for r in 0..kh {
            for q in 0..kw {
                let v = w[((oc * i + ic) * kh + r) * kw + q] / top;
                c.fill_rect(
                    (x + 3 + q * cell) as i64,
                    (y + label + 3 + r * cell) as i64,
                    cell,
                    cell,
                    diverging(v),
                );
            }
        }
    }
    Ok(c)
}

/// A horizontal bar from blue (`-top`) through white (0) to red (`top`)
/// at height `y`, the three values written beside and under it.
fn draw_weight_scale(c: &mut Canvas, y: i64, bar_width: usize, top: f32) {
    let low = format!("{:.3}", -top);
    let x0 = text_width(&low, 2) as i64 + 12;
    c.text(4, y - 2, &low, 2, GRAY);
    for k in 0..bar_width {
        let v = 2.0 * k as f32 / (bar_width - 1) as f32 - 1.0;
        c.fill_rect(x0 + k as i64, y, 1, 12, diverging(v));
    }
    c.text(
        x0 + bar_width as i64 + 6,
        y - 2,
        &format!("{top:.3}"),
        2,
        GRAY,
    );
    let zero_x = x0 + bar_width as i64 / 2 - text_width("0", 2) as i64 / 2;
    c.text(zero_x, y + 14, "0", 2, GRAY);
}

/// Feature maps `[C, H, W]` of one input: one tile per channel (the first
/// 64), each scaled from its own minimum (black) to maximum (white), the
/// channel number and that range (`0: -0.52…1.31`) above it.
pub fn feature_maps(maps: &Tensor) -> Result<Canvas> {
    let [ch, h, w] = dims::<3>(maps, "feature_maps", "[C, H, W]")?;
    let v = maps.to_vec();
    let n = ch.min(64);
    let cols = n.min(8);
    let scale = (96 / h.max(w)).clamp(1, 8);
    // wide enough for the label (its range) even under a small map
    let tw = (w * scale + 8).max(text_width("00: -0.00…0.00", 2) + 8);
    let th = h * scale + 20;
    let mut c = Canvas::new(cols * tw + 4, n.div_ceil(cols) * th + 4, WHITE);
    for k in 0..n {
        let m = &v[k * h * w..(k + 1) * h * w];
        let (lo, hi) = m
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let (x, y) = ((k % cols) * tw + 4, (k / cols) * th);
        let label = format!("{k}: {}…{}", short(lo), short(hi));
        c.text(x as i64, y as i64 + 4, &label, 2, GRAY);
        for r in 0..h {
            for q in 0..w {
                let g = (m[r * w + q] - lo) / (hi - lo).max(1e-12);
                c.fill_rect(
                    (x + q * scale) as i64,
                    (y + 18 + r * scale) as i64,
                    scale,
                    scale,
                    gray(g),
                );
            }
        }
    }
    Ok(c)
}

/// A value in a few characters: two decimals, or three significant
/// digits in scientific notation when that would show nothing or too much.
fn short(v: f32) -> String {
    match v.abs() {
        a if a == 0.0 || (0.01..1000.0).contains(&a) => format!("{v:.2}"),
        _ => format!("{v:.1e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::BLACK;
    use crate::plot::tests::inked;

    #[test]
    fn filters_show_sign_and_reject_wrong_shapes() {
        let w = Tensor::from_vec(vec![1.0, -1.0, 0.0, 0.5], [1, 1, 2, 2]).unwrap();
        let c = filters(&w).unwrap();
        // a 16-pixel cell each (the scale's ends are a 12-pixel line)
        assert!(inked(&c, diverging(1.0)) >= 256 && inked(&c, diverging(-1.0)) >= 256);
        let err = filters(&Tensor::zeros([3, 3])).unwrap_err().to_string();
        assert!(
            err.contains("[out, in, kh, kw]") && err.contains("[3, 3]"),
            "{err}"
        );
    }

    /// Each map runs from black at its minimum to white at its maximum,
    /// its own range whatever the others' (a map of 0..3 and one of 0..300
    /// shade alike), and its range is written in a few characters.
    #[test]
    fn feature_maps_are_each_on_their_own_range() {
        let small = [0.0, 1.0, 2.0, 3.0];
        let values: Vec<f32> = small
            .iter()
            .chain(&small.map(|v| 100.0 * v))
            .copied()
            .collect();
        let fm = feature_maps(&Tensor::from_vec(values, [2, 2, 2]).unwrap()).unwrap();
        // a 2×2 map is drawn 8 pixels a value (96 / 2, at most 8)
        let cell = 64;
        assert_eq!(inked(&fm, BLACK), 2 * cell, "each map's minimum");
        assert_eq!(
            inked(&fm, gray(1.0 / 3.0)),
            2 * cell,
            "each map's second value"
        );
        assert!(feature_maps(&Tensor::zeros([4, 4])).is_err());
        assert_eq!(
            [
                short(0.5),
                short(-12.25),
                short(0.0),
                short(2e-4),
                short(-3e5)
            ],
            ["0.50", "-12.25", "0.00", "2.0e-4", "-3.0e5"]
        );
    }
}
