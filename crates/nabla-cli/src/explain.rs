//! `nabla explain`: attribution heatmaps as PNG (`--grid K` spreads K test
//! examples over the set). A title names the method and the class
//! explained; each tile shows the input in gray with the map over it in
//! "hot" colours (black → red → yellow → white, scaled to the tile's
//! largest value), under it the true and predicted class (names for
//! Fashion-MNIST) and the prediction's probability; a colour bar with its
//! scale runs down the right edge. One example is drawn large.

use anyhow::{anyhow, bail, Result};
use nabla_core::{no_grad, Tensor};
use nabla_nn::{Module, Parameters};
use nabla_vis::explain::{attention_rollout, grad_cam, integrated_gradients, saliency, smoothgrad};
use nabla_vis::plot::{image_grid, titled, Tile};

use crate::args::{ExplainArgs, ExplainMethod};
use crate::inspect::{class_name, test_example};
use nabla_nn::modelfile::FileModel;
use nabla_train::say;

pub fn run(a: ExplainArgs) -> Result<()> {
    let t = a.trained.load()?.for_gradients()?;
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
        let (x, y, _) = t.test_tensors()?;
        let n = x.shape()[0];
        // one example, or K spread evenly over the test set (it may be sorted by class)
        let picks: Vec<usize> = match (a.index, a.grid) {
            (Some(i), None) => vec![i],
            (None, Some(k)) => (0..k.clamp(1, n)).map(|j| j * n / k.clamp(1, n)).collect(),
            (Some(_), Some(_)) => bail!("give either --index or --grid, not both"),
            (None, None) => bail!("nothing to explain: give --image FILE, --index N or --grid K"),
        };
        let labels = y.to_vec();
        for i in picks {
            examples.push((test_example(&x, i)?, Some(labels[i] as usize)));
        }
    }
    let tiles = explain_tiles(
        model,
        &examples,
        a.method,
        a.target,
        a.layer.as_deref(),
        &t.dataset,
    )?;
    // one example large enough to read, a grid smaller
    let scale = if examples.len() == 1 { 10 } else { 4 };
    let target = match a.target {
        Some(c) => format!("class {}", class_name(&t.dataset, c)),
        None => "the predicted class".into(),
    };
    let sheet = titled(
        &image_grid(&tiles, 8, scale, true)?,
        &format!(
            "{}: what raises the score of {target}",
            method_name(a.method)
        ),
        "bright: the pixels that matter most (each tile scaled to its largest value)",
    );
    sheet
        .save_png(&a.output)
        .map_err(|e| anyhow!("{}: {e}", a.output.display()))?;
    say!(
        "heatmaps of {} example(s) ({:?}) written to {}",
        examples.len(),
        a.method,
        a.output.display()
    );
    Ok(())
}

/// The attention rollout `[H, W]` of image `x` `[C, H, W]` through the
/// model's Transformer encoder (the layers before it make the tokens: a
/// class token, then a grid of patches shaped like the image).
fn rollout(model: &FileModel, x: &Tensor) -> Result<Tensor> {
    let at = model
        .layers
        .iter()
        .position(|l| l.kind == "encoder")
        .ok_or_else(|| {
            anyhow!(
                "{} has no Transformer encoder to take attention maps from (try --model vit)",
                model.name
            )
        })?;
    let tokens = no_grad(|| model.net.forward_range(0..at, &x.unsqueeze(0)?))?;
    let (_, weights) = no_grad(|| model.net.layers()[at].forward_with_attention(&tokens))
        .ok_or_else(|| anyhow!("layer {} gives no attention weights", model.layers[at].name))??;
    let (h, w) = (x.shape()[1], x.shape()[2]);
    let patches = tokens.shape()[1] - 1;
    // a grid shaped like the image: gh·gw = patches, gh/gw = h/w
    let gh = ((patches * h) as f64 / w as f64).sqrt().round() as usize;
    if gh == 0 || patches % gh != 0 {
        bail!(
            "{} tokens after the class token do not form a grid shaped like a {h}×{w} image",
            patches
        );
    }
    let map = attention_rollout(&weights, (gh, patches / gh), (h, w))?;
    // every patch keeps some share through the residual path: the map's
    // floor is not information, so the colours start at its minimum
    Ok(map.sub(&map.min_all()?)?)
}

/// The method's name as a reader knows it.
pub(crate) fn method_name(method: ExplainMethod) -> &'static str {
    match method {
        ExplainMethod::Saliency => "Saliency",
        ExplainMethod::Smoothgrad => "SmoothGrad",
        ExplainMethod::IntegratedGradients => "Integrated gradients",
        ExplainMethod::GradCam => "Grad-CAM",
        ExplainMethod::Attention => "Attention rollout",
    }
}

/// Attribution maps of `examples` (input `[C, H, W]`, true class if known)
/// by `method`, each as a tile: the input with its map over it, captioned
/// with the true and predicted class (named as `dataset` names them) and
/// the prediction's probability, red when they differ.
pub(crate) fn explain_tiles(
    model: &FileModel,
    examples: &[(Tensor, Option<usize>)],
    method: ExplainMethod,
    target: Option<usize>,
    layer: Option<&str>,
    dataset: &str,
) -> Result<Vec<Tile>> {
    model.eval();
    let f = |b: &Tensor| model.forward(b);
    let split = match method {
        ExplainMethod::GradCam => {
            let idx = match layer {
                Some(name) => model
                    .layers
                    .iter()
                    .position(|l| l.name == name)
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
    let classes = model.output_shape().iter().product::<usize>();
    if let Some(t) = target.filter(|&t| t >= classes) {
        return Err(crate::common::usage(format!(
            "--target {t}: the model has {classes} classes (0 to {})",
            classes - 1
        )));
    }
    let mut tiles = vec![];
    for (x, label) in examples {
        let scores = no_grad(|| f(&x.unsqueeze(0)?))?;
        let pred = scores.argmax(1, false)?.to_vec()[0] as usize;
        let prob = scores.softmax(1)?.to_vec()[pred];
        let target = target.unwrap_or(pred);
        let map = match method {
            ExplainMethod::Saliency => saliency(&f, x, target)?,
            ExplainMethod::Smoothgrad => smoothgrad(&f, x, target, 32, 0.15, 1)?,
            ExplainMethod::IntegratedGradients => integrated_gradients(&f, x, None, target, 64)?
                .0
                .abs()?
                .sum(&[0], false)?,
            ExplainMethod::Attention => rollout(model, x)?,
            ExplainMethod::GradCam => {
                let idx = split.expect("checked above");
                let features = |b: &Tensor| model.net.forward_range(0..idx + 1, b);
                let head = |b: &Tensor| model.net.forward_range(idx + 1..model.net.len(), b);
                grad_cam(&features, &head, x, target)?.0
            }
        };
        let name = |c: usize| class_name(dataset, c);
        let caption = match label {
            Some(l) => format!(
                "true {} · pred {} {:.0}%",
                name(*l),
                name(pred),
                100.0 * prob
            ),
            None => format!("pred {} {:.0}%", name(pred), 100.0 * prob),
        };
        tiles.push(Tile {
            image: x.clone(),
            overlay: Some(map.reshape(&x.shape()[1..])?),
            caption,
            caption_color: if label.is_some_and(|l| l != pred) {
                [255, 90, 90]
            } else {
                [120, 255, 120]
            },
        });
    }
    Ok(tiles)
}
