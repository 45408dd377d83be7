//! [`Trainer`]: the training loop, once, for the command line, the examples
//! and users.
//!
//! One step: the batch (through the callbacks' `on_batch`: mixup), the
//! forward pass, the loss (mean over the batch, with a teacher's soft
//! targets when distilling, plus an L1 penalty when asked), the NaN guard, backward (over `grad_accum` batches, each loss
//! divided by their number, when gradients are accumulated), gradient
//! clipping, the optimizer's step, the callbacks' `on_step_end` (a per-step schedule, the progress
//! display), a row of `steps.csv` every `log_every` steps. After each
//! epoch: the validation pass, the metrics row, the callbacks'
//! `on_epoch_end` (schedules, early stopping), and the checkpoint that
//! commits the epoch. An interruption (the flag given to
//! [`interrupt_on`](Trainer::interrupt_on)), `max_steps` or a callback's
//! stop writes a checkpoint where the run stands; [`resume`](Trainer::resume)
//! continues from it bit for bit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nabla_core::autocast::{autocast, Precision};
use nabla_core::{set_global_generator_state, Tensor};
use nabla_nn::loss::Reduction;
use nabla_nn::optim::{clip_grad_norm, Optimizer};
use nabla_nn::regularization::l1_penalty;
use nabla_nn::scheduler::{ReduceLrOnPlateau, Schedule};
use nabla_nn::state_dict::{load_state_dict, save_safetensors, state_dict};
use nabla_nn::Module;

use crate::callbacks::{
    Callback, ConsoleLog, Ctx, EarlyStopping, EpochEnd, Flow, LrSchedule, ReduceOnPlateau, StepEnd,
};
use crate::distill::Distillation;
use crate::error::{Result, TrainError};
use crate::evaluate::{cross_entropy_loss, evaluate, predict, BatchSource, Evaluation, LossFn};
use crate::run_dir::checkpoint::{Checkpoint, TrainState};
use crate::run_dir::csv::{EpochRow, StepRow};
use crate::run_dir::RunDir;
use crate::sync::GradientSync;

/// How a call to [`Trainer::fit`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every epoch done.
    Finished,
    /// A callback stopped the run (early stopping), saying why.
    Stopped(String),
    /// `max_steps` optimizer steps done.
    MaxSteps,
    /// The interrupt flag was raised; the checkpoint is written.
    Interrupted,
}

/// Trains a model: see the [module docs](self).
///
/// ```no_run
/// # use nabla_train::Trainer;
/// # fn demo(model: &dyn nabla_nn::Module, train: &dyn nabla_train::BatchSource,
/// #         test: &dyn nabla_train::BatchSource) -> nabla_train::Result<()> {
/// let sgd = nabla_nn::optim::Sgd::new(model.parameters(), 0.001).momentum(0.9);
/// let mut trainer = Trainer::new(model, sgd).epochs(10);
/// trainer.fit(train, Some(test))?;
/// # Ok(()) }
/// ```
pub struct Trainer<'m> {
    model: &'m dyn Module,
    optimizer: Box<dyn Optimizer>,
    loss: LossFn,
    distill: Option<Distillation<'m>>,
    epochs: usize,
    max_steps: Option<usize>,
    total_steps: Option<usize>,
    grad_accum: usize,
    clip_grad_norm: Option<f32>,
    l1: f32,
    log_every: usize,
    stop_on_nan: bool,
    callbacks: Vec<Box<dyn Callback>>,
    run: Option<RunDir>,
    interrupt: Option<Arc<AtomicBool>>,
    sync: Option<Box<dyn GradientSync>>,
    precision: Precision,
    state: TrainState,
}

impl<'m> Trainer<'m> {
    /// A trainer of `model` by `optimizer`: cross-entropy loss, one epoch,
    /// progress on the console every 10 batches, the NaN guard on, no
    /// files written.
    pub fn new(model: &'m dyn Module, optimizer: impl Optimizer + 'static) -> Trainer<'m> {
        Trainer {
            model,
            optimizer: Box::new(optimizer),
            loss: cross_entropy_loss(),
            distill: None,
            epochs: 1,
            max_steps: None,
            total_steps: None,
            grad_accum: 1,
            clip_grad_norm: None,
            l1: 0.0,
            log_every: 10,
            stop_on_nan: true,
            callbacks: vec![Box::new(ConsoleLog::new(10))],
            run: None,
            interrupt: None,
            sync: None,
            precision: Precision::F32,
            state: TrainState {
                generator: nabla_core::global_generator_state(),
                ..Default::default()
            },
        }
    }

    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Stops after this many optimizer steps in all (a checkpoint is written).
    pub fn max_steps(mut self, steps: Option<usize>) -> Self {
        self.max_steps = steps;
        self
    }
    /// Trains for `total` optimizer steps in all instead of a number of
    /// epochs (nanoGPT's way): an epoch of the data is then the interval
    /// between validations, and the last one ends at step `total`, validated
    /// and committed like the others.
    pub fn steps(mut self, total: usize) -> Self {
        self.total_steps = Some(total);
        self
    }
    /// Sums the gradients of `n` batches before each optimizer step (each
    /// batch's loss divided by `n`): the step of a batch `n` times larger
    /// in the memory of one. An epoch's last step takes what is left.
    pub fn grad_accum(mut self, n: usize) -> Self {
        self.grad_accum = n.max(1);
        self
    }
    /// The loss: `(output, targets, reduction) -> loss` (cross-entropy by default).
    pub fn loss(mut self, loss: LossFn) -> Self {
        self.loss = loss;
        self
    }
    /// Trains with a teacher's soft targets besides the labels (knowledge
    /// distillation: [`Distillation`]); validation keeps the plain loss.
    pub fn distill(mut self, distillation: Distillation<'m>) -> Self {
        self.distill = Some(distillation);
        self
    }
    /// Clips the global 2-norm of the model's gradients to `max` before
    /// each step.
    pub fn clip_grad_norm(mut self, max: Option<f32>) -> Self {
        self.clip_grad_norm = max;
        self
    }
    /// Mixed precision ([`nabla_core::autocast`]): with
    /// [`Precision::Bf16`] the run's products — forward, backward and
    /// evaluation — take bfloat16 operands with f32 sums, while weights,
    /// optimizer state, losses and the rest stay f32. `F32` by default.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
    /// Adds `λ·Σ|w|` over the parameters to the training loss.
    pub fn l1(mut self, lambda: f32) -> Self {
        self.l1 = lambda;
        self
    }
    /// Logs the training loss to `steps.csv` (and the console's lines)
    /// every `n` batches.
    pub fn log_every(mut self, n: usize) -> Self {
        self.log_every = n.max(1);
        for cb in &mut self.callbacks {
            if cb.name() == "console" {
                *cb = Box::new(ConsoleLog::new(n));
            }
        }
        self
    }
    /// Whether a loss that is not a finite number stops the run with an
    /// error (on by default).
    pub fn stop_on_nan(mut self, on: bool) -> Self {
        self.stop_on_nan = on;
        self
    }
    /// Adds a callback, after those already there.
    pub fn callback(mut self, callback: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
    /// Removes the callback named `name` (`"console"` for a quiet run).
    pub fn without(mut self, name: &str) -> Self {
        self.callbacks.retain(|cb| cb.name() != name);
        self
    }
    /// A learning-rate schedule, stepped per epoch or per optimizer step.
    pub fn schedule(mut self, schedule: Schedule, per_step: bool) -> Self {
        let s = LrSchedule::new(schedule, per_step, self.optimizer.as_mut());
        self.callback(s)
    }
    /// PyTorch's `ReduceLROnPlateau` on the monitored loss.
    pub fn reduce_on_plateau(self, plateau: ReduceLrOnPlateau) -> Self {
        self.callback(ReduceOnPlateau(plateau))
    }
    /// Stops when the monitored loss has not improved for `patience` epochs.
    pub fn early_stopping(self, patience: usize, min_delta: f32) -> Self {
        self.callback(EarlyStopping::new(patience, min_delta))
    }
    /// Writes the run (metrics, steps, checkpoints, final weights) to `run`.
    pub fn run_dir(mut self, run: RunDir) -> Self {
        self.run = Some(run);
        self
    }
    /// Stops at the next step, with a checkpoint, once `flag` is raised
    /// (by a Ctrl-C handler, say).
    pub fn interrupt_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// Trains data-parallel: `sync` averages the gradients of every step
    /// over the processes of the run (nabla-distributed's
    /// `DistributedDataParallel`), each of which trains on its own shard of
    /// the data. The epoch's training loss and the validation's counts are
    /// summed over the ranks, so every rank sees the metrics of the whole
    /// data; give only rank 0 a run directory and a console.
    pub fn sync_with(mut self, sync: impl GradientSync + 'static) -> Self {
        self.sync = Some(Box::new(sync));
        self
    }

    /// Continues a run from its last checkpoint, as [`RunDir::resume`]
    /// opens it: the weights, the optimizer's state, the callbacks'
    /// states, the generator and where training stands.
    pub fn resume(self, (run, checkpoint): (RunDir, Checkpoint)) -> Result<Self> {
        let source = run.last_checkpoint().display().to_string();
        let mut trainer = self.resume_from(checkpoint, &source)?;
        trainer.run = Some(run);
        Ok(trainer)
    }

    /// Continues from `checkpoint` (read from `source`) without a run
    /// directory: the other ranks of a data-parallel run, which receive
    /// rank 0's checkpoint and write nothing.
    pub fn resume_from(mut self, checkpoint: Checkpoint, source: &str) -> Result<Self> {
        let in_file = |e: &dyn std::fmt::Display| TrainError::Run(format!("{source}: {e}"));
        load_state_dict(self.model, &checkpoint.model).map_err(|e| in_file(&e))?;
        let Trainer {
            model,
            optimizer,
            callbacks,
            epochs,
            ..
        } = &mut self;
        let mut ctx = Ctx {
            model: *model,
            optimizer: optimizer.as_mut(),
            state: &checkpoint.state,
            epochs: *epochs,
            batches_per_epoch: 0,
            examples_per_epoch: 0,
            batch_size: 0,
        };
        for cb in callbacks.iter_mut() {
            if let Some(s) = checkpoint.state.callbacks.get(cb.name()) {
                cb.load_state(s, &mut ctx)?;
            }
        }
        self.optimizer
            .load_state(&checkpoint.optim)
            .map_err(|e| in_file(&e))?;
        set_global_generator_state(checkpoint.state.generator);
        self.state = checkpoint.state;
        Ok(self)
    }

    /// Where training stands.
    pub fn state(&self) -> &TrainState {
        &self.state
    }
    pub fn optimizer(&mut self) -> &mut dyn Optimizer {
        self.optimizer.as_mut()
    }
    /// The run directory, when there is one.
    pub fn run(&self) -> Option<&RunDir> {
        self.run.as_ref()
    }

    /// The summed loss, correct predictions and confusion matrix on `data`.
    pub fn evaluate(&self, data: &dyn BatchSource) -> Result<Evaluation> {
        evaluate(self.model, data, &self.loss)
    }

    /// The model's outputs on `data`, joined along the first dimension.
    pub fn predict(&self, data: &dyn BatchSource) -> Result<Tensor> {
        predict(self.model, data)
    }

    /// Trains on `train` until the last epoch (or `max_steps`, a callback's
    /// stop, an interruption), evaluating on `validation` after each epoch.
    pub fn fit(
        &mut self,
        train: &dyn BatchSource,
        validation: Option<&dyn BatchSource>,
    ) -> Result<Outcome> {
        for (what, data) in
            std::iter::once(("training", Some(train))).chain([("validation", validation)])
        {
            if data.is_some_and(|d| d.num_examples() == 0) {
                return Err(TrainError::Run(format!("the {what} data is empty")));
            }
        }
        // The whole run on a thread of nabla's pool: the ops of a step
        // start their kernels where they are instead of handing each over.
        let precision = self.precision;
        nabla_core::in_pool(|| {
            let outcome = autocast(precision, || self.fit_in_pool(train, validation));
            let (mut ctx, callbacks) = self.ctx(train);
            for cb in callbacks.iter_mut() {
                cb.on_fit_end(&mut ctx);
            }
            let outcome = outcome?;
            if let Some(run) = &self.run {
                save_safetensors(run.weights_path(), &state_dict(self.model))?;
            }
            Ok(outcome)
        })
    }

    /// What the callbacks see; a "batch" there is an optimizer step's
    /// worth of batches.
    fn ctx<'a>(&'a mut self, data: &dyn BatchSource) -> (Ctx<'a>, &'a mut Vec<Box<dyn Callback>>) {
        let world = self.sync.as_ref().map_or(1, |s| s.world_size());
        (
            Ctx {
                model: self.model,
                optimizer: self.optimizer.as_mut(),
                state: &self.state,
                epochs: self.epochs,
                batches_per_epoch: data.num_batches().div_ceil(self.grad_accum),
                // (a data-parallel step takes every rank's batch)
                examples_per_epoch: data.num_examples() * world,
                batch_size: data.batch_size() * self.grad_accum * world,
            },
            &mut self.callbacks,
        )
    }

    fn fit_in_pool(
        &mut self,
        train: &dyn BatchSource,
        validation: Option<&dyn BatchSource>,
    ) -> Result<Outcome> {
        let start = Instant::now();
        let seconds_before = self.state.seconds;
        {
            let (mut ctx, callbacks) = self.ctx(train);
            for cb in callbacks.iter_mut() {
                cb.on_fit_start(&mut ctx)?;
            }
        }
        if let Some(sync) = &mut self.sync {
            sync.start(self.model)?;
            if sync.rank() != 0 {
                // rank 0's checkpoint holds the loss of every rank's batches
                self.state.epoch_loss = (0.0, 0);
            }
        }
        let world = self.sync.as_ref().map_or(1, |s| s.world_size());
        let st = &mut self.state;
        if st.world_size != world {
            // a step of the checkpoint's run took world_size·B examples of
            // the epoch: go on after the examples done, repeating part of a
            // step rather than skipping any
            st.step_in_epoch = st.step_in_epoch * st.world_size / world;
            st.world_size = world;
        }
        // whether some rank was interrupted (with a synchronizer, all ranks
        // learn it at the same step)
        let mut interrupted = false;
        // rows of steps.csv since the last checkpoint, written with it
        let mut step_rows = String::new();
        let batches = train.num_batches();
        let accum = self.grad_accum;
        let epochs = match self.total_steps {
            Some(_) => usize::MAX,
            None => self.epochs,
        };
        let done =
            |st: &TrainState, limit: Option<usize>| limit.is_some_and(|m| st.global_step >= m);
        while self.state.epoch <= epochs && !done(&self.state, self.total_steps) {
            if done(&self.state, self.max_steps) {
                return Ok(Outcome::MaxSteps); // a resumed run that had reached it
            }
            let epoch = self.state.epoch;
            {
                let (mut ctx, callbacks) = self.ctx(train);
                for cb in callbacks.iter_mut() {
                    cb.on_epoch_start(epoch, &mut ctx)?;
                }
            }
            let epoch_start = Instant::now();
            let seconds_of_epoch_before = self.state.epoch_seconds;
            // resumed mid-epoch: the source skips the batches done
            let skip = self.state.step_in_epoch * accum;
            // the losses of the batches of the step under way
            let mut step_loss = (0f32, 0usize);
            for (k, batch) in train.batches_from(epoch, skip).enumerate() {
                let i = skip + k;
                let mut batch = batch?;
                for cb in self.callbacks.iter_mut() {
                    cb.on_batch(&mut batch, epoch, i)?;
                }
                let (step_index, group_start) = (i / accum, i / accum * accum);
                let in_step = accum.min(batches - group_start);
                if i == group_start {
                    self.optimizer.zero_grad();
                }
                let out = self.model.forward(&batch.inputs)?;
                let mut loss = match &self.distill {
                    Some(d) => d.loss(&batch.inputs, &out, &batch.targets, &self.loss)?,
                    None => (self.loss)(&out, &batch.targets, Reduction::Mean)?,
                };
                if self.l1 > 0.0 {
                    loss = loss.add(&l1_penalty(&self.model.parameters(), self.l1)?)?;
                }
                let value = loss.item()?;
                let lr = self.optimizer.lr();
                if !value.is_finite() && self.stop_on_nan {
                    // the losses that led here, on disk
                    step_rows += &StepRow {
                        step: (self.state.global_step + 1) as f64,
                        epoch: (epoch - 1) as f64 + (i + 1) as f64 / batches as f64,
                        loss: value as f64,
                        lr: lr as f64,
                    }
                    .to_csv();
                    let checkpoint = match &self.run {
                        Some(run) => {
                            run.append(&run.steps_path(), &step_rows)?;
                            Some(run.last_checkpoint()).filter(|p| p.is_file())
                        }
                        None => None,
                    };
                    return Err(TrainError::Diverged {
                        epoch,
                        step: self.state.global_step + 1,
                        loss: value,
                        lr,
                        checkpoint,
                    });
                }
                if in_step > 1 {
                    loss = loss.mul_scalar(1.0 / in_step as f32)?;
                }
                let reduce = i + 1 == group_start + in_step;
                match &mut self.sync {
                    None => loss.backward()?,
                    Some(sync) => {
                        let stop = reduce && raised(&self.interrupt);
                        sync.begin_backward(reduce, stop)?;
                        let mut error = None;
                        let pass = loss.backward_with_hook(&mut |p| {
                            sync.grad_ready(p).map_err(|e| {
                                let msg = e.to_string();
                                error = Some(e);
                                nabla_core::Error::Backward(msg)
                            })
                        });
                        if let Some(e) = error {
                            return Err(e);
                        }
                        pass?;
                        interrupted = sync.end_backward()? || interrupted;
                    }
                }
                self.state.epoch_loss.0 += value as f64;
                self.state.epoch_loss.1 += 1;
                step_loss = (step_loss.0 + value, step_loss.1 + 1);
                if i + 1 < group_start + in_step {
                    continue; // more batches to add to this step's gradients
                }
                if let Some(max) = self.clip_grad_norm {
                    clip_grad_norm(&self.model.parameters(), max, 2.0)?;
                }
                self.optimizer.step()?;
                let st = &mut self.state;
                st.step_in_epoch = step_index + 1;
                st.global_step += 1;
                let step = StepEnd {
                    epoch,
                    index: step_index,
                    global_step: st.global_step,
                    loss: step_loss.0 / step_loss.1 as f32,
                    examples: batch.targets.shape().first().copied().unwrap_or(1) * in_step,
                };
                step_loss = (0.0, 0);
                let mut stop = None;
                {
                    let (mut ctx, callbacks) = self.ctx(train);
                    for cb in callbacks.iter_mut() {
                        if let Flow::Stop(why) = cb.on_step_end(&step, &mut ctx)? {
                            stop.get_or_insert(why);
                        }
                    }
                }
                if step_index % self.log_every == 0 {
                    step_rows += &StepRow {
                        step: self.state.global_step as f64,
                        epoch: (epoch - 1) as f64 + (i + 1) as f64 / batches as f64,
                        loss: step.loss as f64,
                        lr: lr as f64, // the step's rate, before a schedule moved it
                    }
                    .to_csv();
                }
                if done(&self.state, self.total_steps) {
                    break; // the run's last step ends its last epoch
                }
                let stop_asked = match self.sync {
                    Some(_) => interrupted,
                    None => raised(&self.interrupt),
                };
                let outcome = if stop_asked {
                    Some(Outcome::Interrupted)
                } else if done(&self.state, self.max_steps) {
                    Some(Outcome::MaxSteps)
                } else {
                    stop.map(Outcome::Stopped)
                };
                if let Some(outcome) = outcome {
                    self.state.epoch_seconds =
                        seconds_of_epoch_before + epoch_start.elapsed().as_secs_f64();
                    self.state.seconds = seconds_before + start.elapsed().as_secs_f64();
                    self.commit(None, &mut step_rows, false)?;
                    return Ok(outcome);
                }
            }
            let train_seconds = seconds_of_epoch_before + epoch_start.elapsed().as_secs_f64();
            let test_start = Instant::now();
            let mut evaluation = validation.map(|v| self.evaluate(v)).transpose()?;
            let mut epoch_loss = self.state.epoch_loss;
            if let Some(sync) = &mut self.sync {
                // the metrics of the whole data, the same on every rank
                epoch_loss = sum_over_ranks(sync.as_mut(), epoch_loss, evaluation.as_mut())?;
            }
            let test_seconds = test_start.elapsed().as_secs_f64();
            let (sum, n) = epoch_loss;
            let end = EpochEnd {
                epoch,
                train_loss: sum / n.max(1) as f64,
                validation: evaluation.as_ref(),
                train_seconds,
                test_seconds,
            };
            let row = EpochRow {
                epoch: epoch as f64,
                step: self.state.global_step as f64,
                train_loss: end.train_loss,
                test_loss: evaluation
                    .as_ref()
                    .map_or(f64::NAN, |e| e.mean_loss() as f64),
                accuracy: evaluation
                    .as_ref()
                    .map_or(f64::NAN, |e| e.accuracy() as f64),
                lr: self.optimizer.lr() as f64,
                seconds: seconds_before + start.elapsed().as_secs_f64(),
            };
            let monitored = end.monitored_loss();
            let best = monitored < self.state.best_loss;
            if best {
                self.state.best_loss = monitored;
            }
            let mut stop = None;
            {
                let (mut ctx, callbacks) = self.ctx(train);
                for cb in callbacks.iter_mut() {
                    if let Flow::Stop(why) = cb.on_epoch_end(&end, &mut ctx)? {
                        stop.get_or_insert(why);
                    }
                }
            }
            let st = &mut self.state;
            st.epoch += 1;
            st.step_in_epoch = 0;
            st.epoch_loss = (0.0, 0);
            st.epoch_seconds = 0.0;
            st.seconds = seconds_before + start.elapsed().as_secs_f64();
            self.commit(
                Some(row.to_csv(train_seconds, test_seconds)),
                &mut step_rows,
                best,
            )?;
            if let Some(why) = stop {
                return Ok(Outcome::Stopped(why));
            }
        }
        Ok(Outcome::Finished)
    }

    /// Writes where the run stands: the epoch's metrics row (if any) and
    /// the pending steps' rows, then the checkpoint covering them (also as
    /// the best one when `best`).
    fn commit(
        &mut self,
        metrics_row: Option<String>,
        step_rows: &mut String,
        best: bool,
    ) -> Result<()> {
        if let Some(sync) = &mut self.sync {
            // the epoch's loss so far over all ranks, kept by rank 0 (whose
            // checkpoint holds it); the others start again from zero
            let (sum, n) = self.state.epoch_loss;
            let mut v = [sum, n as f64];
            sync.sum(&mut v)?;
            self.state.epoch_loss = match sync.rank() {
                0 => (v[0], v[1] as usize),
                _ => (0.0, 0),
            };
        }
        self.state.generator = nabla_core::global_generator_state();
        self.state.callbacks = self
            .callbacks
            .iter()
            .map(|cb| (cb.name().to_string(), cb.state()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let Some(run) = &self.run else {
            step_rows.clear();
            return Ok(());
        };
        self.state.metrics_len = match metrics_row {
            Some(row) => run.append(&run.metrics_path(), &row)?,
            None => run.len_of(&run.metrics_path())?,
        };
        self.state.steps_len = run.append(&run.steps_path(), step_rows)?;
        step_rows.clear();
        let checkpoint = Checkpoint {
            model: state_dict(self.model),
            optim: self.optimizer.state(),
            state: self.state.clone(),
        };
        run.commit(&checkpoint, best)
    }
}

/// Whether the interrupt flag (if any) is raised.
fn raised(flag: &Option<Arc<AtomicBool>>) -> bool {
    flag.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// The epoch's training loss (sum, batches) and the validation's counts
/// summed over the ranks, in one call.
fn sum_over_ranks(
    sync: &mut dyn GradientSync,
    (loss, batches): (f64, usize),
    evaluation: Option<&mut Evaluation>,
) -> Result<(f64, usize)> {
    let mut values = vec![loss, batches as f64];
    if let Some(e) = &evaluation {
        values.extend([e.loss as f64, e.total as f64, e.correct as f64]);
        values.extend(e.confusion.iter().flatten().map(|&c| c as f64));
    }
    sync.sum(&mut values)?;
    if let Some(e) = evaluation {
        e.loss = values[2] as f32;
        e.total = values[3] as usize;
        e.correct = values[4] as usize;
        for (c, v) in e.confusion.iter_mut().flatten().zip(&values[5..]) {
            *c = *v as usize;
        }
    }
    Ok((values[0], values[1] as usize))
}
