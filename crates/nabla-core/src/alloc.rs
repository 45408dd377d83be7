//! Keeping freed memory for reuse.
//!
//! Training allocates and frees the same large buffers at every step
//! (activations, gradients, an LSTM's gate values). glibc's malloc serves
//! blocks above its mmap threshold with fresh `mmap`s and returns them with
//! `munmap`, so each step pays a page fault and a page clear per 4 KiB it
//! writes: measured on the row-by-row LSTM, about 40% of a step. Raising the
//! mmap threshold to its maximum (32 MiB) and the trim threshold well above
//! that keeps such blocks in the heap, where the next step finds them.
//! Blocks above 32 MiB (a word-level language model's logits, 700 × 16,705
//! floats) would still be mmapped each time: mmap is turned off, so they
//! come from the heap too (the page faults took 40% of that model's step).
//!
//! And one arena for every thread: training and evaluation run on the
//! pool's threads, whose allocations glibc otherwise serves from arenas of
//! their own, made of mmapped heaps of at most 64 MiB each that it unmaps
//! when they empty — whatever the thresholds above say. A step whose
//! tensors need more than that (a CNN with 32 and 64 channels at batch 64)
//! then faulted every page in afresh: 2.4 s of system time in a 6 s epoch,
//! and the test pass 1.8× slower. The one arena's lock costs nothing
//! measurable (LeNet and the LSTM train as fast).
//!
//! Done once, when the thread pool starts; elsewhere than glibc it does
//! nothing.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn keep_freed_memory() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // glibc's malloc.h: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3,
        // M_MMAP_MAX = -4, M_ARENA_MAX = -8
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
        unsafe {
            mallopt(-3, 32 << 20);
            mallopt(-1, 1 << 30);
            mallopt(-4, 0);
            mallopt(-8, 1);
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
