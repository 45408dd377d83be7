//! `nabla train --model gpt-char` and `nabla generate`: a character-level
//! GPT trained with nanoGPT's recipe, and text streamed from it.
//!
//! The recipe: the text split 90/10 (training, validation); each step
//! takes `--batch-size` random windows of `--context` characters, the
//! targets shifted one on; AdamW (β = 0.9, 0.99) with weight decay 0.1 on
//! the 2-d weights only (embeddings and matrices, not biases and norms);
//! the learning rate warms up linearly over `--warmup-steps`, then decays
//! on a cosine to a tenth of `--lr` at the last step; gradients clipped to
//! norm 1 (`--clip-grad-norm`) and summed over `--grad-accum` batches.
//! After every epoch (`--steps-per-epoch` steps) the loss on the whole
//! validation split, in nats and bits per character.
//!
//! All of it is a [`Trainer`] with the library's parts, so the run
//! directory, checkpoints, `--resume` (bit for bit), Ctrl-C (a checkpoint,
//! exit 130) and the NaN guard are the image models'; only the tokenizer,
//! the console lines and the closing sample are the language model's own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::{Generator, Tensor};
use nabla_data::{Bpe, TextCorpus};
use nabla_nn::optim::{Adam, ParamGroups};
use nabla_nn::scheduler::Schedule;
use nabla_nn::state_dict::{load_safetensors, load_state_dict};
use nabla_nn::{Gpt, GptConfig, Parameters, Positions};
use nabla_train::{
    say, token_cross_entropy_loss, Callback, Ctx, EpochEnd, Flow, Outcome, RandomWindows, RunDir,
    StepEnd, TrainError, Trainer, Windows,
};

use crate::args::{GenerateArgs, TrainArgs};

/// Text as token ids: one per character, or byte-level BPE.
pub enum Tokenizer {
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

    /// A new line's ids, where a sample starts (the first token when the
    /// text has no new line).
    fn new_line(&self) -> Vec<u32> {
        self.encode("\n")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec![0])
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

/// The console lines of a language model's run: every `log_interval`
/// steps the epoch's running loss and the step's learning rate; after each
/// epoch the validation loss in nats, bits per character and perplexity.
struct LmLog {
    log_interval: usize,
    total: usize,
    /// Validation tokens per character: bits per character from nats per token.
    tokens_per_char: f64,
}

impl Callback for LmLog {
    fn name(&self) -> &str {
        "lm_log"
    }
    fn on_step_end(&mut self, step: &StepEnd, ctx: &mut Ctx) -> nabla_train::Result<Flow> {
        if step.global_step.is_multiple_of(self.log_interval) {
            let (sum, n) = ctx.state.epoch_loss;
            say!(
                "step {:>5}/{}  loss {:.4}  lr {:.2e}",
                step.global_step,
                self.total,
                sum / n.max(1) as f64,
                ctx.optimizer.lr()
            );
        }
        Ok(Flow::Continue)
    }
    fn on_epoch_end(&mut self, end: &EpochEnd, ctx: &mut Ctx) -> nabla_train::Result<Flow> {
        if let Some(v) = end.validation {
            let val = v.mean_loss() as f64;
            let bpc = val * self.tokens_per_char / std::f64::consts::LN_2;
            say!(
                "Epoch {} (step {}): train loss {:.4}, validation loss {val:.4} nats ({bpc:.3} bits per character, perplexity {:.2} a token), {:.1} s training",
                end.epoch,
                ctx.state.global_step,
                end.train_loss,
                val.exp(),
                end.train_seconds
            );
        }
        Ok(Flow::Continue)
    }
}

/// Trains a gpt-char model on the [`Trainer`]; see the module docs.
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
    let tokens_per_char =
        val_ids.len() as f64 / tokenizer.decode(&val_ids).chars().count().max(1) as f64;
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
    if a.epochs == 0 || a.max_steps == Some(0) {
        return Err(crate::common::usage(
            "--epochs and --max-steps must be positive",
        ));
    }
    let clip = a.clip_grad_norm.unwrap_or(1.0);
    if !(clip > 0.0 && clip.is_finite()) {
        return Err(crate::common::usage(format!(
            "--clip-grad-norm must be a positive number, got {clip}"
        )));
    }
    let counts = format!(
        "{} characters, {} tokens ({} distinct), {} for training",
        text.chars().count(),
        train_ids.len() + val_ids.len(),
        tokenizer.vocab_size(),
        train_ids.len()
    );
    let accum = a.gpt.grad_accum;
    let train_set = RandomWindows::new(train_ids, batch, t, a.gpt.steps_per_epoch * accum)?;
    let val_set = Windows::new(val_ids, 64, t)?;

    nabla_core::manual_seed(a.seed);
    let model = Gpt::new(cfg)?;
    // weight decay on the 2-d weights only (embeddings and matrices), as nanoGPT
    let (decay, rest): (Vec<Tensor>, Vec<Tensor>) =
        model.parameters().into_iter().partition(|p| p.rank() >= 2);
    let adamw = ParamGroups::new(vec![
        (
            "decay",
            Box::new(Adam::adamw(decay, a.lr).betas(0.9, 0.99).weight_decay(0.1)),
        ),
        (
            "rest",
            Box::new(Adam::adamw(rest, a.lr).betas(0.9, 0.99).weight_decay(0.0)),
        ),
    ]);
    let total = a.max_steps.unwrap_or(a.epochs * a.gpt.steps_per_epoch);
    let log_interval = a.log_interval.max(1);
    let mut trainer = Trainer::new(&model, adamw)
        .without("console")
        .loss(token_cross_entropy_loss())
        .steps(total)
        .grad_accum(accum)
        .clip_grad_norm(Some(clip))
        .precision(a.precision.into())
        .log_every(log_interval)
        .interrupt_on(crate::train::interrupt_flag())
        // (before the schedule: the lines show the rate of the step logged)
        .callback(LmLog {
            log_interval,
            total,
            tokens_per_char,
        })
        .schedule(
            Schedule::WarmupCosine {
                warmup: a.gpt.warmup_steps,
                total,
                final_div_factor: 10.0,
            },
            true,
        );
    say!(
        "{}: {} parameters; {counts}",
        model.describe(),
        model.num_parameters()
    );
    if resume {
        let (run, checkpoint) = RunDir::resume(&run_dir)?;
        if !checkpoint.state.callbacks.contains_key("lr_schedule") {
            bail!(
                "{}: written by an older nabla, whose gpt-char runs cannot be resumed; train anew with --overwrite",
                run.last_checkpoint().display()
            );
        }
        crate::train::write_config(&run, &a)?;
        trainer = trainer.resume((run, checkpoint))?;
        say!(
            "resuming {} at step {} of {total}",
            run_dir.display(),
            trainer.state().global_step
        );
    } else {
        let run = RunDir::create(&run_dir, a.overwrite)?;
        crate::train::write_config(&run, &a)?;
        tokenizer.save(&run_dir)?;
        trainer = trainer.run_dir(run);
    }
    let started = Instant::now();
    let outcome = trainer
        .fit(&train_set, Some(&val_set))
        .map_err(|e| match e {
            TrainError::Diverged { .. } => anyhow!("{e} (try a lower --lr)"),
            e => e.into(),
        })?;
    if outcome == Outcome::Interrupted {
        say!(
            "interrupted at step {}: checkpoint written; continue with nabla train --resume {}",
            trainer.state().global_step,
            run_dir.display()
        );
        return Ok(crate::train::INTERRUPTED);
    }
    let prompt = tokenizer.new_line();
    let mut gen = Generator::new(a.seed);
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

/// A language model's run directory: its settings, tokenizer and trained model.
pub fn load_run(dir: &Path) -> Result<(TrainArgs, Tokenizer, Gpt)> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read (is {} a gpt-char run?)",
            path.display(),
            dir.display()
        )
    })?;
    let a: TrainArgs = toml::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid config: {}", dir.display(), e.message()))?;
    if !is_language_model(&a.model) {
        bail!("{}: a {} run, not a language model", dir.display(), a.model);
    }
    let tokenizer = Tokenizer::load(&a, dir)?;
    let model = Gpt::new(config(&a, tokenizer.vocab_size())?)?;
    let weights = load_safetensors(dir.join("model.safetensors")).map_err(|e| anyhow!("{e}"))?;
    load_state_dict(&model, &weights).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    Ok((a, tokenizer, model))
}

/// Whether `--model` names a language model (trained by this module).
pub fn is_language_model(model: &str) -> bool {
    model.starts_with("gpt")
}

/// `nabla report` of a language model: its size and a sample of
/// `tokens` tokens continuing a new line (temperature 0.8, seed 0).
pub fn report_sections(dir: &Path, tokens: usize) -> Result<(String, String)> {
    let (_, tokenizer, model) = load_run(dir)?;
    let prompt = tokenizer.new_line();
    let sample = model.generate(
        &prompt,
        tokens,
        0.8,
        None,
        true,
        &mut Generator::new(0),
        |_| {},
    )?;
    Ok((
        format!(
            "{}: {} parameters",
            model.describe(),
            model.num_parameters()
        ),
        tokenizer.decode(&sample),
    ))
}

/// `nabla generate RUN`: streams `--max-new-tokens` characters continuing
/// `--prompt`, then the speed on stderr.
pub fn generate(g: GenerateArgs) -> Result<()> {
    let (_, tokenizer, model) = load_run(&g.run)?;
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
