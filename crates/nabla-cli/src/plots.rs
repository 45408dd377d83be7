//! `nabla plot`: pictures of a run as PNG — training curves, the filters of
//! a convolution, the feature maps of a layer for one test image, the
//! confusion matrix, the misclassified test examples, and training images
//! through the run's augmentation.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use nabla_core::{no_grad, Tensor};
use nabla_nn::{Module, Parameters};
use nabla_vis::canvas::Canvas;
use nabla_vis::curves::{training_curves, History};
use nabla_vis::layers::{feature_maps, filters};
use nabla_vis::plot::{confusion_matrix, image_grid, Tile};

use nabla_data::DataLoader;

use crate::args::{PlotArgs, PlotKind};
use crate::common::{augmented_dataset, load_data};
use crate::inspect::{class_name, class_names, test_example, Trained};
use nabla_nn::modelfile::FileModel;
use nabla_train::say;

/// The model's predictions on the whole test set.
pub(crate) struct TestPredictions {
    /// The normalized test images `[N, C, H, W]`.
    pub x: Tensor,
    pub labels: Vec<usize>,
    pub preds: Vec<usize>,
    /// The probability of the predicted class.
    pub confidence: Vec<f32>,
    /// `[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

pub(crate) fn predict_test(t: &Trained) -> Result<TestPredictions> {
    let (x, y, classes) = t.test_tensors()?;
    let n = x.shape()[0];
    t.model.eval();
    let (mut preds, mut confidence) = (Vec::with_capacity(n), Vec::with_capacity(n));
    no_grad(|| -> Result<()> {
        for start in (0..n).step_by(1000) {
            let batch = x.narrow(0, start, 1000.min(n - start))?;
            let probs = t.model.forward(&batch)?.softmax(1)?;
            let (p, i) = (probs.max(&[1], false)?, probs.argmax(1, false)?);
            confidence.extend(p.to_vec());
            preds.extend(i.to_vec().iter().map(|&v| v as usize));
        }
        Ok(())
    })?;
    let labels: Vec<usize> = y.to_vec().iter().map(|&v| v as usize).collect();
    let mut confusion = vec![vec![0; classes]; classes];
    for (&l, &p) in labels.iter().zip(&preds) {
        if l < classes && p < classes {
            confusion[l][p] += 1;
        }
    }
    Ok(TestPredictions {
        x,
        labels,
        preds,
        confidence,
        confusion,
    })
}

/// Up to `k` misclassified test examples, the most confident mistakes
/// first, captioned with the true and predicted class (named as `dataset`
/// names them) and the prediction's probability; `None` when the model
/// makes no mistake.
pub(crate) fn misclassified(
    p: &TestPredictions,
    k: usize,
    dataset: &str,
) -> Result<Option<Canvas>> {
    let mut wrong: Vec<usize> = (0..p.labels.len())
        .filter(|&i| p.labels[i] != p.preds[i])
        .collect();
    wrong.sort_by(|&a, &b| p.confidence[b].total_cmp(&p.confidence[a]));
    if wrong.is_empty() {
        return Ok(None);
    }
    let tiles = wrong
        .iter()
        .take(k)
        .map(|&i| {
            Ok(Tile {
                image: p.x.narrow(0, i, 1)?.squeeze(0)?,
                overlay: None,
                caption: format!(
                    "true {} · pred {} {:.0}%",
                    class_name(dataset, p.labels[i]),
                    class_name(dataset, p.preds[i]),
                    100.0 * p.confidence[i]
                ),
                caption_color: [255, 140, 140],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(image_grid(&tiles, 8, 3, false)?))
}

/// The index of the layer named `name`, or of the first layer of `kind`.
fn find_layer(model: &FileModel, name: Option<&str>, kind: &str) -> Result<usize> {
    match name {
        Some(n) => model
            .layers
            .iter()
            .position(|l| l.name == n)
            .ok_or_else(|| anyhow!("no layer named {n:?} in {}", model.name)),
        None => model
            .layers
            .iter()
            .position(|l| l.kind == kind)
            .ok_or_else(|| anyhow!("{} has no {kind} layer", model.name)),
    }
}

/// The filters of a convolution (default: the first one) and its name.
pub(crate) fn filters_of(model: &FileModel, layer: Option<&str>) -> Result<(String, Canvas)> {
    let idx = find_layer(model, layer, "conv2d")?;
    let l = &model.layers[idx];
    let module = &model.net.layers()[idx];
    let f32_weight = module
        .named_parameters()
        .into_iter()
        .find(|(n, t)| n == "weight" && t.shape().len() == 4)
        .map(|(_, t)| t);
    // an int8 convolution's filters: its weight read back (q · scale)
    let int8_weight = || {
        module
            .named_quantized()
            .into_iter()
            .find(|(n, q)| n == "weight" && q.shape.len() == 4)
            .map(|(_, q)| q.dequantize())
            .transpose()
    };
    let weight = match f32_weight {
        Some(w) => w,
        None => int8_weight()?
            .ok_or_else(|| anyhow!("layer {} ({}) has no convolution filters", l.name, l.kind))?,
    };
    Ok((l.name.clone(), filters(&weight)?))
}

/// The feature maps of a layer (default: the first convolution) for one
/// input `[C, H, W]`, and the layer's name.
pub(crate) fn feature_maps_of(
    model: &FileModel,
    layer: Option<&str>,
    x: &Tensor,
) -> Result<(String, Canvas)> {
    let idx = find_layer(model, layer, "conv2d")?;
    let l = &model.layers[idx];
    if l.out_shape.len() != 3 {
        bail!(
            "layer {} gives {:?}, feature maps need [C, H, W]",
            l.name,
            l.out_shape
        );
    }
    model.eval();
    let maps = no_grad(|| model.net.forward_range(0..idx + 1, &x.unsqueeze(0)?))?;
    Ok((l.name.clone(), feature_maps(&maps.squeeze(0)?)?))
}

/// Training images as the model sees them: the first `count` (at most
/// 12) of the run's training set, one row for each of epochs 1–4, through
/// its `--augment` transforms exactly as its loader draws them (a batch
/// mix, mixup or CutMix, is named in the caption, not drawn).
pub(crate) fn augmentations(dir: &Path, count: usize) -> Result<Canvas> {
    let cfg = crate::inspect::run_config(dir)?;
    let aug = nabla_data::Augmentation::parse(cfg.augment.as_deref().unwrap_or_default())
        .map_err(|e| anyhow!("{e}"))?;
    let data = load_data(&cfg.dataset, cfg.data.as_deref(), false)?;
    let train = match cfg.train_fraction {
        Some(f) => data.train.balanced_subset(f, cfg.seed),
        None => data.train,
    };
    let set = augmented_dataset(train, &cfg.dataset, aug.transforms);
    let n = count.clamp(1, 12).min(nabla_data::Dataset::len(&set));
    let indices: Vec<usize> = (0..n).collect();
    let mut tiles = Vec::new();
    for epoch in 1..=4 {
        let b =
            DataLoader::make_batch(&set, &indices, cfg.seed, epoch).map_err(|e| anyhow!("{e}"))?;
        for i in 0..n {
            tiles.push(Tile {
                image: b.inputs.narrow(0, i, 1)?.squeeze(0)?,
                overlay: None,
                caption: format!("epoch {epoch}"),
                caption_color: [200, 200, 200],
            });
        }
    }
    if let Some(m) = aug.mix {
        say!("(each batch is also mixed, {m:?}: not drawn)");
    }
    Ok(image_grid(&tiles, n, 3, false)?)
}

pub fn run(a: PlotArgs) -> Result<()> {
    let picture = if a.kind == PlotKind::Augmentations {
        augmentations(&a.trained.weights, a.count)?
    } else if a.kind == PlotKind::Curves {
        if !a.trained.weights.is_dir() {
            bail!(
                "{}: training curves need a run directory (with metrics.csv)",
                a.trained.weights.display()
            );
        }
        training_curves(&History::read(&a.trained.weights)?)
    } else {
        let t = a.trained.load()?;
        match a.kind {
            PlotKind::Filters => filters_of(&t.model, a.layer.as_deref())?.1,
            PlotKind::FeatureMaps => {
                let x = test_example(&t.test_tensors()?.0, a.index)?;
                feature_maps_of(&t.model, a.layer.as_deref(), &x)?.1
            }
            PlotKind::Confusion => confusion_matrix(
                &predict_test(&t)?.confusion,
                class_names(&t.dataset).as_deref(),
            )?,
            PlotKind::Misclassified => misclassified(&predict_test(&t)?, a.count, &t.dataset)?
                .ok_or_else(|| anyhow!("no test example is misclassified: nothing to plot"))?,
            PlotKind::Curves | PlotKind::Augmentations => unreachable!("handled above"),
        }
    };
    let out = a
        .output
        .unwrap_or_else(|| format!("{}.png", a.kind.name()).into());
    picture
        .save_png(&out)
        .map_err(|e| anyhow!("{}: {e}", out.display()))?;
    say!(
        "{} ({}×{}) written to {}",
        a.kind.name(),
        picture.width,
        picture.height,
        out.display()
    );
    Ok(())
}
