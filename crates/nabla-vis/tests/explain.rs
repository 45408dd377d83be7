//! Attribution methods on a LeNet trained for one epoch on the shipped
//! digits: integrated-gradients completeness, the model-randomization
//! sanity check, Grad-CAM's resolution.

use nabla_core::{manual_seed, no_grad, Result, Tensor};
use nabla_data::Mnist;
use nabla_nn::loss::cross_entropy;
use nabla_nn::optim::{Adam, Optimizer};
use nabla_nn::zoo::LeNet;
use nabla_nn::{Module, Parameters};
use nabla_vis::explain::{grad_cam, integrated_gradients, rank_correlation, saliency, smoothgrad};

fn trained() -> (LeNet, Tensor, Tensor) {
    manual_seed(0);
    let data = Mnist::load(Mnist::shipped_dir()).unwrap();
    let (x, y) = data.train.to_tensors(0.1307, 0.3081).unwrap();
    let (tx, ty) = data.test.to_tensors(0.1307, 0.3081).unwrap();
    let model = LeNet::new();
    let mut opt = Adam::new(model.parameters(), 2e-3);
    let mut order: Vec<f32> = (0..y.numel()).map(|i| i as f32).collect();
    nabla_core::Generator::new(1).shuffle(&mut order);
    for chunk in order.chunks(64) {
        let idx = Tensor::from_slice(chunk, [chunk.len()]).unwrap();
        opt.zero_grad();
        let l = cross_entropy(
            &model.forward(&x.index_select(0, &idx).unwrap()).unwrap(),
            &y.index_select(0, &idx).unwrap(),
        )
        .unwrap();
        l.backward().unwrap();
        opt.step().unwrap();
    }
    let acc = no_grad(|| model.forward(&tx))
        .unwrap()
        .argmax(1, false)
        .unwrap()
        .eq(&ty)
        .unwrap()
        .mean_all()
        .unwrap()
        .item()
        .unwrap();
    assert!(
        acc > 0.9,
        "the model used for explanations should work: {acc}"
    );
    (model, tx, ty)
}

#[test]
fn attributions_behave_as_the_methods_promise() {
    let (model, tx, ty) = trained();
    let f = |b: &Tensor| -> Result<Tensor> { model.forward(b) };
    let (i, target) = (1234, ty.to_vec()[1234] as usize);
    let x = tx.narrow(0, i, 1).unwrap().squeeze(0).unwrap();

    // integrated gradients: attributions sum to f(x) − f(baseline) within 1% at 64 steps
    let (attr, delta) = integrated_gradients(&f, &x, None, target, 64).unwrap();
    let total = attr.sum_all().unwrap().item().unwrap();
    println!("integrated gradients: sum {total}, f(x) - f(b) = {delta}");
    assert!(
        (total - delta).abs() <= 0.01 * delta.abs(),
        "sum {total} vs f(x) - f(b) = {delta}"
    );

    // model randomization (Adebayo et al.): a re-initialized model's saliency
    // must differ clearly from the trained one's
    let sal = saliency(&f, &x, target).unwrap();
    assert_eq!(sal.shape(), &[28, 28]);
    manual_seed(99);
    let random = LeNet::new();
    let g = |b: &Tensor| -> Result<Tensor> { random.forward(b) };
    let rho = rank_correlation(&sal, &saliency(&g, &x, target).unwrap()).unwrap();
    println!("rank correlation, trained vs random saliency: {rho}");
    assert!(
        rho < 0.5,
        "rank correlation {rho} between trained and random saliency"
    );
    // and the trained saliency agrees with its own smoothed version more
    let smooth = smoothgrad(&f, &x, target, 16, 0.15, 7).unwrap();
    assert!(rank_correlation(&sal, &smooth).unwrap() > rho);

    // Grad-CAM at conv2: a 10×10 map, upsampled to 28×28, non-negative
    let features = |b: &Tensor| -> Result<Tensor> {
        let a = model.conv1.forward(b)?.relu()?.max_pool2d(2)?;
        model.conv2.forward(&a)?.relu()
    };
    let head = |a: &Tensor| -> Result<Tensor> {
        let a = a.max_pool2d(2)?.reshape([-1, 400])?;
        let a = model.fc2.forward(&model.fc1.forward(&a)?.relu()?)?.relu()?;
        model.fc3.forward(&a)
    };
    let (cam, raw) = grad_cam(&features, &head, &x, target).unwrap();
    assert_eq!(raw.shape(), &[10, 10]);
    assert_eq!(cam.shape(), &[28, 28]);
    assert!(cam.to_vec().iter().all(|&v| v >= 0.0) && cam.max_all().unwrap().item().unwrap() > 0.0);
    assert!(saliency(&f, &tx, 0).is_err(), "a batch is not one example");
}
