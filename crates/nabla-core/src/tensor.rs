//! The [`Tensor`]: an n-d array on a device (f32, or bf16, f16, i64 held
//! as such and computed in f32: see `storage.rs`), cheap to clone (a
//! reference count), with shared storage between views and the autograd
//! bookkeeping.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use crate::autograd::{Node, NodeSlot};
use crate::backend::{self, Backend, View};
use crate::dtype::{DType, HostData};
use crate::layout::{contiguous_strides, Layout};
use crate::rng::{with_global_generator, Generator};
use crate::storage::Storage;
use crate::{Device, Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A storage shared by the views of it, and its dtype, which is read
/// without the lock: a gradient reaching a parameter asks its dtype on a
/// pool thread while, in Hogwild-style training, another thread may wait
/// to write that parameter and a third hold it for reading while it waits
/// for the pool (a read lock there deadlocked the three).
struct Shared {
    storage: RwLock<Storage>,
    dtype: AtomicU8,
}

struct Inner {
    id: u64,
    storage: Arc<Shared>,
    layout: Layout,
    requires_grad: AtomicBool,
    node: Mutex<NodeSlot>,
    grad: Mutex<Option<Tensor>>,
}

/// An n-dimensional array with reverse-mode autograd: f32 unless made
/// otherwise ([`Tensor::to_dtype`], [`Tensor::from_vec_i64`]).
///
/// Cloning a `Tensor` is cheap and gives the same tensor (same storage, same
/// graph node), as assigning a tensor in Python does.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

/// A shape argument: `[2, 3]`, `&[2usize, 3]`, `vec![2, 3]`, and for
/// [`Tensor::reshape`] also `[64, -1]` with one inferred dimension.
pub trait ShapeArg {
    fn to_dims(&self) -> Vec<isize>;
}

impl<const N: usize> ShapeArg for [usize; N] {
    fn to_dims(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl<const N: usize> ShapeArg for [i32; N] {
    fn to_dims(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl ShapeArg for &[usize] {
    fn to_dims(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl ShapeArg for Vec<usize> {
    fn to_dims(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl ShapeArg for &Vec<usize> {
    fn to_dims(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl ShapeArg for &[isize] {
    fn to_dims(&self) -> Vec<isize> {
        self.to_vec()
    }
}

/// Resolves a shape argument against `numel` elements (one -1 allowed).
pub(crate) fn resolve_shape(op: &'static str, spec: &[isize], numel: usize) -> Result<Vec<usize>> {
    let holes = spec.iter().filter(|&&d| d == -1).count();
    if holes > 1 || spec.iter().any(|&d| d < -1) {
        return Err(Error::shape(op, format!("invalid shape {spec:?}")));
    }
    let known: usize = spec
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let dims: Vec<usize> = if holes == 1 {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(Error::shape(
                op,
                format!("shape {spec:?} is invalid for input of size {numel}"),
            ));
        }
        spec.iter()
            .map(|&d| if d == -1 { numel / known } else { d as usize })
            .collect()
    } else {
        spec.iter().map(|&d| d as usize).collect()
    };
    Ok(dims)
}

fn plain_shape(op: &'static str, shape: impl ShapeArg) -> Result<Vec<usize>> {
    let spec = shape.to_dims();
    if spec.iter().any(|&d| d < 0) {
        return Err(Error::shape(op, format!("negative size in shape {spec:?}")));
    }
    Ok(spec.iter().map(|&d| d as usize).collect())
}

/// `shape` as sizes, if `len` values fill it exactly.
fn filled_shape(op: &'static str, len: usize, shape: impl ShapeArg) -> Result<Vec<usize>> {
    let shape = plain_shape(op, shape)?;
    let n: usize = shape.iter().product();
    if n != len {
        return Err(Error::shape(
            op,
            format!("{len} values cannot fill shape {shape:?} ({n} elements)"),
        ));
    }
    Ok(shape)
}

impl Tensor {
    // ---- construction -------------------------------------------------

    fn from_parts(storage: Arc<Shared>, layout: Layout) -> Tensor {
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            storage,
            layout,
            requires_grad: AtomicBool::new(false),
            node: Mutex::new(NodeSlot::Leaf),
            grad: Mutex::new(None),
        }))
    }

    /// A contiguous tensor over a new storage (which holds at least the
    /// product of `shape` values; the backends guarantee it).
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        let dtype = AtomicU8::new(storage.dtype().code());
        let shared = Shared {
            storage: RwLock::new(storage),
            dtype,
        };
        Tensor::from_parts(Arc::new(shared), Layout::contiguous(shape))
    }

    /// A contiguous tensor on `device` holding `data` (`data.len()` must
    /// equal the product of `shape`; internal callers guarantee it).
    pub(crate) fn from_host(data: Vec<f32>, shape: &[usize], device: Device) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor::from_storage(backend::for_device(device).upload(data), shape)
    }

    /// A view of this tensor's storage with another layout (no copy).
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout)
    }

    /// A tensor from a vector and a shape: `Tensor::from_vec(v, [2, 3])`.
    pub fn from_vec(data: Vec<f32>, shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::from_vec_on(data, shape, Device::Cpu)
    }

    /// A tensor on `device` from a vector and a shape (PyTorch's
    /// `torch.tensor(v, device=d)`).
    pub fn from_vec_on(data: Vec<f32>, shape: impl ShapeArg, device: Device) -> Result<Tensor> {
        device.ensure_available()?;
        let shape = filled_shape("from_vec", data.len(), shape)?;
        Ok(Tensor::from_host(data, &shape, device))
    }

    /// A tensor of 64-bit integers (PyTorch's `torch.tensor(v)` of ints,
    /// dtype `int64`): labels and indices that stay exact past 2^24.
    pub fn from_vec_i64(data: Vec<i64>, shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::from_host_data(HostData::I64(data), shape, Device::Cpu)
    }

    /// A tensor on `device` holding `data` in its own dtype.
    pub fn from_host_data(data: HostData, shape: impl ShapeArg, device: Device) -> Result<Tensor> {
        let shape = filled_shape("from_host_data", data.len(), shape)?;
        Ok(Tensor::from_storage(
            Storage::on_host(device, data)?,
            &shape,
        ))
    }

    /// A tensor copied from a slice.
    pub fn from_slice(data: &[f32], shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-d tensor holding one value.
    /// A 0-d CPU tensor holding one value. As in PyTorch, a 0-d CPU tensor
    /// may meet a tensor of any device in an elementwise op.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_host(vec![v], &[], Device::Cpu)
    }

    /// A tensor filled with `value`.
    pub fn full(shape: impl ShapeArg, value: f32) -> Tensor {
        Tensor::full_on(shape, value, Device::Cpu)
    }

    /// A tensor on `device` filled with `value` (panics on a device this
    /// build cannot use, as a bad shape does).
    pub fn full_on(shape: impl ShapeArg, value: f32, device: Device) -> Tensor {
        device.ensure_available().unwrap_or_else(|e| panic!("{e}"));
        let shape = plain_shape("full", shape).unwrap_or_else(|e| panic!("{e}"));
        let n = shape.iter().product();
        Tensor::from_storage(backend::for_device(device).full(n, value), &shape)
    }

    pub fn zeros(shape: impl ShapeArg) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn ones(shape: impl ShapeArg) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    pub fn zeros_on(shape: impl ShapeArg, device: Device) -> Tensor {
        Tensor::full_on(shape, 0.0, device)
    }

    pub fn ones_on(shape: impl ShapeArg, device: Device) -> Tensor {
        Tensor::full_on(shape, 1.0, device)
    }

    /// Zeros of this tensor's shape, on its device.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros_on(self.shape(), self.device())
    }

    /// Ones of this tensor's shape, on its device.
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones_on(self.shape(), self.device())
    }

    /// `[start, start + step, ...]` up to but excluding `end` (1-d).
    pub fn arange(start: f32, end: f32, step: f32) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || (end - start) / step < 0.0 {
            return Err(Error::arg(
                "arange",
                format!("cannot go from {start} to {end} in steps of {step}"),
            ));
        }
        let n = ((end - start) / step).ceil() as usize;
        let data: Vec<f32> = (0..n).map(|i| start + i as f32 * step).collect();
        Ok(Tensor::from_host(data, &[n], Device::Cpu))
    }

    fn random(shape: impl ShapeArg, mut f: impl FnMut(&mut Generator) -> f32) -> Tensor {
        let shape = plain_shape("random", shape).unwrap_or_else(|e| panic!("{e}"));
        let n: usize = shape.iter().product();
        let data = with_global_generator(|g| (0..n).map(|_| f(g)).collect());
        Tensor::from_host(data, &shape, Device::Cpu)
    }

    /// Uniform in [0, 1) from the global generator (`torch.rand`).
    pub fn rand(shape: impl ShapeArg) -> Tensor {
        Tensor::random(shape, |g| g.uniform())
    }

    /// Standard normal from the global generator (`torch.randn`).
    pub fn randn(shape: impl ShapeArg) -> Tensor {
        Tensor::random(shape, |g| g.normal())
    }

    /// Uniform in [low, high) from the global generator.
    pub fn uniform(shape: impl ShapeArg, low: f32, high: f32) -> Tensor {
        Tensor::random(shape, |g| low + (high - low) * g.uniform())
    }

    /// Standard normal values from an explicit generator.
    pub fn randn_with(shape: impl ShapeArg, gen: &mut Generator) -> Tensor {
        let shape = plain_shape("randn", shape).unwrap_or_else(|e| panic!("{e}"));
        let n: usize = shape.iter().product();
        Tensor::from_host((0..n).map(|_| gen.normal()).collect(), &shape, Device::Cpu)
    }

    /// Uniform values in [low, high) from an explicit generator.
    pub fn uniform_with(shape: impl ShapeArg, low: f32, high: f32, gen: &mut Generator) -> Tensor {
        let shape = plain_shape("uniform", shape).unwrap_or_else(|e| panic!("{e}"));
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| low + (high - low) * gen.uniform()).collect();
        Tensor::from_host(data, &shape, Device::Cpu)
    }

    // ---- metadata -----------------------------------------------------

    /// A process-unique id (graph bookkeeping).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// Same as [`shape`](Self::shape) (PyTorch's `size()`).
    pub fn dims(&self) -> &[usize] {
        self.shape()
    }

    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }

    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    pub fn device(&self) -> Device {
        self.storage().device()
    }

    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: isize) -> Result<usize> {
        let d = crate::layout::existing_dim("size", dim, self.shape())?;
        Ok(self.shape()[d])
    }

    fn expect_rank<const N: usize>(&self, op: &'static str) -> Result<[usize; N]> {
        self.shape().try_into().map_err(|_| {
            Error::shape(
                op,
                format!("expected a {N}-d tensor, got shape {:?}", self.shape()),
            )
        })
    }

    /// `(rows, cols)` of a 2-d tensor, or a shape error.
    pub fn dims2(&self) -> Result<(usize, usize)> {
        let [a, b] = self.expect_rank::<2>("dims2")?;
        Ok((a, b))
    }

    pub fn dims3(&self) -> Result<(usize, usize, usize)> {
        let [a, b, c] = self.expect_rank::<3>("dims3")?;
        Ok((a, b, c))
    }

    /// `(n, c, h, w)` of a 4-d tensor, or a shape error.
    pub fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        let [a, b, c, d] = self.expect_rank::<4>("dims4")?;
        Ok((a, b, c, d))
    }

    // ---- data access ----------------------------------------------------

    pub(crate) fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0
            .storage
            .storage
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The storage, for writing in place (no view of it may be read while
    /// the guard lives).
    pub(crate) fn storage_mut(&self) -> std::sync::RwLockWriteGuard<'_, Storage> {
        self.0
            .storage
            .storage
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `storage` in place of this tensor's (every view sees it), its
    /// dtype with it.
    pub(crate) fn replace_storage(&self, storage: Storage) {
        let dtype = storage.dtype().code();
        *self.storage_mut() = storage;
        self.0.storage.dtype.store(dtype, Ordering::Relaxed);
    }

    /// The backend that computes this tensor's device.
    pub(crate) fn backend(&self) -> &'static dyn Backend {
        backend::for_device(self.device())
    }

    /// The storage as `op`'s f32 kernels read it: the storage itself, or
    /// an f32 copy of a bf16/f16/i64 one (refused for an i64 that f32
    /// cannot hold exactly).
    pub(crate) fn f32_storage(&self, op: &'static str) -> Result<F32Storage<'_>> {
        let held = self.storage();
        Ok(match held.as_f32(op, self.layout())? {
            None => F32Storage::Held(held),
            Some(wide) => F32Storage::Widened(wide),
        })
    }

    /// Runs `f` on this tensor's storage (as f32) and layout, as kernels
    /// take them; `op` names the refusal of a dtype f32 cannot hold.
    pub(crate) fn with_view<R>(&self, op: &'static str, f: impl FnOnce(View) -> R) -> Result<R> {
        let storage = self.f32_storage(op)?;
        Ok(f((&storage, self.layout())))
    }

    /// The element type (`x.dtype` in PyTorch).
    pub fn dtype(&self) -> DType {
        DType::from_code(self.0.storage.dtype.load(Ordering::Relaxed))
    }

    /// The elements in row-major order, in their own dtype (a copy).
    pub fn to_host_data(&self) -> HostData {
        self.storage().data().gather(self.layout())
    }

    /// The elements in row-major order as f32, copied to a new host vector
    /// (exact for f32, bf16 and f16; an i64 past 2^24 rounds, as
    /// `.float()` does: [`to_vec_i64`](Self::to_vec_i64) reads it exactly).
    pub fn to_vec(&self) -> Vec<f32> {
        let storage = self.storage();
        match storage.dtype() {
            DType::F32 => self.backend().to_vec((&storage, self.layout())),
            _ => storage.data().gather(self.layout()).into_f32(),
        }
    }

    /// The elements as i64: exact for an i64 tensor; a float tensor must
    /// hold integers.
    pub fn to_vec_i64(&self) -> Result<Vec<i64>> {
        self.to_host_data().into_i64("to_vec_i64")
    }

    /// Whether the two tensors are views of the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Runs `f` on the elements in row-major order: the host storage itself
    /// when the tensor is contiguous (no copy: optimizers read gradients
    /// this way), else a copy.
    pub fn read_data<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        if !self.is_contiguous() || self.dtype() != DType::F32 {
            return f(&self.to_vec());
        }
        let (off, n) = (self.layout().offset(), self.numel());
        f(&self.storage().host()[off..off + n])
    }

    /// The value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "item",
                format!(
                    "only one-element tensors have an item, got shape {:?}",
                    self.shape()
                ),
            ));
        }
        Ok(self.to_vec()[0])
    }

    /// Rows of a 2-d tensor as nested vectors.
    pub fn to_vec2(&self) -> Result<Vec<Vec<f32>>> {
        let (_, c) = self.dims2()?;
        Ok(self.to_vec().chunks(c.max(1)).map(|r| r.to_vec()).collect())
    }

    /// The same values on `device` (PyTorch's `x.to(device)`): this tensor
    /// itself when it is there already, else a copy whose gradient flows
    /// back to this device.
    pub fn to(&self, device: Device) -> Result<Tensor> {
        device.ensure_available()?;
        if self.device() == device {
            return Ok(self.clone());
        }
        let from = self.device();
        let y = match self.dtype() {
            DType::F32 => Tensor::from_host(self.to_vec(), self.shape(), device),
            _ => Tensor::from_host_data(self.to_host_data(), self.shape(), device)?,
        };
        Ok(y.attach("ToCopyBackward", &[self], move |g, _| {
            Ok(vec![Some(g.to(from)?)])
        }))
    }

    /// Moves this tensor's storage to `device` in place: every view of it
    /// (and every holder of this tensor, such as an optimizer) sees the
    /// values there from now on. This is how `Module::to` moves
    /// parameters, as PyTorch's `module.to(device)` replaces `param.data`.
    pub fn move_to(&self, device: Device) -> Result<()> {
        device.ensure_available()?;
        if self.device() == device {
            return Ok(());
        }
        let backend = self.backend();
        let moved = {
            let storage = self.storage();
            match storage.dtype() {
                DType::F32 => {
                    let n = storage.len();
                    let whole = backend.to_vec((&storage, &Layout::contiguous(&[n])));
                    backend::for_device(device).upload(whole)
                }
                _ => Storage::on_host(device, storage.data().clone())?,
            }
        };
        self.replace_storage(moved);
        if let Some(g) = self.grad() {
            g.move_to(device)?;
        }
        Ok(())
    }

    /// Writes into this tensor's elements in place, without recording a
    /// graph (optimizer updates, loading weights). The tensor must be
    /// contiguous; views of it see the change.
    pub fn update_data<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
        if !self.is_contiguous() {
            return Err(Error::arg("update_data", "tensor is not contiguous"));
        }
        self.expect_f32("update_data")?;
        let (off, n) = (self.layout().offset(), self.numel());
        let mut storage = self.storage_mut();
        Ok(f(&mut storage.host_mut()[off..off + n]))
    }

    /// Refuses a tensor that is not f32 where `op` writes f32 values in
    /// place (an optimizer's step, loading weights by `update_data`).
    pub(crate) fn expect_f32(&self, op: &'static str) -> Result<()> {
        match self.dtype() {
            DType::F32 => Ok(()),
            other => Err(Error::DType {
                op,
                msg: format!(
                    "writes f32 values in place, and this tensor is {other} \
                     (convert it with .to_dtype(DType::F32) first)"
                ),
            }),
        }
    }

    /// Copies `src`'s values into this tensor in place (shapes must match),
    /// converted to this tensor's dtype as PyTorch's `copy_` does.
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::shape(
                "copy_from",
                format!(
                    "source shape {:?} differs from destination {:?}",
                    src.shape(),
                    self.shape()
                ),
            ));
        }
        let (src, backend) = (src.to(self.device())?, self.backend());
        if self.dtype() != DType::F32 || src.dtype() != DType::F32 {
            return self.copy_typed_from(&src);
        }
        // (a copy first: `src` may be a view of this very storage)
        let values = src.with_view("copy_from", |v| backend.contiguous(v))?;
        let whole = Layout::contiguous(self.shape());
        let mut storage = self.storage_mut();
        backend.write_view(&mut storage, self.layout(), (&values, &whole));
        Ok(())
    }

    /// `copy_from` between dtypes (or of one other than f32): the values
    /// converted on the host (an i64 past 2^24 rounds into f32, as
    /// `copy_` does) and written at this view's offsets.
    fn copy_typed_from(&self, src: &Tensor) -> Result<()> {
        let values = src.to_host_data().convert(self.dtype(), "copy_from")?;
        let mut storage = self.storage_mut();
        let dst = storage.data_mut();
        let mut k = 0;
        self.layout().for_each_offset(|o| {
            dst.set_from(o, &values, k);
            k += 1;
        });
        Ok(())
    }

    // ---- autograd state -------------------------------------------------

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as needing gradients (`x.requires_grad_(True)`). Tensors
    /// made by ops get the flag from their inputs; on them this does nothing.
    pub fn requires_grad_(self, on: bool) -> Tensor {
        if self.is_leaf() {
            self.0.requires_grad.store(on, Ordering::Relaxed);
        }
        self
    }

    pub(crate) fn node_slot(&self) -> MutexGuard<'_, NodeSlot> {
        self.0.node.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_node(&self, node: Node) {
        *self.node_slot() = NodeSlot::Op(node);
        self.0.requires_grad.store(true, Ordering::Relaxed);
    }

    /// True for tensors not made by an op that records gradients.
    pub fn is_leaf(&self) -> bool {
        matches!(*self.node_slot(), NodeSlot::Leaf)
    }

    /// Name of the backward rule that made this tensor (`grad_fn`), if any.
    pub fn grad_fn_name(&self) -> Option<&'static str> {
        match &*self.node_slot() {
            NodeSlot::Leaf => None,
            NodeSlot::Op(n) => Some(n.backward.name()),
            NodeSlot::Freed(name) => Some(name),
        }
    }

    /// The accumulated gradient of a leaf, after `backward()`.
    pub fn grad(&self) -> Option<Tensor> {
        self.0
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the gradient (used by gradient clipping and tests).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
    }

    /// Drops the gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    pub(crate) fn accumulate_grad(&self, g: &Tensor) -> Result<()> {
        let mut slot = self.0.grad.lock().unwrap_or_else(|e| e.into_inner());
        let sum = match slot.take() {
            Some(prev) => prev.add(g)?,
            None => g.contiguous()?.detach(),
        };
        // a gradient has its leaf's dtype, as in PyTorch (ops compute and
        // return f32: a bf16 leaf's gradient is rounded to bf16)
        let own = self.dtype();
        *slot = Some(match own.is_float() && sum.dtype() != own {
            true => sum.to_dtype(own)?.detach(),
            false => sum,
        });
        Ok(())
    }

    /// The same data, cut off from the graph: a leaf that needs no grad.
    pub fn detach(&self) -> Tensor {
        self.view_with(self.layout().clone())
    }

    /// A copy in its own contiguous buffer (no-op view when already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() && self.layout().offset() == 0 {
            return Ok(self.clone());
        }
        let out = match self.dtype() {
            DType::F32 => Tensor::from_storage(
                self.with_view("contiguous", |v| self.backend().contiguous(v))?,
                self.shape(),
            ),
            _ => Tensor::from_host_data(self.to_host_data(), self.shape(), self.device())?,
        };
        Ok(out.attach("ContiguousBackward", &[self], |g, _| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// Strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        contiguous_strides(self.shape())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A tensor's storage as f32 kernels read it: held under its lock, or
/// widened into an f32 copy (bf16, f16, i64).
pub(crate) enum F32Storage<'a> {
    Held(RwLockReadGuard<'a, Storage>),
    Widened(Storage),
}

impl Deref for F32Storage<'_> {
    type Target = Storage;
    fn deref(&self) -> &Storage {
        match self {
            F32Storage::Held(guard) => guard,
            F32Storage::Widened(storage) => storage,
        }
    }
}
