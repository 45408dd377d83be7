//! `nabla explain`: attribution heatmaps as PNG (`--grid K` spreads K test
//! examples over the set). Each tile shows the input
//! in gray with the map over it in "hot" colours (black → red → yellow →
//! white, scaled to the tile's largest value), under it the true (t) and
//! predicted (p) class; a colour bar runs down the right edge.

use anyhow::{anyhow, bail, Result};
use nabla_core::{no_grad, Tensor};
use nabla_nn::Module;
use nabla_train::explain::{grad_cam, integrated_gradients, saliency, smoothgrad};

use crate::args::{ExplainArgs, ExplainMethod};
use crate::common::{load_data, mean_std};
use crate::inspect::load_trained;

const SCALE: usize = 4;

/// 3×5 pixel digits, rows top to bottom, 3 bits each (for the labels).
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

fn hot(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0) * 3.0;
    let c = |x: f32| (x.clamp(0.0, 1.0) * 255.0) as u8;
    [c(v), c(v - 1.0), c(v - 2.0)]
}

struct Sheet {
    img: image::RgbImage,
}

impl Sheet {
    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, image::Rgb(c));
        }
    }

    fn number(&mut self, x: usize, y: usize, n: usize, c: [u8; 3]) {
        for (k, ch) in n.to_string().bytes().enumerate() {
            let glyph = DIGITS[(ch - b'0') as usize];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            self.put(x + k * 8 + col * 2 + dx, y + row * 2 + dy, c);
                        }
                    }
                }
            }
        }
    }
}

pub fn run(a: ExplainArgs) -> Result<()> {
    let t = load_trained(
        &a.weights,
        a.model.as_deref(),
        a.dataset.as_deref(),
        a.data.as_deref(),
    )?;
    let model = &t.model;
    let [c, h, w] = model.input[..] else {
        bail!(
            "explain needs an image model, this one takes {:?}",
            model.input
        )
    };
    let mut examples: Vec<(Tensor, Option<usize>)> = vec![];
    if let Some(path) = &a.image {
        examples.push((
            Tensor::from_vec(
                crate::inspect::image_input(path, &model.input, &t.dataset)?,
                [c, h, w],
            )?,
            None,
        ));
    } else {
        let data = load_data(&t.dataset, t.data.as_deref(), false)?;
        let (mean, std) = mean_std(&t.dataset);
        let (x, y) = data.test.to_tensors(mean, std)?;
        let n = data.test.len();
        // one example, or K spread evenly over the test set (it may be sorted by class)
        let picks: Vec<usize> = match (a.index, a.grid) {
            (Some(i), None) => vec![i],
            (None, Some(k)) => (0..k.clamp(1, n)).map(|j| j * n / k.clamp(1, n)).collect(),
            (Some(_), Some(_)) => bail!("give either --index or --grid, not both"),
            (None, None) => bail!("nothing to explain: give --image FILE, --index N or --grid K"),
        };
        if let Some(&bad) = picks.iter().find(|&&i| i >= n) {
            bail!("--index {bad}: the test set has {n} examples");
        }
        let labels = y.to_vec();
        for i in picks {
            examples.push((x.narrow(0, i, 1)?.squeeze(0)?, Some(labels[i] as usize)));
        }
    }
    model.eval();
    let f = |b: &Tensor| model.forward(b);
    let split = match a.method {
        ExplainMethod::GradCam => {
            let idx = match &a.layer {
                Some(name) => model
                    .layers
                    .iter()
                    .position(|l| &l.name == name)
                    .ok_or_else(|| anyhow!("no layer named {name:?} in {}", model.name))?,
                None => model
                    .layers
                    .iter()
                    .rposition(|l| l.out_shape.len() == 3)
                    .ok_or_else(|| {
                        anyhow!("{} has no layer with feature maps for Grad-CAM", model.name)
                    })?,
            };
            if model.layers[idx].out_shape.len() != 3 {
                bail!(
                    "layer {} gives {:?}, Grad-CAM needs feature maps [C, H, W]",
                    model.layers[idx].name,
                    model.layers[idx].out_shape
                );
            }
            Some(idx)
        }
        _ => None,
    };
    let tile = (w * SCALE + 4, h * SCALE + 16);
    let cols = examples.len().min(8);
    let rows = examples.len().div_ceil(cols);
    let mut sheet = Sheet {
        img: image::RgbImage::new(
            (cols * tile.0 + 24) as u32,
            (rows * tile.1).max(h * SCALE) as u32,
        ),
    };
    for (k, (x, label)) in examples.iter().enumerate() {
        let scores = no_grad(|| f(&x.unsqueeze(0)?))?;
        let pred = scores.argmax(1, false)?.to_vec()[0] as usize;
        let target = a.target.unwrap_or(pred);
        let map = match a.method {
            ExplainMethod::Saliency => saliency(&f, x, target)?,
            ExplainMethod::Smoothgrad => smoothgrad(&f, x, target, 32, 0.15, 1)?,
            ExplainMethod::IntegratedGradients => integrated_gradients(&f, x, None, target, 64)?
                .0
                .abs()?
                .sum(&[0], false)?,
            ExplainMethod::GradCam => {
                let idx = split.expect("checked above");
                let features = |b: &Tensor| {
                    model.layers[..=idx]
                        .iter()
                        .try_fold(b.clone(), |y, l| l.module.forward(&y))
                };
                let head = |b: &Tensor| {
                    model.layers[idx + 1..]
                        .iter()
                        .try_fold(b.clone(), |y, l| l.module.forward(&y))
                };
                grad_cam(&features, &head, x, target)?.0
            }
        };
        let (mv, xv) = (map.to_vec(), x.narrow(0, 0, 1)?.to_vec());
        let top = mv.iter().fold(1e-12f32, |m, &v| m.max(v));
        let (lo, hi) = xv
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (ox, oy) = ((k % cols) * tile.0, (k / cols) * tile.1);
        for yy in 0..h * SCALE {
            for xx in 0..w * SCALE {
                let j = (yy / SCALE) * w + xx / SCALE;
                let gray = (xv[j] - lo) / (hi - lo).max(1e-12);
                let heat = hot(mv[j] / top);
                let mix = |hc: u8| (0.5 * gray * 255.0 + 0.5 * hc as f32) as u8;
                sheet.put(ox + xx, oy + yy, [mix(heat[0]), mix(heat[1]), mix(heat[2])]);
            }
        }
        let ly = oy + h * SCALE + 3;
        if let Some(l) = label {
            sheet.number(ox + 2, ly, *l, [120, 200, 255]);
        }
        sheet.number(
            ox + 2 + 40,
            ly,
            pred,
            if Some(pred) == *label || label.is_none() {
                [120, 255, 120]
            } else {
                [255, 90, 90]
            },
        );
    }
    // colour bar: bottom 0, top the largest value of each tile
    let bar_h = sheet.img.height() as usize;
    for yy in 0..bar_h {
        let c = hot(1.0 - yy as f32 / (bar_h - 1).max(1) as f32);
        for xx in 0..12 {
            sheet.put(cols * tile.0 + 8 + xx, yy, c);
        }
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(sheet.img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| anyhow!("encoding the PNG: {e}"))?;
    nabla_data::write_atomically(&a.output, &png).map_err(|e| anyhow!("{e}"))?;
    println!(
        "heatmaps of {} example(s) ({:?}) written to {}",
        examples.len(),
        a.method,
        a.output.display()
    );
    Ok(())
}
