//! `nabla report RUN`: one self-contained `report.html` (pictures inlined,
//! nothing fetched): the run's configuration, the model's size, training
//! curves, per-epoch metrics, test-set results (confusion matrix, per-class
//! precision and recall), the most confident mistakes, a saliency sheet,
//! and the first convolution's filters and feature maps. A language
//! model's report has its size, curves, metrics and a sample of its text.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nabla_vis::curves::{training_curves, History};
use nabla_vis::plot::{confusion_matrix, image_grid};
use nabla_vis::report::Report;

use crate::args::{ExplainMethod, ReportArgs};
use crate::explain::explain_tiles;
use crate::inspect::{class_names, load_trained, thousands, FASHION_CLASSES};
use crate::plots::{feature_maps_of, filters_of, misclassified, predict_test};
use nabla_train::say;

pub fn run(a: ReportArgs) -> Result<()> {
    let dir = &a.run;
    if !dir.join("config.toml").is_file() {
        anyhow::bail!("{}: not a run directory (no config.toml)", dir.display());
    }
    let history = History::read(dir)?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut r = Report::new(&format!("nabla run {name}"));
    let cfg_path = dir.join("config.toml");
    let cfg =
        std::fs::read_to_string(&cfg_path).with_context(|| format!("{}", cfg_path.display()))?;
    // the settings the run's model reads (the file keeps them all)
    let mut settings: toml::Table = cfg.parse().map_err(|e: toml::de::Error| {
        anyhow!("{}: invalid config: {}", cfg_path.display(), e.message())
    })?;
    let model = settings
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    settings.retain(|k, _| crate::args::TrainArgs::applies(&model, k));
    let cfg = toml::to_string(&settings)?;
    match crate::lm::is_language_model(&model) {
        true => language_model_sections(&mut r, dir, &history, &cfg)?,
        false => image_sections(&mut r, dir, &history, &cfg, &a)?,
    }
    let out = a.output.unwrap_or_else(|| dir.join("report.html"));
    nabla_data::write_atomically(&out, r.to_html().as_bytes())
        .map_err(|e| anyhow!("{}: {e}", out.display()))?;
    say!(
        "report with {} pictures written to {}",
        r.image_count(),
        out.display()
    );
    Ok(())
}

/// A language model's: its size, the curves and metrics (in nats per
/// token and next-token accuracy), and a sample of its text.
fn language_model_sections(r: &mut Report, dir: &Path, history: &History, cfg: &str) -> Result<()> {
    let (summary, sample) = crate::lm::report_sections(dir, 400)?;
    r.paragraph(&match history.epochs.last() {
        Some(e) => format!(
            "{summary}. {} epoch(s), {} steps in {:.1} s; validation loss {:.4} nats a token, next token right {:.1}% of the time.",
            e.epoch,
            e.step,
            e.seconds,
            e.test_loss,
            100.0 * e.accuracy
        ),
        None => format!("{summary}. No epoch finished yet."),
    });
    r.heading("Configuration");
    r.pre(cfg);
    training_section(r, history);
    r.heading("A sample");
    r.paragraph(
        "400 tokens after a new line, temperature 0.8, seed 0 (nabla generate RUN for more):",
    );
    r.pre(&sample);
    Ok(())
}

/// An image classifier's: the model's layers, the curves and metrics,
/// the test set's results and what the model looks at.
fn image_sections(
    r: &mut Report,
    dir: &Path,
    history: &History,
    cfg: &str,
    a: &ReportArgs,
) -> Result<()> {
    let t = load_trained(dir, None, None, a.data.as_deref(), false)?;

    let params: usize = t.model.layers.iter().map(|l| l.params).sum();
    let macs: usize = t.model.layers.iter().map(|l| l.macs).sum();
    let last = history.epochs.last();
    r.paragraph(&format!(
        "{} on {}: {} parameters, {} multiply-adds per example. {}",
        t.model.name,
        t.dataset,
        thousands(params),
        thousands(macs),
        match last {
            Some(e) => format!(
                "{} epoch(s) in {:.1} s; test accuracy {:.2}%, test loss {:.4}.",
                e.epoch,
                e.seconds,
                100.0 * e.accuracy,
                e.test_loss
            ),
            None => "No epoch finished yet.".into(),
        }
    ));

    r.heading("Configuration");
    r.pre(cfg);

    r.heading("Model");
    let mut rows: Vec<Vec<String>> = t
        .model
        .layers
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.clone(),
                format!("{:?}", l.out_shape),
                thousands(l.params),
                thousands(l.macs),
            ]
        })
        .collect();
    rows.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        thousands(params),
        thousands(macs),
    ]);
    r.table(
        &["layer", "type", "output", "parameters", "mult-adds"],
        &rows,
    );

    training_section(r, history);

    r.heading("Test set");
    let p = predict_test(&t)?;
    let correct = p
        .labels
        .iter()
        .zip(&p.preds)
        .filter(|(l, q)| l == q)
        .count();
    r.paragraph(&format!(
        "{correct} of {} test examples right ({:.2}%) with the final weights.",
        p.labels.len(),
        100.0 * correct as f64 / p.labels.len().max(1) as f64
    ));
    r.image(
        &confusion_matrix(&p.confusion, class_names(&t.dataset).as_deref())?,
        "Confusion matrix: rows are the true class, columns the predicted one; shade = fraction of the row",
    );
    let k = p.confusion.len();
    let class_name = |c: usize| {
        if t.dataset == "fashion-mnist" {
            FASHION_CLASSES
                .get(c)
                .map_or(String::new(), |s| s.to_string())
        } else {
            c.to_string()
        }
    };
    let rows: Vec<Vec<String>> = (0..k)
        .map(|c| {
            let tp = p.confusion[c][c] as f64;
            let predicted: usize = (0..k).map(|r| p.confusion[r][c]).sum();
            let support: usize = p.confusion[c].iter().sum();
            let precision = tp / predicted.max(1) as f64;
            let recall = tp / support.max(1) as f64;
            let f1 = 2.0 * precision * recall / (precision + recall).max(1e-12);
            vec![
                c.to_string(),
                class_name(c),
                format!("{precision:.3}"),
                format!("{recall:.3}"),
                format!("{f1:.3}"),
                support.to_string(),
            ]
        })
        .collect();
    r.table(
        &["class", "name", "precision", "recall", "F1", "support"],
        &rows,
    );
    match misclassified(&p, 32, &t.dataset)? {
        Some(sheet) => r.image(
            &sheet,
            "The most confident mistakes: the true class, the predicted one and its probability",
        ),
        None => r.paragraph("No test example is misclassified."),
    };

    r.heading("What the model looks at");
    let n = p.labels.len();
    let picks: Vec<usize> = (0..16.min(n)).map(|j| j * n / 16.min(n)).collect();
    let examples = picks
        .iter()
        .map(|&i| Ok((p.x.narrow(0, i, 1)?.squeeze(0)?, Some(p.labels[i]))))
        .collect::<Result<Vec<_>>>()?;
    let tiles = explain_tiles(
        &t.model,
        &examples,
        ExplainMethod::Saliency,
        None,
        None,
        &t.dataset,
    )?;
    r.image(
        &image_grid(&tiles, 8, 4, true)?,
        "Saliency (|d score / d pixel| of the predicted class) over 16 test images spread over the set, with the true and predicted class and its probability (red when wrong)",
    );
    if t.model.layers.iter().any(|l| l.kind == "conv2d") {
        let (layer, f) = filters_of(&t.model, None)?;
        let (_, maps) = feature_maps_of(&t.model, None, &examples[0].0)?;
        r.image(
            &f,
            &format!("Filters of {layer}, on the scale under them (blue negative, red positive); with several input channels, one row per output channel and a tile per input channel"),
        );
        r.image(
            &maps,
            &format!(
                "Feature maps of {layer} for the first test image, each scaled from its minimum (black) to its maximum (white), both written above it"
            ),
        );
    } else {
        r.paragraph("The model has no convolution: no filters or feature maps to show.");
    }
    Ok(())
}

/// The training curves and the table of epochs.
fn training_section(r: &mut Report, history: &History) {
    r.heading("Training");
    r.image(
        &training_curves(history),
        "Loss (training per logged step and per epoch, test per epoch), test accuracy and learning rate",
    );
    let rows: Vec<Vec<String>> = history
        .epochs
        .iter()
        .map(|e| {
            vec![
                format!("{}", e.epoch),
                format!("{}", e.step),
                format!("{:.4}", e.train_loss),
                format!("{:.4}", e.test_loss),
                format!("{:.2}%", 100.0 * e.accuracy),
                format!("{}", e.lr as f32),
                format!("{:.1}", e.seconds),
            ]
        })
        .collect();
    r.table(
        &[
            "epoch",
            "step",
            "train loss",
            "test loss",
            "accuracy",
            "lr",
            "seconds",
        ],
        &rows,
    );
}
