//! A small RGB raster to draw pictures on, with a built-in pixel font, so
//! plots need no system fonts or libraries: rectangles, lines, text and
//! colour maps, written out as PNG.

use std::path::Path;

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

/// Width and height of one character cell of the font at scale 1 (3×5
/// glyphs with a pixel of spacing).
pub const CHAR_W: usize = 4;
pub const CHAR_H: usize = 6;

/// A 3×5 glyph: five rows top to bottom, three bits each (left = 4).
/// Lower-case letters are drawn as capitals; unknown characters as `?`.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        ':' => [0, 2, 0, 2, 0],
        '%' => [5, 1, 2, 4, 5],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        '=' => [0, 7, 0, 7, 0],
        '_' => [0, 0, 0, 0, 7],
        '\'' => [2, 2, 0, 0, 0],
        '>' => [4, 2, 1, 2, 4],
        '<' => [1, 2, 4, 2, 1],
        '|' => [2, 2, 2, 2, 2],
        '*' => [0, 5, 2, 5, 0],
        '#' => [5, 7, 5, 7, 5],
        _ => [6, 1, 2, 0, 2],
    }
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

    /// Draws `text` with its top-left corner at (x, y), each font pixel a
    /// `scale`×`scale` square; returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        for (k, ch) in text.chars().enumerate() {
            let left = x + (k * CHAR_W * scale) as i64;
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        self.fill_rect(
                            left + (col * scale) as i64,
                            y + (row * scale) as i64,
                            scale,
                            scale,
                            c,
                        );
                    }
                }
            }
        }
        text_width(text, scale)
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
    let n = text.chars().count();
    (n * CHAR_W).saturating_sub(1) * scale
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
        let mut c = Canvas::new(40, 20, WHITE);
        let w = c.text(2, 3, "17", 2, BLACK);
        assert_eq!(w, text_width("17", 2));
        assert_eq!(w, 14);
        // top bar of the 7 starts at x = 2 + 8, y = 3
        assert_eq!(c.get(10, 3), BLACK);
        assert_eq!(c.get(0, 0), WHITE);
        let inked = (0..20)
            .flat_map(|y| (0..40).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == BLACK)
            .count();
        // "1" has 8 font pixels, "7" has 7: 15 squares of 2×2
        assert_eq!(inked, 15 * 4);
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
