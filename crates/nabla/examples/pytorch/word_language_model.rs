//! PyTorch's `word_language_model` example (github.com/pytorch/examples,
//! `word_language_model/`), ported: a word-level language model, either an
//! RNN (`--model RNN_TANH | RNN_RELU | LSTM | GRU`: Embedding → dropout →
//! a multi-layer recurrent net with dropout between layers → dropout →
//! Linear, weights optionally tied) or a Transformer (`--model
//! Transformer`: Embedding·√d → sinusoidal positions → dropout → a causal
//! TransformerEncoder with a final LayerNorm → Linear); log-softmax and NLL
//! loss; the corpus batchified into columns, truncated backpropagation
//! every `--bptt` words (the recurrent state carried over, detached);
//! plain SGD at lr 20 with gradients clipped to 0.25, the rate divided by 4
//! when the validation loss stops improving; the best model kept and
//! tested at the end. The same flags, defaults and printed lines.
//!
//! With `--words N` (and `--temperature T`) it then writes N words, as the
//! original's `generate.py` does with the saved model.
//!
//! Its data: `--data DIR` with `train.txt`, `valid.txt`, `test.txt` (the
//! original's wikitext-2 layout); by default the shipped Devil's Dictionary,
//! its lines cut 80/10/10.
//!
//!     cargo run --release --example pytorch_word_language_model -- --epochs 6
//!     cargo run --release --example pytorch_word_language_model -- --model Transformer --lr 5 --epochs 6

use std::collections::HashMap;
use std::time::Instant;

use nabla::nn::loss::{nll_loss, Reduction};
use nabla::nn::positional::sinusoidal;
use nabla::nn::rnn::{RnnConfig, RnnKind};
use nabla::nn::{
    init, prefixed, Dropout, Embedding, Linear, Masks, Recurrent, TransformerConfig,
    TransformerEncoder,
};
use nabla::optim::{clip_grad_norm, Optimizer, Sgd};
use nabla::prelude::*;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The original's flags and defaults.
pub struct Args {
    data: Option<String>,
    model: String,
    emsize: usize,
    nhid: usize,
    nlayers: usize,
    lr: f32,
    clip: f32,
    epochs: usize,
    batch_size: usize,
    bptt: usize,
    dropout: f32,
    tied: bool,
    seed: u64,
    log_interval: usize,
    nhead: usize,
    dry_run: bool,
    /// generate.py's `--words` and `--temperature`: words written after
    /// the test (0: none)
    words: usize,
    temperature: f32,
}

/// Parses the original's flags (`--model --emsize --nhid --nlayers --lr
/// --clip --epochs --batch_size --bptt --dropout --tied --seed
/// --log-interval --nhead --dry-run`, and `--data DIR`).
pub fn parse(args: &[String]) -> AnyResult<Args> {
    let mut a = Args {
        data: None,
        model: "LSTM".into(),
        emsize: 200,
        nhid: 200,
        nlayers: 2,
        lr: 20.0,
        clip: 0.25,
        epochs: 40,
        batch_size: 20,
        bptt: 35,
        dropout: 0.2,
        tied: false,
        seed: 1111,
        log_interval: 200,
        nhead: 2,
        dry_run: false,
        words: 0,
        temperature: 1.0,
    };
    let mut it = args.iter().cloned();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--tied" => a.tied = true,
            "--dry-run" => a.dry_run = true,
            _ => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
                match flag.as_str() {
                    "--data" => a.data = Some(value.clone()),
                    "--model" => a.model = value.clone(),
                    "--emsize" => a.emsize = value.parse().map_err(|e| bad(&e))?,
                    "--nhid" => a.nhid = value.parse().map_err(|e| bad(&e))?,
                    "--nlayers" => a.nlayers = value.parse().map_err(|e| bad(&e))?,
                    "--lr" => a.lr = value.parse().map_err(|e| bad(&e))?,
                    "--clip" => a.clip = value.parse().map_err(|e| bad(&e))?,
                    "--epochs" => a.epochs = value.parse().map_err(|e| bad(&e))?,
                    "--batch_size" | "--batch-size" => {
                        a.batch_size = value.parse().map_err(|e| bad(&e))?
                    }
                    "--bptt" => a.bptt = value.parse().map_err(|e| bad(&e))?,
                    "--dropout" => a.dropout = value.parse().map_err(|e| bad(&e))?,
                    "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
                    "--log-interval" => a.log_interval = value.parse().map_err(|e| bad(&e))?,
                    "--nhead" => a.nhead = value.parse().map_err(|e| bad(&e))?,
                    "--words" => a.words = value.parse().map_err(|e| bad(&e))?,
                    "--temperature" => a.temperature = value.parse().map_err(|e| bad(&e))?,
                    other => return Err(format!("unknown flag {other}").into()),
                }
            }
        }
    }
    if !["RNN_TANH", "RNN_RELU", "LSTM", "GRU", "Transformer"].contains(&a.model.as_str()) {
        return Err(format!(
            "--model {}: expected RNN_TANH, RNN_RELU, LSTM, GRU or Transformer",
            a.model
        )
        .into());
    }
    if a.temperature.is_nan() || a.temperature <= 1e-3 {
        return Err(format!(
            "--temperature {} has to be greater or equal 1e-3",
            a.temperature
        )
        .into());
    }
    if a.batch_size == 0 || a.bptt == 0 || a.nlayers == 0 {
        return Err("--batch_size, --bptt and --nlayers must be at least 1".into());
    }
    Ok(a)
}

/// `data.py`'s `Corpus`: every line's words and `<eos>`, one dictionary.
struct Corpus {
    words: Vec<String>,
    train: Vec<usize>,
    valid: Vec<usize>,
    test: Vec<usize>,
}

impl Corpus {
    fn new(parts: [String; 3]) -> Corpus {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut words = Vec::new();
        let mut tokenize = |text: &str| -> Vec<usize> {
            let mut ids = Vec::new();
            for line in text.lines() {
                for w in line.split_whitespace().chain(["<eos>"]) {
                    let id = *index.entry(w.to_string()).or_insert_with(|| {
                        words.push(w.to_string());
                        words.len() - 1
                    });
                    ids.push(id);
                }
            }
            ids
        };
        let [train, valid, test] = parts.map(|p| tokenize(&p));
        Corpus {
            words,
            train,
            valid,
            test,
        }
    }

    fn load(a: &Args) -> AnyResult<Corpus> {
        let read = |p: String| std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"));
        Ok(match &a.data {
            Some(dir) => Corpus::new([
                read(format!("{dir}/train.txt"))?,
                read(format!("{dir}/valid.txt"))?,
                read(format!("{dir}/test.txt"))?,
            ]),
            None => {
                let path = format!(
                    "{}/../../data/text/devils-dictionary.txt",
                    env!("CARGO_MANIFEST_DIR")
                );
                let text = read(path)?;
                let lines: Vec<&str> = text.lines().collect();
                let (a, b) = (lines.len() * 8 / 10, lines.len() * 9 / 10);
                Corpus::new([
                    lines[..a].join("\n"),
                    lines[a..b].join("\n"),
                    lines[b..].join("\n"),
                ])
            }
        })
    }
}

/// `batchify`: the ids cut into `bsz` columns, `[rows, bsz]`; a split too
/// short for two rows (a window and its next words) is an error.
fn batchify(data: &[usize], bsz: usize, what: &str) -> AnyResult<Tensor> {
    let rows = data.len() / bsz;
    if rows < 2 {
        return Err(format!(
            "the {what} split has {} words: too few for {bsz} columns of 2",
            data.len()
        )
        .into());
    }
    let v: Vec<i64> = (0..rows * bsz)
        .map(|k| data[(k % bsz) * rows + k / bsz] as i64)
        .collect();
    Ok(Tensor::from_vec_i64(v, [rows, bsz])?)
}

/// `get_batch`: rows `i..i + seq_len` and their next words, flattened.
fn get_batch(source: &Tensor, i: usize, bptt: usize) -> AnyResult<(Tensor, Tensor)> {
    let seq_len = bptt.min(source.shape()[0] - 1 - i);
    let data = source.narrow(0, i, seq_len)?;
    let target = source.narrow(0, i + 1, seq_len)?.reshape([-1])?;
    Ok((data, target))
}

/// A recurrent model's state: h, and c for an LSTM.
type State = Option<(Tensor, Option<Tensor>)>;

/// `RNNModel` and `TransformerModel` of `model.py`.
enum Net {
    Rnn {
        drop: Dropout,
        encoder: Embedding,
        rnn: Recurrent,
        decoder: Linear,
        lstm: bool,
    },
    Transformer {
        input_emb: Embedding,
        pos_drop: Dropout,
        encoder: TransformerEncoder,
        decoder: Linear,
    },
}

impl Net {
    fn new(a: &Args, ntoken: usize) -> AnyResult<Net> {
        let uniform = |shape: &[usize]| init::uniform(shape, 0.1).requires_grad_(true);
        let decoder = |inputs: usize| Linear {
            weight: uniform(&[ntoken, inputs]),
            bias: Some(Tensor::zeros([ntoken]).requires_grad_(true)),
        };
        let embedding = Embedding {
            weight: uniform(&[ntoken, a.emsize]),
            padding_idx: None,
        };
        if a.model == "Transformer" {
            // nn.Transformer's defaults: dropout 0.1 in the layers, a final norm
            let c = TransformerConfig::new(a.emsize, a.nhead).dim_feedforward(a.nhid);
            return Ok(Net::Transformer {
                input_emb: embedding,
                pos_drop: Dropout::new(a.dropout),
                encoder: TransformerEncoder::new(&c, a.nlayers, true)?,
                decoder: decoder(a.emsize),
            });
        }
        let kind = match a.model.as_str() {
            "LSTM" => RnnKind::Lstm,
            "GRU" => RnnKind::Gru,
            "RNN_RELU" => RnnKind::RnnRelu,
            _ => RnnKind::RnnTanh,
        };
        let cfg = RnnConfig {
            num_layers: a.nlayers,
            dropout: a.dropout,
            ..RnnConfig::new(a.emsize, a.nhid)
        };
        let mut dec = decoder(a.nhid);
        if a.tied {
            if a.nhid != a.emsize {
                return Err("When using the tied flag, nhid must be equal to emsize".into());
            }
            dec.weight = embedding.weight.clone();
        }
        Ok(Net::Rnn {
            drop: Dropout::new(a.dropout),
            encoder: embedding,
            rnn: Recurrent::new(kind, cfg),
            decoder: dec,
            lstm: kind == RnnKind::Lstm,
        })
    }

    /// Log-probabilities `[T·N, V]` of ids `[T, N]`, and the recurrent
    /// state after them (RNN models only).
    fn forward(
        &self,
        input: &Tensor,
        hidden: Option<(Tensor, Option<Tensor>)>,
    ) -> AnyResult<(Tensor, State)> {
        match self {
            Net::Rnn {
                drop,
                encoder,
                rnn,
                decoder,
                lstm,
            } => {
                let emb = drop.forward(&encoder.forward(input)?)?;
                let (h, c) = match &hidden {
                    Some((h, c)) => (Some(h), c.as_ref()),
                    None => (None, None),
                };
                let out = rnn.run(&emb, h, c, None)?;
                let output = drop.forward(&out.output)?;
                let v = decoder.out_features();
                let decoded = decoder.forward(&output)?.reshape([-1, v as i32])?;
                let state = (out.h_n, if *lstm { out.c_n } else { None });
                Ok((decoded.log_softmax(1)?, Some(state)))
            }
            Net::Transformer {
                input_emb,
                pos_drop,
                encoder,
                decoder,
            } => {
                let (t, d) = (input.shape()[0], input_emb.weight.shape()[1]);
                let src = input_emb.forward(input)?.mul_scalar((d as f32).sqrt())?;
                let pe = sinusoidal(t, d, input.device())?.unsqueeze(1)?;
                let src = pos_drop.forward(&src.add(&pe)?)?;
                let output = encoder.forward_with(&src, &Masks::causal())?;
                let v = decoder.out_features();
                let output = decoder.forward(&output)?.log_softmax(-1)?;
                Ok((output.reshape([t * input.shape()[1], v])?, None))
            }
        }
    }

    fn init_hidden(&self, a: &Args, bsz: usize) -> State {
        match self {
            Net::Rnn { lstm, .. } => {
                let z = || Tensor::zeros([a.nlayers, bsz, a.nhid]);
                Some((z(), lstm.then(z)))
            }
            Net::Transformer { .. } => None,
        }
    }
}

impl Parameters for Net {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        match self {
            Net::Rnn {
                encoder,
                rnn,
                decoder,
                ..
            } => {
                let mut p = prefixed("encoder", encoder.named_parameters());
                p.extend(prefixed("rnn", rnn.named_parameters()));
                p.extend(prefixed("decoder", decoder.named_parameters()));
                p
            }
            Net::Transformer {
                input_emb,
                encoder,
                decoder,
                ..
            } => {
                let mut p = prefixed("input_emb", input_emb.named_parameters());
                p.extend(prefixed("encoder", encoder.named_parameters()));
                p.extend(prefixed("decoder", decoder.named_parameters()));
                p
            }
        }
    }

    fn set_training(&self, on: bool) {
        match self {
            Net::Rnn { drop, rnn, .. } => {
                drop.set_training(on);
                rnn.set_training(on);
            }
            Net::Transformer {
                pos_drop, encoder, ..
            } => {
                pos_drop.set_training(on);
                encoder.set_training(on);
            }
        }
    }
}

/// `repackage_hidden`: the state without its history.
fn repackage(h: State) -> State {
    h.map(|(h, c)| (h.detach(), c.map(|c| c.detach())))
}

/// `generate.py`: `words` words drawn one at a time from
/// softmax(log-probabilities / temperature), starting from a random word,
/// the state (or, for the Transformer, the words so far) carried along.
fn generate(model: &Net, a: &Args, vocab: &[String]) -> AnyResult<String> {
    model.eval();
    let mut hidden = model.init_hidden(a, 1);
    let start = (Tensor::rand([1]).item()? * vocab.len() as f32) as usize;
    let mut ids = vec![start.min(vocab.len() - 1) as i64];
    let mut text = String::new();
    nabla::no_grad(|| -> AnyResult<()> {
        for i in 0..a.words {
            let input = match model {
                Net::Rnn { .. } => Tensor::from_vec_i64(vec![ids[ids.len() - 1]], [1, 1])?,
                Net::Transformer { .. } => Tensor::from_vec_i64(ids.clone(), [ids.len(), 1])?,
            };
            let (output, h) = model.forward(&input, hidden.take())?;
            hidden = h;
            let last = output.narrow(0, output.shape()[0] - 1, 1)?;
            let weights = last.div_scalar(a.temperature)?.exp()?;
            let word = weights.multinomial(1, false)?.to_vec_i64()?[0];
            ids.push(word);
            let w = &vocab[word as usize];
            text += if w == "<eos>" { "\n" } else { w };
            text += if i % 20 == 19 { "\n" } else { " " };
        }
        Ok(())
    })?;
    Ok(text)
}

/// `evaluate`: the mean loss per word over `source`.
fn evaluate(model: &Net, a: &Args, source: &Tensor, bsz: usize) -> AnyResult<f64> {
    model.eval();
    let mut hidden = model.init_hidden(a, bsz);
    let mut total = 0f64;
    let rows = source.shape()[0];
    nabla::no_grad(|| -> AnyResult<()> {
        for i in (0..rows.saturating_sub(1)).step_by(a.bptt) {
            let (data, targets) = get_batch(source, i, a.bptt)?;
            let (output, h) = model.forward(&data, hidden)?;
            hidden = repackage(h);
            let loss = nll_loss(&output, &targets, None, Reduction::Mean)?.item()? as f64;
            total += data.shape()[0] as f64 * loss;
        }
        Ok(())
    })?;
    Ok(total / (rows - 1) as f64)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&parse(&args)?)?;
    Ok(())
}

/// Trains and tests as the original's `main.py` does; the test loss.
pub fn run(a: &Args) -> AnyResult<f64> {
    manual_seed(a.seed);
    println!("Using device: cpu");
    let corpus = Corpus::load(a)?;
    let eval_batch_size = 10;
    let train_data = batchify(&corpus.train, a.batch_size, "training")?;
    let val_data = batchify(&corpus.valid, eval_batch_size, "validation")?;
    let test_data = batchify(&corpus.test, eval_batch_size, "test")?;
    let ntokens = corpus.words.len();
    let model = Net::new(a, ntokens)?;
    let params = model.parameters();
    // `p.data.add_(p.grad, alpha=-lr)` for every parameter: plain SGD, in place
    let mut sgd = Sgd::new(params.clone(), a.lr);
    let mut lr = a.lr;
    let mut best: Option<(f64, Vec<Tensor>)> = None;
    nabla::in_pool(|| -> AnyResult<()> {
        for epoch in 1..=a.epochs {
            let epoch_start = Instant::now();
            let mut training = 0f64;
            // train()
            model.train();
            let mut total_loss = 0f64;
            let mut start = Instant::now();
            let mut hidden = model.init_hidden(a, a.batch_size);
            let rows = train_data.shape()[0];
            for (batch, i) in (0..rows.saturating_sub(1)).step_by(a.bptt).enumerate() {
                let tick = Instant::now();
                let (data, targets) = get_batch(&train_data, i, a.bptt)?;
                model.zero_grad();
                let (output, h) = model.forward(&data, repackage(hidden))?;
                hidden = h;
                let loss = nll_loss(&output, &targets, None, Reduction::Mean)?;
                loss.backward()?;
                clip_grad_norm(&params, a.clip, 2.0)?;
                sgd.set_lr(lr);
                sgd.step()?;
                total_loss += loss.item()? as f64;
                training += tick.elapsed().as_secs_f64();
                if batch % a.log_interval == 0 && batch > 0 {
                    let cur = total_loss / a.log_interval as f64;
                    let ms = start.elapsed().as_secs_f64() * 1000.0 / a.log_interval as f64;
                    println!(
                        "| epoch {epoch:3} | {batch:5}/{:5} batches | lr {lr:02.2} | ms/batch {ms:5.2} | loss {cur:5.2} | ppl {:8.2}",
                        rows / a.bptt,
                        cur.exp()
                    );
                    total_loss = 0.0;
                    start = Instant::now();
                }
                if a.dry_run {
                    break;
                }
            }
            let val_loss = evaluate(&model, a, &val_data, eval_batch_size)?;
            println!("epoch {epoch}: {training:.2} s training");
            println!("{}", "-".repeat(89));
            println!(
                "| end of epoch {epoch:3} | time: {:5.2}s | valid loss {val_loss:5.2} | valid ppl {:8.2}",
                epoch_start.elapsed().as_secs_f64(),
                val_loss.exp()
            );
            println!("{}", "-".repeat(89));
            match &best {
                Some((b, _)) if val_loss >= *b => lr /= 4.0, // anneal
                _ => {
                    // the best model so far, kept in memory (the original saves model.pt)
                    let copy = params
                        .iter()
                        .map(|p| p.detach().contiguous())
                        .collect::<nabla::Result<_>>()?;
                    best = Some((val_loss, copy));
                }
            }
        }
        Ok(())
    })?;
    if let Some((_, weights)) = &best {
        for (p, w) in params.iter().zip(weights) {
            p.copy_from(w)?;
        }
    }
    let test_loss = evaluate(&model, a, &test_data, eval_batch_size)?;
    println!("{}", "=".repeat(89));
    println!(
        "| End of training | test loss {test_loss:5.2} | test ppl {:8.2}",
        test_loss.exp()
    );
    println!("{}", "=".repeat(89));
    println!("test loss: {test_loss:.4}");
    if a.words > 0 {
        println!("{}", generate(&model, a, &corpus.words)?);
    }
    Ok(test_loss)
}
