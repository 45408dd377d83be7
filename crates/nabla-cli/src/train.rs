//! `nabla train`: the training loop, the run directory and checkpoints.
//!
//! Run directory: `config.toml` (every setting: `--resume` reads it back),
//! `metrics.csv` (one row per epoch: losses, accuracy, lr, seconds since
//! the start, and the epoch's training and test-pass seconds), `steps.csv` (training loss and lr
//! every `--log-interval` steps, appended when a checkpoint is written so
//! it matches the checkpoint after a resume), `checkpoints/last.safetensors`
//! (after every epoch and on interruption), `checkpoints/best.safetensors`
//! (lowest test loss), `model.safetensors` (final weights, PyTorch keys).
//! Whole files are written atomically; the CSV files grow by appended rows.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::{set_global_generator_state, Device, Generator, GeneratorState, Tensor};
use nabla_data::augment::mix_batch;
use nabla_data::{Augmentation, DataLoader};
use nabla_nn::loss::cross_entropy;
use nabla_nn::optim::{clip_grad_norm, Adadelta, Adagrad, Adam, Optimizer, RMSprop, Sgd};
use nabla_nn::regularization::l1_penalty;
use nabla_nn::scheduler::{LrScheduler, ReduceLrOnPlateau, Schedule};
use nabla_nn::state_dict::{load_safetensors, load_state_dict, save_safetensors, state_dict};
use nabla_nn::Module;

use crate::args::{DeviceKind, OptimizerKind, SchedulerKind, TrainArgs};
use crate::checkpoint::{self, Progress};
use crate::common::{augmented_dataset, dataset, evaluate, load_data, model_for, test_line};

/// Exit code of a run stopped by SIGINT or SIGTERM (after its checkpoint).
pub const INTERRUPTED: i32 = 130;

fn optimizer(a: &TrainArgs, params: Vec<Tensor>) -> Result<Box<dyn Optimizer>> {
    let betas: Vec<f32> = a
        .betas
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            anyhow!(
                "--betas must be two numbers like 0.9,0.999, got {:?}",
                a.betas
            )
        })?;
    let [b1, b2] = betas[..] else {
        bail!(
            "--betas must be two numbers like 0.9,0.999, got {:?}",
            a.betas
        )
    };
    Ok(match a.optimizer {
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
    })
}

fn check_args(a: &TrainArgs) -> Result<()> {
    if a.epochs == 0 || a.batch_size() == 0 || a.test_batch_size == 0 {
        bail!("--epochs, --batch-size and --test-batch-size must be positive");
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", a.lr);
    }
    if a.nesterov && (a.optimizer != OptimizerKind::Sgd || a.momentum <= 0.0) {
        bail!("--nesterov needs --optimizer sgd with a positive --momentum");
    }
    // the optimizer's own checks (PyTorch's), before any data is read
    optimizer(a, Vec::new())?
        .check()
        .map_err(|e| anyhow!("{e} (from the optimizer's flags)"))?;
    if let Some(p) = a.dropout.filter(|p| !(0.0..1.0).contains(p)) {
        bail!("--dropout must be in [0, 1), got {p}");
    }
    if a.max_steps == Some(0) {
        bail!("--max-steps must be positive");
    }
    if let Some(c) = a.clip_grad_norm.filter(|c| !(*c > 0.0 && c.is_finite())) {
        bail!("--clip-grad-norm must be a positive number, got {c}");
    }
    if !(a.l1 >= 0.0 && a.l1.is_finite()) {
        bail!("--l1 must be a number >= 0, got {}", a.l1);
    }
    if !(a.min_delta >= 0.0 && a.min_delta.is_finite()) {
        bail!("--min-delta must be a number >= 0, got {}", a.min_delta);
    }
    if a.dataset != "mnist" && a.dataset != "fashion-mnist" {
        bail!(
            "--dataset must be mnist or fashion-mnist, got {:?}",
            a.dataset
        );
    }
    Ok(())
}

const STEPS_HEADER: &str = "step,epoch,loss,lr\n";

/// Appends `rows` to a CSV file (with its header if the file is new, as in
/// runs made before steps.csv existed) and empties them.
fn append_rows(path: &Path, rows: &mut String) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    if f.metadata()?.len() == 0 {
        f.write_all(STEPS_HEADER.as_bytes())?;
    }
    f.write_all(rows.as_bytes())
        .with_context(|| format!("{}", path.display()))?;
    rows.clear();
    Ok(())
}

/// The seed of a batch's mix (mixup, CutMix): a stream of its own per
/// (seed, epoch, step), apart from the loader's.
fn mix_seed(seed: u64, epoch: usize, step: usize) -> u64 {
    const MIXES: u64 = 0x6d69_7875_7021; // "mixup!"
    nabla_data::loader::stream_seed(seed ^ MIXES, epoch as u64, step as u64)
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

pub fn run(args: TrainArgs) -> Result<i32> {
    let (a, run_dir, resume) = settings(args)?;
    if a.model.starts_with("gpt") {
        if let Some(t) = a.threads {
            nabla_core::set_num_threads(t);
        }
        return nabla_core::in_pool(|| crate::lm::train(a, run_dir, resume));
    }
    check_args(&a)?;
    // before the run enters the pool: work already on a pool thread stays
    // in that pool (until this was moved here, `--threads 1` ran its
    // batches and parallel loops on a second thread of the default pool)
    if let Some(t) = a.threads {
        nabla_core::set_num_threads(t);
    }
    // The whole run lives on a thread of nabla's pool, so the ops of a step
    // start their kernels where they are instead of handing each one over
    // and waiting (LeNet's epoch 3.1 → 2.95 s at one thread, 2.2 → 1.75 s
    // at two; handing over once per step instead cost the MLP 5%).
    nabla_core::in_pool(|| train(a, run_dir, resume))
}

/// The run's settings, its directory and whether it resumes: a resumed run
/// takes every setting from its config.
fn settings(args: TrainArgs) -> Result<(TrainArgs, PathBuf, bool)> {
    let (a, run_dir, resume) = match &args.resume {
        Some(dir) => {
            let cfg = dir.join("config.toml");
            let text = std::fs::read_to_string(&cfg)
                .with_context(|| format!("{}: cannot read the run's config", cfg.display()))?;
            let saved: TrainArgs = toml::from_str(&text)
                .map_err(|e| anyhow!("{}: invalid config: {}", cfg.display(), e.message()))?;
            (saved, dir.clone(), true)
        }
        None => {
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| default_run_dir(&args.model));
            (args, dir, false)
        }
    };
    Ok((a, run_dir, resume))
}

fn train(a: TrainArgs, run_dir: PathBuf, resume: bool) -> Result<i32> {
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
        .map_err(|e| anyhow!("{e}"))?;
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
    let mut opt = optimizer(&a, model.parameters())?;
    let loader = DataLoader::new(train_set, a.batch_size())
        .shuffle(!a.no_shuffle)
        .seed(a.seed)
        .to(device);
    let batches_per_epoch = loader.len();
    let mut sched = match a.scheduler {
        SchedulerKind::None | SchedulerKind::Plateau => None,
        SchedulerKind::Step => Some(Schedule::Step {
            step_size: (a.epochs / 3).max(1),
            gamma: 0.1,
        }),
        SchedulerKind::Exponential => Some(Schedule::Exponential { gamma: 0.9 }),
        SchedulerKind::Cosine => Some(Schedule::CosineAnnealing {
            t_max: a.epochs,
            eta_min: 0.0,
        }),
        SchedulerKind::Onecycle => Some(Schedule::OneCycle {
            max_lr: a.lr,
            total_steps: a.epochs * batches_per_epoch,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            momentum: Some((0.85, 0.95)),
        }),
    }
    .map(|s| LrScheduler::new(s, opt.as_mut()));
    let mut plateau = (a.scheduler == SchedulerKind::Plateau).then(|| {
        let mut p = ReduceLrOnPlateau::new();
        p.patience = 1;
        p
    });

    let ckpt_dir = run_dir.join("checkpoints");
    let (last, best) = (
        ckpt_dir.join("last.safetensors"),
        ckpt_dir.join("best.safetensors"),
    );
    let mut progress = Progress {
        epoch: 1,
        best_loss: f32::INFINITY,
        lr: opt.lr(),
        plateau_best: f32::INFINITY,
        rng_seed: a.seed,
        ..Default::default()
    };
    if resume {
        let ck = checkpoint::load(&last)?;
        load_state_dict(&model, &ck.model).map_err(|e| anyhow!("{}: {e}", last.display()))?;
        opt.load_state(&ck.optim)
            .map_err(|e| anyhow!("{}: {e}", last.display()))?;
        progress = ck.progress;
        set_global_generator_state(GeneratorState {
            seed: progress.rng_seed,
            word_pos: progress.rng_word_pos,
        });
        if let Some(s) = sched.as_mut() {
            s.set_steps(progress.scheduler_steps, opt.as_mut());
        }
        opt.set_lr(progress.lr);
        if let Some(p) = plateau.as_mut() {
            (p.best, p.bad_epochs, p.cooldown_left) = (
                progress.plateau_best,
                progress.plateau_bad,
                progress.plateau_cooldown,
            );
        }
        println!(
            "resuming {} at epoch {}, step {}",
            run_dir.display(),
            progress.epoch,
            progress.step_in_epoch
        );
    } else {
        std::fs::create_dir_all(&ckpt_dir)
            .with_context(|| format!("{}: cannot create the run directory", run_dir.display()))?;
        let cfg = toml::to_string(&TrainArgs {
            resume: None,
            out: Some(run_dir.clone()),
            ..a.clone()
        })?;
        nabla_data::write_atomically(&run_dir.join("config.toml"), cfg.as_bytes())
            .map_err(|e| anyhow!("{e}"))?;
        let header =
            "epoch,step,train_loss,test_loss,accuracy,lr,seconds,train_seconds,test_seconds\n";
        nabla_data::write_atomically(&run_dir.join("metrics.csv"), header.as_bytes())
            .map_err(|e| anyhow!("{e}"))?;
        nabla_data::write_atomically(&run_dir.join("steps.csv"), STEPS_HEADER.as_bytes())
            .map_err(|e| anyhow!("{e}"))?;
        println!(
            "training {} ({} parameters) on {data_name} on {device}; run directory {}",
            model.name,
            model.num_parameters(),
            run_dir.display()
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // a second handler would fail; ignore that in tests that call run() twice
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let save_last = |progress: &mut Progress, opt: &dyn Optimizer| -> Result<()> {
        let st = nabla_core::global_generator_state();
        (progress.rng_seed, progress.rng_word_pos) = (st.seed, st.word_pos);
        checkpoint::save(&last, &state_dict(&model), &opt.state(), progress)
    };
    let tty = std::io::stdout().is_terminal();
    // rows of steps.csv since the last checkpoint, written with it
    let mut step_rows = String::new();
    let n_train = nabla_data::Dataset::len(loader.dataset());
    let start = Instant::now();
    while progress.epoch <= a.epochs {
        let epoch = progress.epoch;
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(batches_per_epoch as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} {bar:30} {pos}/{len} {msg} eta {eta}",
                )
                .expect("template"),
            );
            b.set_prefix(epoch.to_string());
            b.set_position(progress.step_in_epoch as u64);
            b
        });
        let (mut loss_sum, mut loss_n) = (0f64, 0usize);
        let epoch_start = Instant::now();
        for (i, batch) in loader.epoch(epoch).enumerate() {
            if i < progress.step_in_epoch {
                continue; // resumed mid-epoch: these batches are done
            }
            let mut batch = batch.map_err(|e| anyhow!("{e}"))?;
            if let Some(mix) = augmentation.mix {
                // drawn from (seed, epoch, step) alone: a resumed run mixes alike
                let mut rng = Generator::new(mix_seed(a.seed, epoch, i));
                (batch.inputs, batch.targets) =
                    mix_batch(mix, &batch.inputs, &batch.targets, classes, &mut rng)?;
            }
            opt.zero_grad();
            let mut loss = cross_entropy(&model.forward(&batch.inputs)?, &batch.targets)?;
            if a.l1 > 0.0 {
                loss = loss.add(&l1_penalty(&model.parameters(), a.l1)?)?;
            }
            let value = loss.item()?;
            if !value.is_finite() {
                bail!(
                    "training diverged at epoch {epoch}, step {}: the loss is {value} with lr {}; the last good checkpoint is {}; \
                     try a smaller --lr or --clip-grad-norm",
                    progress.global_step + 1,
                    opt.lr(),
                    last.display()
                );
            }
            loss.backward()?;
            if let Some(max) = a.clip_grad_norm {
                clip_grad_norm(opt.params(), max, 2.0)?;
            }
            opt.step()?;
            if a.scheduler == SchedulerKind::Onecycle {
                if let Some(s) = sched.as_mut() {
                    s.step(opt.as_mut());
                }
            }
            progress.step_in_epoch = i + 1;
            progress.global_step += 1;
            loss_sum += value as f64;
            loss_n += 1;
            if i % a.log_interval.max(1) == 0 {
                let at = (epoch - 1) as f64 + (i + 1) as f64 / batches_per_epoch as f64;
                step_rows += &format!("{},{at:.4},{value:.6},{}\n", progress.global_step, opt.lr());
            }
            let seen = (i + 1) * a.batch_size();
            match &bar {
                Some(b) => {
                    let rate = seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
                    b.set_message(format!("loss {value:.4} {rate:.0} img/s"));
                    b.inc(1);
                }
                None if i % a.log_interval.max(1) == 0 => {
                    println!(
                        "Train Epoch: {epoch} [{}/{n_train} ({:.0}%)]\tLoss: {value:.6}",
                        i * a.batch_size(),
                        100.0 * i as f32 / batches_per_epoch as f32
                    );
                }
                None => {}
            }
            let max_reached = a.max_steps.is_some_and(|m| progress.global_step >= m);
            if stop.load(Ordering::SeqCst) || max_reached {
                progress.lr = opt.lr();
                append_rows(&run_dir.join("steps.csv"), &mut step_rows)?;
                save_last(&mut progress, opt.as_ref())?;
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                save_safetensors(run_dir.join("model.safetensors"), &state_dict(&model))
                    .map_err(|e| anyhow!("{e}"))?;
                if max_reached {
                    println!(
                        "stopped after {} steps (--max-steps); weights in {}",
                        progress.global_step,
                        run_dir.join("model.safetensors").display()
                    );
                    return Ok(0);
                }
                eprintln!(
                    "interrupted at epoch {epoch}, step {}: checkpoint written to {}; continue with: nabla train --resume {}",
                    progress.global_step,
                    last.display(),
                    run_dir.display()
                );
                return Ok(INTERRUPTED);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let test_start = Instant::now();
        let ev = evaluate(&model, test_set.clone(), a.test_batch_size)?;
        let test_seconds = test_start.elapsed().as_secs_f64();
        let test_loss = ev.loss / ev.total as f32;
        println!("\n{}\n", test_line(&ev));
        let row = format!(
            "{epoch},{},{:.6},{test_loss:.6},{:.6},{},{:.3},{train_seconds:.3},{test_seconds:.3}\n",
            progress.global_step,
            loss_sum / loss_n.max(1) as f64,
            ev.correct as f32 / ev.total as f32,
            opt.lr(),
            start.elapsed().as_secs_f64()
        );
        let metrics = run_dir.join("metrics.csv");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics)
            .with_context(|| format!("{}", metrics.display()))?;
        f.write_all(row.as_bytes())?;
        let improved = test_loss < progress.best_loss - a.min_delta;
        if improved {
            progress.best_loss = test_loss;
            progress.epochs_without_improvement = 0;
        } else {
            progress.epochs_without_improvement += 1;
        }
        if a.scheduler != SchedulerKind::Onecycle {
            if let Some(s) = sched.as_mut() {
                s.step(opt.as_mut());
            }
        }
        if let Some(p) = plateau.as_mut() {
            p.step(test_loss, opt.as_mut());
            (
                progress.plateau_best,
                progress.plateau_bad,
                progress.plateau_cooldown,
            ) = (p.best, p.bad_epochs, p.cooldown_left);
        }
        progress.scheduler_steps = sched.as_ref().map_or(0, |s| s.steps());
        progress.epoch += 1;
        progress.step_in_epoch = 0;
        progress.lr = opt.lr();
        append_rows(&run_dir.join("steps.csv"), &mut step_rows)?;
        save_last(&mut progress, opt.as_ref())?;
        if improved {
            std::fs::copy(&last, ckpt_dir.join(".best.tmp"))
                .and_then(|_| std::fs::rename(ckpt_dir.join(".best.tmp"), &best))
                .with_context(|| format!("{}: cannot write the best checkpoint", best.display()))?;
        }
        // (as Lightning's patience: an epoch that improves never stops the
        // run, so patience 0 stops at the first one that does not)
        if !improved
            && a.early_stop
                .is_some_and(|p| progress.epochs_without_improvement >= p)
        {
            println!(
                "early stop: the test loss has not improved for {} epochs; best checkpoint {}",
                progress.epochs_without_improvement,
                best.display()
            );
            break;
        }
    }
    save_safetensors(run_dir.join("model.safetensors"), &state_dict(&model))
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "done in {:.1} s; weights in {}; a report of the run: nabla report {}",
        start.elapsed().as_secs_f64(),
        run_dir.join("model.safetensors").display(),
        run_dir.display()
    );
    Ok(0)
}
