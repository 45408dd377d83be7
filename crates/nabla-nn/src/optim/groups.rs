//! Parameter groups: several optimizers stepped as one, as PyTorch's
//! `param_groups` (AdamW with weight decay on the matrices and none on
//! the biases and norms, a smaller rate for a pretrained body, …).

use nabla_core::{Error, Result, Tensor};

use super::{OptimCore, Optimizer};

/// Named optimizers over disjoint parameters, stepped, zeroed, scheduled
/// and saved together. A learning rate set on the groups keeps their
/// ratios (a schedule scales every group alike, as PyTorch's schedulers
/// scale each group's own initial rate); the rate read is the first
/// group's. Checkpoints keep each group's state under `{name}.`.
///
/// ```
/// # use nabla_nn::optim::{Adam, ParamGroups, Optimizer};
/// # let model = nabla_nn::Linear::new(4, 2);
/// # use nabla_nn::Parameters;
/// let (matrices, rest): (Vec<_>, Vec<_>) =
///     model.parameters().into_iter().partition(|p| p.rank() >= 2);
/// let adamw = ParamGroups::new(vec![
///     ("decay", Box::new(Adam::adamw(matrices, 1e-3).weight_decay(0.1))),
///     ("rest", Box::new(Adam::adamw(rest, 1e-3).weight_decay(0.0))),
/// ]);
/// assert_eq!(adamw.params().len(), 2);
/// ```
pub struct ParamGroups {
    groups: Vec<(String, Box<dyn Optimizer>)>,
    /// Each group's rate over the first's, when they were made.
    ratios: Vec<f32>,
    /// Every group's parameters (for `params()`), the first group's rate.
    all: OptimCore,
}

impl ParamGroups {
    pub fn new(groups: Vec<(&str, Box<dyn Optimizer>)>) -> ParamGroups {
        let first = groups.first().map_or(0.0, |(_, o)| o.lr());
        let ratios = groups
            .iter()
            .map(|(_, o)| if first > 0.0 { o.lr() / first } else { 1.0 })
            .collect();
        let params = groups
            .iter()
            .flat_map(|(_, o)| o.params().to_vec())
            .collect();
        ParamGroups {
            all: OptimCore::new(params, first),
            ratios,
            groups: groups
                .into_iter()
                .map(|(n, o)| (n.to_string(), o))
                .collect(),
        }
    }

    /// The groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &dyn Optimizer)> {
        self.groups.iter().map(|(n, o)| (n.as_str(), o.as_ref()))
    }
}

impl Optimizer for ParamGroups {
    fn step(&mut self) -> Result<()> {
        self.check()?;
        self.groups.iter_mut().try_for_each(|(_, o)| o.step())
    }
    fn check(&self) -> Result<()> {
        self.groups.iter().try_for_each(|(_, o)| o.check())
    }
    fn core(&self) -> &OptimCore {
        &self.all
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.all
    }
    fn lr(&self) -> f32 {
        self.groups.first().map_or(self.all.lr, |(_, o)| o.lr())
    }
    fn set_lr(&mut self, lr: f32) {
        self.all.lr = lr;
        for ((_, o), r) in self.groups.iter_mut().zip(&self.ratios) {
            // (a ratio of one leaves the rate exactly as given)
            o.set_lr(if *r == 1.0 { lr } else { lr * r });
        }
    }
    fn momentum(&self) -> Option<f32> {
        self.groups.first().and_then(|(_, o)| o.momentum())
    }
    fn set_momentum(&mut self, momentum: f32) -> bool {
        let mut any = false;
        for (_, o) in &mut self.groups {
            any |= o.set_momentum(momentum);
        }
        any
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = Vec::new();
        for (name, o) in &self.groups {
            state.extend(
                o.state()
                    .into_iter()
                    .map(|(k, t)| (format!("{name}.{k}"), t)),
            );
        }
        state
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        if let Some((k, _)) = state.iter().find(|(k, _)| {
            !self.groups.iter().any(|(n, _)| {
                k.strip_prefix(n.as_str())
                    .is_some_and(|r| r.starts_with('.'))
            })
        }) {
            return Err(Error::Arg {
                op: "ParamGroups::load_state",
                msg: format!("{k:?} belongs to no parameter group"),
            });
        }
        for (name, o) in &mut self.groups {
            let prefix = format!("{name}.");
            let own: Vec<(String, Tensor)> = state
                .iter()
                .filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t.clone())))
                .collect();
            o.load_state(&own)?;
        }
        self.all.lr = self.lr();
        Ok(())
    }
    fn zero_grad(&self) {
        self.groups.iter().for_each(|(_, o)| o.zero_grad());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, Sgd};

    fn param(v: f32) -> Tensor {
        Tensor::from_vec(vec![v, -v], [2])
            .unwrap()
            .requires_grad_(true)
    }

    /// Two groups step as their optimizers alone would, keep their rates'
    /// ratio under a schedule, and save and restore each one's state.
    #[test]
    fn groups_step_schedule_and_save_as_their_optimizers() {
        let (a, b) = (param(1.0), param(2.0));
        let (a2, b2) = (param(1.0), param(2.0));
        let mut groups = ParamGroups::new(vec![
            (
                "fast",
                Box::new(Sgd::new(vec![a.clone()], 0.1).momentum(0.9)),
            ),
            ("slow", Box::new(Adam::new(vec![b.clone()], 0.01))),
        ]);
        let mut alone = (
            Sgd::new(vec![a2.clone()], 0.1).momentum(0.9),
            Adam::new(vec![b2.clone()], 0.01),
        );
        for _ in 0..3 {
            for p in [&a, &b, &a2, &b2] {
                p.mul(p).unwrap().sum_all().unwrap().backward().unwrap();
            }
            groups.step().unwrap();
            groups.zero_grad();
            alone.0.step().unwrap();
            alone.1.step().unwrap();
            alone.0.zero_grad();
            alone.1.zero_grad();
        }
        assert_eq!((a.to_vec(), b.to_vec()), (a2.to_vec(), b2.to_vec()));
        groups.set_lr(0.05);
        assert_eq!(groups.lr(), 0.05);
        let rates: Vec<f32> = groups.groups().map(|(_, o)| o.lr()).collect();
        assert!((rates[1] - 0.005).abs() < 1e-9, "{rates:?}");
        let saved = groups.state();
        assert!(saved.iter().any(|(k, _)| k == "slow.lr"));
        let mut fresh = ParamGroups::new(vec![
            (
                "fast",
                Box::new(Sgd::new(vec![a.clone()], 0.1).momentum(0.9)),
            ),
            ("slow", Box::new(Adam::new(vec![b.clone()], 0.01))),
        ]);
        fresh.load_state(&saved).unwrap();
        let names = |s: Vec<(String, Tensor)>| s.into_iter().map(|(k, t)| (k, t.to_vec()));
        assert!(names(fresh.state()).eq(names(saved)));
        let err = fresh
            .load_state(&[("other.lr".into(), Tensor::scalar(1.0))])
            .unwrap_err();
        assert!(err.to_string().contains("\"other.lr\""), "{err}");
    }
}
