//! The Trainer on real digits: it learns, a run stopped anywhere resumes to
//! the uninterrupted run's weights and metrics, callbacks keep their state,
//! and bad runs end in clear errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nabla_core::Tensor;
use nabla_data::{DataLoader, ImageDataset, ImageSet, Mnist};
use nabla_nn::optim::Sgd;
use nabla_nn::scheduler::Schedule;
use nabla_nn::state_dict::state_dict;
use nabla_nn::{Flatten, Linear, Parameters, ReLU, Sequential};
use nabla_train::{Callback, Ctx, Flow, Outcome, RunDir, StepEnd, TrainError, Trainer};

fn digits() -> (DataLoader<ImageDataset>, DataLoader<ImageDataset>) {
    let m = Mnist::locate("mnist", None).unwrap();
    let train = ImageDataset::mnist_normalized(m.train.balanced_subset(0.04, 1));
    let test = ImageDataset::mnist_normalized(m.test.balanced_subset(0.1, 1));
    (
        DataLoader::new(train, 32).seed(3),
        DataLoader::new(test, 100).shuffle(false),
    )
}

fn mlp() -> Sequential {
    nabla_core::manual_seed(7);
    Sequential::new()
        .add(Flatten)
        .add(Linear::new(784, 32))
        .add(ReLU)
        .add(Linear::new(32, 10))
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Raises the interrupt flag after `at` optimizer steps.
struct InterruptAt {
    at: usize,
    flag: Arc<AtomicBool>,
}

impl Callback for InterruptAt {
    fn name(&self) -> &str {
        "interrupt_at"
    }
    fn on_step_end(&mut self, step: &StepEnd, _: &mut Ctx) -> nabla_train::Result<Flow> {
        if step.global_step == self.at {
            self.flag.store(true, Ordering::SeqCst);
        }
        Ok(Flow::Continue)
    }
}

/// A trainer of the kind every run below uses: a schedule and early
/// stopping, so their states must survive a resumption too.
fn trainer(model: &Sequential) -> Trainer<'_> {
    let sgd = Sgd::new(model.parameters(), 0.05).momentum(0.9);
    Trainer::new(model, sgd)
        .epochs(3)
        .without("console")
        .schedule(Schedule::Exponential { gamma: 0.5 }, false)
        .early_stopping(5, 0.0)
        .log_every(2)
}

fn weights(model: &Sequential) -> Vec<Vec<f32>> {
    state_dict(model)
        .into_iter()
        .map(|(_, t)| t.to_vec())
        .collect()
}

/// metrics.csv without its time columns (seconds, train and test seconds).
fn metrics_without_times(run: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_run_learns_and_writes_its_directory() {
    let (train, test) = digits();
    let model = mlp();
    let before = Trainer::new(&model, Sgd::new(model.parameters(), 0.05))
        .evaluate(&test)
        .unwrap();
    let out = dir("learns");
    let mut t = trainer(&model).run_dir(RunDir::create(&out, false).unwrap());
    assert_eq!(t.fit(&train, Some(&test)).unwrap(), Outcome::Finished);
    let after = t.evaluate(&test).unwrap();
    assert_eq!(after.total, nabla_train::BatchSource::num_examples(&test));
    assert!(
        after.accuracy() > before.accuracy() + 0.3 && after.mean_loss() < before.mean_loss(),
        "{before:?} -> {after:?}"
    );
    let history = nabla_train::History::read(&out).unwrap();
    assert_eq!(history.epochs.len(), 3);
    // the schedule halved the rate after each epoch (the row has the epoch's rate)
    let lrs: Vec<f64> = history.epochs.iter().map(|r| r.lr).collect();
    assert_eq!(lrs, [0.05, 0.025, 0.0125]);
    assert!(!history.steps.is_empty());
    assert_eq!(t.predict(&test).unwrap().shape(), &[after.total, 10]);
    for f in [
        "model.safetensors",
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn interrupted_anywhere_and_resumed_equals_the_whole_run() {
    let (train, test) = digits();
    let whole_dir = dir("whole");
    let whole = mlp();
    let mut t = trainer(&whole).run_dir(RunDir::create(&whole_dir, false).unwrap());
    t.fit(&train, Some(&test)).unwrap();
    // mid-epoch, at an epoch's end, twice in one run
    for stops in [&[5][..], &[10], &[3, 17]] {
        let out = dir(&format!("stop{}", stops[0]));
        let mut run = Some(RunDir::create(&out, false).unwrap());
        let mut sessions = 0;
        let model = mlp();
        for at in stops.iter().copied().map(Some).chain([None]) {
            sessions += 1;
            let flag = Arc::new(AtomicBool::new(false));
            let mut t = trainer(&model).interrupt_on(flag.clone());
            if let Some(at) = at {
                t = t.callback(InterruptAt { at, flag });
            }
            t = match run.take() {
                Some(r) => t.run_dir(r),
                None => t.resume(RunDir::resume(&out).unwrap()).unwrap(),
            };
            let outcome = t.fit(&train, Some(&test)).unwrap();
            let expected = if at.is_some() {
                Outcome::Interrupted
            } else {
                Outcome::Finished
            };
            assert_eq!(outcome, expected, "{stops:?}, session {sessions}");
            if let Some(at) = at {
                assert_eq!(t.state().global_step, at);
            }
        }
        assert_eq!(weights(&model), weights(&whole), "stopped at {stops:?}");
        assert_eq!(
            metrics_without_times(&out),
            metrics_without_times(&whole_dir)
        );
        let steps = |d: &std::path::Path| std::fs::read_to_string(d.join("steps.csv")).unwrap();
        assert_eq!(steps(&out), steps(&whole_dir), "stopped at {stops:?}");
        std::fs::remove_dir_all(&out).unwrap();
    }
    std::fs::remove_dir_all(&whole_dir).unwrap();
}

#[test]
fn a_finished_run_extends_with_more_epochs() {
    let (train, test) = digits();
    let out = dir("extend");
    let model = mlp();
    let mut t = trainer(&model)
        .epochs(2)
        .run_dir(RunDir::create(&out, false).unwrap());
    t.fit(&train, Some(&test)).unwrap();
    drop(t); // (it holds the run's lock)
    let mut t = trainer(&model)
        .epochs(3)
        .resume(RunDir::resume(&out).unwrap())
        .unwrap();
    assert_eq!(t.fit(&train, Some(&test)).unwrap(), Outcome::Finished);
    let whole_dir = dir("extend-whole");
    let whole = mlp();
    let mut t = trainer(&whole).run_dir(RunDir::create(&whole_dir, false).unwrap());
    t.fit(&train, Some(&test)).unwrap();
    assert_eq!(weights(&model), weights(&whole));
    assert_eq!(
        metrics_without_times(&out),
        metrics_without_times(&whole_dir)
    );
    // a max-steps run resumed past its limit takes no extra step
    let out2 = dir("maxsteps");
    let m = mlp();
    let mut t = trainer(&m)
        .max_steps(Some(4))
        .run_dir(RunDir::create(&out2, false).unwrap());
    assert_eq!(t.fit(&train, Some(&test)).unwrap(), Outcome::MaxSteps);
    drop(t);
    let mut t = trainer(&m)
        .max_steps(Some(4))
        .resume(RunDir::resume(&out2).unwrap())
        .unwrap();
    assert_eq!(t.fit(&train, Some(&test)).unwrap(), Outcome::MaxSteps);
    assert_eq!(t.state().global_step, 4);
    for d in [out, whole_dir, out2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn divergence_names_the_last_checkpoint_and_keeps_the_losses() {
    let (train, test) = digits();
    let out = dir("diverge");
    let model = mlp();
    let mut t = trainer(&model)
        .epochs(1)
        .run_dir(RunDir::create(&out, false).unwrap());
    t.fit(&train, Some(&test)).unwrap();
    drop(t);
    let mut t = trainer(&model)
        .epochs(2)
        .resume(RunDir::resume(&out).unwrap())
        .unwrap();
    t.optimizer().set_lr(1e30);
    let err = t.fit(&train, Some(&test)).unwrap_err();
    assert!(
        matches!(err, TrainError::Diverged { epoch: 2, .. }),
        "{err}"
    );
    let msg = err.to_string();
    let last = out.join("checkpoints/last.safetensors");
    assert!(msg.contains(&last.display().to_string()), "{msg}");
    let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    let last = steps.lines().last().unwrap();
    assert!(last.contains("NaN") || last.contains("inf"), "{steps}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn empty_data_and_a_busy_directory_are_errors() {
    let (train, _) = digits();
    let model = mlp();
    let empty = ImageSet {
        images: vec![],
        labels: vec![],
        height: 28,
        width: 28,
        classes: 10,
    };
    let none = DataLoader::new(ImageDataset::mnist_normalized(empty), 10);
    let mut t = trainer(&model);
    let err = t.fit(&train, Some(&none)).unwrap_err().to_string();
    assert_eq!(err, "the validation data is empty");
    let err = t.fit(&none, None).unwrap_err().to_string();
    assert_eq!(err, "the training data is empty");
    let out = dir("busy");
    let _held = RunDir::create(&out, false).unwrap();
    let err = RunDir::resume(&out).unwrap_err().to_string();
    assert!(err.contains("in use by another training"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// A callback of a user's own, with state that a checkpoint keeps.
struct CountSteps(usize);

impl Callback for CountSteps {
    fn name(&self) -> &str {
        "count_steps"
    }
    fn on_step_end(&mut self, _: &StepEnd, _: &mut Ctx) -> nabla_train::Result<Flow> {
        self.0 += 1;
        Ok(if self.0 == 7 {
            Flow::Stop("seven steps".into())
        } else {
            Flow::Continue
        })
    }
    fn state(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("n".into(), self.0.to_string())])
    }
    fn load_state(&mut self, s: &BTreeMap<String, String>, _: &mut Ctx) -> nabla_train::Result<()> {
        self.0 = s["n"].parse().unwrap();
        Ok(())
    }
}

#[test]
fn a_users_callback_stops_the_run_and_its_state_is_kept() {
    let (train, test) = digits();
    let out = dir("callback");
    let model = mlp();
    let mut t = trainer(&model)
        .callback(CountSteps(0))
        .run_dir(RunDir::create(&out, false).unwrap());
    assert_eq!(
        t.fit(&train, Some(&test)).unwrap(),
        Outcome::Stopped("seven steps".into())
    );
    drop(t);
    let (run, ck) = RunDir::resume(&out).unwrap();
    assert_eq!(ck.state.callbacks["count_steps"]["n"], "7");
    assert_eq!(ck.state.global_step, 7);
    let t = trainer(&model)
        .callback(CountSteps(0))
        .resume((run, ck))
        .unwrap();
    assert_eq!(t.state().global_step, 7);
    let _: &Tensor = &model.parameters()[0];
    std::fs::remove_dir_all(&out).unwrap();
}

/// Batches held in memory: `n` batches of `size` rows of a fixed random set.
struct Held(Vec<nabla_data::Batch>);

impl Held {
    fn new(rows: usize, size: usize) -> Held {
        let mut gen = nabla_core::Generator::new(5);
        let x: Vec<f32> = (0..rows * 6).map(|_| gen.uniform() * 2.0 - 1.0).collect();
        let y: Vec<f32> = (0..rows).map(|r| (r % 3) as f32).collect();
        let batches = (0..rows / size)
            .map(|b| nabla_data::Batch {
                inputs: Tensor::from_vec(x[b * size * 6..(b + 1) * size * 6].to_vec(), [size, 6])
                    .unwrap(),
                targets: Tensor::from_vec(y[b * size..(b + 1) * size].to_vec(), [size]).unwrap(),
            })
            .collect();
        Held(batches)
    }
}

impl nabla_train::BatchSource for Held {
    fn batches(
        &self,
        _: usize,
    ) -> Box<dyn Iterator<Item = nabla_train::Result<nabla_data::Batch>> + '_> {
        Box::new(self.0.iter().cloned().map(Ok))
    }
    fn num_batches(&self) -> usize {
        self.0.len()
    }
    fn num_examples(&self) -> usize {
        self.0.iter().map(|b| b.targets.numel()).sum()
    }
    fn batch_size(&self) -> usize {
        self.0[0].targets.numel()
    }
}

/// Gradients summed over two batches of 16 step as one batch of 32 does
/// (to rounding), with momentum and clipping; and a run of a number of
/// steps ends its last epoch early, validated.
#[test]
fn accumulated_gradients_step_as_a_larger_batch_and_runs_count_steps() {
    let linear = || {
        nabla_core::manual_seed(3);
        Sequential::new().add(Linear::new(6, 3))
    };
    let fit = |model: &Sequential, data: &Held, accum: usize| {
        let sgd = Sgd::new(model.parameters(), 0.1).momentum(0.9);
        Trainer::new(model, sgd)
            .without("console")
            .epochs(2)
            .clip_grad_norm(Some(0.5))
            .grad_accum(accum)
            .fit(data, None)
            .unwrap()
    };
    let (a, b) = (linear(), linear());
    fit(&a, &Held::new(128, 16), 2);
    fit(&b, &Held::new(128, 32), 1);
    let (wa, wb) = (weights(&a), weights(&b));
    assert_ne!(wa, weights(&linear()), "the weights moved");
    for (x, y) in wa.iter().flatten().zip(wb.iter().flatten()) {
        assert!((x - y).abs() < 1e-5, "{wa:?} vs {wb:?}");
    }
    // 4 steps an epoch, 6 in all: epochs of 4 and 2 steps, both validated
    let out = dir("steps");
    let model = linear();
    let data = Held::new(128, 32);
    let mut t = Trainer::new(&model, Sgd::new(model.parameters(), 0.1))
        .without("console")
        .steps(6)
        .run_dir(RunDir::create(&out, false).unwrap());
    assert_eq!(t.fit(&data, Some(&data)).unwrap(), Outcome::Finished);
    let history = nabla_train::History::read(&out).unwrap();
    let rows: Vec<(f64, f64)> = history.epochs.iter().map(|r| (r.epoch, r.step)).collect();
    assert_eq!(rows, [(1.0, 4.0), (2.0, 6.0)]);
    assert!(history.epochs.iter().all(|r| r.test_loss.is_finite()));
    std::fs::remove_dir_all(&out).unwrap();
}
