//! Checkpoints: one safetensors file with the model (`model.NAME`), the
//! optimizer's state (`optim.KEY`: its moments, step counts, learning
//! rate) and, in its metadata, where training stands ([`TrainState`]) and
//! each callback's state (`callback.NAME.KEY`). Written atomically by the
//! run directory: a crash mid-write leaves the previous checkpoint intact.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use nabla_core::{GeneratorState, Tensor};
use nabla_nn::state_dict::{from_safetensors_bytes, to_safetensors_bytes};

use crate::error::{Result, TrainError};

const FORMAT: &str = "nabla-checkpoint-2";

/// Where training stands, saved with the weights. Everything a resumed run
/// needs to continue as if it had never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The epoch in progress (1-based).
    pub epoch: usize,
    /// Optimizer steps of that epoch already done.
    pub step_in_epoch: usize,
    /// Optimizer steps since the run began.
    pub global_step: usize,
    /// The global generator (dropout masks, random windows).
    pub generator: GeneratorState,
    /// The training loss summed over the batches of the epoch in progress,
    /// and their count: an interrupted epoch's mean covers all its steps.
    pub epoch_loss: (f64, usize),
    /// Training seconds of the epoch in progress so far.
    pub epoch_seconds: f64,
    /// The run's seconds so far, over all its sessions.
    pub seconds: f64,
    /// The lowest validation loss so far (which `best.safetensors` holds).
    pub best_loss: f32,
    /// Bytes of `metrics.csv` and `steps.csv` that this checkpoint covers:
    /// rows written after it (by a crash between the two) are cut on resume.
    pub metrics_len: u64,
    pub steps_len: u64,
    /// Each callback's state, by callback name then key.
    pub callbacks: BTreeMap<String, BTreeMap<String, String>>,
    /// Processes of the data-parallel run that wrote it (1 without one):
    /// a run resumed on another number converts `step_in_epoch`.
    pub world_size: usize,
}

impl Default for TrainState {
    fn default() -> Self {
        TrainState {
            epoch: 1,
            step_in_epoch: 0,
            global_step: 0,
            generator: GeneratorState {
                seed: 0,
                word_pos: 0,
            },
            epoch_loss: (0.0, 0),
            epoch_seconds: 0.0,
            seconds: 0.0,
            best_loss: f32::INFINITY,
            metrics_len: 0,
            steps_len: 0,
            callbacks: BTreeMap::new(),
            world_size: 1,
        }
    }
}

impl TrainState {
    fn to_meta(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("format", FORMAT.into());
        put("epoch", self.epoch.to_string());
        put("step_in_epoch", self.step_in_epoch.to_string());
        put("global_step", self.global_step.to_string());
        put("rng_seed", self.generator.seed.to_string());
        put("rng_word_pos", self.generator.word_pos.to_string());
        // floats as bit patterns: an exact round trip
        put("epoch_loss_sum", self.epoch_loss.0.to_bits().to_string());
        put("epoch_loss_count", self.epoch_loss.1.to_string());
        put("epoch_seconds", self.epoch_seconds.to_bits().to_string());
        put("seconds", self.seconds.to_bits().to_string());
        put("best_loss", self.best_loss.to_bits().to_string());
        put("metrics_len", self.metrics_len.to_string());
        put("steps_len", self.steps_len.to_string());
        put("world_size", self.world_size.to_string());
        for (name, state) in &self.callbacks {
            for (k, v) in state {
                put(&format!("callback.{name}.{k}"), v.clone());
            }
        }
        m
    }

    fn from_meta(m: &HashMap<String, String>, source: &str) -> Result<TrainState> {
        match m.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(TrainError::Run(format!(
                    "{source}: a checkpoint of format {other:?}, this nabla reads {FORMAT:?}"
                )))
            }
            None => {
                return Err(TrainError::Run(format!(
                    "{source}: not a nabla checkpoint (no format marker)"
                )))
            }
        }
        let get = |k: &str| -> Result<&str> {
            m.get(k)
                .map(String::as_str)
                .ok_or_else(|| TrainError::Run(format!("{source}: checkpoint field {k:?} missing")))
        };
        fn parse<T: std::str::FromStr>(v: &str, k: &str, source: &str) -> Result<T> {
            v.parse()
                .map_err(|_| TrainError::Run(format!("{source}: checkpoint field {k:?} invalid")))
        }
        let num = |k: &str| -> Result<u64> { parse(get(k)?, k, source) };
        let f64_bits = |k: &str| -> Result<f64> { Ok(f64::from_bits(num(k)?)) };
        let mut callbacks: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in m {
            if let Some((name, key)) = k
                .strip_prefix("callback.")
                .and_then(|rest| rest.split_once('.'))
            {
                callbacks
                    .entry(name.to_string())
                    .or_default()
                    .insert(key.to_string(), v.clone());
            }
        }
        Ok(TrainState {
            epoch: num("epoch")? as usize,
            step_in_epoch: num("step_in_epoch")? as usize,
            global_step: num("global_step")? as usize,
            generator: GeneratorState {
                seed: num("rng_seed")?,
                word_pos: parse(get("rng_word_pos")?, "rng_word_pos", source)?,
            },
            epoch_loss: (
                f64_bits("epoch_loss_sum")?,
                num("epoch_loss_count")? as usize,
            ),
            epoch_seconds: f64_bits("epoch_seconds")?,
            seconds: f64_bits("seconds")?,
            best_loss: f32::from_bits(parse(get("best_loss")?, "best_loss", source)?),
            metrics_len: num("metrics_len")?,
            steps_len: num("steps_len")?,
            callbacks,
            // (checkpoints from before data-parallel runs have none)
            world_size: match m.get("world_size") {
                Some(v) => parse::<usize>(v, "world_size", source)?.max(1),
                None => 1,
            },
        })
    }
}

/// A checkpoint's contents.
#[derive(Debug)]
pub struct Checkpoint {
    pub model: Vec<(String, Tensor)>,
    pub optim: Vec<(String, Tensor)>,
    pub state: TrainState,
}

impl Checkpoint {
    /// The file's bytes (safetensors, the state in its metadata).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut all: Vec<(String, Tensor)> = self
            .model
            .iter()
            .map(|(n, t)| (format!("model.{n}"), t.clone()))
            .collect();
        all.extend(
            self.optim
                .iter()
                .map(|(n, t)| (format!("optim.{n}"), t.clone())),
        );
        Ok(to_safetensors_bytes(&all, Some(self.state.to_meta()))?)
    }

    /// Reads a checkpoint; a truncated or corrupt file is a clear error.
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path)
            .map_err(|e| TrainError::io(path, "cannot read the checkpoint", e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// A checkpoint from its file's bytes (as [`to_bytes`](Self::to_bytes)
    /// makes them); `source` names them in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint> {
        let tensors = from_safetensors_bytes(bytes, source)
            .map_err(|e| TrainError::Run(format!("{e} (corrupt or truncated checkpoint)")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| TrainError::Run(format!("{source}: {e}")))?;
        let state = TrainState::from_meta(&header.metadata().clone().unwrap_or_default(), source)?;
        let (mut model, mut optim) = (vec![], vec![]);
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
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_exactly_and_a_bad_file_is_named() {
        let mut state = TrainState {
            epoch: 3,
            step_in_epoch: 7,
            global_step: 1234,
            generator: GeneratorState {
                seed: 42,
                word_pos: u128::MAX - 5,
            },
            epoch_loss: (0.1 + 0.2, 7),
            epoch_seconds: 1.0 / 3.0,
            seconds: 12.5,
            best_loss: 0.123_456_79,
            metrics_len: 99,
            steps_len: 1000,
            ..Default::default()
        };
        state
            .callbacks
            .entry("early_stopping".into())
            .or_default()
            .insert("best".into(), "7".into());
        let ck = Checkpoint {
            model: vec![("w".into(), Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap())],
            optim: vec![],
            state: state.clone(),
        };
        let dir = std::env::temp_dir().join(format!("nabla-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.safetensors");
        std::fs::write(&p, ck.to_bytes().unwrap()).unwrap();
        let back = Checkpoint::read(&p).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.model[0].1.to_vec(), vec![1.0, 2.0]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = Checkpoint::read(&p).err().unwrap().to_string();
        assert!(
            err.contains("c.safetensors") && err.contains("corrupt"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
