//! Training curves of a run directory, drawn from the [`History`] that
//! nabla-train reads back from it.

pub use nabla_train::{EpochRow, History, StepRow};

use crate::canvas::Canvas;
use crate::plot::{hstack, line_chart, series_color, Chart, Series};

/// Three charts side by side, all against epochs: the loss (training loss
/// per logged step, thin, and per epoch; test loss per epoch), the test
/// accuracy in percent, and the learning rate (log scale when it spans
/// more than a factor of ten).
pub fn training_curves(h: &History) -> Canvas {
    let per_epoch = |f: fn(&EpochRow) -> f64| -> Vec<(f64, f64)> {
        h.epochs.iter().map(|r| (r.epoch, f(r))).collect()
    };
    let mut loss = Chart {
        title: "Loss".into(),
        x_label: "Epoch".into(),
        ..Default::default()
    };
    if !h.steps.is_empty() {
        let mut s = Series::new(
            "Train (steps)",
            h.steps.iter().map(|r| (r.epoch, r.loss)).collect(),
            [170, 200, 230],
        );
        s.width = 1;
        loss.series.push(s);
    }
    for (name, f, n) in [
        (
            "Train",
            (|r: &EpochRow| r.train_loss) as fn(&EpochRow) -> f64,
            0,
        ),
        ("Test", |r: &EpochRow| r.test_loss, 1),
    ] {
        let mut s = Series::new(name, per_epoch(f), series_color(n));
        s.markers = true;
        loss.series.push(s);
    }
    let mut acc = Series::new("Test", per_epoch(|r| 100.0 * r.accuracy), series_color(1));
    acc.markers = true;
    let accuracy = Chart {
        title: "Test accuracy (%)".into(),
        x_label: "Epoch".into(),
        series: vec![acc],
        log_y: false,
    };
    let lr_points: Vec<(f64, f64)> = if h.steps.is_empty() {
        per_epoch(|r| r.lr)
    } else {
        h.steps.iter().map(|r| (r.epoch, r.lr)).collect()
    };
    let (lo, hi) = lr_points
        .iter()
        .filter(|p| p.1 > 0.0)
        .fold((f64::INFINITY, 0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let lr = Chart {
        title: "Learning rate".into(),
        x_label: "Epoch".into(),
        series: vec![Series::new("", lr_points, series_color(2))],
        log_y: hi > 10.0 * lo,
    };
    hstack(
        &[
            line_chart(&loss, 480, 320),
            line_chart(&accuracy, 400, 320),
            line_chart(&lr, 400, 320),
        ],
        8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_three_charts_side_by_side() {
        let row = |epoch: f64, loss: f64| EpochRow {
            epoch,
            step: epoch * 10.0,
            train_loss: loss,
            test_loss: loss * 0.9,
            accuracy: 0.5 + epoch / 10.0,
            lr: 0.01 / epoch,
            seconds: epoch,
        };
        let h = History {
            epochs: vec![row(1.0, 0.9), row(2.0, 0.5)],
            steps: vec![StepRow {
                step: 1.0,
                epoch: 0.1,
                loss: 2.3,
                lr: 0.01,
            }],
        };
        let c = training_curves(&h);
        assert!(c.width > 1000 && c.height == 320);
    }
}
