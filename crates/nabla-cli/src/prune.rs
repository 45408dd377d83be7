//! `nabla prune RUN`: the run's model pruned, then fine-tuned into a new
//! run directory (default `RUN-pruned`) with the run's own settings.
//!
//! - By default (magnitude pruning) the `--amount` share of the weights
//!   with the smallest magnitudes, ranked all together (`--per-layer`:
//!   layer by layer), become zero and stay zero while fine-tuning
//!   (`--keep-zeros`). The model keeps its shape: smaller only compressed.
//! - `--structured` removes that share of every layer's channels and
//!   neurons (`nabla_nn::modelfile::prune`): a smaller model file
//!   (`pruned.toml`), dense and faster.
//!
//! The pruned model before fine-tuning is kept in the new run as
//! `pruned.safetensors` (with `pruned.toml` when structured); the closing
//! table compares the original, the pruned and the fine-tuned model.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use nabla_nn::modelfile::prune::prune_structured;
use nabla_nn::modelfile::{build, model_text, parse_spec};
use nabla_nn::prune::{magnitude_prune, Scope};
use nabla_nn::state_dict::{load_state_dict, save_safetensors, state_dict};
use nabla_nn::{Module, Parameters};
use nabla_train::say;

use crate::args::PruneArgs;
use crate::common::accuracy_and_time;
use crate::inspect::{load_trained, run_config, thousands};
use crate::train::absolute;

/// A model's row of the closing table.
struct Row {
    what: &'static str,
    parameters: usize,
    nonzero: usize,
    correct: usize,
    seconds: Option<f64>,
}

/// The parameters that are not zero.
fn nonzero(model: &dyn Module) -> usize {
    model
        .parameters()
        .iter()
        .map(|p| p.to_vec().iter().filter(|v| **v != 0.0).count())
        .sum()
}

pub fn run(a: PruneArgs) -> Result<()> {
    if !a.run.is_dir() {
        bail!("{}: not a run directory", a.run.display());
    }
    let cfg = run_config(&a.run)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let name = a
            .run
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        a.run.with_file_name(format!("{name}-pruned"))
    });
    if out.join("config.toml").exists() {
        bail!(
            "{}: already holds a run; choose another --out",
            out.display()
        );
    }
    let t = load_trained(&a.run, None, None, None, false)?;
    if t.quantized {
        bail!("{}: prune the f32 model, then quantize", a.run.display());
    }
    let (x, y, _) = t.test_tensors()?;
    let labels = y.to_vec();
    let batch = cfg.test_batch_size.max(1);
    t.model.eval();
    let (correct, secs) = accuracy_and_time(&t.model, &x, &labels, batch)?;
    let mut rows = vec![Row {
        what: "original",
        parameters: t.model.num_parameters(),
        nonzero: nonzero(&t.model),
        correct,
        seconds: Some(secs),
    }];
    // (made once pruning has worked: a refusal leaves nothing behind)
    let make_out = || {
        std::fs::create_dir_all(&out)
            .map_err(|e| anyhow!("{}: cannot create the directory: {e}", out.display()))
    };
    let weights = absolute(&out.join("pruned.safetensors"));
    let model = if a.structured {
        let (text, source) = model_text(&cfg.model)?;
        let spec = parse_spec(&text, &source)?;
        let pruned = prune_structured(&spec, &text, &source, &state_dict(&t.model), a.amount)?;
        let kept: Vec<String> = pruned
            .kept
            .iter()
            .map(|(name, k, n)| format!("{name} {}/{n}", k.len()))
            .collect();
        say!(
            "pruned {:.0}% of each layer's channels and neurons (smallest L1 norm): {}",
            100.0 * a.amount,
            kept.join(", ")
        );
        make_out()?;
        let file = absolute(&out.join("pruned.toml"));
        nabla_core::io::write_atomically(&file, pruned.toml.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let name = file.display().to_string();
        let small = build(&parse_spec(&pruned.toml, &name)?, &name, None)?;
        load_state_dict(&small, &pruned.state).map_err(|e| anyhow!("{e}"))?;
        save_safetensors(&weights, &pruned.state)?;
        row_of(&small, "pruned", &x, &labels, batch, &mut rows)?;
        file.display().to_string()
    } else {
        let scope = if a.per_layer {
            Scope::PerLayer
        } else {
            Scope::Global
        };
        let report = magnitude_prune(&t.model, a.amount, scope)?;
        let shares: Vec<String> = report
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0}%",
                    p.name.trim_end_matches(".weight"),
                    100.0 * p.zeros as f64 / p.total as f64
                )
            })
            .collect();
        say!(
            "pruned {:.0}% of the weights ({}), zeros per layer: {}",
            100.0 * a.amount,
            if a.per_layer {
                "layer by layer"
            } else {
                "ranked together"
            },
            shares.join(", ")
        );
        make_out()?;
        save_safetensors(&weights, &state_dict(&t.model))?;
        row_of(&t.model, "pruned", &x, &labels, batch, &mut rows)?;
        cfg.model.clone()
    };
    say!("fine-tuning {} epoch(s) into {}", a.epochs, out.display());
    let args = crate::args::TrainArgs {
        model,
        init_weights: Some(weights),
        keep_zeros: !a.structured,
        epochs: a.epochs,
        max_steps: None,
        resume: None,
        out: Some(out.clone()),
        overwrite: false,
        ..cfg
    };
    let code = crate::train::run(args, &[])?;
    if code != 0 {
        std::process::exit(code); // interrupted: the run resumes with nabla train --resume
    }
    let tuned = load_trained(&out, None, None, None, false)?;
    row_of(&tuned.model, "fine-tuned", &x, &labels, batch, &mut rows)?;
    // the speeds compared in turns, the two models in memory (the
    // original reloaded: magnitude pruning changed it in place)
    let original = load_trained(&a.run, None, None, None, false)?;
    original.model.eval();
    let (mut first, mut last) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        first = first.min(accuracy_and_time(&original.model, &x, &labels, batch)?.1);
        last = last.min(accuracy_and_time(&tuned.model, &x, &labels, batch)?.1);
    }
    rows[0].seconds = Some(first);
    rows[1].seconds = None;
    rows[2].seconds = Some(last);
    print_table(&rows, labels.len(), &out);
    say!(
        "forward passes {:.2}× as fast as the original's (best of 3 turns each)",
        first / last
    );
    Ok(())
}

/// Evaluates `model` and adds its row.
fn row_of(
    model: &dyn Module,
    what: &'static str,
    x: &nabla_core::Tensor,
    labels: &[f32],
    batch: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    model.eval();
    let (correct, secs) = accuracy_and_time(model, x, labels, batch)?;
    rows.push(Row {
        what,
        parameters: model.num_parameters(),
        nonzero: nonzero(model),
        correct,
        seconds: Some(secs),
    });
    Ok(())
}

fn print_table(rows: &[Row], n: usize, out: &Path) {
    say!(
        "\n{:<11} {:>11} {:>11} {:>14} {:>22}",
        "model",
        "parameters",
        "nonzero",
        "test accuracy",
        format!("forward, {} images", thousands(n))
    );
    for r in rows {
        let secs = r.seconds.map_or("".into(), |s| format!("{s:.3} s"));
        say!(
            "{:<11} {:>11} {:>11} {:>13.2}% {:>22}",
            r.what,
            thousands(r.parameters),
            thousands(r.nonzero),
            100.0 * r.correct as f64 / n as f64,
            secs
        );
    }
    say!(
        "\nthe fine-tuned run is {}; evaluate it with `nabla eval {}`",
        out.display(),
        out.display()
    );
}
