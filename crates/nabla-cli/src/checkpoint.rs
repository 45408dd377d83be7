//! Checkpoints: one safetensors file with the model (`model.NAME`), the
//! optimizer state (`optim.state.I.BUFFER`) and, in its metadata, where
//! training stands (epoch, step, generator state, best loss, …). Written
//! atomically: a crash mid-write leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nabla_core::Tensor;
use nabla_nn::state_dict::{from_safetensors_bytes, to_safetensors_bytes};

/// Where training stands, saved with the weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// epoch in progress (1-based)
    pub epoch: usize,
    /// batches of that epoch already done
    pub step_in_epoch: usize,
    pub global_step: usize,
    pub rng_seed: u64,
    pub rng_word_pos: u128,
    pub best_loss: f32,
    pub epochs_without_improvement: usize,
    pub lr: f32,
    pub scheduler_steps: usize,
    pub plateau_best: f32,
    pub plateau_bad: usize,
    pub plateau_cooldown: usize,
    /// The training loss summed over the steps of the epoch in progress,
    /// and their count (a language model's running average; optional in
    /// the file, zero when absent).
    pub epoch_loss: (f64, usize),
}

impl Progress {
    fn to_meta(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("format", "nabla-checkpoint-1".into());
        put("epoch", self.epoch.to_string());
        put("step_in_epoch", self.step_in_epoch.to_string());
        put("global_step", self.global_step.to_string());
        put("rng_seed", self.rng_seed.to_string());
        put("rng_word_pos", self.rng_word_pos.to_string());
        // f32 bit patterns: exact round trip
        put("best_loss", self.best_loss.to_bits().to_string());
        put(
            "epochs_without_improvement",
            self.epochs_without_improvement.to_string(),
        );
        put("lr", self.lr.to_bits().to_string());
        put("scheduler_steps", self.scheduler_steps.to_string());
        put("plateau_best", self.plateau_best.to_bits().to_string());
        put("plateau_bad", self.plateau_bad.to_string());
        put("plateau_cooldown", self.plateau_cooldown.to_string());
        put("epoch_loss_sum", self.epoch_loss.0.to_bits().to_string());
        put("epoch_loss_count", self.epoch_loss.1.to_string());
        m
    }

    fn from_meta(m: &HashMap<String, String>, source: &str) -> Result<Progress> {
        if m.get("format").map(String::as_str) != Some("nabla-checkpoint-1") {
            return Err(anyhow!(
                "{source}: not a nabla checkpoint (no format marker)"
            ));
        }
        fn get<T: std::str::FromStr>(
            m: &HashMap<String, String>,
            k: &str,
            source: &str,
        ) -> Result<T> {
            m.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow!("{source}: checkpoint field {k:?} missing or invalid"))
        }
        let f = |k: &str| -> Result<f32> { Ok(f32::from_bits(get::<u32>(m, k, source)?)) };
        Ok(Progress {
            epoch: get(m, "epoch", source)?,
            step_in_epoch: get(m, "step_in_epoch", source)?,
            global_step: get(m, "global_step", source)?,
            rng_seed: get(m, "rng_seed", source)?,
            rng_word_pos: get(m, "rng_word_pos", source)?,
            best_loss: f("best_loss")?,
            epochs_without_improvement: get(m, "epochs_without_improvement", source)?,
            lr: f("lr")?,
            scheduler_steps: get(m, "scheduler_steps", source)?,
            plateau_best: f("plateau_best")?,
            plateau_bad: get(m, "plateau_bad", source)?,
            plateau_cooldown: get(m, "plateau_cooldown", source)?,
            epoch_loss: (
                f64::from_bits(get(m, "epoch_loss_sum", source).unwrap_or(0)),
                get(m, "epoch_loss_count", source).unwrap_or(0),
            ),
        })
    }
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub model: Vec<(String, Tensor)>,
    pub optim: Vec<(String, Tensor)>,
    pub progress: Progress,
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    model: &[(String, Tensor)],
    optim: &[(String, Tensor)],
    progress: &Progress,
) -> Result<()> {
    let mut all: Vec<(String, Tensor)> = model
        .iter()
        .map(|(n, t)| (format!("model.{n}"), t.clone()))
        .collect();
    all.extend(optim.iter().map(|(n, t)| (format!("optim.{n}"), t.clone())));
    let bytes = to_safetensors_bytes(&all, Some(progress.to_meta()))?;
    nabla_data::write_atomically(path, &bytes).map_err(|e| anyhow!("{e}"))
}

/// Reads a checkpoint; a truncated or corrupt file is a clear error.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let source = path.display().to_string();
    let bytes =
        std::fs::read(path).with_context(|| format!("{source}: cannot read the checkpoint"))?;
    let tensors = from_safetensors_bytes(&bytes, &source)
        .map_err(|e| anyhow!("{e} (corrupt or truncated checkpoint)"))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| anyhow!("{source}: {e}"))?;
    let progress = Progress::from_meta(&header.metadata().clone().unwrap_or_default(), &source)?;
    let mut model = vec![];
    let mut optim = vec![];
    for (n, t) in tensors {
        if let Some(k) = n.strip_prefix("model.") {
            model.push((k.to_string(), t));
        } else if let Some(k) = n.strip_prefix("optim.") {
            optim.push((k.to_string(), t));
        }
    }
    Ok(Checkpoint {
        model,
        optim,
        progress,
    })
}
