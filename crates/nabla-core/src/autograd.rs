//! Define-by-run reverse-mode autograd.
//!
//! Every op that gets an input requiring grad records a [`Node`] on its
//! output: the inputs and a backward rule. [`Tensor::backward`] orders the
//! graph topologically, runs each rule once with the gradient of its output,
//! and accumulates into the `.grad` of the leaves. A node is freed as soon as
//! its rule has run, so the saved activations go away with the backward pass
//! and memory stays flat over many steps. The engine knows nothing about op
//! kinds: each rule lives in its op's file, next to the forward.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use crate::{Error, Result, Tensor};

/// The backward rule of one op: given the gradient of the output (same shape
/// as the output), return one gradient per input, `None` for inputs that need
/// none. Rules run under [`no_grad`], so they may use any tensor op.
pub trait Backward: Send + Sync {
    fn name(&self) -> &'static str;
    fn backward(&self, grad: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>>;
}

type BackwardFn = dyn Fn(&Tensor, &[Tensor]) -> Result<Vec<Option<Tensor>>> + Send + Sync;

/// A backward rule written as a closure (most ops use this).
pub struct FnBackward {
    name: &'static str,
    f: Box<BackwardFn>,
}

impl Backward for FnBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, grad: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        (self.f)(grad, inputs)
    }
}

/// The inputs of an op and its backward rule.
pub struct Node {
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: Box<dyn Backward>,
}

/// What a tensor knows about how it was made.
pub(crate) enum NodeSlot {
    /// Created by the user (or detached): gradients stop here.
    Leaf,
    /// Made by an op whose backward has not run yet.
    Op(Node),
    /// Made by an op whose graph was already freed by a backward pass.
    Freed(&'static str),
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record graphs on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Disables graph recording until dropped (`with torch.no_grad():`).
pub struct NoGradGuard {
    prev: bool,
}

impl NoGradGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let prev = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { prev }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Runs `f` with grad mode set to `enabled`, then restores the previous mode.
pub(crate) fn with_grad_mode<R>(enabled: bool, f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard {
        prev: GRAD_ENABLED.with(|g| g.replace(enabled)),
    };
    f()
}

/// Runs `f` without recording graphs: evaluation, optimizer updates.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

impl Tensor {
    /// Records how `self` was computed from `inputs`, when grad mode is on
    /// and some input requires grad. `backward` must not capture `self`
    /// itself (that would be a reference cycle): capture `self.detach()`.
    pub fn attach(
        self,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&Tensor, &[Tensor]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return self;
        }
        let node = Node {
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            backward: Box::new(FnBackward {
                name,
                f: Box::new(backward),
            }),
        };
        self.set_node(node);
        self
    }

    /// Like [`attach`](Self::attach) with a rule object instead of a closure.
    pub fn attach_rule(self, inputs: &[&Tensor], rule: impl Backward + 'static) -> Tensor {
        if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return self;
        }
        self.set_node(Node {
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            backward: Box::new(rule),
        });
        self
    }

    /// Computes gradients of this scalar with respect to every leaf that
    /// requires grad, accumulating them into the leaves' `.grad`.
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::Backward(format!(
                "called on a tensor of shape {:?}; backward needs a scalar (one element) \
                 or an explicit output gradient: use backward_with_grad",
                self.shape()
            )));
        }
        let ones = self.ones_like();
        self.backward_with_grad(&ones)
    }

    /// Backward from a non-scalar output with the given output gradient.
    pub fn backward_with_grad(&self, grad: &Tensor) -> Result<()> {
        if !self.requires_grad() {
            return Err(Error::Backward(
                "this tensor does not require grad and has no grad_fn: \
                 mark a leaf with requires_grad_(true) before computing it"
                    .into(),
            ));
        }
        if grad.shape() != self.shape() {
            return Err(Error::Backward(format!(
                "gradient of shape {:?} given for an output of shape {:?}",
                grad.shape(),
                self.shape()
            )));
        }
        // The whole pass runs on a pool thread: each op's kernels then start
        // there directly instead of being handed over to the pool one by one
        // (LeNet's epoch at two threads 2.2 → 1.9 s).
        crate::threads::in_pool(|| {
            let _guard = crate::NoGradGuard::new();
            self.run_backward(grad, &mut |_| Ok(()))
        })
    }

    /// [`backward`](Tensor::backward), calling `ready(leaf)` as soon as
    /// each leaf's gradient is complete, while the pass goes on below it.
    ///
    /// Data-parallel training starts averaging a layer's gradients there,
    /// overlapped with the backward pass of the layers before it (PyTorch's
    /// `register_post_accumulate_grad_hook`). Leaves come in the reverse of
    /// the order the forward pass used them; `ready` sees each once, after
    /// its `.grad` has the new gradient added.
    pub fn backward_with_hook(
        &self,
        ready: &mut (dyn FnMut(&Tensor) -> Result<()> + Send),
    ) -> Result<()> {
        if self.numel() != 1 {
            return self.backward(); // the same error
        }
        if !self.requires_grad() {
            return self.backward_with_grad(&self.ones_like());
        }
        let ones = self.ones_like();
        crate::threads::in_pool(|| {
            let _guard = crate::NoGradGuard::new();
            self.run_backward(&ones, ready)
        })
    }

    fn run_backward(
        &self,
        grad: &Tensor,
        ready: &mut (dyn FnMut(&Tensor) -> Result<()> + Send),
    ) -> Result<()> {
        let order = topological_order(self)?;
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), grad.detach());
        for t in order.iter().rev() {
            let Some(g) = grads.remove(&t.id()) else {
                continue;
            };
            match t.take_node() {
                NodeSlot::Leaf => {
                    // every use of the leaf comes before it in this order:
                    // its gradient is complete
                    t.accumulate_grad(&g)?;
                    ready(t)?;
                }
                NodeSlot::Freed(name) => return Err(freed_error(name)),
                NodeSlot::Op(node) => {
                    let name = node.backward.name();
                    let input_grads = node.backward.backward(&g, &node.inputs)?;
                    debug_assert_eq!(input_grads.len(), node.inputs.len(), "{name}");
                    for (input, ig) in node.inputs.iter().zip(input_grads) {
                        let Some(ig) = ig else { continue };
                        if !input.requires_grad() {
                            continue;
                        }
                        assert_eq!(
                            ig.shape(),
                            input.shape(),
                            "{name} returned a gradient of the wrong shape"
                        );
                        let summed = match grads.remove(&input.id()) {
                            Some(prev) => prev.add(&ig)?,
                            None => ig,
                        };
                        grads.insert(input.id(), summed);
                    }
                }
            }
        }
        Ok(())
    }
}

fn freed_error(name: &str) -> Error {
    Error::Backward(format!(
        "trying to backward through the graph a second time ({name}): its saved \
         tensors were freed by the first backward; recompute the forward pass"
    ))
}

/// Post-order of the graph below `root` (inputs before the ops that use them).
fn topological_order(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // (tensor, children already pushed)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let inputs = t.node_inputs()?;
        stack.push((t, true));
        for input in inputs {
            if input.requires_grad() && !visited.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    Ok(order)
}

impl Tensor {
    fn node_inputs(&self) -> Result<Vec<Tensor>> {
        let slot = self.node_slot();
        match &*slot {
            NodeSlot::Leaf => Ok(vec![]),
            NodeSlot::Op(node) => Ok(node.inputs.clone()),
            NodeSlot::Freed(name) => Err(freed_error(name)),
        }
    }

    fn take_node(&self) -> NodeSlot {
        let mut slot = self.node_slot();
        match &*slot {
            NodeSlot::Leaf => NodeSlot::Leaf,
            NodeSlot::Freed(name) => NodeSlot::Freed(name),
            NodeSlot::Op(node) => {
                let name = node.backward.name();
                std::mem::replace(&mut *slot, NodeSlot::Freed(name))
            }
        }
    }
}
