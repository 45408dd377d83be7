//! `nabla train --model gpt-char` and `nabla generate`: a character-level
//! GPT trained with nanoGPT's recipe, and text streamed from it.
//!
//! The recipe: the text split 90/10 (training, validation); each step
//! takes `--batch-size` random windows of `--context` characters, the
//! targets shifted one on; AdamW (β = 0.9, 0.99) with weight decay 0.1 on
//! the 2-d weights only (embeddings and matrices, not biases and norms);
//! the learning rate warms up linearly over `--warmup-steps`, then decays
//! on a cosine to a tenth of `--lr` at the last step; gradients clipped to
//! norm 1 and summed over `--grad-accum` micro-batches. After every epoch
//! (`--steps-per-epoch` steps) the loss on the whole validation split, in
//! nats and bits per character; the weights, vocabulary and config are
//! written (atomically) to the run directory, with a checkpoint (weights,
//! both optimizers' moments, the step and the generator) that `--resume`
//! continues from, bit for bit; Ctrl-C or SIGTERM writes one and exits
//! with 130.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::{no_grad, set_global_generator_state, Generator, Tensor};
use nabla_data::{Bpe, TextCorpus};
use nabla_nn::loss::cross_entropy;
use nabla_nn::optim::{clip_grad_norm, Adam, Optimizer};
use nabla_nn::state_dict::{load_safetensors, load_state_dict, save_safetensors, state_dict};
use nabla_nn::{Gpt, GptConfig, Module, Positions};

use crate::args::{GenerateArgs, TrainArgs};
use nabla_train::{say, Checkpoint, RunDir, TrainState};

/// Text as token ids: one per character, or byte-level BPE.
enum Tokenizer {
    Chars(TextCorpus),
    Bpe(Bpe),
}

impl Tokenizer {
    /// Made from `text` (BPE learns its merges from `train_part` only).
    fn new(a: &TrainArgs, text: &str, train_part: &str) -> Result<Tokenizer> {
        Ok(match a.gpt.tokenizer.as_str() {
            "char" => Tokenizer::Chars(TextCorpus::new(text)),
            "bpe" => {
                if a.gpt.vocab_size < 257 {
                    bail!(
                        "--vocab-size {} must exceed the 256 bytes",
                        a.gpt.vocab_size
                    );
                }
                Tokenizer::Bpe(Bpe::train(train_part, a.gpt.vocab_size))
            }
            other => bail!("--tokenizer {other}: expected char or bpe"),
        })
    }

    fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Chars(c) => c.vocab.len(),
            Tokenizer::Bpe(b) => b.vocab_size(),
        }
    }

    /// The ids of `s`; None when a character is not in a char vocabulary.
    fn encode(&self, s: &str) -> Option<Vec<u32>> {
        match self {
            Tokenizer::Chars(c) => c.encode(s),
            Tokenizer::Bpe(b) => Some(b.encode(s)),
        }
    }

    fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        match self {
            Tokenizer::Chars(c) => c.decode(ids).into_bytes(),
            Tokenizer::Bpe(b) => b.decode_bytes(ids),
        }
    }

    fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }

    /// `vocab.txt` (the characters) or `tokenizer.txt` (the merges).
    fn save(&self, dir: &Path) -> Result<()> {
        let (name, text) = match self {
            Tokenizer::Chars(c) => ("vocab.txt", c.vocab.iter().collect::<String>()),
            Tokenizer::Bpe(b) => ("tokenizer.txt", b.to_text()),
        };
        nabla_data::write_atomically(&dir.join(name), text.as_bytes()).map_err(|e| anyhow!("{e}"))
    }

    fn load(a: &TrainArgs, dir: &Path) -> Result<Tokenizer> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "{}: cannot read (is {} a gpt-char run?)",
                    p.display(),
                    dir.display()
                )
            })
        };
        Ok(match a.gpt.tokenizer.as_str() {
            "bpe" => {
                let p = dir.join("tokenizer.txt");
                Tokenizer::Bpe(
                    Bpe::from_text(&read("tokenizer.txt")?, &p).map_err(|e| anyhow!("{e}"))?,
                )
            }
            _ => Tokenizer::Chars(TextCorpus {
                vocab: read("vocab.txt")?.chars().collect(),
                ids: Vec::new(),
            }),
        })
    }
}

/// The shipped text (Bierce's Devil's Dictionary), compiled in so an
/// installed `nabla` finds it anywhere.
const SHIPPED_TEXT: &str = include_str!("../../../data/text/devils-dictionary.txt");

/// The text to train on, `--data` or the shipped one, and its name.
fn read_text(a: &TrainArgs) -> Result<(String, String)> {
    match &a.data {
        Some(path) => Ok((
            std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the text", path.display()))?,
            path.display().to_string(),
        )),
        None => Ok((SHIPPED_TEXT.to_string(), "the shipped text".into())),
    }
}

fn config(a: &TrainArgs, vocab_size: usize) -> Result<GptConfig> {
    let g = &a.gpt;
    let positions = match g.positions.as_str() {
        "learned" => Positions::Learned,
        "sinusoidal" => Positions::Sinusoidal,
        "rotary" => Positions::Rotary,
        other => bail!("--positions {other}: expected learned, sinusoidal or rotary"),
    };
    if !g.width.is_multiple_of(g.heads) {
        bail!(
            "--width {} must be a multiple of --heads {}",
            g.width,
            g.heads
        );
    }
    Ok(GptConfig {
        vocab_size,
        block_size: g.context,
        n_layer: g.layers,
        n_head: g.heads,
        n_embd: g.width,
        dropout: a.dropout.unwrap_or(0.0),
        positions,
    })
}

/// nanoGPT's learning rate at step `t` of `total`: linear warm-up, then a
/// cosine from `lr` to `lr / 10`.
pub fn learning_rate(t: usize, total: usize, warmup: usize, lr: f32) -> f32 {
    let min = lr / 10.0;
    if t < warmup {
        return lr * (t + 1) as f32 / (warmup + 1) as f32;
    }
    if t >= total {
        return min;
    }
    let ratio = (t - warmup) as f32 / (total - warmup).max(1) as f32;
    min + 0.5 * (1.0 + (std::f32::consts::PI * ratio).cos()) * (lr - min)
}

/// `batch` random windows of `t + 1` ids from `ids`: inputs and targets
/// `[batch, t]`.
fn random_windows(ids: &[u32], batch: usize, t: usize) -> Result<(Tensor, Tensor)> {
    let starts = ids.len() - t - 1;
    let (mut x, mut y) = (Vec::with_capacity(batch * t), Vec::with_capacity(batch * t));
    for _ in 0..batch {
        // (the global generator: a checkpoint saves its state)
        let u = nabla_core::with_global_generator(|g| g.uniform());
        let s = ((u as f64 * starts as f64) as usize).min(starts - 1);
        x.extend(ids[s..s + t].iter().map(|&i| i as f32));
        y.extend(ids[s + 1..s + t + 1].iter().map(|&i| i as f32));
    }
    Ok((
        Tensor::from_vec(x, [batch, t])?,
        Tensor::from_vec(y, [batch * t])?,
    ))
}

/// The mean loss (nats per character) over the non-overlapping windows of
/// `ids`.
fn mean_loss(model: &Gpt, ids: &[u32], t: usize, batch: usize) -> Result<f64> {
    model.eval();
    let windows: Vec<usize> = (0..ids.len().saturating_sub(1) / t)
        .map(|w| w * t)
        .collect();
    let (mut total, mut count) = (0f64, 0usize);
    no_grad(|| -> Result<()> {
        for chunk in windows.chunks(batch) {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for &s in chunk {
                x.extend(ids[s..s + t].iter().map(|&i| i as f32));
                y.extend(ids[s + 1..s + t + 1].iter().map(|&i| i as f32));
            }
            let b = chunk.len();
            let logits = model.forward(&Tensor::from_vec(x, [b, t])?)?;
            let v = logits.shape()[2];
            let loss = cross_entropy(&logits.reshape([b * t, v])?, &Tensor::from_vec(y, [b * t])?)?;
            total += loss.item()? as f64 * (b * t) as f64;
            count += b * t;
        }
        Ok(())
    })?;
    model.train();
    Ok(total / count.max(1) as f64)
}

/// Trains a gpt-char model; see the module docs.
pub fn train(a: TrainArgs, run_dir: PathBuf, resume: bool) -> Result<i32> {
    let (text, source) = read_text(&a)?;
    // the first 90% of the characters train the tokenizer (BPE) and the model
    let cut = text
        .char_indices()
        .nth(text.chars().count() * 9 / 10)
        .map_or(text.len(), |c| c.0);
    // a resumed run keeps the tokenizer it was trained with
    let tokenizer = match resume {
        true => Tokenizer::load(&a, &run_dir)?,
        false => Tokenizer::new(&a, &text, &text[..cut])?,
    };
    let (train_ids, val_ids) = match &tokenizer {
        Tokenizer::Chars(c) => {
            // (a resumed run's vocabulary may lack what the file gained since)
            let ids = c.encode(&text).ok_or_else(|| {
                anyhow!(
                    "{source}: has characters the run's vocabulary lacks (was the text changed?)"
                )
            })?;
            let split = ids.len() * 9 / 10;
            (ids[..split].to_vec(), ids[split..].to_vec())
        }
        Tokenizer::Bpe(b) => (b.encode(&text[..cut]), b.encode(&text[cut..])),
    };
    let (train_ids, val_ids) = (&train_ids[..], &val_ids[..]);
    // characters per validation token, for bits per character
    let val_chars = tokenizer.decode(val_ids).chars().count().max(1);
    let cfg = config(&a, tokenizer.vocab_size())?;
    let (t, batch) = (cfg.block_size, a.batch_size());
    if train_ids.len() < t + 2 || val_ids.len() < t + 1 {
        bail!(
            "{source}: {} tokens are too few for a context of {t} (90% train, 10% validation)",
            train_ids.len() + val_ids.len()
        );
    }
    if batch == 0 || a.lr.is_nan() || a.lr <= 0.0 {
        bail!("--batch-size and --lr must be positive");
    }
    nabla_core::manual_seed(a.seed);
    let model = Gpt::new(cfg.clone())?;
    // weight decay on the 2-d weights only, as nanoGPT
    let (decay, rest): (Vec<Tensor>, Vec<Tensor>) =
        model.parameters().into_iter().partition(|p| p.rank() >= 2);
    let mut opts = [
        Adam::adamw(decay, a.lr).betas(0.9, 0.99).weight_decay(0.1),
        Adam::adamw(rest, a.lr).betas(0.9, 0.99).weight_decay(0.0),
    ];
    let params = model.parameters();
    let total = a.max_steps.unwrap_or(a.epochs * a.gpt.steps_per_epoch);
    let (run, resumed_from) = match resume {
        true => {
            let (run, checkpoint) = RunDir::resume(&run_dir)?;
            (run, Some(checkpoint))
        }
        false => {
            let run = RunDir::create(&run_dir, a.overwrite)?;
            let saved = TrainArgs {
                overwrite: false,
                ..a.clone()
            };
            run.write(&run.config_path(), toml::to_string(&saved)?.as_bytes())?;
            tokenizer.save(&run_dir)?;
            (run, None)
        }
    };
    say!(
        "{}: {} parameters; {} characters, {} tokens ({} distinct), {} for training",
        model.describe(),
        model.num_parameters(),
        text.chars().count(),
        train_ids.len() + val_ids.len(),
        tokenizer.vocab_size(),
        train_ids.len()
    );
    let mut metrics = String::from("epoch,step,train_loss,val_loss,val_bpc,train_seconds\n");
    let mut gen = Generator::new(a.seed);
    let (mut running, mut seen, mut epoch, mut clock) = (0f64, 0usize, 0usize, 0f64);
    let mut first = 0;
    let last = run.last_checkpoint();
    if let Some(c) = resumed_from {
        load_state_dict(&model, &c.model).map_err(|e| anyhow!("{}: {e}", last.display()))?;
        for (o, group) in opts.iter_mut().zip(["decay.", "rest."]) {
            let state: Vec<(String, Tensor)> = c
                .optim
                .iter()
                .filter_map(|(n, t)| n.strip_prefix(group).map(|k| (k.to_string(), t.clone())))
                .collect();
            o.load_state(&state)
                .map_err(|e| anyhow!("{}: {e}", last.display()))?;
        }
        set_global_generator_state(c.state.generator);
        (first, epoch) = (c.state.global_step, c.state.epoch);
        (running, seen) = c.state.epoch_loss;
        // the metrics of the epochs done, and their training time
        metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap_or(metrics);
        let rows = metrics.lines().skip(1).take(epoch);
        metrics = std::iter::once("epoch,step,train_loss,val_loss,val_bpc,train_seconds")
            .chain(rows)
            .map(|l| format!("{l}\n"))
            .collect();
        clock = metrics
            .lines()
            .last()
            .and_then(|l| l.rsplit(',').next()?.parse().ok())
            .unwrap_or(0.0);
        say!("resuming {} at step {first} of {total}", run_dir.display());
    }
    // Ctrl-C or SIGTERM: the step in progress ends, a checkpoint is written
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let save = |steps: usize, epoch: usize, loss: (f64, usize), opts: &[Adam; 2]| -> Result<()> {
        let state = TrainState {
            epoch,
            global_step: steps,
            generator: nabla_core::global_generator_state(),
            epoch_loss: loss,
            // the tables as they stand: a resumption keeps them whole
            metrics_len: run.len_of(&run.metrics_path())?,
            steps_len: run.len_of(&run.steps_path())?,
            ..Default::default()
        };
        let mut optim = Vec::new();
        for (o, group) in opts.iter().zip(["decay.", "rest."]) {
            optim.extend(
                o.state()
                    .into_iter()
                    .map(|(n, t)| (format!("{group}{n}"), t)),
            );
        }
        let checkpoint = Checkpoint {
            model: state_dict(&model),
            optim,
            state,
        };
        Ok(run.commit(&checkpoint, false)?)
    };
    let started = Instant::now();
    for step in first..total {
        if stop.load(Ordering::SeqCst) {
            save(step, epoch, (running, seen), &opts)?;
            say!(
                "interrupted at step {step}: checkpoint written; continue with nabla train --resume {}",
                run_dir.display()
            );
            return Ok(crate::train::INTERRUPTED);
        }
        let lr = learning_rate(step, total, a.gpt.warmup_steps, a.lr);
        opts.iter_mut().for_each(|o| o.set_lr(lr));
        let tick = Instant::now();
        for _ in 0..a.gpt.grad_accum {
            let (x, y) = random_windows(train_ids, batch, t)?;
            let logits = model.forward(&x)?;
            let v = logits.shape()[2];
            let loss = cross_entropy(&logits.reshape([batch * t, v])?, &y)?;
            let value = loss.item()?;
            if !value.is_finite() {
                bail!("the loss diverged ({value}) at step {step}: try a lower --lr");
            }
            running += value as f64;
            seen += 1;
            loss.mul_scalar(1.0 / a.gpt.grad_accum as f32)?.backward()?;
        }
        clip_grad_norm(&params, 1.0, 2.0)?;
        for o in opts.iter_mut() {
            o.step()?;
            o.zero_grad();
        }
        clock += tick.elapsed().as_secs_f64();
        if (step + 1) % a.log_interval.max(1) == 0 {
            say!(
                "step {:>5}/{total}  loss {:.4}  lr {lr:.2e}",
                step + 1,
                running / seen as f64
            );
        }
        if (step + 1) % a.gpt.steps_per_epoch == 0 || step + 1 == total {
            epoch += 1;
            let val = mean_loss(&model, val_ids, t, 64)?;
            let train_loss = running / seen.max(1) as f64;
            let bpc = val * val_ids.len() as f64 / val_chars as f64 / std::f64::consts::LN_2;
            say!(
                "Epoch {epoch} (step {}): train loss {train_loss:.4}, validation loss {val:.4} nats ({bpc:.3} bits per character, perplexity {:.2} a token), {clock:.1} s training",
                step + 1,
                val.exp()
            );
            metrics += &format!(
                "{epoch},{},{train_loss:.6},{val:.6},{bpc:.6},{clock:.3}\n",
                step + 1
            );
            run.write(&run.metrics_path(), metrics.as_bytes())?;
            save_safetensors(run_dir.join("model.safetensors"), &state_dict(&model))
                .map_err(|e| anyhow!("{e}"))?;
            (running, seen) = (0.0, 0);
            save(step + 1, epoch, (running, seen), &opts)?;
        }
    }
    let prompt = tokenizer
        .encode("\n")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| vec![0]);
    let sample = model.generate(&prompt, 200, 0.8, None, true, &mut gen, |_| {})?;
    say!("Sample:\n{}", tokenizer.decode(&sample));
    say!(
        "Saved {} ({:.1} s in all). Continue a text: nabla generate {} --prompt \"...\"",
        run_dir.join("model.safetensors").display(),
        started.elapsed().as_secs_f64(),
        run_dir.display()
    );
    Ok(0)
}

/// `nabla generate RUN`: streams `--max-new-tokens` characters continuing
/// `--prompt`, then the speed on stderr.
pub fn generate(g: GenerateArgs) -> Result<()> {
    let read = |name: &str| {
        let p = g.run.join(name);
        std::fs::read_to_string(&p).with_context(|| {
            format!(
                "{}: cannot read (is {} a gpt-char run?)",
                p.display(),
                g.run.display()
            )
        })
    };
    let a: TrainArgs = toml::from_str(&read("config.toml")?)
        .map_err(|e| anyhow!("{}: invalid config: {}", g.run.display(), e.message()))?;
    if !a.model.starts_with("gpt") {
        bail!(
            "{}: a {} run, not a language model",
            g.run.display(),
            a.model
        );
    }
    let tokenizer = Tokenizer::load(&a, &g.run)?;
    let model = Gpt::new(config(&a, tokenizer.vocab_size())?)?;
    let weights = load_safetensors(g.run.join("model.safetensors")).map_err(|e| anyhow!("{e}"))?;
    load_state_dict(&model, &weights).map_err(|e| anyhow!("{}: {e}", g.run.display()))?;
    let prompt_text = g.prompt.replace("\\n", "\n");
    let prompt = tokenizer
        .encode(&prompt_text)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "--prompt {:?}: every character must occur in the training text",
                g.prompt
            )
        })?;
    let mut gen = Generator::new(g.seed);
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt_text}")?;
    let started = Instant::now();
    let mut failed = None;
    model.generate(
        &prompt,
        g.max_new_tokens,
        g.temperature,
        g.top_k,
        !g.no_cache,
        &mut gen,
        |id| {
            // a token's bytes as they come (a character may span two tokens)
            if let Err(e) = out
                .write_all(&tokenizer.decode_bytes(&[id]))
                .and_then(|_| out.flush())
            {
                failed.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    writeln!(out)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} tokens in {secs:.2} s: {:.0} tokens/s ({})",
        g.max_new_tokens,
        g.max_new_tokens as f64 / secs.max(1e-9),
        if g.no_cache {
            "whole context recomputed"
        } else {
            "KV cache"
        }
    );
    Ok(())
}
