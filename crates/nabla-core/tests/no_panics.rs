//! Every op on shapes drawn at random (ranks 0–4, sizes 0–3, dims −3..3,
//! pairs that fit and pairs that do not): an answer or an error, never a
//! panic, and the answer's backward pass runs. This found 0-d tensors
//! indexed by dim 0 (sum, mean, max, var, narrow, transpose, cat,
//! index_select, gather) and padded images of no rows (conv2d).

use std::panic::{catch_unwind, AssertUnwindSafe};

use nabla_core::{Conv2dParams, Pool2d, Result, Tensor};

/// xorshift64: the same draws on every run.
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: u64) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n) as usize
    }
    fn shape(&mut self) -> Vec<usize> {
        let rank = self.below(5);
        (0..rank).map(|_| self.below(4)).collect()
    }
}

type Op<'a> = (&'static str, Box<dyn Fn() -> Result<Tensor> + 'a>);

fn ops<'a>(a: &'a Tensor, b: &'a Tensor, d: isize, k: usize) -> Vec<Op<'a>> {
    let idx = Tensor::from_vec(vec![k as f32], [1]).unwrap();
    let floor: Vec<f32> = b.to_vec().iter().map(|v| v.abs().floor()).collect();
    let index = Tensor::from_vec(floor, b.shape().to_vec()).unwrap();
    vec![
        ("add", Box::new(|| a.add(b))),
        ("mul", Box::new(|| a.mul(b))),
        ("div", Box::new(|| a.div(b))),
        ("pow", Box::new(|| a.pow(b))),
        ("maximum", Box::new(|| a.maximum(b))),
        ("matmul", Box::new(|| a.matmul(b))),
        ("where", Box::new(|| Tensor::where_cond(a, b, a))),
        ("masked_fill", Box::new(|| a.masked_fill(b, 1.0))),
        (
            "cat",
            Box::new(move || Tensor::cat(&[a.clone(), b.clone()], d)),
        ),
        (
            "stack",
            Box::new(move || Tensor::stack(&[a.clone(), b.clone()], d)),
        ),
        ("sum", Box::new(move || a.sum(&[d], true))),
        ("mean", Box::new(move || a.mean(&[d], false))),
        ("max", Box::new(move || a.max(&[d], false))),
        ("var", Box::new(move || a.var(&[d], 1, false))),
        ("std", Box::new(move || a.std(&[d], 0, true))),
        ("softmax", Box::new(move || a.softmax(d))),
        ("log_softmax", Box::new(move || a.log_softmax(d))),
        ("argmax", Box::new(move || a.argmax(d, false))),
        ("narrow", Box::new(move || a.narrow(d, k, 1))),
        ("transpose", Box::new(move || a.transpose(d, 0))),
        ("squeeze", Box::new(move || a.squeeze(d))),
        ("unsqueeze", Box::new(move || a.unsqueeze(d))),
        ("flatten", Box::new(move || a.flatten(d, -1))),
        ("expand", Box::new(|| a.expand(b.shape().to_vec()))),
        ("reshape", Box::new(|| a.reshape(b.shape().to_vec()))),
        ("gather", Box::new(move || a.gather(d, &index))),
        ("index_select", Box::new(move || a.index_select(d, &idx))),
        ("linear", Box::new(|| a.linear(b, None))),
        (
            "conv2d",
            Box::new(move || a.conv2d(b, None, Conv2dParams::default().padding(k))),
        ),
        (
            "conv2d_same",
            Box::new(|| a.conv2d(b, None, Conv2dParams::default().same())),
        ),
        (
            "max_pool2d",
            Box::new(move || a.max_pool2d(Pool2d::new(k.max(1)).ceil_mode(true))),
        ),
        (
            "avg_pool2d",
            Box::new(move || {
                a.avg_pool2d(
                    Pool2d::new(2)
                        .padding(k.min(1))
                        .ceil_mode(k.is_multiple_of(2)),
                )
            }),
        ),
        ("dropout", Box::new(|| a.dropout(0.5, true))),
        ("mean_all", Box::new(|| a.mean_all())),
        ("max_all", Box::new(|| a.max_all())),
        ("t", Box::new(|| a.t())),
        ("elu", Box::new(|| a.elu(1.0))),
        ("softplus", Box::new(|| a.softplus(1.0, 20.0))),
    ]
}

#[test]
fn random_shapes_give_answers_or_errors() {
    let mut draws = Draws(0x1234_5678_9abc_def1);
    let mut panicked = Vec::new();
    for _ in 0..1500 {
        let (sa, sb) = (draws.shape(), draws.shape());
        let a = Tensor::randn(sa.clone()).requires_grad_(true);
        let b = Tensor::randn(sb.clone()).requires_grad_(true);
        let (d, k) = (draws.below(7) as isize - 3, draws.below(4));
        for (name, op) in ops(&a, &b, d, k) {
            let run = catch_unwind(AssertUnwindSafe(|| {
                if let Ok(y) = op() {
                    // (an answer that needs no gradient may refuse backward)
                    let _ = y.sum_all().and_then(|s| s.backward());
                }
            }));
            if run.is_err() {
                panicked.push(format!("{name} of {sa:?} and {sb:?}, dim {d}, k {k}"));
            }
        }
    }
    assert!(
        panicked.is_empty(),
        "{} panics, e.g. {:?}",
        panicked.len(),
        &panicked[..panicked.len().min(5)]
    );
}

/// The same ops on bf16, f16 and i64 tensors (i64 values past 2^24 among
/// them, which the f32 kernels refuse), mixed with f32 ones: an answer or
/// an error, never a panic, and the answer's backward pass runs.
#[test]
fn other_dtypes_give_answers_or_errors() {
    use nabla_core::DType;
    let mut draws = Draws(0x0fed_cba9_8765_4321);
    let mut panicked = Vec::new();
    let make = |shape: &[usize], dtype: DType, draws: &mut Draws| -> Tensor {
        if dtype != DType::I64 {
            let t = Tensor::randn(shape.to_vec()).to_dtype(dtype).unwrap();
            return t.requires_grad_(true);
        }
        let n: usize = shape.iter().product();
        let big = draws.below(4) == 0;
        let values = (0..n)
            .map(|_| draws.below(5) as i64 + if big { 1 << 25 } else { 0 })
            .collect();
        Tensor::from_vec_i64(values, shape.to_vec()).unwrap()
    };
    let dtypes = [DType::F32, DType::BF16, DType::F16, DType::I64];
    for _ in 0..400 {
        let (sa, sb) = (draws.shape(), draws.shape());
        let (ta, tb) = (dtypes[draws.below(4)], dtypes[draws.below(4)]);
        let (a, b) = (make(&sa, ta, &mut draws), make(&sb, tb, &mut draws));
        let (d, k) = (draws.below(7) as isize - 3, draws.below(4));
        for (name, op) in ops(&a, &b, d, k) {
            let run = catch_unwind(AssertUnwindSafe(|| {
                if let Ok(y) = op() {
                    let _ = y.to_string();
                    let _ = y.sum_all().and_then(|s| s.backward());
                }
            }));
            if run.is_err() {
                panicked.push(format!(
                    "{name} of {ta} {sa:?} and {tb} {sb:?}, dim {d}, k {k}"
                ));
            }
        }
    }
    assert!(
        panicked.is_empty(),
        "{} panics, e.g. {:?}",
        panicked.len(),
        &panicked[..panicked.len().min(5)]
    );
}

#[test]
fn a_scalar_has_dim_0_as_pytorch_says() {
    let s = Tensor::scalar(3.0).requires_grad_(true);
    assert_eq!(s.sum(&[0], false).unwrap().item().unwrap(), 3.0);
    assert_eq!(s.mean(&[-1], true).unwrap().shape(), &[] as &[usize]);
    assert_eq!(s.max(&[0], false).unwrap().item().unwrap(), 3.0);
    assert_eq!(s.transpose(0, -1).unwrap().item().unwrap(), 3.0);
    // ops that need the dimension to exist refuse, naming it
    assert!(s.narrow(0, 0, 1).is_err());
    assert!(Tensor::cat(&[s.clone(), s.clone()], 0).is_err());
    assert!(s
        .index_select(0, &Tensor::from_vec(vec![0.0], [1]).unwrap())
        .is_err());
    let e = s.size(0).unwrap_err().to_string();
    assert!(e.contains("rank 0"), "{e}");
}
