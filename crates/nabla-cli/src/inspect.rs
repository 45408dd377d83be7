//! `nabla eval`, `nabla predict` and `nabla summary`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::{no_grad, Tensor};
use nabla_nn::state_dict::{load_safetensors, load_state_dict};
use nabla_nn::Module;

use crate::args::{EvalArgs, PredictArgs, SummaryArgs, TrainArgs, TrainedArgs};
use crate::common::{dataset, evaluate, load_data, mean_std, probabilities};
use nabla_nn::modelfile::{build, load_spec, plan, FileModel, LayerInfo};
use nabla_train::say;

pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Class `c`'s name in `dataset` (Fashion-MNIST's garments; a digit's
/// own value for MNIST).
pub(crate) fn class_name(dataset: &str, c: usize) -> String {
    match dataset {
        "fashion-mnist" => FASHION_CLASSES
            .get(c)
            .map_or(c.to_string(), |n| n.to_string()),
        _ => c.to_string(),
    }
}

/// The classes' names of `dataset`, when it has names (Fashion-MNIST).
pub(crate) fn class_names(dataset: &str) -> Option<Vec<String>> {
    (dataset == "fashion-mnist").then(|| FASHION_CLASSES.iter().map(|n| n.to_string()).collect())
}

/// What a run directory or weights file gives: the model (with weights
/// loaded when there are any), the data set name and folder.
pub(crate) struct Trained {
    pub model: FileModel,
    pub dataset: String,
    pub data: Option<PathBuf>,
}

impl TrainedArgs {
    /// The model with its weights, and its data set and folder.
    pub fn load(&self) -> Result<Trained> {
        load_trained(
            &self.weights,
            self.model.as_deref(),
            self.dataset.as_deref(),
            self.data.as_deref(),
        )
    }
}

impl Trained {
    /// The test set as normalized tensors (images, labels) and its number of classes.
    pub fn test_tensors(&self) -> Result<(Tensor, Tensor, usize)> {
        let set = load_data(&self.dataset, self.data.as_deref(), false)?.test;
        let (mean, std) = mean_std(&self.dataset);
        let (x, y) = set.to_tensors(mean, std)?;
        Ok((x, y, set.classes))
    }
}

/// Test example `i` of the images `x` (one example, without the batch
/// dimension), or an error naming the size of the test set.
pub(crate) fn test_example(x: &Tensor, i: usize) -> Result<Tensor> {
    let n = x.shape()[0];
    if i >= n {
        bail!("--index {i}: the test set has {n} examples");
    }
    Ok(x.narrow(0, i, 1)?.squeeze(0)?)
}

/// A run's settings, its model file (copied into the run) found in the run
/// directory wherever that now lies.
pub(crate) fn run_config(dir: &Path) -> Result<TrainArgs> {
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .with_context(|| format!("{}: not a run directory (no config.toml)", dir.display()))?;
    let mut a: TrainArgs =
        toml::from_str(&text).map_err(|e| anyhow!("{}: invalid config: {e}", cfg.display()))?;
    let in_run = dir.join(&a.model);
    if nabla_nn::modelfile::is_file_model(&a.model) && in_run.is_file() {
        a.model = in_run.display().to_string();
    }
    Ok(a)
}

/// Named tensors of a weights file or a checkpoint (its `model.` part).
fn weights_of(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let text_err = |e: nabla_nn::state_dict::StateDictError| anyhow!("{e}");
    let all = load_safetensors(path).map_err(text_err)?;
    if all.iter().any(|(n, _)| n.starts_with("model.")) {
        return Ok(nabla_train::Checkpoint::read(path)?.model);
    }
    Ok(all)
}

pub(crate) fn load_trained(
    weights: &Path,
    model: Option<&str>,
    dataset: Option<&str>,
    data: Option<&Path>,
) -> Result<Trained> {
    let (model_name, ds, data_dir, file) = if weights.is_dir() {
        let cfg = run_config(weights)?;
        let file = [
            weights.join("model.safetensors"),
            weights.join("checkpoints/last.safetensors"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{}: the run has no weights yet", weights.display()))?;
        (
            model.map(str::to_string).unwrap_or(cfg.model),
            dataset.map(str::to_string).unwrap_or(cfg.dataset),
            data.map(Path::to_path_buf).or(cfg.data),
            file,
        )
    } else if weights.is_file() {
        let m = model.ok_or_else(|| {
            anyhow!(
                "{}: a weights file needs --model (a zoo name or model file)",
                weights.display()
            )
        })?;
        (
            m.to_string(),
            dataset.unwrap_or("mnist").to_string(),
            data.map(Path::to_path_buf),
            weights.to_path_buf(),
        )
    } else {
        bail!(
            "{}: no such run directory or weights file",
            weights.display()
        );
    };
    let (spec, source) = load_spec(&model_name)?;
    let built = build(&spec, &source, None)?;
    load_state_dict(&built, &weights_of(&file)?).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    Ok(Trained {
        model: built,
        dataset: ds,
        data: data_dir,
    })
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let t = a.trained.load()?;
    let data = load_data(&t.dataset, t.data.as_deref(), false)?;
    let test = dataset(data.test, &t.dataset);
    let ev = evaluate(&t.model, test, a.batch_size)?;
    say!("{}", ev.test_line());
    let k = ev.confusion.len();
    say!("\nclass  precision  recall  support  name");
    for c in 0..k {
        let tp = ev.confusion[c][c] as f32;
        let predicted: usize = (0..k).map(|r| ev.confusion[r][c]).sum();
        let actual: usize = ev.confusion[c].iter().sum();
        let p = if predicted > 0 {
            tp / predicted as f32
        } else {
            0.0
        };
        let r = if actual > 0 { tp / actual as f32 } else { 0.0 };
        let name = class_name(&t.dataset, c);
        say!("{c:>5}  {p:>9.3}  {r:>6.3}  {actual:>7}  {name}");
    }
    say!("\nconfusion matrix (rows: true class, columns: predicted)");
    let header: String = (0..k).map(|c| format!("{c:>6}")).collect();
    say!("     {header}");
    for (c, row) in ev.confusion.iter().enumerate() {
        let cells: String = row.iter().map(|v| format!("{v:>6}")).collect();
        say!("{c:>5}{cells}");
    }
    Ok(())
}

/// An image file as one example `[C, H, W]`: a square grayscale input
/// prepared as MNIST's digits were made (`picture.rs`: transparency
/// flattened, dark-on-light inverted, the ink scaled into its box and
/// centred; warnings on stderr for pictures far from that); any other input
/// shape gets the picture resized to it. Then normalized like the training data.
pub(crate) fn image_input(path: &Path, shape: &[usize], dataset: &str) -> Result<Vec<f32>> {
    let [c, h, w] = shape[..] else {
        bail!("the model's input {shape:?} is not an image")
    };
    let img =
        image::open(path).map_err(|e| anyhow!("{}: cannot read the image: {e}", path.display()))?;
    let mut px: Vec<f32> = if h == w {
        let p = crate::picture::prepare(&img, h, dataset)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        for warning in &p.warnings {
            eprintln!("warning: {}: {warning}", path.display());
        }
        p.pixels
    } else {
        let gray = image::imageops::resize(
            &img.to_luma8(),
            w as u32,
            h as u32,
            image::imageops::FilterType::Triangle,
        );
        let mut px: Vec<f32> = gray.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
        if px.iter().sum::<f32>() / px.len() as f32 > 0.5 {
            px.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        px
    };
    let (mean, std) = mean_std(dataset);
    px.iter_mut().for_each(|v| *v = (*v - mean) / std);
    Ok(px.repeat(c))
}

pub fn predict(a: PredictArgs) -> Result<()> {
    if a.images.is_empty() && a.indices.is_empty() {
        bail!("nothing to predict: give --image FILE or --index N");
    }
    let t = a.trained.load()?;
    let mut labels: Vec<String> = vec![];
    let mut inputs: Vec<f32> = vec![];
    for img in &a.images {
        inputs.extend(image_input(img, &t.model.input, &t.dataset)?);
        labels.push(img.display().to_string());
    }
    if !a.indices.is_empty() {
        let (x, y, _) = t.test_tensors()?;
        let y = y.to_vec();
        for &i in &a.indices {
            inputs.extend(test_example(&x, i)?.to_vec());
            labels.push(format!("test example {i} (label {})", y[i]));
        }
    }
    let mut shape = vec![labels.len()];
    shape.extend(&t.model.input);
    let x = Tensor::from_vec(inputs, shape)?;
    t.model.eval();
    let probs = probabilities(&no_grad(|| t.model.forward(&x))?)?;
    let name = |c: usize| {
        if t.dataset == "fashion-mnist" {
            FASHION_CLASSES
                .get(c)
                .map_or(c.to_string(), |s| s.to_string())
        } else {
            c.to_string()
        }
    };
    for (label, p) in labels.iter().zip(probs) {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
        let top: Vec<String> = order
            .iter()
            .take(a.top_k)
            .map(|&c| format!("{} ({:.3})", name(c), p[c]))
            .collect();
        say!("{label}: {}", top.join(", "));
    }
    Ok(())
}

pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `nabla summary`: the layers of a zoo model, model file, run or weights
/// file, from the model's plan: nothing is allocated, so a model too large
/// to build is still summarized (or refused with its size).
pub fn summary(a: SummaryArgs) -> Result<()> {
    let path = Path::new(&a.model);
    let model_name = if path.is_dir() {
        run_config(path)?.model
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        // a checkpoint or final weights inside a run directory: its config names the model
        let run = path
            .ancestors()
            .skip(1)
            .take(2)
            .find(|d| d.join("config.toml").is_file());
        let run = run.ok_or_else(|| {
            anyhow!(
                "{}: a weights file has no architecture and no run directory around it; \
                 summarize a model file",
                path.display()
            )
        })?;
        say!("weights from {}", path.display());
        run_config(run)?.model
    } else {
        a.model.clone()
    };
    let (spec, source) = load_spec(&model_name)?;
    let model = plan(&spec, &source, None)?;
    let layers: Vec<&LayerInfo> = model.layers.iter().map(|l| &l.info).collect();
    say!("{}: input {:?} per example\n", model.name, model.input);
    say!(
        "{:<10} {:<10} {:<16} {:>12} {:>14}",
        "layer",
        "type",
        "output",
        "parameters",
        "mult-adds"
    );
    for l in &layers {
        say!(
            "{:<10} {:<10} {:<16} {:>12} {:>14}",
            l.name,
            l.kind,
            format!("{:?}", l.out_shape),
            thousands(l.params),
            thousands(l.macs)
        );
    }
    let params: usize = layers.iter().map(|l| l.params).sum();
    let macs: usize = layers.iter().map(|l| l.macs).sum();
    say!(
        "{:<10} {:<10} {:<16} {:>12} {:>14}",
        "total",
        "",
        "",
        thousands(params),
        thousands(macs)
    );
    say!(
        "\n{} parameters ({:.2} MB as f32); {} multiply-adds per example ({:.2} MFLOP forward, about 3× that per training example)",
        thousands(params),
        params as f64 * 4.0 / 1e6,
        thousands(macs),
        2.0 * macs as f64 / 1e6
    );
    Ok(())
}
