//! Autograd behaviour: accumulation, no_grad, detach, error cases.

use nabla_core::{in_pool, no_grad, Tensor};

fn leaf(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, [v.len()])
        .unwrap()
        .requires_grad_(true)
}

#[test]
fn gradients_accumulate_until_zero_grad() {
    let x = leaf(&[1.0, -2.0]);
    for _ in 0..2 {
        x.mul_scalar(3.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    }
    assert_eq!(x.grad().unwrap().to_vec(), vec![6.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn diamond_graph_sums_both_paths() {
    // y = exp(x)·x + exp(x): dy/dx = exp(x)·(x + 2)
    let x = leaf(&[0.5]);
    let e = x.exp().unwrap();
    e.mul(&x)
        .unwrap()
        .add(&e)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let want = 0.5f32.exp() * 2.5;
    assert!((x.grad().unwrap().item().unwrap() - want).abs() < 1e-6);
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = leaf(&[1.0, 2.0]);
    let y = no_grad(|| x.mul(&x).unwrap());
    assert!(!y.requires_grad() && y.is_leaf());
    let d = x.mul(&x).unwrap().detach();
    assert!(!d.requires_grad());
    assert_eq!(d.to_vec(), vec![1.0, 4.0]);
    let z = x.mul(&x).unwrap();
    assert_eq!(z.grad_fn_name(), Some("MulBackward"));
    assert_eq!(z.to_string(), "tensor([1., 4.], grad_fn=<MulBackward>)");
}

#[test]
fn in_pool_keeps_the_callers_grad_mode() {
    let x = leaf(&[1.0, 2.0]);
    let y = no_grad(|| in_pool(|| x.mul(&x).unwrap()));
    assert!(!y.requires_grad() && y.is_leaf());
    let z = in_pool(|| x.mul(&x).unwrap());
    assert_eq!(z.grad_fn_name(), Some("MulBackward"));
    in_pool(|| z.sum_all().unwrap().backward().unwrap());
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0]);
    // the pool thread's own mode is left as it was
    assert!(in_pool(|| x.mul(&x).unwrap()).requires_grad());
}

#[test]
fn inputs_that_need_no_grad_get_none() {
    let x = leaf(&[1.0, 2.0]);
    let c = Tensor::from_slice(&[3.0, 4.0], [2]).unwrap();
    x.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 4.0]);
    assert!(c.grad().is_none());
}

#[test]
fn backward_errors_are_clear() {
    let x = leaf(&[1.0, 2.0]);
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert_eq!(
        e,
        "backward: called on a tensor of shape [2]; backward needs a scalar (one element) \
         or an explicit output gradient: use backward_with_grad"
    );
    let s = y.sum_all().unwrap();
    s.backward().unwrap();
    let e = s.backward().unwrap_err().to_string();
    assert!(e.contains("second time"), "{e}");
    let e = Tensor::scalar(1.0).backward().unwrap_err().to_string();
    assert!(e.contains("does not require grad"), "{e}");
    let e = y
        .backward_with_grad(&Tensor::ones([3]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gradient of shape [3] given for an output of shape [2]"),
        "{e}"
    );
}

#[test]
fn views_share_storage_with_their_base() {
    let x = Tensor::zeros([2, 3]);
    let v = x.t().unwrap();
    x.update_data(|d| d[1] = 7.0).unwrap();
    assert_eq!(v.to_vec()[2], 7.0);
}

#[test]
fn backward_hook_sees_each_leaf_once_with_its_complete_gradient() {
    // w1 is used twice (the second use after w2), so its gradient is complete
    // only after both paths: the hook must not see it before then
    let (w1, w2, b) = (leaf(&[2.0, 3.0]), leaf(&[-1.0, 0.5]), leaf(&[0.25]));
    let h = w1.mul(&w2).unwrap(); // uses w1, w2
    let y = h
        .add(&w1)
        .unwrap()
        .sum_all()
        .unwrap()
        .add(&b.sum_all().unwrap())
        .unwrap();
    let mut seen: Vec<(u64, Vec<f32>)> = Vec::new();
    y.backward_with_hook(&mut |t| {
        seen.push((t.id(), t.grad().unwrap().to_vec()));
        Ok(())
    })
    .unwrap();
    // d/dw1 = w2 + 1, d/dw2 = w1, d/db = 1
    let expect = [
        (w1.id(), vec![0.0, 1.5]),
        (w2.id(), vec![2.0, 3.0]),
        (b.id(), vec![1.0]),
    ];
    assert_eq!(seen.len(), 3, "each leaf once: {seen:?}");
    for (id, grad) in expect {
        let at = seen.iter().find(|(s, _)| *s == id).expect("leaf seen");
        assert_eq!(at.1, grad);
    }
    // and the hook's error ends the pass
    let z = w2.mul_scalar(2.0).unwrap().sum_all().unwrap();
    let err = z
        .backward_with_hook(&mut |_| Err(nabla_core::Error::Backward("stop".into())))
        .unwrap_err();
    assert!(err.to_string().contains("stop"), "{err}");
}
