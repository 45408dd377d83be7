//! Pictures of a model and its training: line charts (training curves),
//! a confusion matrix and grids of example images with captions
//! (misclassified examples, attribution maps); a layer's filters and
//! feature maps are in [`crate::layers`]. Each returns a [`Canvas`];
//! `canvas.save_png(path)` writes it.

use nabla_core::{Error, Result, Tensor};

use crate::canvas::{
    blues, gray, hot, text_width, Canvas, Rgb, BLACK, CHAR_H, GRAY, LIGHT_GRAY, PALETTE, WHITE,
};

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Rgb,
    /// Line width in pixels (a dense per-step series reads best thin).
    pub width: usize,
    /// Draw a dot at each point (for sparse, per-epoch series).
    pub markers: bool,
}

impl Series {
    pub fn new(name: &str, points: Vec<(f64, f64)>, color: Rgb) -> Self {
        Series {
            name: name.into(),
            points,
            color,
            width: 2,
            markers: false,
        }
    }
}

/// A line chart: title, x-axis label, series, optionally a log-scale y axis.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
    pub log_y: bool,
}

/// Tick positions at 1, 2 or 5 × 10^k covering [lo, hi], about `n` of them.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    // the round step whose number of intervals comes closest to n
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .min_by(|a, b| {
            let off = |s: f64| ((hi - lo) / s - n as f64).abs();
            off(*a).total_cmp(&off(*b))
        })
        .unwrap_or(mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: plain decimals, or `1e-3` style for very small or large
/// magnitudes.
pub fn tick_label(v: f64, step: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        // Rust's exponent form, "1.0e-4" → "1e-4", "2.5e6" stays
        return format!("{v:.1e}").replace(".0e", "e");
    }
    let decimals = if step >= 1.0 || step <= 0.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

const MARGIN_LEFT: usize = 64;
const MARGIN_RIGHT: usize = 16;
const MARGIN_TOP: usize = 30;
const MARGIN_BOTTOM: usize = 40;

/// Draws `chart` on a `width`×`height` canvas: axes with ticks and labels,
/// a light grid, the series and a legend in the top-right corner. Points
/// that are not finite (or not positive on a log axis) are skipped.
pub fn line_chart(chart: &Chart, width: usize, height: usize) -> Canvas {
    let mut c = Canvas::new(width, height, WHITE);
    let fy = |y: f64| if chart.log_y { y.log10() } else { y };
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && fy(y).is_finite();
    let pts = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| usable(p))
    };
    let (mut x0, mut x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (mut y0, mut y1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(fy(p.1)), b.max(fy(p.1)))
    });
    c.text(MARGIN_LEFT as i64, 8, &chart.title, 2, BLACK);
    let (pw, ph) = (
        width.saturating_sub(MARGIN_LEFT + MARGIN_RIGHT).max(1),
        height.saturating_sub(MARGIN_TOP + MARGIN_BOTTOM).max(1),
    );
    let (left, top) = (MARGIN_LEFT as f64, MARGIN_TOP as f64);
    c.rect(MARGIN_LEFT as i64, MARGIN_TOP as i64, pw + 1, ph + 1, GRAY);
    if !x0.is_finite() {
        let msg = "no data";
        c.text(
            (MARGIN_LEFT + pw / 2 - text_width(msg, 2) / 2) as i64,
            (MARGIN_TOP + ph / 2) as i64,
            msg,
            2,
            GRAY,
        );
        return c;
    }
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    // a flat series gets a band of ±10% (of 1 at zero) around it
    let pad = if y1 - y0 > 1e-9 * y1.abs().max(y0.abs()) {
        (y1 - y0) * 0.05
    } else if chart.log_y {
        0.05
    } else {
        0.1 * if y1 == 0.0 { 1.0 } else { y1.abs() }
    };
    (y0, y1) = (y0 - pad, y1 + pad);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw as f64;
    let sy = |y: f64| top + (1.0 - (fy(y) - y0) / (y1 - y0)) * ph as f64;

    // y ticks (grid lines across the plot)
    let yticks: Vec<(f64, String)> = if chart.log_y {
        (y0.ceil() as i64..=y1.floor() as i64)
            .map(|e| (10f64.powi(e as i32), format!("1E{e}")))
            .collect()
    } else {
        let t = nice_ticks(y0, y1, 5);
        let step = if t.len() > 1 { t[1] - t[0] } else { 1.0 };
        t.into_iter().map(|v| (v, tick_label(v, step))).collect()
    };
    for (v, label) in &yticks {
        let y = sy(*v).round() as i64;
        c.line(
            (left + 1.0, y as f64),
            (left + pw as f64 - 1.0, y as f64),
            1,
            LIGHT_GRAY,
        );
        c.line((left - 4.0, y as f64), (left, y as f64), 1, GRAY);
        let w = text_width(label, 2) as i64;
        c.text(
            MARGIN_LEFT as i64 - 8 - w,
            y - CHAR_H as i64 + 1,
            label,
            2,
            BLACK,
        );
    }
    let xt = nice_ticks(x0, x1, (pw / 90).max(2));
    let step = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
    for v in &xt {
        let x = sx(*v).round();
        c.line((x, top + 1.0), (x, top + ph as f64 - 1.0), 1, LIGHT_GRAY);
        c.line((x, top + ph as f64), (x, top + ph as f64 + 4.0), 1, GRAY);
        let label = tick_label(*v, step);
        let w = text_width(&label, 2) as f64;
        c.text(
            (x - w / 2.0) as i64,
            (top + ph as f64 + 8.0) as i64,
            &label,
            2,
            BLACK,
        );
    }
    let xl = &chart.x_label;
    c.text(
        (left + pw as f64 / 2.0 - text_width(xl, 2) as f64 / 2.0) as i64,
        (height - 12) as i64,
        xl,
        2,
        BLACK,
    );
    c.rect(MARGIN_LEFT as i64, MARGIN_TOP as i64, pw + 1, ph + 1, GRAY);

    for s in &chart.series {
        let mut prev: Option<(f64, f64)> = None;
        for p in &s.points {
            if !usable(p) {
                prev = None; // a gap, not a line across it
                continue;
            }
            let q = (sx(p.0), sy(p.1));
            if let Some(a) = prev {
                c.line(a, q, s.width, s.color);
            }
            if s.markers {
                c.fill_rect(q.0 as i64 - 2, q.1 as i64 - 2, 5, 5, s.color);
            }
            prev = Some(q);
        }
    }
    // legend in the title row, right of the title
    let mut lx = (MARGIN_LEFT + text_width(&chart.title, 2) + 24) as i64;
    for s in chart.series.iter().filter(|s| !s.name.is_empty()) {
        c.fill_rect(lx, 12, 16, 3, s.color);
        lx += 22 + c.text(lx + 22, 8, &s.name, 2, BLACK) as i64 + 16;
    }
    c
}

/// Places canvases side by side in a row, `gap` pixels apart, on white.
pub fn hstack(parts: &[Canvas], gap: usize) -> Canvas {
    let w = parts.iter().map(|p| p.width).sum::<usize>() + gap * parts.len().saturating_sub(1);
    let h = parts.iter().map(|p| p.height).max().unwrap_or(0);
    let mut c = Canvas::new(w.max(1), h.max(1), WHITE);
    let mut x = 0;
    for p in parts {
        c.blit(p, x as i64, 0);
        x += p.width + gap;
    }
    c
}

/// Stacks canvases top to bottom, `gap` pixels apart, on white.
pub fn vstack(parts: &[Canvas], gap: usize) -> Canvas {
    let w = parts.iter().map(|p| p.width).max().unwrap_or(0);
    let h = parts.iter().map(|p| p.height).sum::<usize>() + gap * parts.len().saturating_sub(1);
    let mut c = Canvas::new(w.max(1), h.max(1), WHITE);
    let mut y = 0;
    for p in parts {
        c.blit(p, 0, y as i64);
        y += p.height + gap;
    }
    c
}

pub(crate) fn invalid(op: &'static str, msg: String) -> Error {
    Error::Shape { op, msg }
}

pub(crate) fn dims<const N: usize>(
    t: &Tensor,
    op: &'static str,
    layout: &str,
) -> Result<[usize; N]> {
    t.shape().try_into().map_err(|_| {
        invalid(
            op,
            format!("expected a tensor of shape {layout}, got {:?}", t.shape()),
        )
    })
}

/// A confusion matrix (`counts[true][predicted]`): each cell shaded by the
/// fraction of its row (the recall of that class along the diagonal), with
/// the count written in it; the rows labelled with the classes' `names`
/// when given (the columns keep their numbers).
pub fn confusion_matrix(counts: &[Vec<usize>], names: Option<&[String]>) -> Result<Canvas> {
    let k = counts.len();
    if k == 0 || counts.iter().any(|r| r.len() != k) {
        return Err(invalid(
            "confusion_matrix",
            format!(
                "expected a square matrix of counts, got {} rows of lengths {:?}",
                k,
                counts.iter().map(Vec::len).collect::<Vec<_>>()
            ),
        ));
    }
    let most = counts.iter().flatten().max().copied().unwrap_or(0);
    let cell = (text_width(&most.to_string(), 2) + 10).max(36);
    let row_label = |j: usize| match names.and_then(|n| n.get(j)) {
        Some(name) => format!("{name} {j}"),
        None => j.to_string(),
    };
    let widest = (0..k)
        .map(|j| text_width(&row_label(j), 2))
        .max()
        .unwrap_or(0);
    let (left, top) = (widest.max(text_width("True", 2)) + 20, 56usize);
    let mut c = Canvas::new(left + k * cell + 8, top + k * cell + 8, WHITE);
    c.text(left as i64, 4, "Predicted", 2, BLACK);
    c.text(4, 4, "True", 2, BLACK);
    for j in 0..k {
        let label = j.to_string();
        let x = left + j * cell + cell / 2 - text_width(&label, 2) / 2;
        c.text(x as i64, 30, &label, 2, BLACK);
        let y = top + j * cell + cell / 2 - 5;
        let label = row_label(j);
        c.text(
            (left - 10 - text_width(&label, 2)) as i64,
            y as i64,
            &label,
            2,
            BLACK,
        );
    }
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        for (p, &n) in row.iter().enumerate() {
            let frac = n as f32 / total;
            let (x, y) = (left + p * cell, top + t * cell);
            c.fill_rect(x as i64, y as i64, cell, cell, blues(frac));
            c.rect(x as i64, y as i64, cell + 1, cell + 1, LIGHT_GRAY);
            let label = n.to_string();
            let ink = if frac > 0.5 { WHITE } else { BLACK };
            c.text(
                (x + cell / 2 - text_width(&label, 2) / 2) as i64,
                (y + cell / 2 - 5) as i64,
                &label,
                2,
                ink,
            );
        }
    }
    Ok(c)
}

/// One picture of a grid: an image (`[C, H, W]`, the first channel drawn
/// in gray, scaled from its minimum to its maximum), optionally a map
/// `[H, W]` laid over it in hot colours (scaled to the map's largest
/// value), and a caption under it.
#[derive(Clone, Debug)]
pub struct Tile {
    pub image: Tensor,
    pub overlay: Option<Tensor>,
    pub caption: String,
    pub caption_color: Rgb,
}

/// A batch of images `[N, C, H, W]` as a grid of `cols` columns without
/// captions (a generator's samples, reconstructions beside their inputs).
pub fn batch_grid(images: &Tensor, cols: usize, scale: usize) -> Result<Canvas> {
    let [n, _, _, _] = dims::<4>(images, "batch_grid", "[N, C, H, W]")?;
    let tiles = (0..n)
        .map(|i| {
            Ok(Tile {
                image: images.narrow(0, i, 1)?.squeeze(0)?,
                overlay: None,
                caption: String::new(),
                caption_color: WHITE,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    image_grid(&tiles, cols, scale, false)
}

/// The tiles in rows of at most `cols`, each image pixel drawn as a
/// `scale`×`scale` square; with `colour_bar` a hot-colours bar (0 at the
/// bottom, the largest value at the top) runs down the right edge.
pub fn image_grid(tiles: &[Tile], cols: usize, scale: usize, colour_bar: bool) -> Result<Canvas> {
    let Some(first) = tiles.first() else {
        return Err(invalid("image_grid", "no tiles".into()));
    };
    let [_, h, w] = dims::<3>(&first.image, "image_grid", "[C, H, W]")?;
    let caption_width = tiles
        .iter()
        .map(|t| text_width(&t.caption, 2))
        .max()
        .unwrap_or(0);
    let cols = cols.clamp(1, tiles.len());
    let tw = (w * scale).max(caption_width) + 8;
    let th = h * scale + 22;
    // the bar, with "max" at its top and "0" at its foot
    let bar = if colour_bar {
        20 + text_width("max", 2) + 6
    } else {
        0
    };
    let mut c = Canvas::new(
        cols * tw + bar,
        tiles.len().div_ceil(cols) * th,
        [32, 32, 32],
    );
    for (k, t) in tiles.iter().enumerate() {
        let [_, th_, tw_] = dims::<3>(&t.image, "image_grid", "[C, H, W]")?;
        if (th_, tw_) != (h, w) {
            return Err(invalid(
                "image_grid",
                format!("tile {k} is {th_}×{tw_}, the first is {h}×{w}"),
            ));
        }
        let px = t.image.narrow(0, 0, 1)?.to_vec();
        let map = match &t.overlay {
            Some(m) if m.numel() == h * w => Some(m.to_vec()),
            Some(m) => {
                return Err(invalid(
                    "image_grid",
                    format!(
                        "tile {k}'s overlay has shape {:?}, expected [{h}, {w}]",
                        m.shape()
                    ),
                ))
            }
            None => None,
        };
        let (lo, hi) = px
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let top = map
            .as_ref()
            .map_or(1.0, |m| m.iter().fold(1e-12f32, |a, &v| a.max(v)));
        let (ox, oy) = ((k % cols) * tw + 4, (k / cols) * th + 2);
        for r in 0..h {
            for q in 0..w {
                let g = (px[r * w + q] - lo) / (hi - lo).max(1e-12);
                let colour = match &map {
                    None => gray(g),
                    Some(m) => {
                        let heat = hot(m[r * w + q] / top);
                        heat.map(|hc| (0.5 * g * 255.0 + 0.5 * hc as f32) as u8)
                    }
                };
                c.fill_rect(
                    (ox + q * scale) as i64,
                    (oy + r * scale) as i64,
                    scale,
                    scale,
                    colour,
                );
            }
        }
        c.text(
            ox as i64,
            (oy + h * scale + 4) as i64,
            &t.caption,
            2,
            t.caption_color,
        );
    }
    if colour_bar {
        let bh = c.height.saturating_sub(4);
        for y in 0..bh {
            let colour = hot(1.0 - y as f32 / (bh - 1).max(1) as f32);
            c.fill_rect((cols * tw + 6) as i64, 2 + y as i64, 12, 1, colour);
        }
        let x = (cols * tw + 22) as i64;
        c.text(x, 2, "max", 2, WHITE);
        c.text(x, bh as i64 - 10, "0", 2, WHITE);
    }
    Ok(c)
}

/// `picture` under a title line (and a smaller second line), on the
/// picture's own dark ground, for sheets a reader must understand alone.
pub fn titled(picture: &Canvas, title: &str, subtitle: &str) -> Canvas {
    let width = picture
        .width
        .max(text_width(title, 2) + 12)
        .max(text_width(subtitle, 2) + 12);
    let head = if subtitle.is_empty() { 26 } else { 46 };
    let ground = picture.get(0, 0);
    let mut c = Canvas::new(width, picture.height + head, ground);
    c.text(6, 6, title, 2, WHITE);
    c.text(6, 26, subtitle, 2, [190, 190, 190]);
    c.blit(picture, 0, head as i64);
    c
}

/// The colour of the n-th series.
pub fn series_color(n: usize) -> Rgb {
    PALETTE[n % PALETTE.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn inked(c: &Canvas, colour: Rgb) -> usize {
        (0..c.height)
            .flat_map(|y| (0..c.width).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == colour)
            .count()
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = nice_ticks(0.13, 2.31, 4);
        assert_eq!(t, vec![0.5, 1.0, 1.5, 2.0]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(0.0001, 1.0), "1e-4");
        assert_eq!(nice_ticks(1.0, 1.0, 5), vec![1.0]);
    }

    #[test]
    fn a_rising_series_is_drawn_from_bottom_left_to_top_right() {
        let chart = Chart {
            title: "T".into(),
            x_label: "EPOCH".into(),
            series: vec![Series::new(
                "",
                (0..10).map(|i| (i as f64, i as f64)).collect(),
                [255, 0, 0],
            )],
            log_y: false,
        };
        let c = line_chart(&chart, 300, 200);
        let red: Vec<(usize, usize)> = (0..c.height)
            .flat_map(|y| (0..c.width).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == [255, 0, 0])
            .collect();
        assert!(red.len() > 100);
        let leftmost = red.iter().min_by_key(|p| p.0).unwrap();
        let rightmost = red.iter().max_by_key(|p| p.0).unwrap();
        assert!(leftmost.1 > rightmost.1 + 80, "{leftmost:?} {rightmost:?}");
    }

    #[test]
    fn charts_survive_empty_constant_and_non_finite_data() {
        for points in [
            vec![],
            vec![(1.0, 2.0)],
            vec![(0.0, f64::NAN), (1.0, f64::INFINITY)],
            vec![(0.0, 1.0), (1.0, 1.0)],
        ] {
            let chart = Chart {
                series: vec![Series::new("a", points, PALETTE[0])],
                log_y: true,
                ..Default::default()
            };
            let c = line_chart(&chart, 200, 120);
            assert_eq!((c.width, c.height), (200, 120));
        }
    }

    #[test]
    fn confusion_matrix_shades_the_diagonal() {
        let c = confusion_matrix(&[vec![9, 1], vec![0, 10]], None).unwrap();
        let names = ["Trouser".to_string(), "Ankle boot".to_string()];
        let named = confusion_matrix(&[vec![9, 1], vec![0, 10]], Some(&names)).unwrap();
        assert!(named.width > c.width, "the names widen the margin");
        assert!(inked(&c, blues(1.0)) > 0, "the all-correct row is darkest");
        assert!(confusion_matrix(&[vec![1, 2]], None).is_err());
    }

    #[test]
    fn grids_lay_out_tiles_and_check_their_shapes() {
        let img = Tensor::ones([1, 4, 4]);
        let tile = |caption: &str| Tile {
            image: img.clone(),
            overlay: None,
            caption: caption.into(),
            caption_color: WHITE,
        };
        let c = image_grid(&[tile("1"), tile("2"), tile("3")], 2, 3, true).unwrap();
        assert!(c.width > 2 * 12 && c.height >= 2 * (12 + 20));
        let bad = Tile {
            image: Tensor::ones([1, 5, 4]),
            ..tile("x")
        };
        assert!(image_grid(&[tile("a"), bad], 2, 3, false).is_err());
    }

    #[test]
    fn a_batch_is_one_tile_per_image() {
        let batch =
            Tensor::from_vec((0..3 * 16).map(|v| v as f32).collect(), [3, 1, 4, 4]).unwrap();
        let (one_row, one_column) = (
            batch_grid(&batch, 3, 2).unwrap(),
            batch_grid(&batch, 1, 2).unwrap(),
        );
        assert!(
            one_row.width > 2 * one_column.width,
            "three tiles side by side"
        );
        assert!(
            one_column.height > 2 * one_row.height,
            "three tiles stacked"
        );
        assert!(batch_grid(&batch.reshape([3, 16]).unwrap(), 3, 2).is_err());
    }
}
