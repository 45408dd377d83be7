//! The run directory: everything one training run writes, written and read
//! here and nowhere else.
//!
//! ```text
//! RUN/
//!   config.toml              the run's settings (the caller's text; --resume reads it)
//!   metrics.csv              one row per epoch (csv.rs)
//!   steps.csv                the training loss every few steps (csv.rs)
//!   checkpoints/last.safetensors   after every epoch and on interruption (checkpoint.rs)
//!   checkpoints/best.safetensors   the epoch with the lowest validation loss
//!   model.safetensors        the final weights, PyTorch's names
//!   .lock                    held while a run writes here
//! ```
//!
//! What a run promises:
//! - **One run per directory.** [`RunDir::create`] refuses a directory that
//!   holds a run unless told to overwrite it, and a lock (an advisory
//!   `flock` on `.lock`, released by the kernel when the process dies, so
//!   a killed run never leaves a stale one) makes a second writer fail at
//!   once.
//! - **An epoch commits as one unit.** Its metrics row and the steps'
//!   rows are appended first, then the checkpoint (which records how many
//!   bytes of each table it covers) is renamed into place: a crash at any
//!   instant leaves the last whole epoch, and resuming cuts rows written
//!   after it. Whole files are written through a temporary file that is
//!   removed on every error path.

pub mod checkpoint;
pub mod csv;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};
use checkpoint::Checkpoint;
use csv::{METRICS_HEADER, STEPS_HEADER};

/// Files a run writes; a directory holding any of them holds a run.
const RUN_FILES: [&str; 5] = [
    "config.toml",
    "metrics.csv",
    "steps.csv",
    "model.safetensors",
    "checkpoints",
];

/// A run directory, locked for writing while this value lives.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    // held for the run's life: the lock goes with the file
    _lock: File,
}

impl RunDir {
    /// Starts a new run in `path` (created if needed). A directory that
    /// already holds a run is refused, unless `overwrite`: then the old
    /// run's files (and only those) are removed first.
    pub fn create(path: impl AsRef<Path>, overwrite: bool) -> Result<RunDir> {
        let path = path.as_ref();
        std::fs::create_dir_all(path)
            .map_err(|e| TrainError::io(path, "cannot create the run directory", e))?;
        let dir = RunDir::lock(path)?;
        let existing: Vec<&str> = RUN_FILES
            .into_iter()
            .filter(|f| path.join(f).exists())
            .collect();
        if !existing.is_empty() && !overwrite {
            return Err(TrainError::Run(format!(
                "{} already holds a run ({}); resume it, choose another output directory, or overwrite it",
                path.display(),
                existing.join(", ")
            )));
        }
        for f in &existing {
            let p = path.join(f);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(TrainError::io(&p, "cannot remove the old run's file", e))
                }
                _ => {}
            }
        }
        let checkpoints = path.join("checkpoints");
        std::fs::create_dir_all(&checkpoints)
            .map_err(|e| TrainError::io(&checkpoints, "cannot create", e))?;
        dir.write(&dir.metrics_path(), METRICS_HEADER.as_bytes())?;
        dir.write(&dir.steps_path(), STEPS_HEADER.as_bytes())?;
        Ok(dir)
    }

    /// Opens an existing run to continue it: locks it and cuts its tables
    /// back to what its last checkpoint covers, which it returns.
    pub fn resume(path: impl AsRef<Path>) -> Result<(RunDir, Checkpoint)> {
        let path = path.as_ref();
        if !path.join("metrics.csv").is_file() {
            return Err(TrainError::Run(format!(
                "{}: not a run directory (no metrics.csv)",
                path.display()
            )));
        }
        let dir = RunDir::lock(path)?;
        let last = dir.last_checkpoint();
        if !last.is_file() {
            return Err(TrainError::Run(format!(
                "{}: the run has no checkpoint yet; start it again instead",
                last.display()
            )));
        }
        let ck = Checkpoint::read(&last)?;
        dir.cut(&dir.metrics_path(), ck.state.metrics_len)?;
        dir.cut(&dir.steps_path(), ck.state.steps_len)?;
        Ok((dir, ck))
    }

    fn lock(path: &Path) -> Result<RunDir> {
        let lock_path = path.join(".lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| TrainError::io(&lock_path, "cannot open the run's lock", e))?;
        if file.try_lock().is_err() {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(TrainError::Run(format!(
                "{} is in use by another training (process {}); wait for it or choose another output directory",
                path.display(),
                holder.trim()
            )));
        }
        // who holds it, for the message above (best effort)
        let _ = file.set_len(0);
        let _ = write!(file, "{}", std::process::id());
        // temporary files of a writer killed mid-write (`write_atomically`'s
        // `.NAME.PID.tmp`): nobody else writes here now
        for dir in [path.to_path_buf(), path.join("checkpoints")] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }
    pub fn steps_path(&self) -> PathBuf {
        self.path.join("steps.csv")
    }
    pub fn last_checkpoint(&self) -> PathBuf {
        self.path.join("checkpoints/last.safetensors")
    }
    pub fn best_checkpoint(&self) -> PathBuf {
        self.path.join("checkpoints/best.safetensors")
    }
    /// The final weights, with PyTorch's names.
    pub fn weights_path(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }

    /// Writes a whole file of the run atomically (config, weights, …).
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        nabla_core::io::write_atomically(path, bytes)
            .map_err(|e| TrainError::io(path, "cannot write", e))
    }

    /// Appends rows to one of the tables; returns the table's new length.
    pub fn append(&self, table: &Path, rows: &str) -> Result<u64> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(table)
            .map_err(|e| TrainError::io(table, "cannot open", e))?;
        f.write_all(rows.as_bytes())
            .and_then(|_| f.metadata())
            .map(|m| m.len())
            .map_err(|e| TrainError::io(table, "cannot append", e))
    }

    /// The current length of a table.
    pub fn len_of(&self, table: &Path) -> Result<u64> {
        std::fs::metadata(table)
            .map(|m| m.len())
            .map_err(|e| TrainError::io(table, "cannot read", e))
    }

    fn cut(&self, table: &Path, len: u64) -> Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(table)
            .map_err(|e| TrainError::io(table, "cannot open", e))?;
        let now = f
            .metadata()
            .map_err(|e| TrainError::io(table, "cannot read", e))?
            .len();
        if now < len {
            return Err(TrainError::Run(format!(
                "{}: {now} bytes, shorter than the {len} its checkpoint covers",
                table.display()
            )));
        }
        f.set_len(len)
            .map_err(|e| TrainError::io(table, "cannot cut back to the checkpoint", e))
    }

    /// Commits a checkpoint: as the best one first when `best`, then as the
    /// last one, whose rename is the commit point of the epoch.
    pub fn commit(&self, checkpoint: &Checkpoint, best: bool) -> Result<()> {
        let bytes = checkpoint.to_bytes()?;
        if best {
            self.write(&self.best_checkpoint(), &bytes)?;
        }
        self.write(&self.last_checkpoint(), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkpoint::TrainState;

    fn fresh(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nabla-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_writer_fails_and_a_held_run_is_refused() {
        let d = fresh("lock");
        let run = RunDir::create(&d, false).unwrap();
        let err = RunDir::create(&d, true).unwrap_err().to_string();
        assert!(err.contains("in use by another training"), "{err}");
        drop(run);
        // the lock went with the value; the files stayed
        let err = RunDir::create(&d, false).unwrap_err().to_string();
        assert!(err.contains("already holds a run"), "{err}");
        std::fs::write(d.join("notes.txt"), "mine").unwrap();
        let run = RunDir::create(&d, true).unwrap();
        assert!(d.join("notes.txt").exists(), "only the run's own files go");
        assert_eq!(
            std::fs::read_to_string(run.metrics_path()).unwrap(),
            METRICS_HEADER
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn resuming_cuts_the_rows_written_after_the_checkpoint() {
        let d = fresh("cut");
        let run = RunDir::create(&d, false).unwrap();
        let m = run
            .append(&run.metrics_path(), "1,10,1,1,0.5,0.1,1,1,0\n")
            .unwrap();
        let s = run.len_of(&run.steps_path()).unwrap();
        let state = TrainState {
            metrics_len: m,
            steps_len: s,
            ..Default::default()
        };
        let ck = Checkpoint {
            model: vec![],
            optim: vec![],
            state,
        };
        run.commit(&ck, true).unwrap();
        // the next epoch's row lands, the process dies before its checkpoint
        run.append(&run.metrics_path(), "2,20,1,1,0.5,0.1,2,1,0\n")
            .unwrap();
        drop(run);
        let (run, ck) = RunDir::resume(&d).unwrap();
        assert_eq!(ck.state.metrics_len, m);
        let text = std::fs::read_to_string(run.metrics_path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(run.best_checkpoint().is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn resuming_what_is_not_a_run_says_so() {
        let d = fresh("none");
        std::fs::create_dir_all(&d).unwrap();
        let err = RunDir::resume(&d).unwrap_err().to_string();
        assert!(err.contains("not a run directory"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
