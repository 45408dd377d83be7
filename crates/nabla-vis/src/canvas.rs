//! A small RGB raster to draw pictures on: rectangles, lines, anti-aliased
//! text in DejaVu Sans (compiled in through the `dejavu` crate and drawn
//! by `ab_glyph`, so pictures need no system fonts) and colour maps,
//! written out as PNG.
//!
//! Why not `plotters`: its bitmap text needs system fonts (font-kit) or
//! the same two crates underneath, and nabla's charts are a few hundred
//! lines on this canvas; `ab_glyph` is the small, well-kept rasterizer
//! that others build on.

use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GRAY: Rgb = [150, 150, 150];
pub const LIGHT_GRAY: Rgb = [225, 225, 225];
/// Series colours (a colour-blind safe set).
pub const PALETTE: [Rgb; 6] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
];

/// The height of a line of text at scale 1 (the text itself is
/// `FONT_PX · scale` pixels, capitals about 5 of every 7).
pub const CHAR_H: usize = 6;

/// The font's size in pixels at scale 1: at scale 2 (what the plots use),
/// 14-pixel DejaVu Sans, capitals 10 pixels tall.
const FONT_PX: f32 = 7.0;

/// DejaVu Sans (from the `dejavu` crate, compiled in: no system fonts
/// needed), parsed once.
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).ok())
        .as_ref()
}

/// Each character's glyph at `px`, placed along the line from x = 0 (with
/// kerning), and the line's advance.
fn layout(text: &str, px: f32) -> (Vec<Glyph>, f32) {
    let Some(font) = font() else {
        return (Vec::new(), 0.0);
    };
    let scaled = font.as_scaled(PxScale::from(px));
    let (mut glyphs, mut caret) = (Vec::new(), 0f32);
    let mut previous = None;
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(px, point(caret, 0.0)));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    (glyphs, caret)
}

/// An RGB picture in memory.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    /// Sets one pixel; points outside the canvas are ignored.
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    pub fn get(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        for yy in y..y + h as i64 {
            for xx in x..x + w as i64 {
                self.put(xx, yy, c);
            }
        }
    }

    /// The outline of a rectangle, one pixel wide.
    pub fn rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        let (w, h) = (w as i64, h as i64);
        for xx in x..x + w {
            self.put(xx, y, c);
            self.put(xx, y + h - 1, c);
        }
        for yy in y..y + h {
            self.put(x, yy, c);
            self.put(x + w - 1, yy, c);
        }
    }

    /// A straight line `width` pixels thick (steps of at most one pixel
    /// along the longer axis, so it has no gaps).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), width: usize, c: Rgb) {
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return;
        }
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        let half = (width as i64 - 1) / 2;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (
                (x0 + t * (x1 - x0)).round() as i64,
                (y0 + t * (y1 - y0)).round() as i64,
            );
            self.fill_rect(x - half, y - half, width, width, c);
        }
    }

    /// Draws `text` anti-aliased in DejaVu Sans, `FONT_PX · scale` pixels
    /// high, the top of its capitals at y and its left edge at x; returns
    /// the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        let px = FONT_PX * scale as f32;
        let (glyphs, advance) = layout(text, px);
        let Some(font) = font() else {
            return 0;
        };
        // the baseline sits a capital's height below y
        let baseline = y as f32 + (0.73 * px).round();
        for g in glyphs {
            let Some(outline) = font.outline_glyph(g) else {
                continue; // a space
            };
            let b = outline.px_bounds();
            let (left, top) = (
                x + b.min.x.floor() as i64,
                baseline as i64 + b.min.y.floor() as i64,
            );
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (left + gx as i64, top + gy as i64);
                if px >= 0 && py >= 0 && (px as usize) < self.width && (py as usize) < self.height {
                    let under = self.get(px as usize, py as usize);
                    self.put(px, py, lerp(under, c, coverage));
                }
            });
        }
        advance.ceil() as usize
    }

    /// Copies `other` onto this canvas with its top-left corner at (x, y).
    pub fn blit(&mut self, other: &Canvas, x: i64, y: i64) {
        for yy in 0..other.height {
            for xx in 0..other.width {
                self.put(x + xx as i64, y + yy as i64, other.get(xx, yy));
            }
        }
    }

    /// The picture as PNG bytes.
    pub fn to_png(&self) -> Vec<u8> {
        let raw: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        let img = image::RgbImage::from_raw(self.width as u32, self.height as u32, raw)
            .expect("the buffer has width × height pixels");
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("PNG encoding into memory does not fail");
        png
    }

    /// Writes the picture as PNG, atomically (temp file + rename).
    pub fn save_png(&self, path: &Path) -> std::io::Result<()> {
        nabla_core::io::write_atomically(path, &self.to_png())
    }
}

/// The width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    layout(text, FONT_PX * scale as f32).1.ceil() as usize
}

fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| (a[i] as f32 + t * (b[i] as f32 - a[i] as f32)).round() as u8)
}

/// Black → red → yellow → white for v in [0, 1] (attribution maps).
pub fn hot(v: f32) -> Rgb {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    } * 3.0;
    let c = |x: f32| (x.clamp(0.0, 1.0) * 255.0) as u8;
    [c(v), c(v - 1.0), c(v - 2.0)]
}

/// Blue (−1) → white (0) → red (+1), for signed values such as weights.
pub fn diverging(v: f32) -> Rgb {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    if v < 0.0 {
        lerp(WHITE, [33, 102, 172], -v)
    } else {
        lerp(WHITE, [178, 24, 43], v)
    }
}

/// White (0) → dark blue (1), for fractions such as a confusion matrix.
pub fn blues(v: f32) -> Rgb {
    lerp(
        [247, 251, 255],
        [8, 48, 107],
        if v.is_finite() { v } else { 0.0 },
    )
}

/// Black (0) → white (1).
pub fn gray(v: f32) -> Rgb {
    let g = (if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    } * 255.0)
        .round() as u8;
    [g, g, g]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lands_where_asked_and_reports_its_width() {
        let mut c = Canvas::new(60, 24, WHITE);
        let w = c.text(2, 3, "17", 2, BLACK);
        assert_eq!(w, text_width("17", 2));
        // two digits of 14-pixel DejaVu Sans: about 9 pixels each
        assert!((16..=20).contains(&w), "{w}");
        let inked: Vec<(usize, usize)> = (0..24)
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) != WHITE)
            .collect();
        let (top, bottom) = (
            inked.iter().map(|p| p.1).min().unwrap(),
            inked.iter().map(|p| p.1).max().unwrap(),
        );
        let (left, right) = (
            inked.iter().map(|p| p.0).min().unwrap(),
            inked.iter().map(|p| p.0).max().unwrap(),
        );
        // digits stand as tall as capitals, from y = 3 down
        assert!(
            (3..=4).contains(&top) && (12..=14).contains(&bottom),
            "{top}..{bottom}"
        );
        assert!(left >= 2 && right < 2 + w, "{left}..{right} of width {w}");
        // anti-aliased: grey edges beside the black strokes
        let greys = inked.iter().filter(|&&(x, y)| c.get(x, y) != BLACK).count();
        assert!(
            greys > 0 && inked.len() > greys,
            "{greys} of {}",
            inked.len()
        );
        assert!(text_width("Accuracy", 2) > text_width("11111111", 2) / 2);
    }

    #[test]
    fn lines_have_no_gaps_and_clip_at_the_edges() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.line((-5.0, 0.0), (20.0, 9.0), 1, BLACK);
        for x in 0..10 {
            assert!((0..10).any(|y| c.get(x, y) == BLACK), "column {x} empty");
        }
        c.line((f64::NAN, 0.0), (1.0, 1.0), 1, BLACK); // ignored, no panic
    }

    #[test]
    fn png_round_trips() {
        let mut c = Canvas::new(7, 5, WHITE);
        c.put(3, 2, [10, 20, 30]);
        let img = image::load_from_memory(&c.to_png()).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (7, 5));
        assert_eq!(img.get_pixel(3, 2).0, [10, 20, 30]);
        assert_eq!(img.get_pixel(0, 0).0, WHITE);
    }

    #[test]
    fn colour_maps_hit_their_ends() {
        assert_eq!(hot(0.0), BLACK);
        assert_eq!(hot(1.0), WHITE);
        assert_eq!(diverging(0.0), WHITE);
        assert_eq!(gray(f32::NAN), BLACK);
        assert_eq!(blues(1.0), [8, 48, 107]);
    }
}
