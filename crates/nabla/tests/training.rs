//! End to end: small models learn real tasks with the library's layers,
//! losses and optimizers.

use nabla::data::Mnist;
use nabla::nn::loss::cross_entropy;
use nabla::nn::zoo::LeNet;
use nabla::nn::{Linear, Sequential, Tanh};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::prelude::*;

#[test]
fn an_mlp_learns_xor() {
    manual_seed(0);
    let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], [4, 2]).unwrap();
    let y = Tensor::from_vec(vec![0., 1., 1., 0.], [4]).unwrap();
    let model = Sequential::new()
        .add(Linear::new(2, 8))
        .add(Tanh)
        .add(Linear::new(8, 2));
    let mut opt = Sgd::new(model.parameters(), 0.5).momentum(0.9);
    let mut loss = f32::INFINITY;
    for _ in 0..300 {
        opt.zero_grad();
        let l = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        l.backward().unwrap();
        opt.step().unwrap();
        loss = l.item().unwrap();
    }
    let pred = model.forward(&x).unwrap().argmax(1, false).unwrap();
    assert_eq!(pred.to_vec(), y.to_vec(), "final loss {loss}");
    assert!(loss < 0.05, "final loss {loss}");
}

#[test]
fn lenet_overfits_256_real_digits() {
    manual_seed(0);
    let data = Mnist::load(Mnist::shipped_dir()).unwrap();
    let (x, y) = data.train.to_tensors(0.1307, 0.3081).unwrap();
    // 256 images spread over all ten digits (the file is grouped by digit)
    let idx: Vec<f32> = (0..256).map(|i| (i * 31) as f32).collect();
    let idx = Tensor::from_slice(&idx, [256]).unwrap();
    let (x, y) = (
        x.index_select(0, &idx).unwrap(),
        y.index_select(0, &idx).unwrap(),
    );
    let model = LeNet::new();
    let mut opt = Adam::new(model.parameters(), 2e-3);
    let mut acc = 0.0;
    for epoch in 0..60 {
        for start in (0..256).step_by(64) {
            let (xb, yb) = (
                x.narrow(0, start, 64).unwrap(),
                y.narrow(0, start, 64).unwrap(),
            );
            opt.zero_grad();
            cross_entropy(&model.forward(&xb).unwrap(), &yb)
                .unwrap()
                .backward()
                .unwrap();
            opt.step().unwrap();
        }
        let pred = no_grad(|| model.forward(&x))
            .unwrap()
            .argmax(1, false)
            .unwrap();
        acc = pred.eq(&y).unwrap().mean_all().unwrap().item().unwrap();
        if acc == 1.0 {
            println!("100% training accuracy after {} epochs", epoch + 1);
            break;
        }
    }
    assert_eq!(acc, 1.0, "training accuracy {acc}");
}

/// The character model on the shipped public-domain text beats what
/// character frequencies alone give (the unigram entropy of the training
/// text) on held-out text, and its samples use the text's characters.
#[test]
fn a_character_lstm_learns_the_shipped_text() {
    use nabla::data::{DataLoader, Dataset, TextCorpus};
    use nabla::nn::rnn::RnnKind;
    use nabla::nn::CharLm;

    manual_seed(0);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/text/devils-dictionary.txt"
    );
    let corpus = TextCorpus::load(path).unwrap();
    // a slice of the book: 40,000 characters to train on, the next 8,000 to validate
    let train = corpus.sequences(64, 0..40_000);
    let val = corpus.sequences(64, 40_000..48_000);
    let mut counts = vec![0f64; corpus.vocab.len()];
    corpus.ids[..40_000]
        .iter()
        .for_each(|&c| counts[c as usize] += 1.0);
    let unigram: f64 = counts
        .iter()
        .filter(|&&n| n > 0.0)
        .map(|&n| -(n / 40_000.0) * (n / 40_000.0).ln())
        .sum();

    let lm = CharLm::new(RnnKind::Lstm, corpus.vocab.len(), 32, 128, 1);
    let mut opt = Adam::new(lm.parameters(), 5e-3);
    let loader = DataLoader::new(train, 32).seed(0);
    for epoch in 0..4 {
        for b in loader.epoch(epoch) {
            let b = b.unwrap();
            opt.zero_grad();
            let loss = lm.loss(&b.inputs, &b.targets).unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
        }
    }
    let vb = DataLoader::make_batch(&val, &(0..val.len()).collect::<Vec<_>>(), 0, 0).unwrap();
    let val_loss = no_grad(|| lm.loss(&vb.inputs, &vb.targets))
        .unwrap()
        .item()
        .unwrap() as f64;
    eprintln!("validation {val_loss:.3} nats/char, unigram entropy {unigram:.3}");
    assert!(
        val_loss < unigram - 0.6,
        "validation {val_loss:.3} nats/char, unigram entropy {unigram:.3}"
    );
    let prompt = corpus.encode("THE ").unwrap();
    let sample = lm
        .sample(&prompt, 200, 0.8, &mut nabla::Generator::new(1))
        .unwrap();
    assert_eq!(sample.len(), 200);
    let text = corpus.decode(&sample);
    assert!(
        text.contains(' ') && text.chars().count() == 200,
        "{text:?}"
    );
}
