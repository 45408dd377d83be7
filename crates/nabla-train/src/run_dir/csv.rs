//! The run's two tables, written and read here: `metrics.csv` (one row per
//! epoch: `epoch,step,train_loss,test_loss,accuracy,lr,seconds,
//! train_seconds,test_seconds`; `seconds` since the run began, over all
//! its sessions; a run without validation data writes `nan` for the test
//! columns) and `steps.csv` (one row every few steps: `step,epoch,loss,lr`,
//! where `epoch` counts fractions of an epoch). Reading finds columns by
//! name, so older runs without the last two columns still read.

use std::io::{Error, ErrorKind};
use std::path::Path;

/// The header of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "epoch,step,train_loss,test_loss,accuracy,lr,seconds,train_seconds,test_seconds\n";
/// The header of `steps.csv`.
pub const STEPS_HEADER: &str = "step,epoch,loss,lr\n";

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    pub epoch: f64,
    pub step: f64,
    pub train_loss: f64,
    pub test_loss: f64,
    /// Test accuracy as a fraction in [0, 1].
    pub accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// One row of `steps.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub step: f64,
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
}

impl EpochRow {
    /// The row as written, with the epoch's training and test-pass seconds.
    /// The learning rate is printed as the f32 it is (shortest form).
    pub fn to_csv(&self, train_seconds: f64, test_seconds: f64) -> String {
        format!(
            "{},{},{:.6},{:.6},{:.6},{},{:.3},{train_seconds:.3},{test_seconds:.3}\n",
            self.epoch,
            self.step,
            self.train_loss,
            self.test_loss,
            self.accuracy,
            self.lr as f32,
            self.seconds
        )
    }
}

impl StepRow {
    /// The row as written (the learning rate as the f32 it is).
    pub fn to_csv(&self) -> String {
        format!(
            "{},{:.4},{:.6},{}\n",
            self.step, self.epoch, self.loss, self.lr as f32
        )
    }
}

/// What a training run recorded.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub epochs: Vec<EpochRow>,
    pub steps: Vec<StepRow>,
}

/// Parses CSV text with a header, returning for each data row the values
/// of `columns` (found by name, in any order). Errors name the file and line.
fn read_columns(text: &str, path: &Path, columns: &[&str]) -> std::io::Result<Vec<Vec<f64>>> {
    let bad =
        |msg: String| Error::new(ErrorKind::InvalidData, format!("{}: {msg}", path.display()));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| bad("empty file, expected a header".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .ok_or_else(|| bad(format!("no column {c:?} in the header {header:?}")))
        })
        .collect::<std::io::Result<_>>()?;
    lines
        .map(|(no, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(bad(format!(
                    "line {}: {} fields, the header has {}",
                    no + 1,
                    cells.len(),
                    names.len()
                )));
            }
            idx.iter()
                .map(|&i| {
                    cells[i].parse::<f64>().map_err(|_| {
                        bad(format!(
                            "line {}: {:?} is not a number ({})",
                            no + 1,
                            cells[i],
                            names[i]
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

impl History {
    /// Reads `metrics.csv` (required) and `steps.csv` (optional) from a run directory.
    pub fn read(run_dir: &Path) -> std::io::Result<History> {
        let metrics = run_dir.join("metrics.csv");
        let text = std::fs::read_to_string(&metrics).map_err(|e| {
            Error::new(
                e.kind(),
                format!("{}: cannot read the metrics: {e}", metrics.display()),
            )
        })?;
        let cols = [
            "epoch",
            "step",
            "train_loss",
            "test_loss",
            "accuracy",
            "lr",
            "seconds",
        ];
        let epochs = read_columns(&text, &metrics, &cols)?
            .into_iter()
            .map(|r| EpochRow {
                epoch: r[0],
                step: r[1],
                train_loss: r[2],
                test_loss: r[3],
                accuracy: r[4],
                lr: r[5],
                seconds: r[6],
            })
            .collect();
        let steps_path = run_dir.join("steps.csv");
        let steps = match std::fs::read_to_string(&steps_path) {
            Ok(text) => read_columns(&text, &steps_path, &["step", "epoch", "loss", "lr"])?
                .into_iter()
                .map(|r| StepRow {
                    step: r[0],
                    epoch: r[1],
                    loss: r[2],
                    lr: r[3],
                })
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => vec![],
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!("{}: {e}", steps_path.display()),
                ))
            }
        };
        Ok(History { epochs, steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nabla-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_metrics_by_column_name_and_steps_when_present() {
        let d = dir("ok");
        std::fs::write(
            d.join("metrics.csv"),
            "epoch,step,train_loss,test_loss,accuracy,lr,seconds\n1,10,0.9,0.8,0.7,0.01,1.5\n2,20,0.5,0.6,0.8,0.01,3.0\n",
        )
        .unwrap();
        let h = History::read(&d).unwrap();
        assert_eq!(h.epochs.len(), 2);
        assert_eq!(h.epochs[1].accuracy, 0.8);
        assert!(h.steps.is_empty());
        std::fs::write(d.join("steps.csv"), "lr,loss,epoch,step\n0.01,2.3,0.1,1\n").unwrap();
        let h = History::read(&d).unwrap();
        assert_eq!(
            h.steps,
            vec![StepRow {
                step: 1.0,
                epoch: 0.1,
                loss: 2.3,
                lr: 0.01
            }]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_metrics_name_the_file_and_line() {
        let d = dir("bad");
        let err = History::read(&d).unwrap_err().to_string();
        assert!(err.contains("metrics.csv"), "{err}");
        std::fs::write(
            d.join("metrics.csv"),
            "epoch,step,train_loss,test_loss,accuracy,lr,seconds\n1,10,x,0.8,0.7,0.01,1.5\n",
        )
        .unwrap();
        let err = History::read(&d).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("train_loss"),
            "{err}"
        );
        std::fs::write(d.join("metrics.csv"), "epoch,step\n1,10\n").unwrap();
        let err = History::read(&d).unwrap_err().to_string();
        assert!(err.contains("no column \"train_loss\""), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
