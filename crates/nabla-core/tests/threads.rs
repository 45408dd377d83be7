//! The pool's other threads spin while `in_pool` runs (threads.rs): these
//! check that nothing waits forever because of it: panics reach the caller,
//! and callers on several threads at once, nested calls and spawned jobs
//! all finish.

use std::sync::Once;

use nabla_core::{in_pool, set_num_threads, Tensor};

/// Two threads, whatever the machine has: one runs `f`, one spins.
fn two_threads() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| set_num_threads(2));
}

/// A product big enough to be split between the threads, and its sum.
fn parallel_work(seed: f32) -> f32 {
    let a = Tensor::full([256, 256], seed);
    let b = Tensor::full([256, 256], 1.0);
    a.matmul(&b).unwrap().sum_all().unwrap().item().unwrap()
}

#[test]
fn a_panic_inside_reaches_the_caller() {
    two_threads();
    for _ in 0..20 {
        let r = std::panic::catch_unwind(|| in_pool(|| panic!("inside the pool")));
        assert!(r.is_err());
    }
    // and the pool still works
    assert_eq!(in_pool(|| parallel_work(1.0)), 256.0 * 256.0 * 256.0);
}

#[test]
fn callers_on_several_threads_nested_calls_and_spawned_jobs_finish() {
    two_threads();
    let callers: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|k| {
                        let (tx, rx) = std::sync::mpsc::channel();
                        in_pool(move || {
                            nabla_core::threads::spawn(move || tx.send(k).unwrap());
                            // nested: stays on this pool thread
                            let inner = in_pool(|| parallel_work(c as f32));
                            // the spawned job runs on the spinning thread (or here)
                            while rx.try_recv().is_err() {
                                nabla_core::threads::run_pending();
                            }
                            inner
                        })
                    })
                    .sum::<f32>()
            })
        })
        .collect();
    for (c, caller) in callers.into_iter().enumerate() {
        let want = 10.0 * c as f32 * 256.0 * 256.0 * 256.0;
        assert_eq!(caller.join().unwrap(), want);
    }
}
