//! A user's picture made into an example the way MNIST's were made, so a
//! digit photographed, scanned or drawn in a paint program is read as a
//! digit and not as whatever its margins, colours or canvas look like.
//!
//! MNIST (LeCun et al.): each digit's bounding box was scaled to fit a
//! 20×20 box (aspect kept, anti-aliased) and placed in 28×28 with its
//! centre of mass at the centre; light ink on a dark ground. Fashion-MNIST
//! fills the 28×28 frame instead, each item centred. Here:
//!
//! 1. transparency is flattened onto a ground the opposite of the ink (a
//!    digit drawn on a transparent canvas has only its alpha to say where
//!    the ink is);
//! 2. grey levels; dark ink on a light ground (the border says which) is
//!    inverted;
//! 3. the ink's bounding box (pixels above a fifth of the brightest) is cut
//!    out, scaled into the box (20 or 28 pixels) and placed by its centre
//!    of mass (MNIST) or its centre (Fashion-MNIST).
//!
//! Pictures far from that (blank, tiny, very elongated, ink filling most
//! of its box) get warnings: their predictions mean little.

use anyhow::{anyhow, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Luma};

/// The prepared picture: `size × size` values in [0, 1], light ink on
/// dark, and what was odd about the original.
pub struct Prepared {
    pub pixels: Vec<f32>,
    pub warnings: Vec<String>,
}

/// Prepares `img` for a model of `size × size` inputs trained on
/// `dataset` (`mnist` or `fashion-mnist`).
pub fn prepare(img: &DynamicImage, size: usize, dataset: &str) -> Result<Prepared> {
    let mut warnings = Vec::new();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(anyhow!("the image is empty (0 pixels)"));
    }
    if w.min(h) < 8 {
        warnings.push(format!(
            "the image is tiny ({w}×{h}); digits are drawn at 28×28 or larger"
        ));
    }
    let gray = flatten(img);
    let ink = ink_on_dark(&gray, w, h);
    let peak = ink.iter().cloned().fold(0.0f32, f32::max);
    let fashion = dataset == "fashion-mnist";
    if peak < 0.1 {
        warnings.push("the image is blank: nothing stands out from its background".into());
        return Ok(Prepared {
            pixels: vec![0.0; size * size],
            warnings,
        });
    }
    // the ink's bounding box
    let on = |x: usize, y: usize| ink[y * w + x] > 0.2 * peak;
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if on(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    if bw.max(bh) > 6 * bw.min(bh) && !fashion {
        warnings.push(format!(
            "the drawing is very elongated ({bw}×{bh} pixels of ink): is it one digit?"
        ));
    }
    let filled = (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .filter(|&(x, y)| on(x, y))
        .count();
    if !fashion && filled * 10 > bw * bh * 7 {
        warnings.push(
            "ink fills most of its box: a photo or a filled shape rather than a drawn digit?"
                .into(),
        );
    }
    // scaled into the box, aspect kept
    let fit = if fashion { size } else { size * 20 / 28 }.max(1);
    let scale = fit as f32 / bw.max(bh) as f32;
    let (sw, sh) = (
        ((bw as f32 * scale).round() as usize).clamp(1, fit),
        ((bh as f32 * scale).round() as usize).clamp(1, fit),
    );
    let crop = GrayImage::from_fn(bw as u32, bh as u32, |x, y| {
        let v = ink[(y0 + y as usize) * w + x0 + x as usize] / peak;
        Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
    });
    let filter = if scale < 1.0 {
        FilterType::Lanczos3 // shrinking: anti-aliased
    } else {
        FilterType::Triangle
    };
    let small = image::imageops::resize(&crop, sw as u32, sh as u32, filter);
    let value = |x: usize, y: usize| small.get_pixel(x as u32, y as u32).0[0] as f32 / 255.0;
    // where its centre (of mass, for digits) lands: the frame's centre
    let (cx, cy) = if fashion {
        (sw as f32 / 2.0, sh as f32 / 2.0)
    } else {
        let (mut m, mut mx, mut my) = (0f32, 0f32, 0f32);
        for y in 0..sh {
            for x in 0..sw {
                let v = value(x, y);
                (m, mx, my) = (m + v, mx + v * (x as f32 + 0.5), my + v * (y as f32 + 0.5));
            }
        }
        (mx / m.max(1e-6), my / m.max(1e-6))
    };
    let half = size as f32 / 2.0;
    let (ox, oy) = ((half - cx).round() as isize, (half - cy).round() as isize);
    let mut pixels = vec![0f32; size * size];
    for y in 0..sh {
        for x in 0..sw {
            let (tx, ty) = (x as isize + ox, y as isize + oy);
            if (0..size as isize).contains(&tx) && (0..size as isize).contains(&ty) {
                pixels[ty as usize * size + tx as usize] = value(x, y);
            }
        }
    }
    Ok(Prepared { pixels, warnings })
}

/// Grey levels in [0, 1], transparency flattened onto a ground the
/// opposite of the opaque pixels' mean (dark ink gets a white ground).
fn flatten(img: &DynamicImage) -> Vec<f32> {
    let rgba = img.to_rgba8();
    let lum = |p: &image::Rgba<u8>| {
        (0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32) / 255.0
    };
    let (mut weight, mut sum) = (0f32, 0f32);
    for p in rgba.pixels() {
        let a = p.0[3] as f32 / 255.0;
        weight += a;
        sum += a * lum(p);
    }
    let ground = if weight > 0.0 && sum / weight > 0.5 {
        0.0
    } else {
        1.0
    };
    rgba.pixels()
        .map(|p| {
            let a = p.0[3] as f32 / 255.0;
            a * lum(p) + (1.0 - a) * ground
        })
        .collect()
}

/// The picture as ink on a dark ground: inverted when its border (the
/// ground) is light.
fn ink_on_dark(gray: &[f32], w: usize, h: usize) -> Vec<f32> {
    let border: Vec<f32> = (0..w)
        .flat_map(|x| [gray[x], gray[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [gray[y * w], gray[y * w + w - 1]]))
        .collect();
    let ground = border.iter().sum::<f32>() / border.len() as f32;
    if ground > 0.5 {
        gray.iter().map(|v| 1.0 - v).collect()
    } else {
        gray.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "7": a bar on top and a diagonal, drawn in a `w × h` canvas.
    fn seven(w: u32, h: u32, ink: [u8; 4], ground: [u8; 4]) -> DynamicImage {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let bar = fy < 0.15;
            let stroke = (fx - (1.0 - fy) * 0.9).abs() < 0.08;
            image::Rgba(if bar || stroke { ink } else { ground })
        });
        DynamicImage::ImageRgba8(img)
    }

    fn mass_centre(p: &[f32], size: usize) -> (f32, f32) {
        let (mut m, mut mx, mut my) = (0f32, 0f32, 0f32);
        for (i, v) in p.iter().enumerate() {
            let (x, y) = ((i % size) as f32 + 0.5, (i / size) as f32 + 0.5);
            (m, mx, my) = (m + v, mx + v * x, my + v * y);
        }
        (mx / m, my / m)
    }

    /// The rows and columns that hold ink.
    fn extent(p: &[f32], size: usize) -> (usize, usize) {
        let rows = (0..size)
            .filter(|y| (0..size).any(|x| p[y * size + x] > 0.2))
            .count();
        let cols = (0..size)
            .filter(|x| (0..size).any(|y| p[y * size + x] > 0.2))
            .count();
        (cols, rows)
    }

    #[test]
    fn a_digit_filling_its_canvas_gets_mnists_margins_and_centre() {
        let black = [0, 0, 0, 255];
        for img in [
            seven(300, 400, black, [255, 255, 255, 255]), // dark on white, filling it
            seven(120, 160, black, [0, 0, 0, 0]),         // on a transparent canvas
            seven(90, 120, [255, 255, 255, 255], black),  // light on dark already
        ] {
            let p = prepare(&img, 28, "mnist").unwrap();
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            let (cols, rows) = extent(&p.pixels, 28);
            assert!((19..=21).contains(&rows) && cols <= 20, "{cols}×{rows}");
            let (cx, cy) = mass_centre(&p.pixels, 28);
            assert!(
                (cx - 14.0).abs() < 1.0 && (cy - 14.0).abs() < 1.0,
                "{cx}, {cy}"
            );
            // the ground is dark, the ink light
            assert_eq!(p.pixels[0], 0.0);
            assert!(p.pixels.iter().cloned().fold(0.0, f32::max) > 0.9);
        }
    }

    #[test]
    fn odd_pictures_are_warned_about() {
        let white = [255, 255, 255, 255];
        let blank =
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(50, 50, image::Rgba(white)));
        let p = prepare(&blank, 28, "mnist").unwrap();
        assert!(p.warnings[0].contains("blank") && p.pixels.iter().all(|&v| v == 0.0));
        let tiny = seven(5, 6, [0, 0, 0, 255], white);
        // a model of one-pixel inputs still gets one (no empty box)
        assert_eq!(prepare(&tiny, 1, "mnist").unwrap().pixels.len(), 1);
        assert!(prepare(&tiny, 28, "mnist").unwrap().warnings[0].contains("tiny"));
        let photo = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(60, 60, |x, y| {
            let inside = (10..50).contains(&x) && (10..50).contains(&y);
            image::Rgba(if inside { [20, 20, 20, 255] } else { white })
        }));
        let w = prepare(&photo, 28, "mnist").unwrap().warnings;
        assert!(w.iter().any(|w| w.contains("fills most")), "{w:?}");
        // a garment fills the frame, centred
        let p = prepare(&photo, 28, "fashion-mnist").unwrap();
        assert!(p.warnings.is_empty());
        assert_eq!(extent(&p.pixels, 28), (28, 28));
    }
}
