//! Tensors of bf16, f16 and i64: held in their own type, converted exactly
//! or rounded to nearest-even, read by the f32 kernels through an exact
//! widening (or refused where none exists), kept by views, copies and
//! device moves, and used as indices without passing through f32.

use nabla_core::half::{Bf16, F16};
use nabla_core::{DType, Device, HostData, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn conversions_round_to_nearest_even_on_edge_values() {
    // 1 + 2^-8 lies halfway between the bf16 neighbours 1 and 1 + 2^-7:
    // the tie goes to the even one (1); 1 + 3·2^-8 goes up to 1 + 2^-6.
    // 2^-133 is a subnormal f32 that bf16 holds (bits 1); 1e-8 is below f16's
    // smallest subnormal's half and becomes +0; 65520 rounds to f16's ∞
    // and to bf16's 65536.
    let tie = 1.0 + 2f32.powi(-8);
    let up = 1.0 + 3.0 * 2f32.powi(-8);
    let sub = 2f32.powi(-133);
    let x = t(
        &[tie, up, sub, f32::INFINITY, -0.0, 1e-8, 65520.0, f32::NAN],
        &[8],
    );
    let HostData::BF16(b) = x.to_dtype(DType::BF16).unwrap().to_host_data() else {
        panic!("not bf16")
    };
    let bits: Vec<u16> = b.iter().map(|h| h.0).collect();
    assert_eq!(
        &bits[..7],
        &[0x3F80, 0x3F82, 0x0001, 0x7F80, 0x8000, 0x322C, 0x4780]
    );
    assert!(b[7].to_f32().is_nan());
    let HostData::F16(h) = x.to_dtype(DType::F16).unwrap().to_host_data() else {
        panic!("not f16")
    };
    let bits: Vec<u16> = h.iter().map(|h| h.0).collect();
    // 1 + 2^-8 and 1 + 3·2^-8 are exact in f16 (10 mantissa bits)
    assert_eq!(
        &bits[..7],
        &[0x3C04, 0x3C0C, 0x0000, 0x7C00, 0x8000, 0x0000, 0x7C00]
    );
    assert!(h[7].to_f32().is_nan());
    // widening back is exact: every bf16 is an f32
    let back = x
        .to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    assert_eq!(back.dtype(), DType::F32);
    assert_eq!(back.to_vec()[1], Bf16(0x3F82).to_f32());
    assert_eq!(F16(0x0001).to_f32(), 2f32.powi(-24));
}

#[test]
fn i64_values_stay_exact_past_2_pow_24() {
    let big = (1i64 << 53) + 1;
    let ids = Tensor::from_vec_i64(vec![big, -7, 16_777_217], [3]).unwrap();
    assert_eq!(ids.dtype(), DType::I64);
    assert_eq!(ids.to_vec_i64().unwrap(), vec![big, -7, 16_777_217]);
    // f32 would have turned 2^24 + 1 into 2^24
    let e = ids.relu().unwrap_err().to_string();
    assert!(e.starts_with("relu: computes in f32"), "{e}");
    assert!(e.contains("9007199254740993"), "{e}");
    // only the values an op reads must fit: a view of the small ones works
    let tail = ids.narrow(0, 1, 1).unwrap();
    assert_eq!(tail.mul_scalar(2.0).unwrap().to_vec(), vec![-14.0]);
    // small integers widen exactly, and the result is f32 (nabla computes in f32)
    let small = Tensor::from_vec_i64(vec![3, -2], [2]).unwrap();
    let y = small.mul_scalar(2.0).unwrap();
    assert_eq!((y.dtype(), y.to_vec()), (DType::F32, vec![6.0, -4.0]));
    // a float becomes an i64 only when it is an integer
    assert_eq!(t(&[2.0, -3.0], &[2]).to_vec_i64().unwrap(), vec![2, -3]);
    let e = t(&[0.5], &[1])
        .to_dtype(DType::I64)
        .unwrap_err()
        .to_string();
    assert!(e.contains("0.5 is not an integer"), "{e}");
    assert!(t(&[f32::NAN], &[1]).to_dtype(DType::I64).is_err());
}

#[test]
fn i64_indices_select_gather_and_pick_targets() {
    let x = Tensor::arange(0.0, 12.0, 1.0)
        .unwrap()
        .reshape([4, 3])
        .unwrap();
    let ids = Tensor::from_vec_i64(vec![3, 0, 3], [3]).unwrap();
    let as_f32 = t(&[3.0, 0.0, 3.0], &[3]);
    assert_eq!(
        x.index_select(0, &ids).unwrap().to_vec(),
        x.index_select(0, &as_f32).unwrap().to_vec()
    );
    let idx = Tensor::from_vec_i64(vec![2, 0, 1, 1], [4, 1]).unwrap();
    assert_eq!(
        x.gather(1, &idx).unwrap().to_vec(),
        vec![2.0, 3.0, 7.0, 10.0]
    );
    // an index past the end is named exactly, not rounded through f32
    let far = Tensor::from_vec_i64(vec![16_777_217], [1]).unwrap();
    let e = x.index_select(0, &far).unwrap_err().to_string();
    assert!(e.contains("index 16777217 out of range"), "{e}");
    let neg = Tensor::from_vec_i64(vec![-1], [1]).unwrap();
    assert!(x.index_select(0, &neg).is_err());
}

#[test]
fn half_tensors_compute_as_their_exact_f32_values() {
    nabla_core::manual_seed(5);
    let a = Tensor::randn([4, 5]).to_dtype(DType::BF16).unwrap();
    let b = Tensor::randn([5, 3]).to_dtype(DType::F16).unwrap();
    let (wa, wb) = (
        a.to_dtype(DType::F32).unwrap(),
        b.to_dtype(DType::F32).unwrap(),
    );
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_vec(), wa.matmul(&wb).unwrap().to_vec());
    assert_eq!(a.tanh().unwrap().to_vec(), wa.tanh().unwrap().to_vec());
    assert_eq!(
        a.sum_all().unwrap().to_vec(),
        wa.sum_all().unwrap().to_vec()
    );
}

#[test]
fn gradients_reach_half_leaves_in_their_dtype() {
    let w = t(&[0.5, -1.25, 3.0], &[3])
        .to_dtype(DType::BF16)
        .unwrap()
        .requires_grad_(true);
    let loss = w.mul(&w).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    let g = w.grad().unwrap();
    assert_eq!(g.dtype(), DType::BF16);
    assert_eq!(g.to_vec(), vec![1.0, -2.5, 6.0]);
    // through a conversion, the gradient comes back in the source's dtype
    let x = t(&[1.0, 2.0], &[2]).requires_grad_(true);
    let h = x.to_dtype(DType::F16).unwrap();
    h.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = x.grad().unwrap();
    assert_eq!((gx.dtype(), gx.to_vec()), (DType::F32, vec![3.0, 3.0]));
}

#[test]
fn views_copies_and_moves_keep_the_dtype() {
    let ids = Tensor::from_vec_i64((0..6).map(|i| (1i64 << 40) + i).collect(), [2, 3]).unwrap();
    let p = ids.permute(&[1, 0]).unwrap();
    assert_eq!(p.dtype(), DType::I64);
    let c = p.contiguous().unwrap();
    assert_eq!(c.dtype(), DType::I64);
    let base = 1i64 << 40;
    let want: Vec<i64> = [0, 3, 1, 4, 2, 5].iter().map(|i| base + i).collect();
    assert_eq!(c.to_vec_i64().unwrap(), want);
    let moved = c.to(Device::Reference).unwrap();
    assert_eq!(
        (moved.device(), moved.to_vec_i64().unwrap()),
        (Device::Reference, want)
    );
    let n = ids.narrow(1, 1, 2).unwrap().reshape([4]).unwrap();
    assert_eq!(n.to_vec_i64().unwrap()[3], base + 5);

    // copy_from converts into the destination's dtype, as copy_ does
    let dst = Tensor::zeros([3]).to_dtype(DType::BF16).unwrap();
    dst.copy_from(&t(&[1.0 + 2f32.powi(-8), 2.0, -3.0], &[3]))
        .unwrap();
    assert_eq!(dst.dtype(), DType::BF16);
    assert_eq!(dst.to_vec(), vec![1.0, 2.0, -3.0]);
    let f = Tensor::zeros([2]);
    f.copy_from(&Tensor::from_vec_i64(vec![4, 5], [2]).unwrap())
        .unwrap();
    assert_eq!((f.dtype(), f.to_vec()), (DType::F32, vec![4.0, 5.0]));
}

#[test]
fn in_place_f32_writes_refuse_other_dtypes() {
    let w = t(&[1.0, 2.0], &[2]).to_dtype(DType::BF16).unwrap();
    let e = w.update_data(|v| v[0] = 0.0).unwrap_err().to_string();
    assert!(e.contains("this tensor is bf16"), "{e}");
    let rule = nabla_core::backend::UpdateRule::Sgd {
        lr: 0.1,
        weight_decay: 0.0,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        first_step: true,
    };
    let e = w
        .apply_update(&rule, &t(&[1.0, 1.0], &[2]), &[], false)
        .unwrap_err();
    assert!(
        e.to_string().starts_with("optimizer step: writes f32"),
        "{e}"
    );
}

#[test]
fn ops_that_move_values_keep_the_dtype() {
    let big = 1i64 << 40;
    let a = Tensor::from_vec_i64(vec![big, 1, 2, 3], [2, 2]).unwrap();
    let b = Tensor::from_vec_i64(vec![big + 7, 9], [2, 1]).unwrap();
    // joined exactly past 2^24 (the f32 kernels would refuse these)
    let c = Tensor::cat(&[a.clone(), b.clone()], 1).unwrap();
    assert_eq!(c.dtype(), DType::I64);
    assert_eq!(c.to_vec_i64().unwrap(), vec![big, 1, big + 7, 2, 3, 9]);
    let s = Tensor::stack(&[a.clone(), a.clone()], 0).unwrap();
    assert_eq!((s.dtype(), s.shape()), (DType::I64, &[2usize, 2, 2][..]));
    let small = Tensor::from_vec_i64(vec![4, 5, 6], [3]).unwrap();
    let ids = Tensor::from_vec_i64(vec![2, 0], [2]).unwrap();
    let picked = small.index_select(0, &ids).unwrap();
    assert_eq!(
        (picked.dtype(), picked.to_vec_i64().unwrap()),
        (DType::I64, vec![6, 4])
    );
    let g = small.gather(0, &ids).unwrap();
    assert_eq!(g.dtype(), DType::I64);
    let mask = t(&[1.0, 0.0, 1.0], &[3]);
    let filled = small.masked_fill(&mask, -1.0).unwrap();
    assert_eq!(
        (filled.dtype(), filled.to_vec_i64().unwrap()),
        (DType::I64, vec![-1, 5, -1])
    );
    assert!(small.masked_fill(&mask, 0.5).is_err(), "0.5 is no i64");
    // halves too, with their gradient; mixed dtypes and arithmetic give f32
    let h = t(&[1.5, -2.0], &[2])
        .to_dtype(DType::BF16)
        .unwrap()
        .requires_grad_(true);
    let joined = Tensor::cat(&[h.clone(), h.clone()], 0).unwrap();
    assert_eq!(joined.dtype(), DType::BF16);
    joined
        .to_dtype(DType::F32)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(h.grad().unwrap().to_vec(), vec![2.0, 2.0]);
    let mixed = Tensor::cat(&[h.clone(), t(&[3.0], &[1])], 0).unwrap();
    assert_eq!(mixed.dtype(), DType::F32);
    assert_eq!(small.add(&small).unwrap().dtype(), DType::F32);
}

/// An embedding table held as bf16: the rows are picked in bf16 (not the
/// whole table widened), the same bits as rounding the f32 rows, and the
/// gradient reaches the table in its dtype.
#[test]
fn bf16_rows_are_picked_as_they_are() {
    nabla_core::manual_seed(9);
    let table = Tensor::randn([50, 6]);
    let ids = Tensor::from_vec_i64(vec![7, 0, 49, 7], [4]).unwrap();
    let half = table.to_dtype(DType::BF16).unwrap().requires_grad_(true);
    let rows = half.index_select(0, &ids).unwrap();
    assert_eq!(rows.dtype(), DType::BF16);
    let want = table
        .index_select(0, &ids)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    assert_eq!(rows.to_host_data(), want.to_host_data());
    // along a middle dim of a 3-d tensor too
    let cube = Tensor::randn([2, 5, 3]).to_dtype(DType::F16).unwrap();
    let picked = cube
        .index_select(1, &Tensor::from_vec_i64(vec![4, 1], [2]).unwrap())
        .unwrap();
    let wide = cube.to_dtype(DType::F32).unwrap();
    let expect = wide
        .index_select(1, &Tensor::from_vec(vec![4.0, 1.0], [2]).unwrap())
        .unwrap();
    assert_eq!(picked.to_vec(), expect.to_vec());
    rows.to_dtype(DType::F32)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = half.grad().unwrap();
    assert_eq!(g.dtype(), DType::BF16);
    let g = g.to_vec();
    assert_eq!((g[7 * 6], g[0], g[49 * 6], g[6]), (2.0, 1.0, 1.0, 0.0));
}
