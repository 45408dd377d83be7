//! PyTorch's `time_sequence_prediction` example (github.com/pytorch/examples,
//! `time_sequence_prediction/generate_sine_wave.py` and `train.py`), ported
//! line by line: two stacked LSTM cells (1 → 51 → 51) and a linear layer
//! learn sine waves of period 2π·20, trained with L-BFGS (lr 0.8) on the
//! mean squared error of the next value, 15 steps; after each step the
//! model continues three test waves 1,000 values past their end, drawn
//! into `predictE.png` (the original draws `predictE.pdf`). The original
//! computes in float64; nabla in float32.
//!
//!     cargo run --release --example pytorch_time_sequence_prediction -- --steps 15

use std::path::PathBuf;

use nabla::nn::loss::mse_loss;
use nabla::nn::{prefixed, Linear, Module, Parameters, RecurrentCell};
use nabla::optim::Lbfgs;
use nabla::plot::{line_chart, series_color, Chart, Series};
use nabla::prelude::*;
use nabla::Generator;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `generate_sine_wave.py`: N = 100 waves of L = 1000 values,
/// `sin((t + k)/T)` with T = 20 and a random shift k in [−4T, 4T).
fn generate_sine_wave(seed: u64) -> nabla::Result<Tensor> {
    let (t_period, l, n) = (20.0f64, 1000usize, 100usize);
    let mut g = Generator::new(seed);
    let mut data = Vec::with_capacity(n * l);
    for _ in 0..n {
        let shift = (g.uniform() as f64 * 8.0 * t_period).floor() - 4.0 * t_period;
        data.extend((0..l).map(|t| ((t as f64 + shift) / t_period).sin() as f32));
    }
    Tensor::from_vec(data, [n, l])
}

/// `class Sequence(nn.Module)`.
pub struct Sequence {
    lstm1: RecurrentCell,
    lstm2: RecurrentCell,
    linear: Linear,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence::new()
    }
}

impl Sequence {
    pub fn new() -> Sequence {
        Sequence {
            lstm1: RecurrentCell::lstm(1, 51),
            lstm2: RecurrentCell::lstm(51, 51),
            linear: Linear::new(51, 1),
        }
    }

    /// The prediction of each next value of `input` `[N, L]`, then
    /// `future` more values fed back: `[N, L + future]`.
    pub fn forward(&self, input: &Tensor, future: usize) -> nabla::Result<Tensor> {
        let (n, l) = input.dims2()?;
        let zeros = || Tensor::zeros_on([n, 51], input.device());
        let (mut h_t, mut c_t, mut h_t2, mut c_t2) = (zeros(), zeros(), zeros(), zeros());
        let mut outputs = Vec::with_capacity(l + future);
        let mut step = |x: &Tensor| -> nabla::Result<Tensor> {
            let (h, c) = self.lstm1.step(x, Some(&h_t), Some(&c_t))?;
            (h_t, c_t) = (h, c.expect("an LSTM cell has a cell state"));
            let (h2, c2) = self.lstm2.step(&h_t, Some(&h_t2), Some(&c_t2))?;
            (h_t2, c_t2) = (h2, c2.expect("an LSTM cell has a cell state"));
            self.linear.forward(&h_t2)
        };
        for i in 0..l {
            let output = step(&input.narrow(1, i, 1)?)?;
            outputs.push(output);
        }
        // if we should predict the future
        for _ in 0..future {
            let output = step(outputs.last().expect("at least one value"))?;
            outputs.push(output);
        }
        Tensor::cat(&outputs, 1)
    }
}

impl Parameters for Sequence {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("lstm1", self.lstm1.named_parameters());
        p.extend(prefixed("lstm2", self.lstm2.named_parameters()));
        p.extend(prefixed("linear", self.linear.named_parameters()));
        p
    }
}

/// The three test waves and their continuation: the input in its own
/// colour, the prediction past the end dashed in the same hue.
fn draw(pred: &Tensor, input_len: usize, path: PathBuf, step: usize) -> AnyResult<()> {
    let mut chart = Chart {
        title: format!("step {step}"),
        x_label: "x".into(),
        ..Default::default()
    };
    let y = pred.to_vec2()?;
    for (k, wave) in y.iter().enumerate() {
        let points =
            |range: std::ops::Range<usize>| range.map(|i| (i as f64, wave[i] as f64)).collect();
        let mut seen = Series::new(&format!("wave {k}"), points(0..input_len), series_color(k));
        seen.width = 1;
        let mut future = Series::new(
            &format!("wave {k}, predicted"),
            points(input_len..wave.len()),
            series_color(k),
        );
        future.width = 1;
        future.markers = false;
        chart.series.extend([seen, future]);
    }
    line_chart(&chart, 900, 300).save_png(&path)?;
    Ok(())
}

/// The flags: `--steps 15`, `--out DIR` (where the pictures go, `.`).
pub struct Args {
    pub steps: usize,
    pub out: PathBuf,
    /// Waves used for training (97 in the original; fewer in tests).
    pub train_waves: usize,
    /// L-BFGS iterations per step (20, PyTorch's default).
    pub max_iter: usize,
}

impl Args {
    pub fn parse(args: &[String]) -> AnyResult<Args> {
        let mut a = Args {
            steps: 15,
            out: ".".into(),
            train_waves: 97,
            max_iter: 20,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--steps" => {
                    a.steps = value.parse().map_err(|e| format!("--steps {value}: {e}"))?
                }
                "--out" => a.out = value.into(),
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        Ok(a)
    }
}

/// `if __name__ == '__main__'`: returns the last step's test loss.
pub fn run(args: &Args) -> AnyResult<f32> {
    // set random seed to 0
    manual_seed(0);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    // load data and make training set
    let data = generate_sine_wave(2)?;
    let (n, l) = data.dims2()?;
    let train = data.narrow(0, 3, args.train_waves.min(n - 3))?;
    let input = train.narrow(1, 0, l - 1)?.contiguous()?;
    let target = train.narrow(1, 1, l - 1)?.contiguous()?;
    let test_input = data.narrow(0, 0, 3)?.narrow(1, 0, l - 1)?.contiguous()?;
    let test_target = data.narrow(0, 0, 3)?.narrow(1, 1, l - 1)?.contiguous()?;
    // build the model
    let seq = Sequence::new();
    // use LBFGS as optimizer since we can load the whole data to train
    let mut optimizer = Lbfgs::new(seq.parameters(), 0.8).max_iter(args.max_iter);
    let mut test_loss = f32::NAN;
    // begin to train
    for i in 0..args.steps {
        println!("STEP:  {i}");
        let start = std::time::Instant::now();
        optimizer.step_with(|| {
            seq.zero_grad();
            let out = seq.forward(&input, 0)?;
            let loss = mse_loss(&out, &target, Reduction::Mean)?;
            println!("loss: {}", loss.item()?);
            loss.backward()?;
            Ok(loss)
        })?;
        // begin to predict, no need to track gradient here
        no_grad(|| -> AnyResult<()> {
            let future = 1000;
            let pred = seq.forward(&test_input, future)?;
            let loss = mse_loss(&pred.narrow(1, 0, l - 1)?, &test_target, Reduction::Mean)?;
            test_loss = loss.item()?;
            println!("test loss: {test_loss}");
            println!("step {i}: {:.2} s training", start.elapsed().as_secs_f64());
            draw(&pred, l - 1, args.out.join(format!("predict{i}.png")), i)
        })?;
    }
    Ok(test_loss)
}

#[allow(dead_code)] // (a test includes this file and calls `run`)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = Args::parse(&args).and_then(|a| run(&a)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
