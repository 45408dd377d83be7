//! A training's settings: the flags of a new run, or those of the run
//! being resumed with the few changes a resumption may make.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::args::TrainArgs;
use crate::common::usage;

/// Flags a resumed run may change: how far it goes and how it runs, not
/// what it computes.
const MAY_CHANGE: [&str; 4] = ["epochs", "max_steps", "threads", "log_interval"];

/// The run's settings, its directory and whether it resumes. `given` names
/// the flags on the command line: with `--resume` they must match the
/// run's config, except those of [`MAY_CHANGE`], which extend it.
pub fn settings(args: TrainArgs, given: &[String]) -> Result<(TrainArgs, PathBuf, bool)> {
    let Some(dir) = args.resume.clone() else {
        let mut args = args;
        if !given.iter().any(|g| g == "dataset")
            && args.data.as_deref().is_some_and(looks_like_fashion)
        {
            // Fashion-MNIST's normalization and class names, not MNIST's
            args.dataset = "fashion-mnist".into();
            eprintln!(
                "note: --data looks like Fashion-MNIST; training with --dataset fashion-mnist"
            );
        }
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| default_run_dir(&args.model));
        return Ok((args, dir, false));
    };
    let mut saved = crate::inspect::run_config(&dir)?;
    // the config keeps the data folder and the teacher absolute: compare them so
    let args = TrainArgs {
        data: args.data.as_deref().map(crate::train::absolute),
        teacher: args.teacher.as_deref().map(crate::train::absolute),
        ..args
    };
    let (old, new) = (
        toml::Value::try_from(&saved)?,
        toml::Value::try_from(&args)?,
    );
    let changed: Vec<String> = given
        .iter()
        .filter(|id| !MAY_CHANGE.contains(&id.as_str()) && *id != "resume")
        .filter(|id| field(&old, id) != field(&new, id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !changed.is_empty() {
        return Err(usage(format!(
            "--resume {}: {} differ from the run's settings (see its config.toml); \
             a resumed run may change only --epochs, --max-steps, --threads and --log-interval",
            dir.display(),
            changed.join(", ")
        )));
    }
    let given_flag = |id: &str| given.iter().any(|g| g == id);
    if given_flag("epochs") {
        saved.epochs = args.epochs;
    }
    if given_flag("max_steps") {
        saved.max_steps = args.max_steps;
    }
    if given_flag("threads") {
        saved.threads = args.threads;
    }
    if given_flag("log_interval") {
        saved.log_interval = args.log_interval;
    }
    if saved.out.as_deref() != Some(dir.as_path()) {
        saved.out = Some(dir.clone()); // the run was moved
    }
    Ok((saved, dir, true))
}

/// Whether a data folder holds Fashion-MNIST: its name says so (Debian's
/// `fashion-mnist`, a `FashionMNIST` folder), or torchvision's layout does.
fn looks_like_fashion(data: &Path) -> bool {
    let named = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("fashion"))
    };
    data.ancestors().take(3).any(named) || data.join("FashionMNIST/raw").is_dir()
}

/// A setting's value in a serialized config: top level, or in the gpt table.
fn field<'a>(config: &'a toml::Value, id: &str) -> Option<&'a toml::Value> {
    config
        .get(id)
        .or_else(|| config.get("gpt").and_then(|g| g.get(id)))
}

fn default_run_dir(model: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stem = Path::new(model)
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().to_string());
    PathBuf::from("runs").join(format!("{stem}-{secs}"))
}
