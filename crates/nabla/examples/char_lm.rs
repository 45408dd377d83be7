//! A character-level language model on Ambrose Bierce's "The Devil's
//! Dictionary" (public domain, shipped in data/text): Embedding → LSTM (or
//! GRU) → Linear, trained with Adam on 128-character windows, the last 10%
//! of the text held out. After each epoch it prints the training and
//! validation loss (nats and bits per character) and a sample; at the end,
//! samples at three temperatures, and the weights are saved.
//!
//!     cargo run --release --example char_lm [-- --epochs 10 --kind gru --hidden 256 --text FILE --out DIR]
//!
//! With `--sample DIR` it loads what a run saved there (model.safetensors,
//! vocab.txt) and only writes text: `--prompt TEXT --length N --temperature T`.

use std::path::PathBuf;
use std::time::Instant;

use nabla::data::{DataLoader, TextCorpus};
use nabla::nn::rnn::RnnKind;
use nabla::nn::state_dict::{load_safetensors, load_state_dict, save_safetensors, state_dict};
use nabla::nn::CharLm;
use nabla::optim::{clip_grad_norm, Adam, Optimizer};
use nabla::prelude::*;
use nabla::Generator;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

pub struct Options {
    epochs: usize,
    kind: RnnKind,
    hidden: usize,
    seq_len: usize,
    batch: usize,
    lr: f32,
    seed: u64,
    text: PathBuf,
    out: PathBuf,
    sample: Option<PathBuf>,
    prompt: String,
    length: usize,
    temperature: f32,
}

/// The options from the command line's arguments (after the program's name).
pub fn options(args: impl IntoIterator<Item = String>) -> AnyResult<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut o = Options {
        epochs: 10,
        kind: RnnKind::Lstm,
        hidden: 256,
        seq_len: 128,
        batch: 32,
        lr: 3e-3,
        seed: 1,
        text: root.join("data/text/devils-dictionary.txt"),
        out: PathBuf::from("runs/char-lm"),
        sample: None,
        prompt: "\n".into(),
        length: 400,
        temperature: 0.8,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--epochs" => o.epochs = value()?.parse()?,
            "--hidden" => o.hidden = value()?.parse()?,
            "--seq-len" => o.seq_len = value()?.parse()?,
            "--batch-size" => o.batch = value()?.parse()?,
            "--lr" => o.lr = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "--text" => o.text = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--sample" => o.sample = Some(value()?.into()),
            "--prompt" => o.prompt = value()?,
            "--length" => o.length = value()?.parse()?,
            "--temperature" => o.temperature = value()?.parse()?,
            "--kind" => {
                o.kind = match value()?.as_str() {
                    "lstm" => RnnKind::Lstm,
                    "gru" => RnnKind::Gru,
                    other => return Err(format!("--kind {other}: expected lstm or gru").into()),
                }
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(o)
}

/// Mean loss per character over a data set, without gradients.
fn mean_loss(lm: &CharLm, loader: &DataLoader<nabla::data::CharSequences>) -> AnyResult<f64> {
    lm.eval();
    let (mut sum, mut n) = (0f64, 0usize);
    no_grad(|| -> AnyResult<()> {
        for b in loader.epoch(0) {
            let b = b?;
            let count = b.targets.numel();
            sum += lm.loss(&b.inputs, &b.targets)?.item()? as f64 * count as f64;
            n += count;
        }
        Ok(())
    })?;
    lm.train();
    Ok(sum / n.max(1) as f64)
}

/// Loads a saved model (its shape read off the weights) and writes text.
fn sample_only(o: &Options, dir: &std::path::Path) -> AnyResult<()> {
    let vocab: Vec<char> = std::fs::read_to_string(dir.join("vocab.txt"))
        .map_err(|e| format!("{}: {e}", dir.join("vocab.txt").display()))?
        .chars()
        .collect();
    let weights = load_safetensors(dir.join("model.safetensors"))?;
    let shape = |name: &str| -> AnyResult<Vec<usize>> {
        let t = weights.iter().find(|(n, _)| n == name);
        Ok(t.ok_or(format!("{}: no tensor {name}", dir.display()))?
            .1
            .shape()
            .to_vec())
    };
    let (emb, whh) = (shape("embedding.weight")?, shape("rnn.weight_hh_l0")?);
    if emb[0] != vocab.len() {
        return Err(format!(
            "{}: the model has {} characters, vocab.txt {}",
            dir.display(),
            emb[0],
            vocab.len()
        )
        .into());
    }
    let (hidden, gates) = (whh[1], whh[0] / whh[1]);
    let kind = if gates == 4 {
        RnnKind::Lstm
    } else {
        RnnKind::Gru
    };
    let layers = (0..)
        .take_while(|l| shape(&format!("rnn.weight_hh_l{l}")).is_ok())
        .count();
    let lm = CharLm::new(kind, emb[0], emb[1], hidden, layers);
    load_state_dict(&lm, &weights)?;
    let prompt: Vec<u32> = o
        .prompt
        .chars()
        .map(|c| vocab.iter().position(|&v| v == c).map(|i| i as u32))
        .collect::<Option<_>>()
        .ok_or("the prompt has a character the model never saw")?;
    let mut gen = Generator::new(o.seed);
    let ids = lm.sample(&prompt, o.length, o.temperature, &mut gen)?;
    let text: String = ids.iter().map(|&i| vocab[i as usize]).collect();
    println!("{}{text}", o.prompt);
    Ok(())
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() -> AnyResult<()> {
    run(&options(std::env::args().skip(1))?)
}

/// Trains (or samples, with `--sample`) as the options say.
pub fn run(o: &Options) -> AnyResult<()> {
    manual_seed(o.seed);
    if let Some(dir) = &o.sample {
        return sample_only(o, dir);
    }
    let corpus = TextCorpus::load(&o.text)?;
    let split = corpus.ids.len() * 9 / 10;
    let train = corpus.sequences(o.seq_len, 0..split);
    let val = corpus.sequences(o.seq_len, split..corpus.ids.len());
    println!(
        "{}: {} characters, vocabulary {}; {} training and {} validation windows of {}",
        o.text.display(),
        corpus.ids.len(),
        corpus.vocab.len(),
        nabla::data::Dataset::len(&train),
        nabla::data::Dataset::len(&val),
        o.seq_len
    );
    let lm = CharLm::new(o.kind, corpus.vocab.len(), 64, o.hidden, 1);
    println!("{} ({} parameters)", lm.describe(), lm.num_parameters());
    let train_loader = DataLoader::new(train, o.batch).seed(o.seed);
    let val_loader = DataLoader::new(val, 64).shuffle(false);
    let mut opt = Adam::new(lm.parameters(), o.lr);
    let mut gen = Generator::new(o.seed);
    let prompt = corpus.encode("\n").ok_or("the text has no newline")?;
    let start = Instant::now();
    for epoch in 1..=o.epochs {
        let t0 = Instant::now();
        let (mut sum, mut steps) = (0f64, 0usize);
        for b in train_loader.epoch(epoch) {
            let b = b?;
            opt.zero_grad();
            let loss = lm.loss(&b.inputs, &b.targets)?;
            let value = loss.item()?;
            if !value.is_finite() {
                return Err(format!("the loss diverged ({value}) at epoch {epoch}").into());
            }
            loss.backward()?;
            clip_grad_norm(opt.params(), 5.0, 2.0)?;
            opt.step()?;
            sum += value as f64;
            steps += 1;
        }
        let val_loss = mean_loss(&lm, &val_loader)?;
        println!(
            "epoch {epoch:>2}  train {:.3}  validation {val_loss:.3} nats/char ({:.2} bits)  {:.1} s",
            sum / steps.max(1) as f64,
            val_loss / std::f64::consts::LN_2,
            t0.elapsed().as_secs_f64()
        );
        let text = corpus.decode(&lm.sample(&prompt, 160, 0.8, &mut gen)?);
        println!("  sample: {:?}", text);
    }
    println!("trained in {:.1} s", start.elapsed().as_secs_f64());
    for t in [0.5, 0.8, 1.0] {
        let text = corpus.decode(&lm.sample(&prompt, 400, t, &mut gen)?);
        println!("\n--- temperature {t} ---\n{text}");
    }
    std::fs::create_dir_all(&o.out)?;
    let weights = o.out.join("model.safetensors");
    save_safetensors(&weights, &state_dict(&lm))?;
    let vocab: String = corpus.vocab.iter().collect();
    nabla::io::write_atomically(&o.out.join("vocab.txt"), vocab.as_bytes())?;
    println!("\nweights in {}", weights.display());
    Ok(())
}
