//! The bucket plan: which parameters' gradients travel together.
//!
//! One allreduce per parameter would pay MPI's latency (a few µs on one
//! machine, tens across a network) dozens of times a step; one allreduce
//! for the whole model could only start when the backward pass is over.
//! Buckets of about `cap` bytes are the middle way (PyTorch's DDP: 25 MiB,
//! the first 1 MiB): the backward pass produces gradients from the last
//! layer to the first, so the buckets are filled in that order and each is
//! sent as soon as it is full, while the layers below it are still being
//! differentiated.
//!
//! Every rank builds the same plan from the same model, and buckets are
//! always launched in plan order (a bucket that fills early waits for the
//! ones before it): MPI requires the ranks to start their collectives in
//! the same order.

/// Where a parameter's gradient lives in the buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// The parameter's index in `Module::parameters()` order.
    pub param: usize,
    pub bucket: usize,
    /// First element in the bucket's buffer.
    pub offset: usize,
    pub len: usize,
}

/// The buckets for parameters of `sizes` elements (in `parameters()`
/// order), each about `cap_bytes` of f32 at most (a larger parameter has a
/// bucket of its own): the last parameters first.
pub fn plan(sizes: &[usize], cap_bytes: usize) -> Vec<Vec<Slot>> {
    let cap = (cap_bytes / 4).max(1);
    let mut buckets: Vec<Vec<Slot>> = Vec::new();
    let mut current: Vec<Slot> = Vec::new();
    let mut filled = 0;
    for param in (0..sizes.len()).rev() {
        let len = sizes[param];
        if filled > 0 && filled + len > cap {
            buckets.push(std::mem::take(&mut current));
            filled = 0;
        }
        current.push(Slot {
            param,
            bucket: buckets.len(),
            offset: filled,
            len,
        });
        filled += len;
    }
    if !current.is_empty() {
        buckets.push(current);
    }
    buckets
}

/// Elements of a bucket.
pub fn bucket_len(bucket: &[Slot]) -> usize {
    bucket.last().map_or(0, |s| s.offset + s.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fill_from_the_last_parameter_and_respect_the_cap() {
        // LeNet-like sizes: conv1 w, b, conv2 w, b, fc1 w, b, fc2 w, b
        let sizes = [150, 6, 2400, 16, 48000, 120, 1200, 10];
        let plan = plan(&sizes, 16 << 10); // 4096 floats
        let order: Vec<usize> = plan.iter().flatten().map(|s| s.param).collect();
        assert_eq!(order, vec![7, 6, 5, 4, 3, 2, 1, 0]);
        for (b, bucket) in plan.iter().enumerate() {
            let len = bucket_len(bucket);
            // over the cap only when a single parameter is larger than it
            assert!(len <= 4096 || bucket.len() == 1, "bucket {b}: {bucket:?}");
            let mut at = 0;
            for s in bucket {
                assert_eq!((s.bucket, s.offset), (b, at));
                at += s.len;
            }
        }
        // fc2 and its bias and fc1's bias share the first bucket; fc1's
        // weight is alone
        assert_eq!(
            plan[0].iter().map(|s| s.param).collect::<Vec<_>>(),
            [7, 6, 5]
        );
        assert_eq!(plan[1].iter().map(|s| s.param).collect::<Vec<_>>(), [4]);
        assert_eq!(plan.iter().map(|b| b.len()).sum::<usize>(), sizes.len());
    }

    #[test]
    fn a_large_cap_makes_one_bucket_and_no_parameters_none() {
        let plan1 = plan(&[3, 4, 5], 1 << 20);
        assert_eq!(plan1.len(), 1);
        assert_eq!(bucket_len(&plan1[0]), 12);
        assert!(plan(&[], 1024).is_empty());
    }
}
