//! `nabla train`: the flags turned into a data set, a model, an optimizer
//! and a [`Trainer`], which does the rest (nabla-train): the loop, the run
//! directory, checkpoints and resuming.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::{Device, Tensor};
use nabla_data::{Augmentation, DataLoader, ImageDataset};
use nabla_nn::modelfile::FileModel;
use nabla_nn::optim::{Adadelta, Adagrad, Adam, Optimizer, RMSprop, Sgd};
use nabla_nn::scheduler::{ReduceLrOnPlateau, Schedule};
use nabla_nn::state_dict::{load_safetensors, load_state_dict};
use nabla_nn::Parameters;
use nabla_train::callbacks::{KeepZeros, MixBatches};
use nabla_train::{say, Distillation, Outcome, RunDir, TrainError, Trainer};

use crate::args::{DeviceKind, OptimizerKind, SchedulerKind, TrainArgs};
use crate::common::{augmented_dataset, dataset, load_data, model_for, usage};
use crate::settings::settings;

/// Exit code of a run stopped by SIGINT or SIGTERM (after its checkpoint).
pub const INTERRUPTED: i32 = 130;

/// Adam's betas from "b1,b2".
fn betas(text: &str) -> Result<(f32, f32)> {
    let bad = || {
        usage(format!(
            "--betas must be two numbers like 0.9,0.999, got {text:?}"
        ))
    };
    let v: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    match v[..] {
        [b1, b2] => Ok((b1, b2)),
        _ => Err(bad()),
    }
}

fn optimizer(a: &TrainArgs, params: Vec<Tensor>) -> Result<Box<dyn Optimizer>> {
    let (b1, b2) = betas(&a.betas)?;
    let opt: Box<dyn Optimizer> = match a.optimizer {
        OptimizerKind::Sgd => Box::new(
            Sgd::new(params, a.lr)
                .momentum(a.momentum)
                .nesterov(a.nesterov)
                .weight_decay(a.weight_decay),
        ),
        OptimizerKind::Adam => Box::new(
            Adam::new(params, a.lr)
                .betas(b1, b2)
                .weight_decay(a.weight_decay),
        ),
        OptimizerKind::Adamw => Box::new(
            Adam::adamw(params, a.lr)
                .betas(b1, b2)
                .weight_decay(a.weight_decay),
        ),
        OptimizerKind::Rmsprop => Box::new(
            RMSprop::new(params, a.lr)
                .alpha(a.alpha)
                .momentum(a.momentum)
                .weight_decay(a.weight_decay),
        ),
        OptimizerKind::Adagrad => Box::new(Adagrad::new(params, a.lr).weight_decay(a.weight_decay)),
        OptimizerKind::Adadelta => {
            Box::new(Adadelta::new(params, a.lr).weight_decay(a.weight_decay))
        }
    };
    // the optimizer's own checks (PyTorch's), before any step
    opt.check()
        .map_err(|e| usage(format!("{e} (from the optimizer's flags)")))?;
    Ok(opt)
}

/// The checks of flags that clap cannot make alone (usage errors: exit 2).
fn check_args(a: &TrainArgs) -> Result<()> {
    if a.epochs == 0 || a.batch_size() == 0 || a.test_batch_size == 0 {
        return Err(usage(
            "--epochs, --batch-size and --test-batch-size must be positive",
        ));
    }
    if a.nesterov && (a.optimizer != OptimizerKind::Sgd || a.momentum <= 0.0) {
        return Err(usage(
            "--nesterov needs --optimizer sgd with a positive --momentum",
        ));
    }
    betas(&a.betas)?;
    if let Some(p) = a.dropout.filter(|p| !(0.0..1.0).contains(p)) {
        return Err(usage(format!("--dropout must be in [0, 1), got {p}")));
    }
    if a.max_steps == Some(0) {
        return Err(usage("--max-steps must be positive"));
    }
    if let Some(c) = a.clip_grad_norm.filter(|c| !(*c > 0.0 && c.is_finite())) {
        return Err(usage(format!(
            "--clip-grad-norm must be a positive number, got {c}"
        )));
    }
    if !(a.l1 >= 0.0 && a.l1.is_finite()) {
        return Err(usage(format!("--l1 must be a number >= 0, got {}", a.l1)));
    }
    if !(a.min_delta >= 0.0 && a.min_delta.is_finite()) {
        return Err(usage(format!(
            "--min-delta must be a number >= 0, got {}",
            a.min_delta
        )));
    }
    if a.dataset != "mnist" && a.dataset != "fashion-mnist" {
        return Err(usage(format!(
            "--dataset must be mnist or fashion-mnist, got {:?}",
            a.dataset
        )));
    }
    if a.teacher.is_none() && (a.temperature.is_some() || a.distill_alpha.is_some()) {
        return Err(usage(
            "--temperature and --distill-alpha set a distillation: they need --teacher RUN",
        ));
    }
    Ok(())
}

/// The teacher of a distillation (`--teacher RUN`), checked against the
/// student: the same input and number of classes.
fn teacher_for(a: &TrainArgs, student: &FileModel, device: Device) -> Result<Option<FileModel>> {
    let Some(dir) = &a.teacher else {
        return Ok(None);
    };
    let t = crate::inspect::load_trained(dir, None, None, None, false)
        .with_context(|| format!("--teacher {}", dir.display()))?;
    if t.model.input != student.input || t.model.output_shape() != student.output_shape() {
        bail!(
            "--teacher {}: its model takes {:?} and gives {:?}, the student takes {:?} and gives {:?}",
            dir.display(),
            t.model.input,
            t.model.output_shape(),
            student.input,
            student.output_shape()
        );
    }
    if t.dataset != a.dataset {
        eprintln!(
            "note: the teacher was trained on {}, the student trains on {}",
            t.dataset, a.dataset
        );
    }
    t.model.to(device)?;
    Ok(Some(t.model))
}

/// `given`: the flags named on the command line (a resumed run may change
/// only some of them).
pub fn run(args: TrainArgs, given: &[String]) -> Result<i32> {
    let (a, run_dir, resume) = settings(args, given)?;
    let foreign: Vec<String> = given
        .iter()
        .filter(|id| !TrainArgs::applies(&a.model, id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    a.check_device().map_err(usage)?;
    if !foreign.is_empty() {
        return Err(usage(match crate::lm::is_language_model(&a.model) {
            true => format!(
                "{} do not apply to --model {} (nanoGPT's recipe on the CPU: AdamW, warm-up and cosine)",
                foreign.join(", "),
                a.model
            ),
            false => format!(
                "{} apply only to a language model (--model gpt-char)",
                foreign.join(", ")
            ),
        }));
    }
    if let Some(t) = a.threads {
        crate::common::check_threads(t, "--threads")?;
    }
    if crate::lm::is_language_model(&a.model) {
        if let Some(t) = a.threads {
            nabla_core::set_num_threads(t);
        }
        return nabla_core::in_pool(|| crate::lm::train(a, run_dir, resume));
    }
    check_args(&a)?;
    if a.distributed {
        return crate::distributed::run(a, run_dir, resume);
    }
    // before the run enters the pool: work already on a pool thread stays
    // in that pool
    if let Some(t) = a.threads {
        nabla_core::set_num_threads(t);
    }
    // The whole run lives on a thread of nabla's pool, so the ops of a step
    // start their kernels where they are instead of handing each one over
    // and waiting (LeNet's epoch 3.1 → 2.95 s at one thread, 2.2 → 1.75 s
    // at two; handing over once per step instead cost the MLP 5%).
    nabla_core::in_pool(|| train(a, run_dir, resume, None))
}

/// The run; `ranks`: this process's place in a data-parallel run.
pub fn train(
    a: TrainArgs,
    run_dir: PathBuf,
    resume: bool,
    ranks: Option<&crate::distributed::Ranks>,
) -> Result<i32> {
    let device = match a.device {
        DeviceKind::Auto => Device::best_available(),
        DeviceKind::Cpu => Device::Cpu,
        DeviceKind::Cuda => Device::Cuda(0),
        DeviceKind::Reference => Device::Reference,
    };
    device.ensure_available()?;
    nabla_core::manual_seed(a.seed);

    let data = load_data(&a.dataset, a.data.as_deref(), a.download)?;
    let data_name = a
        .data
        .as_ref()
        .map_or(a.dataset.clone(), |d| d.display().to_string());
    let augmentation = Augmentation::parse(a.augment.as_deref().unwrap_or_default())
        .map_err(|e| usage(format!("--augment: {e}")))?;
    let train_images = match a.train_fraction {
        Some(f) => data.train.balanced_subset(f, a.seed),
        None => data.train,
    };
    let classes = train_images.classes;
    let train_set = augmented_dataset(train_images, &a.dataset, augmentation.transforms);
    let test_set = dataset(data.test, &a.dataset);
    let model = model_for(&a.model, a.dropout, &train_set, &data_name)?;
    if let Some(w) = &a.init_weights {
        let sd = load_safetensors(w).map_err(|e| anyhow!("{e}"))?;
        load_state_dict(&model, &sd).map_err(|e| anyhow!("{}: {e}", w.display()))?;
    }
    model.to(device)?;
    let teacher = teacher_for(&a, &model, device)?;
    let opt = optimizer(&a, model.parameters())?;
    // (what every rank of a data-parallel run must have read alike)
    let data_fingerprint = ranks.map(|_| data_fingerprint(&train_set, &test_set));
    let mut train_loader = DataLoader::new(train_set, a.batch_size())
        .shuffle(!a.no_shuffle)
        .seed(a.seed)
        .to(device);
    let mut test_loader = DataLoader::new(test_set, a.test_batch_size)
        .shuffle(false)
        .to(device);
    if let Some(r) = ranks {
        train_loader = r.shard(train_loader, true);
        test_loader = r.shard(test_loader, false);
    }

    let mut trainer = Trainer::new(&model, opt)
        .epochs(a.epochs)
        .max_steps(a.max_steps)
        .clip_grad_norm(a.clip_grad_norm)
        .l1(a.l1)
        .precision(a.precision.into())
        .log_every(a.log_interval);
    if let Some(teacher) = &teacher {
        let (t, alpha) = (
            a.temperature.unwrap_or(2.0),
            a.distill_alpha.unwrap_or(0.25),
        );
        trainer = trainer.distill(Distillation::new(teacher, t, alpha)?);
    }
    if a.keep_zeros {
        trainer = trainer.callback(KeepZeros::default());
    }
    if let Some(mix) = augmentation.mix {
        trainer = trainer.callback(MixBatches {
            mix,
            classes,
            seed: a.seed,
        });
    }
    trainer = match a.scheduler {
        SchedulerKind::None => trainer,
        SchedulerKind::Step => trainer.schedule(
            Schedule::Step {
                step_size: (a.epochs / 3).max(1),
                gamma: 0.1,
            },
            false,
        ),
        SchedulerKind::Exponential => trainer.schedule(Schedule::Exponential { gamma: 0.9 }, false),
        SchedulerKind::Cosine => trainer.schedule(
            Schedule::CosineAnnealing {
                t_max: a.epochs,
                eta_min: 0.0,
            },
            false,
        ),
        SchedulerKind::Onecycle => trainer.schedule(
            Schedule::OneCycle {
                max_lr: a.lr,
                total_steps: a.epochs * train_loader.len(),
                pct_start: 0.3,
                div_factor: 25.0,
                final_div_factor: 1e4,
                momentum: Some((0.85, 0.95)),
            },
            true,
        ),
        SchedulerKind::Plateau => trainer.reduce_on_plateau(ReduceLrOnPlateau {
            patience: 1,
            ..ReduceLrOnPlateau::new()
        }),
    };
    if let Some(patience) = a.early_stop {
        trainer = trainer.early_stopping(patience, a.min_delta);
    }
    trainer = trainer.interrupt_on(interrupt_flag());
    if let (Some(r), Some(data)) = (ranks, data_fingerprint) {
        trainer = r.sync(trainer, &model, &a, data)?;
    }
    let is_main = ranks.is_none_or(|r| r.is_main());
    if resume {
        // (the other ranks of a data-parallel run get rank 0's checkpoint)
        let (run, checkpoint) = match ranks {
            Some(r) => r.resume(&run_dir)?,
            None => RunDir::resume(&run_dir).map(|(run, ck)| (Some(run), ck))?,
        };
        trainer = match run {
            Some(run) => {
                write_config(&run, &a)?; // with what the resumption extended
                trainer.resume((run, checkpoint))?
            }
            None => trainer.resume_from(checkpoint, "rank 0's checkpoint")?,
        };
        let st = trainer.state();
        say!(
            "resuming {} at epoch {}, step {}",
            run_dir.display(),
            st.epoch,
            st.step_in_epoch
        );
    } else if is_main {
        let run = RunDir::create(&run_dir, a.overwrite)?;
        write_config(&run, &a)?;
        trainer = trainer.run_dir(run);
        say!(
            "training {} ({} parameters) on {data_name} on {device}; run directory {}",
            model.name,
            model.num_parameters(),
            run_dir.display()
        );
    }
    let start = std::time::Instant::now();
    let outcome = trainer
        .fit(&train_loader, Some(&test_loader))
        .map_err(|e| match e {
            TrainError::Diverged { .. } => anyhow!("{e} (--lr, --clip-grad-norm)"),
            e => e.into(),
        })?;
    let Some(run) = trainer.run() else {
        return Ok(0); // another rank than 0 of a data-parallel run
    };
    let (weights, last, best) = (
        run.weights_path(),
        run.last_checkpoint(),
        run.best_checkpoint(),
    );
    Ok(match outcome {
        Outcome::Finished => {
            say!(
                "done in {:.1} s; weights in {}; a report of the run: nabla report {}",
                start.elapsed().as_secs_f64(),
                weights.display(),
                run_dir.display()
            );
            0
        }
        Outcome::Stopped(why) => {
            say!("{why}; best checkpoint {}", best.display());
            0
        }
        Outcome::MaxSteps => {
            say!(
                "stopped after {} steps (--max-steps); weights in {}",
                trainer.state().global_step,
                weights.display()
            );
            0
        }
        Outcome::Interrupted => {
            eprintln!(
                "interrupted at epoch {}, step {}: checkpoint written to {}; continue with: nabla train --resume {}",
                trainer.state().epoch,
                trainer.state().global_step,
                last.display(),
                run_dir.display()
            );
            INTERRUPTED
        }
    })
}

/// A fingerprint of the training and test images and labels: the ranks of
/// a data-parallel run compare them before the first step.
fn data_fingerprint(train: &ImageDataset, test: &ImageDataset) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for d in [train, test] {
        (&d.set.images, &d.set.labels, d.set.height, d.set.width).hash(&mut h);
    }
    h.finish()
}

/// A flag raised by Ctrl-C or SIGTERM, for [`Trainer::interrupt_on`]: the
/// step in progress ends and a checkpoint is written.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let raise = stop.clone();
    // a second handler would fail; ignore that in tests that call run() twice
    let _ = ctrlc::set_handler(move || raise.store(true, Ordering::SeqCst));
    stop
}

/// The run's `config.toml`: every setting, with the model file copied into
/// the run (`model.toml`) and the data folder made absolute, so the run
/// directory can be moved and still evaluated or resumed.
pub fn write_config(run: &RunDir, a: &TrainArgs) -> Result<()> {
    let mut saved = TrainArgs {
        resume: None,
        overwrite: false,
        out: Some(run.path().to_path_buf()),
        data: a.data.as_deref().map(absolute),
        teacher: a.teacher.as_deref().map(absolute),
        ..a.clone()
    };
    // (gpt-char is no zoo model of images, and no file either)
    if !crate::lm::is_language_model(&a.model) && nabla_nn::modelfile::is_file_model(&a.model) {
        let text = std::fs::read(&a.model)
            .with_context(|| format!("{}: cannot read the model file", a.model))?;
        run.write(&run.path().join("model.toml"), &text)?;
        saved.model = "model.toml".into();
    }
    run.write(&run.config_path(), toml::to_string(&saved)?.as_bytes())?;
    Ok(())
}

/// `p` made absolute (as a run's config keeps its data folder).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
