//! The model files' tests: the zoo builds, bad files are clear, inferred
//! shapes equal the layers' outputs.

use super::*;

#[test]
fn the_zoo_builds_and_the_reference_as_written_is_refused() {
    for (name, _) in ZOO.iter().filter(|(n, _)| *n != "lenet-as-written") {
        let (spec, src) = load_spec(name).unwrap();
        let m = build(&spec, &src, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.output_shape(), &[10], "{name}");
    }
    let (spec, src) = load_spec("lenet").unwrap();
    let m = build(&spec, &src, None).unwrap();
    assert_eq!(m.num_parameters(), 61706);
    assert_eq!(m.output_shape(), &[10]);
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "conv1.weight");
    assert_eq!(names[9], "fc3.bias");
    let macs: usize = m.layers.iter().map(|l| l.macs).sum();
    assert_eq!(
        macs,
        6 * 784 * 25 + 16 * 100 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    );
    let (spec, src) = load_spec("lenet-as-written").unwrap();
    let e = build(&spec, &src, None).err().unwrap().to_string();
    assert!(e.contains("layer fc1 (linear): expects 400 input features but would receive 1600 = 16×10×10 per example"), "{e}");
    assert!(
        e.contains("a pooling layer is missing: a 2×2 max-pool"),
        "{e}"
    );
}

#[test]
fn bad_files_are_clear() {
    let bad = |t: &str| {
        toml::from_str::<ModelFile>(t)
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default()
    };
    assert!(bad("input = [1]\n[[layers]]\ntype = \"conv3d\"\n").contains("unknown variant"));
    let spec: ModelFile = toml::from_str(
        "input = [4]\n[[layers]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 3\n",
    )
    .unwrap();
    let e = build(&spec, "m.toml", None).err().unwrap().to_string();
    assert_eq!(
        e,
        "m.toml: layer 0 (conv2d): expects an image [C, H, W], receives [4] per example"
    );
    assert!(load_spec("no-such-model").is_err());
    // empty layers are refused when the model is built, not at its first step
    for (input, layer, what) in [
        (
            "[28, 28]",
            "type = \"lstm\"\nhidden_size = 0",
            "hidden_size",
        ),
        (
            "[28, 28]",
            "type = \"linear\"\nout_features = 0",
            "out_features",
        ),
        (
            "[1, 28, 28]",
            "type = \"conv2d\"\nout_channels = 0\nkernel = 3",
            "out_channels",
        ),
    ] {
        let spec: ModelFile =
            toml::from_str(&format!("input = {input}\n[[layers]]\n{layer}\n")).unwrap();
        let e = build(&spec, "m.toml", None).err().unwrap().to_string();
        assert!(e.contains(what) && e.contains("at least 1"), "{e}");
    }
}

/// "same" padding and ceil_mode: the inferred shapes are the ones the
/// layers produce.
#[test]
fn same_padding_and_ceil_mode_shapes_are_inferred() {
    let spec: ModelFile = toml::from_str(
        "input = [2, 7, 9]\n\
         [[layers]]\ntype = \"conv2d\"\nout_channels = 3\nkernel = 4\npadding = \"same\"\n\
         [[layers]]\ntype = \"maxpool2d\"\nkernel = 2\nceil_mode = true\n\
         [[layers]]\ntype = \"avgpool2d\"\nkernel = 3\nstride = 2\npadding = 1\nceil_mode = true\n\
         [[layers]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 3\npadding = \"valid\"\n",
    )
    .unwrap();
    let m = build(&spec, "m.toml", None).unwrap();
    // 7×9 → same 7×9 → ceil 4×5 → ceil 3×3 → valid 1×1
    assert_eq!(m.output_shape(), &[2, 1, 1]);
    let y = m.forward(&Tensor::zeros([5, 2, 7, 9])).unwrap();
    assert_eq!(y.shape(), &[5, 2, 1, 1]);
    let conv = |padding: &str, stride: usize| {
        let text = format!("input = [1, 8, 8]\n[[layers]]\ntype = \"conv2d\"\nout_channels = 1\nkernel = 3\nstride = {stride}\npadding = {padding}\n");
        match toml::from_str::<ModelFile>(&text) {
            Ok(spec) => build(&spec, "m.toml", None).err().unwrap().to_string(),
            Err(e) => e.message().to_string(),
        }
    };
    assert!(conv("\"same\"", 2).contains("needs stride 1"));
    assert!(conv("\"full\"", 1)
        .contains("padding must be a number, \"same\" or \"valid\", got \"full\""));
}

#[test]
fn every_activation_builds_and_runs() {
    let spec: ModelFile = toml::from_str(
        "input = [6]\n\
         [[layers]]\ntype = \"silu\"\n[[layers]]\ntype = \"mish\"\n\
         [[layers]]\ntype = \"selu\"\n[[layers]]\ntype = \"elu\"\nalpha = 0.5\n\
         [[layers]]\ntype = \"softplus\"\nbeta = 2.0\n[[layers]]\ntype = \"gelu\"\n\
         [[layers]]\ntype = \"leakyrelu\"\n[[layers]]\ntype = \"linear\"\nout_features = 3\n",
    )
    .unwrap();
    let m = build(&spec, "m.toml", None).unwrap();
    let x = Tensor::from_vec((0..12).map(|v| v as f32 - 6.0).collect(), [2, 6]).unwrap();
    // the same chain of tensor ops, then the linear layer
    let mut h = x.silu().unwrap().mish().unwrap().selu().unwrap();
    h = h.elu(0.5).unwrap().softplus(2.0, 20.0).unwrap();
    h = h.gelu().unwrap().leaky_relu(0.01).unwrap();
    let p = m.named_parameters();
    let want = h.linear(&p[0].1, Some(&p[1].1)).unwrap();
    assert_eq!(m.forward(&x).unwrap().to_vec(), want.to_vec());
    let spec: ModelFile =
        toml::from_str("input = [6]\n[[layers]]\ntype = \"softplus\"\nbeta = 0.0\n").unwrap();
    let e = build(&spec, "m.toml", None).err().unwrap().to_string();
    assert!(e.contains("softplus beta must be a positive number"), "{e}");
}

#[test]
fn recurrent_layers_read_images_row_by_row() {
    let (spec, src) = load_spec("lstm-rows").unwrap();
    let m = build(&spec, &src, None).unwrap();
    assert_eq!(m.num_parameters(), 4 * 128 * (28 + 128 + 2) + 128 * 10 + 10);
    assert_eq!(m.named_parameters()[0].0, "lstm.weight_ih_l0");
    let y = m.forward(&Tensor::zeros([3, 1, 28, 28])).unwrap();
    assert_eq!(y.shape(), &[3, 10]);
}

/// The ViT layers: shapes inferred through patches, encoder and class
/// token match what the modules produce; misfits are named.
#[test]
fn vision_transformer_layers_infer_and_refuse_shapes() {
    let (spec, src) = load_spec("vit").unwrap();
    let m = build(&spec, &src, None).unwrap();
    let shapes: Vec<Vec<usize>> = m.layers.iter().map(|l| l.out_shape.clone()).collect();
    assert_eq!(shapes, [vec![17, 64], vec![17, 64], vec![64], vec![10]]);
    let y = m.forward(&Tensor::randn([3, 1, 28, 28])).unwrap();
    assert_eq!(y.shape(), [3, 10]);
    assert!(m
        .named_parameters()
        .iter()
        .any(|(n, _)| n == "encoder.layers.3.self_attn.in_proj_weight"));
    for (input, layer, what) in [
        (
            "[1, 28, 28]",
            "type = \"patches\"\npatch = 5\ndim = 8",
            "whole patches of 5",
        ),
        (
            "[1, 28, 28]",
            "type = \"encoder\"\nlayers = 1\nheads = 2\nff = 4",
            "expects tokens",
        ),
        (
            "[17, 10]",
            "type = \"encoder\"\nlayers = 1\nheads = 4\nff = 4",
            "divisible by heads",
        ),
        ("[10]", "type = \"classtoken\"", "expects tokens"),
    ] {
        let spec: ModelFile =
            toml::from_str(&format!("input = {input}\n[[layers]]\n{layer}\n")).unwrap();
        let e = build(&spec, "m.toml", None).err().unwrap().to_string();
        assert!(e.contains(what), "{e}");
    }
}

#[test]
fn huge_layers_are_refused_before_anything_is_allocated() {
    for (layer, what) in [
        (
            "type = \"conv2d\"\nout_channels = 1000000000000\nkernel = 3",
            "conv2d",
        ),
        (
            "type = \"flatten\"\n[[layers]]\ntype = \"linear\"\nout_features = 100000000",
            "linear",
        ),
        ("type = \"lstm\"\nhidden_size = 10000000", "lstm"),
    ] {
        let text = format!("input = [1, 28, 28]\n[[layers]]\n{layer}\n");
        let spec: ModelFile = toml::from_str(&text).unwrap();
        let e = build(&spec, "huge.toml", None).err().unwrap().to_string();
        assert!(
            e.contains("would need a tensor of") && e.contains(what),
            "{e}"
        );
    }
}

#[test]
fn the_plan_counts_what_the_build_makes() {
    for (name, _) in ZOO.iter().filter(|(n, _)| *n != "lenet-as-written") {
        let (spec, src) = load_spec(name).unwrap();
        let planned: usize = plan(&spec, &src, None)
            .unwrap()
            .layers
            .iter()
            .map(|l| l.info.params)
            .sum();
        let built = build(&spec, &src, None).unwrap();
        assert_eq!(planned, built.num_parameters(), "{name}");
        for (l, module) in built.layers.iter().zip(built.net.layers()) {
            assert_eq!(l.params, module.num_parameters(), "{name}: {}", l.name);
        }
    }
    // bidirectional and stacked recurrent layers too
    for kind in ["lstm", "gru", "rnn"] {
        let text = format!(
            "input = [1, 28, 28]\n[[layers]]\ntype = \"{kind}\"\nhidden_size = 16\nnum_layers = 2\nbidirectional = true\n"
        );
        let spec: ModelFile = toml::from_str(&text).unwrap();
        let m = build(&spec, kind, None).unwrap();
        assert_eq!(
            m.layers[0].params,
            m.net.layers()[0].num_parameters(),
            "{kind}"
        );
    }
}
