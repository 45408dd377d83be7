//! Callbacks: the parts of a training run that a user turns on, off or
//! replaces. The [`Trainer`](crate::Trainer) calls each one, in the order
//! they were added, at the start of the run, before each batch, after each
//! optimizer step and after each epoch; a callback may stop the run, and
//! saves and restores its own state in checkpoints (under its name).
//!
//! Built in: [`ConsoleLog`] (a progress bar on a terminal, PyTorch's
//! example's lines otherwise, the test line after each epoch),
//! [`EarlyStopping`], [`LrSchedule`] (any [`Schedule`], per epoch or per
//! step), [`ReduceOnPlateau`], [`MixBatches`] (mixup, CutMix) and
//! [`KeepZeros`] (pruned weights stay zero).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use nabla_core::{Generator, Tensor};
use nabla_data::augment::{mix_batch, BatchMix};
use nabla_data::Batch;
use nabla_nn::optim::Optimizer;
use nabla_nn::scheduler::{LrScheduler, ReduceLrOnPlateau, Schedule};
use nabla_nn::Module;

use crate::error::{Result, TrainError};
use crate::evaluate::Evaluation;
use crate::run_dir::checkpoint::TrainState;
use crate::say;

/// What a callback can see and change.
pub struct Ctx<'a> {
    pub model: &'a dyn Module,
    pub optimizer: &'a mut dyn Optimizer,
    /// Where training stands (the epoch, step and running loss).
    pub state: &'a TrainState,
    /// Epochs the run goes to; batches, examples and examples a batch in one.
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub examples_per_epoch: usize,
    pub batch_size: usize,
}

/// One optimizer step, done.
#[derive(Clone, Debug)]
pub struct StepEnd {
    pub epoch: usize,
    /// The batch's index in its epoch (0-based).
    pub index: usize,
    /// Optimizer steps since the run began, this one included.
    pub global_step: usize,
    /// The batch's training loss.
    pub loss: f32,
    /// Examples in the batch.
    pub examples: usize,
}

/// One epoch, done and evaluated.
#[derive(Clone, Debug)]
pub struct EpochEnd<'a> {
    pub epoch: usize,
    /// The mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// The validation pass, when the run has validation data.
    pub validation: Option<&'a Evaluation>,
    pub train_seconds: f64,
    pub test_seconds: f64,
}

impl EpochEnd<'_> {
    /// The loss a run watches: validation's mean when there is validation
    /// data, else the training loss.
    pub fn monitored_loss(&self) -> f32 {
        self.validation
            .map_or(self.train_loss as f32, Evaluation::mean_loss)
    }
}

/// Whether the run goes on.
#[derive(Clone, Debug, PartialEq)]
pub enum Flow {
    Continue,
    /// Stop after this step or epoch (its checkpoint is written), saying why.
    Stop(String),
}

/// A part of a training run. Every method has a default that does nothing.
pub trait Callback: Send {
    /// Its key in checkpoints; unique within a trainer.
    fn name(&self) -> &str;
    fn on_fit_start(&mut self, ctx: &mut Ctx) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
    fn on_epoch_start(&mut self, epoch: usize, ctx: &mut Ctx) -> Result<()> {
        let _ = (epoch, ctx);
        Ok(())
    }
    /// Before the forward pass: may change the batch (mixup).
    fn on_batch(&mut self, batch: &mut Batch, epoch: usize, index: usize) -> Result<()> {
        let _ = (batch, epoch, index);
        Ok(())
    }
    fn on_step_end(&mut self, step: &StepEnd, ctx: &mut Ctx) -> Result<Flow> {
        let _ = (step, ctx);
        Ok(Flow::Continue)
    }
    /// After the epoch's evaluation, before its checkpoint (so what the
    /// callback changes here is saved with it).
    fn on_epoch_end(&mut self, epoch: &EpochEnd, ctx: &mut Ctx) -> Result<Flow> {
        let _ = (epoch, ctx);
        Ok(Flow::Continue)
    }
    /// When the run ends, however it ends.
    fn on_fit_end(&mut self, ctx: &mut Ctx) {
        let _ = ctx;
    }
    /// What a checkpoint keeps of it.
    fn state(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// Restores what [`state`](Self::state) returned (before the
    /// optimizer's own state is restored).
    fn load_state(&mut self, state: &BTreeMap<String, String>, ctx: &mut Ctx) -> Result<()> {
        let _ = (state, ctx);
        Ok(())
    }
}

fn field<T: std::str::FromStr>(
    state: &BTreeMap<String, String>,
    owner: &str,
    k: &str,
) -> Result<T> {
    state
        .get(k)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| TrainError::Run(format!("checkpoint: {owner}'s {k:?} missing or invalid")))
}

/// Progress on the console: on a terminal a bar per epoch (loss, images a
/// second, time left); otherwise PyTorch's MNIST example's lines every
/// `log_interval` batches. After each epoch, the test line.
pub struct ConsoleLog {
    pub log_interval: usize,
    bar: Option<indicatif::ProgressBar>,
    tty: bool,
    epoch_start: Instant,
    /// Batches done since the epoch (or its resumption) started.
    done: usize,
}

impl ConsoleLog {
    pub fn new(log_interval: usize) -> ConsoleLog {
        ConsoleLog {
            log_interval: log_interval.max(1),
            bar: None,
            tty: std::io::stdout().is_terminal(),
            epoch_start: Instant::now(),
            done: 0,
        }
    }
}

impl ConsoleLog {
    /// Lines every `log_interval` steps even on a terminal, no progress
    /// bar (a data-parallel run's rank 0, whose terminal mpirun fakes).
    pub fn lines(mut self) -> ConsoleLog {
        self.tty = false;
        self
    }
}

impl Callback for ConsoleLog {
    fn name(&self) -> &str {
        "console"
    }
    fn on_epoch_start(&mut self, epoch: usize, ctx: &mut Ctx) -> Result<()> {
        self.epoch_start = Instant::now();
        self.done = 0;
        self.bar = self.tty.then(|| {
            let b = indicatif::ProgressBar::new(ctx.batches_per_epoch as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "epoch {prefix} {bar:30} {pos}/{len} {msg} eta {eta}",
            ) {
                b.set_style(style);
            }
            b.set_prefix(epoch.to_string());
            b.set_position(ctx.state.step_in_epoch as u64);
            b
        });
        Ok(())
    }
    fn on_step_end(&mut self, step: &StepEnd, ctx: &mut Ctx) -> Result<Flow> {
        self.done += 1;
        match &self.bar {
            Some(b) => {
                let seen = self.done * ctx.batch_size;
                let rate = seen as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
                b.set_message(format!("loss {:.4} {rate:.0} img/s", step.loss));
                b.inc(1);
            }
            None if step.index.is_multiple_of(self.log_interval) => say!(
                "Train Epoch: {} [{}/{} ({:.0}%)]\tLoss: {:.6}",
                step.epoch,
                step.index * ctx.batch_size,
                ctx.examples_per_epoch,
                100.0 * step.index as f32 / ctx.batches_per_epoch as f32,
                step.loss
            ),
            None => {}
        }
        Ok(Flow::Continue)
    }
    fn on_epoch_end(&mut self, epoch: &EpochEnd, _: &mut Ctx) -> Result<Flow> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some(v) = epoch.validation {
            say!("\n{}\n", v.test_line());
        }
        Ok(Flow::Continue)
    }
    fn on_fit_end(&mut self, _: &mut Ctx) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Stops the run when the monitored loss has not improved by more than
/// `min_delta` for `patience` epochs (as Lightning's: an epoch that
/// improves never stops the run, so patience 0 stops at the first one
/// that does not).
pub struct EarlyStopping {
    pub patience: usize,
    pub min_delta: f32,
    best: f32,
    bad_epochs: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize, min_delta: f32) -> EarlyStopping {
        EarlyStopping {
            patience,
            min_delta,
            best: f32::INFINITY,
            bad_epochs: 0,
        }
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "early_stopping"
    }
    fn on_epoch_end(&mut self, epoch: &EpochEnd, _: &mut Ctx) -> Result<Flow> {
        let loss = epoch.monitored_loss();
        if loss < self.best - self.min_delta {
            self.best = loss;
            self.bad_epochs = 0;
            return Ok(Flow::Continue);
        }
        self.bad_epochs += 1;
        Ok(if self.bad_epochs >= self.patience {
            Flow::Stop(format!(
                "early stop: the {} loss has not improved for {} epochs",
                if epoch.validation.is_some() {
                    "test"
                } else {
                    "training"
                },
                self.bad_epochs
            ))
        } else {
            Flow::Continue
        })
    }
    fn state(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("best".into(), self.best.to_bits().to_string()),
            ("bad_epochs".into(), self.bad_epochs.to_string()),
        ])
    }
    fn load_state(&mut self, s: &BTreeMap<String, String>, _: &mut Ctx) -> Result<()> {
        self.best = f32::from_bits(field(s, "early stopping", "best")?);
        self.bad_epochs = field(s, "early stopping", "bad_epochs")?;
        Ok(())
    }
}

/// A learning-rate [`Schedule`], stepped after every epoch or (OneCycle)
/// after every optimizer step.
pub struct LrSchedule {
    scheduler: LrScheduler,
    per_step: bool,
}

impl LrSchedule {
    /// Starts `schedule` on `optimizer` (setting its rate for step 0).
    pub fn new(schedule: Schedule, per_step: bool, optimizer: &mut dyn Optimizer) -> LrSchedule {
        LrSchedule {
            scheduler: LrScheduler::new(schedule, optimizer),
            per_step,
        }
    }
}

impl Callback for LrSchedule {
    fn name(&self) -> &str {
        "lr_schedule"
    }
    fn on_step_end(&mut self, _: &StepEnd, ctx: &mut Ctx) -> Result<Flow> {
        if self.per_step {
            self.scheduler.step(ctx.optimizer);
        }
        Ok(Flow::Continue)
    }
    fn on_epoch_end(&mut self, _: &EpochEnd, ctx: &mut Ctx) -> Result<Flow> {
        if !self.per_step {
            self.scheduler.step(ctx.optimizer);
        }
        Ok(Flow::Continue)
    }
    fn state(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("steps".into(), self.scheduler.steps().to_string())])
    }
    fn load_state(&mut self, s: &BTreeMap<String, String>, ctx: &mut Ctx) -> Result<()> {
        let steps = field(s, "the schedule", "steps")?;
        self.scheduler.set_steps(steps, ctx.optimizer);
        Ok(())
    }
}

/// Lowers the learning rate when the monitored loss stops improving
/// (PyTorch's `ReduceLROnPlateau`), checked after every epoch.
pub struct ReduceOnPlateau(pub ReduceLrOnPlateau);

impl Callback for ReduceOnPlateau {
    fn name(&self) -> &str {
        "reduce_on_plateau"
    }
    fn on_epoch_end(&mut self, epoch: &EpochEnd, ctx: &mut Ctx) -> Result<Flow> {
        self.0.step(epoch.monitored_loss(), ctx.optimizer);
        Ok(Flow::Continue)
    }
    fn state(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("best".into(), self.0.best.to_bits().to_string()),
            ("bad_epochs".into(), self.0.bad_epochs.to_string()),
            ("cooldown_left".into(), self.0.cooldown_left.to_string()),
        ])
    }
    fn load_state(&mut self, s: &BTreeMap<String, String>, _: &mut Ctx) -> Result<()> {
        self.0.best = f32::from_bits(field(s, "the plateau schedule", "best")?);
        self.0.bad_epochs = field(s, "the plateau schedule", "bad_epochs")?;
        self.0.cooldown_left = field(s, "the plateau schedule", "cooldown_left")?;
        Ok(())
    }
}

/// Mixes each training batch with itself shuffled (mixup or CutMix), the
/// targets made soft over `classes`. The randomness is drawn from (seed,
/// epoch, batch) alone, so a resumed run mixes alike.
pub struct MixBatches {
    pub mix: BatchMix,
    pub classes: usize,
    pub seed: u64,
}

impl Callback for MixBatches {
    fn name(&self) -> &str {
        "mix"
    }
    fn on_batch(&mut self, batch: &mut Batch, epoch: usize, index: usize) -> Result<()> {
        const MIXES: u64 = 0x6d69_7875_7021; // "mixup!": a stream apart from the loader's
        let seed = nabla_data::loader::stream_seed(self.seed ^ MIXES, epoch as u64, index as u64);
        let mut rng = Generator::new(seed);
        (batch.inputs, batch.targets) = mix_batch(
            self.mix,
            &batch.inputs,
            &batch.targets,
            self.classes,
            &mut rng,
        )?;
        Ok(())
    }
}

/// Keeps the model's zero weights at zero through training: fine-tuning
/// after magnitude pruning (`nabla_nn::prune`). The zeros are read from
/// the weights when fitting starts (a resumed run finds them in its
/// checkpoint) and set again after every optimizer step, as PyTorch's
/// pruning masks hold them.
#[derive(Default)]
pub struct KeepZeros {
    masks: Vec<(Tensor, Tensor)>,
}

impl Callback for KeepZeros {
    fn name(&self) -> &str {
        "keep_zeros"
    }
    fn on_fit_start(&mut self, ctx: &mut Ctx) -> Result<()> {
        self.masks.clear();
        for (_, w) in nabla_nn::prune::prunable_weights(ctx.model) {
            let mask: Vec<f32> = w
                .to_vec()
                .iter()
                .map(|v| (*v != 0.0) as u8 as f32)
                .collect();
            let mask = Tensor::from_vec_on(mask, w.shape().to_vec(), w.device())?;
            self.masks.push((w, mask));
        }
        Ok(())
    }
    fn on_step_end(&mut self, _: &StepEnd, _: &mut Ctx) -> Result<Flow> {
        nabla_core::no_grad(|| -> nabla_core::Result<()> {
            for (w, mask) in &self.masks {
                w.copy_from(&w.mul(mask)?)?;
            }
            Ok(())
        })?;
        Ok(Flow::Continue)
    }
}
