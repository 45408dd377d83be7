//! `nabla eval`, `nabla predict` and `nabla summary`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nabla_core::autocast::{autocast, Precision};
use nabla_core::{no_grad, Tensor};
use nabla_nn::quantized::{is_quantized_file, load_quantized};
use nabla_nn::state_dict::{load_safetensors, load_state_dict};
use nabla_nn::{Module, Parameters};

use crate::args::{EvalArgs, PrecisionKind, PredictArgs, SummaryArgs, TrainArgs, TrainedArgs};
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
/// The int8 model `nabla quantize` writes into a run directory.
pub(crate) const INT8_WEIGHTS: &str = "model.int8.safetensors";

pub(crate) fn class_names(dataset: &str) -> Option<Vec<String>> {
    (dataset == "fashion-mnist").then(|| FASHION_CLASSES.iter().map(|n| n.to_string()).collect())
}

/// What a run directory or weights file gives: the model (with weights
/// loaded when there are any), the data set name and folder.
pub(crate) struct Trained {
    pub model: FileModel,
    /// The zoo name or model file the model was built from.
    pub model_name: String,
    /// Whether the model's Linear layers are int8 (`--int8`, or an int8 weights file).
    pub quantized: bool,
    pub dataset: String,
    pub data: Option<PathBuf>,
    /// The precision of the run's products (`--precision`), which `eval`
    /// keeps so that its figures are the run's; f32 without a run.
    pub precision: PrecisionKind,
}

impl TrainedArgs {
    /// The model with its weights, and its data set and folder.
    pub fn load(&self) -> Result<Trained> {
        load_trained(
            &self.weights,
            self.model.as_deref(),
            self.dataset.as_deref(),
            self.data.as_deref(),
            self.int8,
        )
    }
}

impl Trained {
    /// The model in f32, for what needs gradients: an int8 model's weights
    /// read back as f32 (said on stderr), any other model as it is.
    pub fn for_gradients(mut self) -> Result<Trained> {
        if self.quantized {
            let (spec, source) = load_spec(&self.model_name)?;
            let model = build(&spec, &source, None)?;
            load_state_dict(
                &model,
                &nabla_nn::quantized::dequantized_state(&self.model)?,
            )
            .map_err(|e| anyhow!("{e}"))?;
            eprintln!(
                "note: gradients need f32: the int8 weights are read back as f32 (q · scale)"
            );
            (self.model, self.quantized) = (model, false);
        }
        Ok(self)
    }

    /// The training set's images as normalized tensors (for calibration).
    pub fn train_images(&self) -> Result<Tensor> {
        let set = load_data(&self.dataset, self.data.as_deref(), false)?.train;
        let (mean, std) = mean_std(&self.dataset);
        Ok(set.to_tensors(mean, std)?.0)
    }

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
    int8: bool,
) -> Result<Trained> {
    let (model_name, ds, data_dir, file, precision) = if weights.is_dir() {
        let cfg = run_config(weights)?;
        let file = if int8 {
            let file = weights.join(INT8_WEIGHTS);
            if !file.is_file() {
                bail!(
                    "{}: the run has no int8 model; make it with `nabla quantize {}`",
                    weights.display(),
                    weights.display()
                );
            }
            file
        } else {
            [
                weights.join("model.safetensors"),
                weights.join("checkpoints/last.safetensors"),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("{}: the run has no weights yet", weights.display()))?
        };
        (
            model.map(str::to_string).unwrap_or(cfg.model),
            dataset.map(str::to_string).unwrap_or(cfg.dataset),
            data.map(Path::to_path_buf).or(cfg.data),
            file,
            cfg.precision,
        )
    } else if weights.is_file() {
        // a file inside a run directory (its int8 or 16-bit model, a
        // checkpoint) takes the run's settings unless told otherwise
        let run = weights
            .ancestors()
            .skip(1)
            .take(2)
            .find(|d| d.join("config.toml").is_file())
            .map(run_config)
            .transpose()?;
        let m = match (model, &run) {
            (Some(m), _) => m.to_string(),
            (None, Some(cfg)) => cfg.model.clone(),
            (None, None) => bail!(
                "{}: a weights file needs --model (a zoo name or model file)",
                weights.display()
            ),
        };
        let run_dataset = run.as_ref().map(|c| c.dataset.clone());
        let precision = run.as_ref().map_or(PrecisionKind::F32, |c| c.precision);
        (
            m,
            dataset
                .map(str::to_string)
                .or(run_dataset)
                .unwrap_or_else(|| "mnist".into()),
            data.map(Path::to_path_buf).or(run.and_then(|c| c.data)),
            weights.to_path_buf(),
            precision,
        )
    } else {
        bail!(
            "{}: no such run directory or weights file",
            weights.display()
        );
    };
    if crate::lm::is_language_model(&model_name) {
        bail!(
            "{}: a {model_name} run (a language model); this command takes image classifiers \
             (nabla generate, plot and report take language models)",
            weights.display()
        );
    }
    let (spec, source) = load_spec(&model_name)?;
    let built = build(&spec, &source, None)?;
    let quantized = file.extension().is_some_and(|e| e == "safetensors")
        && is_quantized_file(&file).map_err(|e| anyhow!("{e}"))?;
    if int8 && !quantized {
        bail!(
            "{}: not an int8 model (nabla quantize writes one)",
            file.display()
        );
    }
    let built = if quantized {
        // the int8 form's structure (with the static convolutions the file
        // has), then its weights (set_quantized repacks)
        let inputs =
            nabla_nn::quantized::static_inputs(&file, &built.net).map_err(|e| anyhow!("{e}"))?;
        let q = built.into_quantized_static(false, &inputs)?;
        load_quantized(&file, &q).map_err(|e| anyhow!("{e}"))?;
        q
    } else {
        load_state_dict(&built, &weights_of(&file)?)
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        built
    };
    Ok(Trained {
        // (an int8 model's products are int8's whatever the run's)
        precision: if quantized {
            PrecisionKind::F32
        } else {
            precision
        },
        quantized,
        model_name,
        model: built,
        dataset: ds,
        data: data_dir,
    })
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let t = a.trained.load()?;
    let data = load_data(&t.dataset, t.data.as_deref(), false)?;
    let test = dataset(data.test, &t.dataset);
    let precision = t.precision.into();
    let ev = autocast(precision, || evaluate(&t.model, test, a.batch_size))?;
    say!("{}", ev.test_line());
    if precision != Precision::F32 {
        say!("(products in {precision}, as the run trained)");
    }
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

/// Each layer's bytes in a weights file (its tensors named `LAYER.…`, at
/// their stored width) and the precision that is not f32, if any (`int8`
/// where it has int8 tensors, `bf16`, `f16`); None for a checkpoint, whose
/// optimizer state is no layer's.
type LayerBytes = std::collections::HashMap<String, (usize, Option<&'static str>)>;

fn layer_bytes(file: &Path) -> Result<Option<LayerBytes>> {
    use safetensors::Dtype;
    let header = nabla_nn::state_dict::read_header(file).map_err(|e| anyhow!("{e}"))?;
    let tensors = header.tensors();
    if tensors.keys().any(|n| n.starts_with("model.")) {
        return Ok(None);
    }
    let mut out = LayerBytes::new();
    for (name, info) in tensors {
        let layer = name.split_once('.').map_or(name.as_str(), |(l, _)| l);
        let entry = out.entry(layer.to_string()).or_default();
        entry.0 += info.data_offsets.1 - info.data_offsets.0;
        let precision = match info.dtype {
            Dtype::I8 => Some("int8"),
            Dtype::BF16 => Some("bf16"),
            Dtype::F16 => Some("f16"),
            _ => None,
        };
        // (an int8 layer's f32 scales and bias leave it int8)
        if entry.1 != Some("int8") && precision.is_some() {
            entry.1 = precision;
        }
    }
    Ok(Some(out))
}

/// `nabla summary`: the layers of a zoo model, model file, run or weights
/// file, from the model's plan: nothing is allocated, so a model too large
/// to build is still summarized (or refused with its size).
pub fn summary(a: SummaryArgs) -> Result<()> {
    let path = Path::new(&a.model);
    // the weights file whose tensors give each layer's bytes
    let mut weights_file = None;
    if a.int8 {
        if !path.is_dir() {
            bail!(
                "--int8 summarizes a run directory's int8 model; {} is not a run directory",
                path.display()
            );
        }
        let file = path.join(INT8_WEIGHTS);
        if !file.is_file() {
            bail!(
                "{}: the run has no int8 model; make it with `nabla quantize {}`",
                path.display(),
                path.display()
            );
        }
        weights_file = Some(file);
    } else if path.is_file() && path.extension().is_some_and(|e| e == "safetensors") {
        weights_file = Some(path.to_path_buf());
    }
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
    let stored = match &weights_file {
        Some(f) => layer_bytes(f)?,
        None => None,
    };
    let lower = stored
        .as_ref()
        .is_some_and(|b| b.values().any(|(_, p)| p.is_some()));
    // each layer's type and bytes at its precision (f32: 4 a value)
    let at_precision = |l: &LayerInfo| -> (String, usize) {
        match stored.as_ref().and_then(|b| b.get(&l.name)) {
            Some(&(bytes, Some(p))) => (format!("{} {p}", l.kind), bytes),
            Some(&(bytes, None)) => (l.kind.clone(), bytes),
            None => (l.kind.clone(), 4 * l.params),
        }
    };
    say!("{}: input {:?} per example\n", model.name, model.input);
    let row = |name: &str, kind: &str, out: &str, params: &str, bytes: &str, macs: &str| {
        say!("{name:<10} {kind:<12} {out:<16} {params:>12} {bytes:>12} {macs:>14}")
    };
    row(
        "layer",
        "type",
        "output",
        "parameters",
        "bytes",
        "mult-adds",
    );
    let mut bytes = 0;
    for l in &layers {
        let (kind, b) = at_precision(l);
        bytes += b;
        let out = format!("{:?}", l.out_shape);
        row(
            &l.name,
            &kind,
            &out,
            &thousands(l.params),
            &thousands(b),
            &thousands(l.macs),
        );
    }
    let params: usize = layers.iter().map(|l| l.params).sum();
    let macs: usize = layers.iter().map(|l| l.macs).sum();
    row(
        "total",
        "",
        "",
        &thousands(params),
        &thousands(bytes),
        &thousands(macs),
    );
    say!(
        "\n{} parameters ({:.2} MB{}); {} multiply-adds per example ({:.2} MFLOP forward, about 3× that per training example)",
        thousands(params),
        bytes as f64 / 1e6,
        if lower { ", at the precision each type says" } else { " as f32" },
        thousands(macs),
        2.0 * macs as f64 / 1e6
    );
    Ok(())
}
