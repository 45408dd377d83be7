//! The README's library snippets, as written there (with their free
//! variables made arguments), so that a change to the API that breaks one
//! breaks the build. The small tensor one also runs.
#![allow(unused)]

type R = Result<(), Box<dyn std::error::Error>>;

/// "A training program".
fn training_program(batches: Vec<(nabla::Tensor, nabla::Tensor)>) -> R {
    use nabla::nn::{loss::cross_entropy, zoo::LeNet};
    use nabla::optim::{Optimizer, Sgd};
    use nabla::prelude::*;

    let model = LeNet::new();
    let mut optimizer = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    for (data, target) in batches {
        optimizer.zero_grad();
        let output = model.forward(&data)?;
        let loss = cross_entropy(&output, &target)?;
        loss.backward()?;
        optimizer.step()?;
    }
    Ok(())
}

/// "Attention and Transformers".
fn attention(
    q: nabla::Tensor,
    k: nabla::Tensor,
    v: nabla::Tensor,
    x: nabla::Tensor,
    pad: nabla::Tensor,
    src: nabla::Tensor,
    tgt: nabla::Tensor,
) -> R {
    use nabla::prelude::*;
    use nabla::{
        nn::{
            MhaArgs, MhaMask, MultiheadAttention, Transformer, TransformerConfig, TransformerMasks,
        },
        AttentionParams,
    };

    // q [B, H, L, E], k and v [B, H, S, E]: one fused op, forward and backward
    let y = q.scaled_dot_product_attention(&k, &v, &AttentionParams::default().causal())?;

    let mha = MultiheadAttention::new(512, 8)?; // PyTorch's names and init
    let (out, weights) = mha.forward_with(
        &x,
        &x,
        &x,
        &MhaArgs {
            key_padding_mask: Some(MhaMask::Ignore(pad)), // PyTorch's polarity: 1 = ignore
            ..Default::default()                          // need_weights: averaged over heads
        },
    )?;

    let t = Transformer::new(&TransformerConfig::new(512, 8).norm_first(true), 6, 6)?;
    let y = t.forward_with(&src, &tgt, &TransformerMasks::default())?; // a PyTorch nn.Transformer state dict loads
    Ok(())
}

/// "Sequences".
fn sequences(
    x: nabla::Tensor,
    lengths: Vec<usize>,
    vocab: usize,
    ids: nabla::Tensor,
    next_ids: nabla::Tensor,
    prompt: Vec<u32>,
    mut generator: nabla::Generator,
) -> R {
    use nabla::nn::rnn::{RnnConfig, RnnKind};
    use nabla::nn::{CharLm, Recurrent};

    let lstm = Recurrent::lstm(RnnConfig {
        num_layers: 2,
        bidirectional: true,
        batch_first: true,
        ..RnnConfig::new(28, 128)
    });
    let out = lstm.run(&x, None, None, Some(&lengths))?;
    let lm = CharLm::new(RnnKind::Lstm, vocab, 64, 256, 1);
    let loss = lm.loss(&ids, &next_ids)?;
    let text = lm.sample(&prompt, 400, 0.8, &mut generator)?;
    Ok(())
}

/// "Tensors and autograd".
fn tensors_and_autograd() -> R {
    use nabla::{Conv2dParams, Tensor};
    let x = Tensor::randn([64, 1, 28, 28]);
    let w = Tensor::randn([6, 1, 5, 5]).requires_grad_(true);
    let y = x
        .conv2d(&w, None, Conv2dParams::default().padding(2))?
        .relu()?
        .max_pool2d(2)?;
    let loss = y.mean_all()?;
    loss.backward()?;
    println!("{}", w.grad().unwrap().narrow(0, 0, 1)?);
    Ok(())
}

/// "Data".
fn data() -> R {
    use nabla::data::{DataLoader, ImageDataset, Mnist, Transform};
    let mnist = Mnist::locate("mnist", None)?;
    let train = ImageDataset::new(
        mnist.train,
        vec![
            Transform::RandomCrop { padding: 2 },
            Transform::Normalize {
                mean: 0.1307,
                std: 0.3081,
            },
        ],
    );
    let loader = DataLoader::new(train, 64).seed(1);
    for batch in loader.epoch(0) {
        let batch = batch?;
    }
    Ok(())
}

#[test]
fn the_tensor_snippet_runs() {
    tensors_and_autograd().unwrap();
}

/// "A training program": the Trainer snippet, run for a few steps. Its
/// text must be the README's (see the test below), but for two changes.
fn trainer_program(run_dir: &str) -> R {
    use nabla::data::{DataLoader, ImageDataset, Mnist};
    use nabla::nn::zoo::LeNet;
    use nabla::optim::Sgd;
    use nabla::prelude::*;

    let mnist = Mnist::locate("mnist", None)?; // the shipped digits
    let train = DataLoader::new(ImageDataset::mnist_normalized(mnist.train), 64);
    let test = DataLoader::new(ImageDataset::mnist_normalized(mnist.test), 100).shuffle(false);
    let model = LeNet::new();
    let sgd = Sgd::new(model.parameters(), 0.001).momentum(0.9);
    let mut trainer = Trainer::new(&model, sgd)
        .epochs(1)
        .max_steps(Some(3))
        .run_dir(RunDir::create(run_dir, true)?); // metrics, checkpoints, weights
    trainer.fit(&train, Some(&test))?; // PyTorch's lines; the test pass after each epoch
    Ok(())
}

/// "Smaller models": pruning and int8. Its text must be the README's, but
/// for the file's place.
fn smaller_models_program(file: &str) -> R {
    use nabla::nn::prune::{magnitude_prune, Scope};
    use nabla::nn::quantized::save_quantized;
    use nabla::prelude::*;

    let net = Sequential::new()
        .add(Linear::new(784, 256))
        .add(ReLU)
        .add(Linear::new(256, 10));
    // ... trained ...
    magnitude_prune(&net, 0.8, Scope::Global)?; // the 80% smallest weights set to zero
    let int8 = net.into_quantized(false)?; // Linear and recurrent layers in int8, the rest as it was
    let logits = int8.forward(&Tensor::randn([64, 784]))?;
    save_quantized(file, &int8)?; // load_quantized reads it into the same int8 network
    Ok(())
}

#[test]
fn the_smaller_models_snippet_is_the_readmes_and_runs() {
    let expected = block_after(include_str!("../../../README.md"), "## Smaller models")
        .replace("\"net.int8.safetensors\"", "file");
    let body = body_of("smaller_models_program", |_| false);
    assert_eq!(
        body, expected,
        "the README's snippet and smaller_models_program differ"
    );
    let file = std::env::temp_dir().join(format!(
        "nabla-readme-int8-{}.safetensors",
        std::process::id()
    ));
    smaller_models_program(file.to_str().unwrap()).unwrap();
    assert!(nabla::nn::quantized::is_quantized_file(&file).unwrap());
    std::fs::remove_file(&file).unwrap();
}

/// "A training program": a model of two outputs, `Parameters` alone.
/// Its text must be the README's.
fn two_outputs_program(images: nabla::Tensor) -> R {
    use nabla::nn::state_dict::state_dict;
    use nabla::nn::{prefixed, Linear, Module, Parameters};
    use nabla::prelude::*;

    /// A VAE's encoder: one input, two outputs.
    struct Encoder {
        fc1: Linear,
        mu: Linear,
        logvar: Linear,
    }

    impl Parameters for Encoder {
        fn named_parameters(&self) -> Vec<(String, Tensor)> {
            let mut p = prefixed("fc1", self.fc1.named_parameters());
            p.extend(prefixed("mu", self.mu.named_parameters()));
            p.extend(prefixed("logvar", self.logvar.named_parameters()));
            p
        }
    }

    impl Encoder {
        fn forward(&self, x: &Tensor) -> nabla::Result<(Tensor, Tensor)> {
            let h = self.fc1.forward(x)?.relu()?;
            Ok((self.mu.forward(&h)?, self.logvar.forward(&h)?))
        }
    }

    let encoder = Encoder {
        fc1: Linear::new(784, 400),
        mu: Linear::new(400, 20),
        logvar: Linear::new(400, 20),
    };
    let mut adam = Adam::new(encoder.parameters(), 1e-3);
    let (mu, logvar) = encoder.forward(&images)?;
    // the KL divergence from N(0, 1): −½·Σ(1 + log σ² − μ² − σ²)
    let kl = logvar
        .add_scalar(1.0)?
        .sub(&mu.mul(&mu)?)?
        .sub(&logvar.exp()?)?
        .sum_all()?
        .mul_scalar(-0.5)?;
    kl.backward()?;
    adam.step()?;
    let weights = state_dict(&encoder); // fc1.weight, …, logvar.bias
    assert_eq!(weights.len(), 6);
    let n = encoder.num_parameters();
    assert_eq!(n, 784 * 400 + 400 + 2 * (400 * 20 + 20));
    let (mu2, _) = encoder.forward(&images)?;
    assert_ne!(mu2.to_vec(), mu.to_vec(), "the step moved the weights");
    Ok(())
}

#[test]
fn the_two_outputs_snippet_is_the_readmes_and_trains() {
    let expected = block_after(
        include_str!("../../../README.md"),
        "A model whose forward takes or returns several tensors",
    );
    let body = body_of("two_outputs_program", |l| {
        l.starts_with("assert") || l.starts_with("let (mu2") || l.starts_with("let n =")
    });
    assert_eq!(
        body, expected,
        "the README's snippet and two_outputs_program differ"
    );
    two_outputs_program(nabla::Tensor::randn([8, 784])).unwrap();
}

/// "Mixed precision": bf16 products. Its text must be the README's.
fn mixed_precision_program(data: nabla::Tensor, target: nabla::Tensor) -> R {
    use nabla::autocast::{autocast, Precision};
    use nabla::nn::loss::cross_entropy;
    use nabla::prelude::*;

    let model = Sequential::new()
        .add(Linear::new(784, 256))
        .add(ReLU)
        .add(Linear::new(256, 10));
    // the products in bf16 with f32 sums; weights, loss and the rest in f32
    let output = autocast(Precision::Bf16, || model.forward(&data))?;
    let loss = cross_entropy(&output, &target)?;
    loss.backward()?; // its products in bf16 too: each op keeps its forward's precision
    Ok(())
}

#[test]
fn the_mixed_precision_snippet_is_the_readmes_and_runs() {
    let expected = block_after(include_str!("../../../README.md"), "## Mixed precision");
    let body = body_of("mixed_precision_program", |_| false);
    assert_eq!(
        body, expected,
        "the README's snippet and mixed_precision_program differ"
    );
    let data = nabla::Tensor::randn([64, 784]);
    let target = nabla::Tensor::from_vec((0..64).map(|i| (i % 10) as f32).collect(), [64]).unwrap();
    mixed_precision_program(data, target).unwrap();
}

/// "A training program": the language-model snippet, run for a few steps.
/// Its text must be the README's, but for the changes of `LM_CHANGES`.
fn language_model_program() -> R {
    use nabla::data::TextCorpus;
    use nabla::nn::{Gpt, GptConfig};
    use nabla::optim::{Adam, ParamGroups, Schedule};
    use nabla::prelude::*;
    use nabla::train::{token_cross_entropy_loss, RandomWindows, Windows};

    let corpus = TextCorpus::load("../../data/text/devils-dictionary.txt")?; // a token a character
    let split = corpus.ids.len() * 9 / 10;
    // 12 random windows of 64 characters a batch, 200 batches an "epoch"
    let train = RandomWindows::new(corpus.ids[..split].to_vec(), 12, 64, 2)?;
    let val = Windows::new(corpus.ids[split..split + 2000].to_vec(), 64, 64)?;
    let model = Gpt::new(GptConfig::char_cpu(corpus.vocab.len()))?;
    // AdamW's weight decay on the matrices only: two parameter groups, one optimizer
    let (matrices, rest): (Vec<_>, Vec<_>) =
        model.parameters().into_iter().partition(|p| p.rank() >= 2);
    let adamw = ParamGroups::new(vec![
        (
            "decay",
            Box::new(
                Adam::adamw(matrices, 1e-3)
                    .betas(0.9, 0.99)
                    .weight_decay(0.1),
            ),
        ),
        (
            "rest",
            Box::new(Adam::adamw(rest, 1e-3).betas(0.9, 0.99).weight_decay(0.0)),
        ),
    ]);
    let warmup_cosine = Schedule::WarmupCosine {
        warmup: 100,
        total: 2000,
        final_div_factor: 10.0,
    };
    let mut trainer = Trainer::new(&model, adamw)
        .loss(token_cross_entropy_loss()) // logits [B, T, V] against the next characters
        .steps(3) // 2,000 steps in all, validated every 200
        .grad_accum(1)
        .clip_grad_norm(Some(1.0))
        .schedule(warmup_cosine, true); // the rate set before every step
    trainer.fit(&train, Some(&val))?; // validation loss in nats a character
    assert_eq!(trainer.state().global_step, 3);
    Ok(())
}

/// The changes from the README's language-model snippet to the test's.
const LM_CHANGES: [(&str, &str); 4] = [
    ("\"data/text/", "\"../../data/text/"),
    ("64,200)?", "64,2)?"),
    ("corpus.ids[split..]", "corpus.ids[split..split+2000]"),
    (".steps(2000)", ".steps(3)"),
];

/// Code without whitespace and without the trailing commas rustfmt adds
/// when it breaks a call over lines.
fn normalized(code: &str) -> String {
    code.replace(",)", ")")
        .replace(",}", "}")
        .replace(",]", "]")
}

#[test]
fn the_language_model_snippet_is_the_readmes_and_trains() {
    let readme = include_str!("../../../README.md");
    let from = readme
        .find("A language model trains on the same `Trainer`")
        .unwrap();
    let mut expected = block_after(&readme[from..], "```rust");
    for (from, to) in LM_CHANGES {
        expected = expected.replace(from, to);
    }
    let body = body_of("language_model_program", |l| l.starts_with("assert_eq!"));
    assert_eq!(
        normalized(&body),
        normalized(&expected),
        "the README's language-model snippet and language_model_program differ"
    );
    language_model_program().unwrap();
}

/// The changes from the README's text to `trainer_program`'s.
const TRAINER_CHANGES: [(&str, &str); 2] = [
    (".epochs(10)", ".epochs(1).max_steps(Some(3))"),
    ("\"runs/lenet\"", "run_dir"),
];

/// The body of this file's function `name`, without whitespace, its
/// closing `Ok(())` and the lines `skip` picks (checks the README lacks).
fn body_of(name: &str, skip: impl Fn(&str) -> bool) -> String {
    let this_file = include_str!("readme_snippets.rs");
    this_file[this_file.find(&format!("fn {name}")).unwrap()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('}'))
        .filter(|l| l.trim() != "Ok(())" && !skip(l.trim()))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The first ```rust block after `marker` in `text`, without whitespace
/// (so formatting does not count).
fn block_after(text: &str, marker: &str) -> String {
    let from = text.find(marker).expect("marker in the text");
    text[from..]
        .lines()
        .skip_while(|l| l.trim() != "```rust")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[test]
fn the_trainer_snippet_is_the_readmes_and_trains() {
    let mut expected = block_after(include_str!("../../../README.md"), "## A training program");
    for (from, to) in TRAINER_CHANGES {
        expected = expected.replace(from, to);
    }
    let body = body_of("trainer_program", |_| false);
    assert_eq!(
        body, expected,
        "the README's Trainer snippet and trainer_program differ"
    );

    let dir = std::env::temp_dir().join(format!("nabla-readme-trainer-{}", std::process::id()));
    trainer_program(dir.to_str().unwrap()).unwrap();
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1,
        "stopped after 3 steps, within epoch 1"
    );
    assert!(dir.join("checkpoints/last.safetensors").is_file());
    assert!(dir.join("model.safetensors").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// "Tensors and autograd": dtypes. Runs.
#[test]
fn dtypes() -> R {
    use nabla::{DType, Tensor};
    let ids = Tensor::from_vec_i64(vec![3, 0, 16_777_217], [3])?; // exact
    let w = Tensor::randn([4, 8]).to_dtype(DType::BF16)?; // 2 bytes a value
    let y = w.matmul(&Tensor::randn([8, 2]))?; // f32: w's exact values
    let pred = y.argmax(1, false)?; // i64, as torch.argmax
    assert_eq!(ids.to_vec_i64()?[2], 16_777_217);
    assert_eq!((y.dtype(), pred.dtype()), (DType::F32, DType::I64));
    Ok(())
}
