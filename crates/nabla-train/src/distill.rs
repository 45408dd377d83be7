//! Knowledge distillation (Hinton, Vinyals and Dean, 2015): a trained
//! *teacher* guides a *student* through its softened predictions.
//!
//! For student logits `s`, teacher logits `t` (`[N, C]`, the teacher run
//! without gradients, in eval mode), labels `y`, temperature `T` and weight
//! `α`:
//!
//! `loss = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · hard(s, y)`
//!
//! with the KL divergence `Σ_c p_c (log p_c − log q_c)` averaged over the
//! batch (PyTorch's `kl_div(log_softmax(s/T), log_softmax(t/T),
//! reduction="batchmean", log_target=True)`), and `hard` the trainer's own
//! loss (cross-entropy). The `T²` keeps the soft term's gradients the size
//! of the hard term's as `T` grows. The student learns from the teacher's
//! whole distribution over classes ("this 7 looks a little like a 1"), not
//! only from the label.

use nabla_core::{no_grad, Tensor};
use nabla_nn::loss::Reduction;
use nabla_nn::Module;

use crate::error::{Result, TrainError};
use crate::evaluate::LossFn;

/// A teacher, its temperature and the weight of its soft targets; give it
/// to [`Trainer::distill`](crate::Trainer::distill).
pub struct Distillation<'m> {
    teacher: &'m dyn Module,
    temperature: f32,
    alpha: f32,
}

impl<'m> Distillation<'m> {
    /// `teacher` (put in eval mode), `temperature` > 0, `alpha` in 0..=1
    /// (the soft term's weight; the labels get `1 − alpha`).
    pub fn new(teacher: &'m dyn Module, temperature: f32, alpha: f32) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(TrainError::Config(format!(
                "distillation: the temperature must be a positive number, not {temperature}"
            )));
        }
        if !(0.0..=1.0).contains(&alpha) {
            return Err(TrainError::Config(format!(
                "distillation: alpha weighs the teacher's targets against the labels and must be in 0..=1, not {alpha}"
            )));
        }
        teacher.eval();
        Ok(Distillation {
            teacher,
            temperature,
            alpha,
        })
    }

    /// The loss of a batch: the student's `out` on `inputs`, against the
    /// teacher's predictions on the same inputs and the labels `targets`.
    pub fn loss(
        &self,
        inputs: &Tensor,
        out: &Tensor,
        targets: &Tensor,
        hard: &LossFn,
    ) -> Result<Tensor> {
        let teacher_out = no_grad(|| self.teacher.forward(inputs))?;
        if out.rank() != 2 || teacher_out.shape() != out.shape() {
            return Err(TrainError::Config(format!(
                "distillation: the student's outputs {:?} and the teacher's {:?} must be the same [batch, classes]",
                out.shape(),
                teacher_out.shape()
            )));
        }
        let hard = hard(out, targets, Reduction::Mean)?;
        if self.alpha == 0.0 {
            return Ok(hard);
        }
        let t = self.temperature;
        let soft = soft_loss(out, &teacher_out, t)?;
        Ok(soft
            .mul_scalar(self.alpha)?
            .add(&hard.mul_scalar(1.0 - self.alpha)?)?)
    }
}

/// `T² · KL(softmax(t/T) ‖ softmax(s/T))`, averaged over the rows.
fn soft_loss(student: &Tensor, teacher: &Tensor, t: f32) -> nabla_core::Result<Tensor> {
    let rows = student.shape()[0].max(1) as f32;
    let log_q = student.div_scalar(t)?.log_softmax(1)?;
    let log_p = teacher.div_scalar(t)?.log_softmax(1)?;
    let p = log_p.exp()?;
    p.mul(&log_p.sub(&log_q)?)?
        .sum_all()?
        .mul_scalar(t * t / rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::cross_entropy_loss;
    use nabla_nn::Linear;

    /// The soft term is the KL divergence of the definition (computed in
    /// f64 here), zero when the student copies the teacher; α = 0 is the
    /// plain loss; bad settings are refused.
    #[test]
    fn the_loss_is_hintons() {
        let s = Tensor::from_vec(vec![1.0, -2.0, 0.5, 0.0, 3.0, -1.0], [2, 3]).unwrap();
        let t = Tensor::from_vec(vec![2.0, 0.0, -1.0, 1.0, 1.0, 0.5], [2, 3]).unwrap();
        let temp = 2.5f64;
        let (sv, tv) = (s.to_vec(), t.to_vec());
        let mut kl = 0.0;
        for r in 0..2 {
            let soft = |v: &[f32]| -> Vec<f64> {
                let e: Vec<f64> = v[3 * r..3 * r + 3]
                    .iter()
                    .map(|&x| (x as f64 / temp).exp())
                    .collect();
                let z: f64 = e.iter().sum();
                e.iter().map(|x| x / z).collect()
            };
            let (q, p) = (soft(&sv), soft(&tv));
            kl += (0..3).map(|c| p[c] * (p[c].ln() - q[c].ln())).sum::<f64>();
        }
        let want = kl / 2.0 * temp * temp;
        let got = soft_loss(&s, &t, temp as f32).unwrap().item().unwrap() as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(soft_loss(&t, &t, 4.0).unwrap().item().unwrap().abs() < 1e-6);

        // through a teacher: α = 0 is the hard loss alone
        let teacher = Linear::new(4, 3);
        let x = Tensor::randn([5, 4]);
        let y = Tensor::from_vec(vec![0.0, 1.0, 2.0, 1.0, 0.0], [5]).unwrap();
        let out = Linear::new(4, 3).forward(&x).unwrap();
        let hard = cross_entropy_loss();
        let plain = hard(&out, &y, Reduction::Mean).unwrap().item().unwrap();
        let d = Distillation::new(&teacher, 3.0, 0.0).unwrap();
        assert_eq!(d.loss(&x, &out, &y, &hard).unwrap().item().unwrap(), plain);
        let d = Distillation::new(&teacher, 3.0, 0.7).unwrap();
        let teacher_out = teacher.forward(&x).unwrap();
        let soft = soft_loss(&out, &teacher_out, 3.0).unwrap().item().unwrap();
        let mixed = d.loss(&x, &out, &y, &hard).unwrap().item().unwrap();
        assert!((mixed - (0.7 * soft + 0.3 * plain)).abs() < 1e-5);
        assert!(Distillation::new(&teacher, 0.0, 0.5).is_err());
        assert!(Distillation::new(&teacher, 2.0, 1.5).is_err());
        // a teacher of other classes is refused
        let other = Linear::new(4, 5);
        let d = Distillation::new(&other, 2.0, 0.5).unwrap();
        let err = d.loss(&x, &out, &y, &hard).unwrap_err().to_string();
        assert!(err.contains("[5, 3]") && err.contains("[5, 5]"), "{err}");
    }
}
