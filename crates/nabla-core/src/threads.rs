//! The thread pool every parallel kernel runs in.
//!
//! Its size comes from [`set_num_threads`], else the `NABLA_NUM_THREADS`
//! environment variable, else the number of cores. Kernels call [`in_pool`]
//! so their rayon work (and gemm's) runs in this pool, not rayon's global one.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rayon::ThreadPool;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn default_threads() -> usize {
    std::env::var("NABLA_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(n: usize) -> Arc<ThreadPool> {
    crate::alloc::keep_freed_memory();
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("nabla-{i}"))
            // a main thread's stack: whole training runs may live here (in_pool)
            .stack_size(8 << 20)
            .build()
            .expect("failed to start the nabla thread pool"),
    )
}

fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| build(default_threads())).clone()
}

/// Sets the number of threads kernels use (`torch.set_num_threads`).
///
/// Call it outside [`in_pool`]: work already running on a pool thread
/// stays in that pool, with its old size, for its rayon loops and jobs.
pub fn set_num_threads(n: usize) {
    debug_assert!(
        rayon::current_thread_index().is_none(),
        "set_num_threads called from a pool thread: this work keeps the old pool"
    );
    let n = n.max(1);
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(build(n));
}

/// Number of threads kernels use.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Runs `f` on the pool in the background. Data loaders make their
/// batches this way: the work fills the moments when a pool thread would
/// wait, where a thread of its own would take a core from the kernels.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    pool().spawn(f)
}

/// On a pool thread, runs one job waiting in the pool (such as a batch
/// from [`spawn`]) and returns true; false when there was none, or when
/// called from outside the pool. For a loop that waits for work it spawned:
/// with one thread, nobody else would run it.
pub fn run_pending() -> bool {
    matches!(rayon::yield_now(), Some(rayon::Yield::Executed))
}

/// Runs `f` on a thread of nabla's pool and returns what it returns.
///
/// Every op hands its kernels to the pool and waits for them; wrapped in
/// `in_pool`, a whole training step (forward, loss, backward, update)
/// runs on a pool thread and its ops start their kernels right there
/// instead: LeNet's epoch took 3.1 → 2.9 s at one thread and 2.2 → 1.75 s
/// at two. `backward` does this by itself, and every kernel calls it for
/// its parallel work. Grad mode (`no_grad`) carries over into `f`.
///
/// While `f` runs, the pool's other threads spin waiting for work rather
/// than sleep (see `with_others_spinning`): they keep their cores busy
/// until `f` returns.
///
/// `f` holds a pool thread while it runs: it must not wait for another
/// thread that itself runs tensor ops (with one thread, that one would wait
/// for the pool forever). nabla's data loaders make their batches as pool
/// jobs and, waiting for one, run it themselves ([`run_pending`]), so a loop over
/// their batches is safe.
///
/// ```
/// use nabla_core::{in_pool, Tensor};
/// let w = Tensor::ones([3]).requires_grad_(true);
/// let loss = in_pool(|| w.mul_scalar(2.0)?.sum_all())?;
/// loss.backward()?;
/// assert_eq!(w.grad().unwrap().to_vec(), vec![2.0; 3]);
/// # Ok::<(), nabla_core::Error>(())
/// ```
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        // Already on a pool thread: nested work stays where it is.
        return f();
    }
    // grad mode and the autocast precision are per thread: carry the
    // caller's over
    let grad = crate::autograd::is_grad_enabled();
    let precision = crate::autocast::product_precision();
    let pool = pool();
    let others = pool.current_num_threads() - 1;
    pool.install(move || {
        with_others_spinning(others, || {
            crate::autocast::autocast(precision, || crate::autograd::with_grad_mode(grad, f))
        })
    })
}

/// Runs `f` while `others` of the pool's threads wait for work by spinning.
///
/// An idle rayon thread goes to sleep after about 30 rounds of looking for
/// work, and on this VM a sleeping thread took 14–29 µs to start a parallel
/// region that came 20 µs or more after the last one (2 µs when it came
/// sooner: `kernels pool_region`). A training step at two threads has about
/// six such regions between serial ops (the MLP's: each product, the
/// optimizer), so the pool's other threads instead run a job that looks for
/// work in a loop until `f` returns, as OpenMP runtimes do by default. They
/// keep their cores busy meanwhile.
fn with_others_spinning<R: Send>(others: usize, f: impl FnOnce() -> R + Send) -> R {
    if others == 0 {
        return f();
    }
    let done = AtomicBool::new(false);
    let owner = rayon::current_thread_index();
    rayon::scope(|s| {
        for _ in 0..others {
            s.spawn(|_| spin_until(&done, owner));
        }
        // set even when f panics: the scope waits for the spinners
        let _stop = SetOnDrop(&done);
        f()
    })
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

thread_local! {
    static SPINNING: Cell<bool> = const { Cell::new(false) };
}

/// Runs whatever work the pool has until `done`. Returns at once on the
/// thread that runs `f` (waiting for a nested job, it may take a spinner
/// from its own queue) and on a thread already spinning.
fn spin_until(done: &AtomicBool, owner: Option<usize>) {
    if rayon::current_thread_index() == owner || SPINNING.get() {
        return;
    }
    SPINNING.set(true);
    while !done.load(Ordering::Acquire) {
        if !matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
            // fewer polls of the other threads' queues while nothing comes
            (0..64).for_each(|_| std::hint::spin_loop());
        }
    }
    SPINNING.set(false);
}
