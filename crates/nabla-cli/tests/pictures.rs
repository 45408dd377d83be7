//! The pictures a run makes, tested end to end: `predict` on image files
//! (prepared as MNIST's digits were), `explain` sheets, `plot` and the HTML
//! report rendered in headless Chromium.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{run, text, tmp};

#[test]
fn predicts_image_files_of_any_size() {
    let out = tmp("predict");
    let o = run(&[
        "train",
        "--model",
        "mlp",
        "--optimizer",
        "adam",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // a test digit, drawn dark on light at twice the size, as a user's scan would be
    let m = nabla_data::Mnist::load(nabla_data::Mnist::shipped_dir()).unwrap();
    let (idx, label) = (1500, m.test.labels[1500]);
    let px = &m.test.images[idx * 784..(idx + 1) * 784];
    let img = image::GrayImage::from_fn(56, 56, |x, y| {
        image::Luma([255 - px[(y as usize / 2) * 28 + x as usize / 2]])
    });
    let png = out.join("digit.png");
    img.save(&png).unwrap();
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "--image",
        png.to_str().unwrap(),
        "--top-k",
        "2",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let top = stdout
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(top, label.to_string(), "{stdout}");
    // the digits cut to their ink, filling a large transparent canvas, as a
    // paint program saves them: predicted as the model predicts the
    // originals (stretched to 28×28 instead, most were read as other digits)
    let mut agree = 0;
    for idx in 0..10 {
        let px = &m.test.images[idx * 784..(idx + 1) * 784];
        let ink = |x: usize, y: usize| px[y * 28 + x] > 50;
        let (xs, ys): (Vec<usize>, Vec<usize>) = (0..784)
            .filter(|i| ink(i % 28, i / 28))
            .map(|i| (i % 28, i / 28))
            .unzip();
        let (x0, x1, y0, y1) = (
            *xs.iter().min().unwrap(),
            *xs.iter().max().unwrap(),
            *ys.iter().min().unwrap(),
            *ys.iter().max().unwrap(),
        );
        let img = image::RgbaImage::from_fn(
            (x1 - x0 + 1) as u32 * 10,
            (y1 - y0 + 1) as u32 * 10,
            |x, y| {
                let v = px[(y0 + y as usize / 10) * 28 + x0 + x as usize / 10];
                image::Rgba([0, 0, 0, v]) // black ink, its alpha the stroke
            },
        );
        let file = out.join(format!("canvas{idx}.png"));
        img.save(&file).unwrap();
        let top = |args: &[&str]| {
            let o = run(args);
            assert!(o.status.success(), "{}", text(&o).1);
            let s = text(&o).0;
            s.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let run_dir = out.to_str().unwrap();
        let as_drawn = top(&["predict", run_dir, "--image", file.to_str().unwrap()]);
        let original = top(&["predict", run_dir, "--index", &idx.to_string()]);
        agree += (as_drawn == original) as usize;
    }
    assert!(
        agree >= 8,
        "{agree} of 10 drawn digits read as their originals"
    );
    // a blank picture is predicted, with a warning
    let blank = out.join("blank.png");
    image::GrayImage::from_pixel(40, 40, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "--image",
        blank.to_str().unwrap(),
    ]);
    assert!(o.status.success() && text(&o).1.contains("warning: ") && text(&o).1.contains("blank"));
    let o = run(&["predict", out.to_str().unwrap(), "--image", "/no/such.png"]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn explain_writes_heatmap_sheets() {
    let out = tmp("explain");
    let o = run(&[
        "train",
        "--model",
        "lenet",
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    for (method, extra) in [
        ("saliency", vec!["--grid", "12"]),
        ("grad-cam", vec!["--index", "5", "--layer", "conv2"]),
        ("integrated-gradients", vec!["--index", "7"]),
    ] {
        let png = out.join(format!("{method}.png"));
        let mut args = vec![
            "explain",
            out.to_str().unwrap(),
            "--method",
            method,
            "-o",
            png.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{method}: {}", text(&o).1);
        let img = image::open(&png).unwrap();
        assert!(
            img.width() >= 112 && img.height() >= 112,
            "{method}: {}x{}",
            img.width(),
            img.height()
        );
    }
    let o = run(&[
        "explain",
        out.to_str().unwrap(),
        "--method",
        "grad-cam",
        "--index",
        "1",
        "--layer",
        "fc1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("Grad-CAM needs feature maps"),
        "{}",
        text(&o).1
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// Debian's Chromium (what `.ci/run` installs), or the browser named by NABLA_CHROMIUM.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("NABLA_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .expect(
            "the report test renders report.html in headless Chromium: install it \
             (apt-get install chromium; .ci/run does) or point NABLA_CHROMIUM at a browser",
        )
}

#[test]
fn plots_and_a_report_that_renders_in_headless_chromium() {
    let out = tmp("report");
    let o = run(&[
        "train",
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    // 125 steps an epoch at batch 64, a row every 10th: 13 an epoch
    assert_eq!(steps.lines().count(), 1 + 2 * 13, "{steps}");
    for kind in [
        "curves",
        "filters",
        "feature-maps",
        "confusion",
        "misclassified",
    ] {
        let png = out.join(format!("{kind}.png"));
        let o = run(&[
            "plot",
            out.to_str().unwrap(),
            "--kind",
            kind,
            "-o",
            png.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{kind}: {}", text(&o).1);
        let img = image::open(&png).unwrap().to_rgb8();
        let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(
            img.width() >= 100 && img.height() >= 100 && distinct.len() > 4,
            "{kind}: {}x{}, {} colours",
            img.width(),
            img.height(),
            distinct.len()
        );
    }
    let o = run(&[
        "plot",
        out.to_str().unwrap(),
        "--kind",
        "filters",
        "--layer",
        "fc1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("fc1"), "{}", text(&o).1);

    let o = run(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for part in [
        "Configuration",
        "Model",
        "conv1",
        "Training",
        "Confusion matrix",
        "Saliency",
        "Filters of conv1",
    ] {
        assert!(html.contains(part), "the report lacks {part:?}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let images = html.matches("<img src=\"data:image/png;base64,").count();
    assert_eq!(images, 6);

    // Render a copy with a probe script that records script and resource
    // errors and, after load, each image's decoded size.
    let probe = r#"<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.tagName) || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0 || i.naturalHeight === 0).length;
  const p = document.createElement('pre');
  p.id = 'probe';
  p.textContent = `images=${imgs.length} broken=${broken} errors=${window.__errors.length}`;
  document.body.appendChild(p);
});
</script>"#;
    let probed = out.join("probed.html");
    std::fs::write(
        &probed,
        html.replacen("<head>", &format!("<head>{probe}"), 1),
    )
    .unwrap();
    let profile = out.join("chromium-profile");
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "chromium failed: {}", text(&o).1);
    assert!(
        dom.contains("images=6 broken=0 errors=0"),
        "probe: {:?}",
        dom.split("id=\"probe\">")
            .nth(1)
            .map(|s| &s[..s.len().min(80)])
    );
    std::fs::remove_dir_all(&out).unwrap();
}
