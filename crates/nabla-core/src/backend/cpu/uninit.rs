//! Buffers written before they are read, without zeroing them first.
//!
//! A kernel that writes every element of its output (a convolution's
//! result, a recurrent layer's saved gate values) gets the output's spare
//! capacity as [`Slots`], writes each one, and then sets the length. Zeroing
//! such a buffer first is a pass over memory that buys nothing: a few per
//! cent of a LeNet step, 4% of an LSTM epoch.

use std::mem::MaybeUninit;

/// Room for outputs not yet written.
pub type Slots<'a> = &'a mut [MaybeUninit<f32>];

/// The first `len` slots of `v`'s spare capacity, reserving them first.
/// After writing all of them, `unsafe { v.set_len(len) }` (v empty before).
pub fn spare(v: &mut Vec<f32>, len: usize) -> Slots<'_> {
    v.reserve(len);
    &mut v.spare_capacity_mut()[..len]
}

/// The slots of an initialized buffer (writing floats into them keeps it so).
pub fn as_slots(buf: &mut [f32]) -> Slots<'_> {
    // SAFETY: MaybeUninit<f32> has f32's layout, and every f32 is a valid one.
    unsafe { &mut *(buf as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// The slots as floats.
///
/// # Safety
/// Every slot must have been written.
pub unsafe fn assume_init(slots: Slots<'_>) -> &mut [f32] {
    // SAFETY: the caller guarantees every slot was written; the layouts match.
    unsafe { &mut *(slots as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Fills the slots, `len` at a time, with `value(i)` for the i-th run
/// of `len` (a channel's bias, say) and returns them as initialized.
pub fn init(slots: Slots<'_>, len: usize, value: impl Fn(usize) -> f32) -> &mut [f32] {
    for (i, run) in slots.chunks_mut(len.max(1)).enumerate() {
        let v = value(i);
        run.iter_mut().for_each(|s| {
            s.write(v);
        });
    }
    // SAFETY: every slot was just written.
    unsafe { assume_init(slots) }
}

/// Writes `src` into the slots (of the same length) and returns them as
/// initialized.
pub fn write_copy<'a>(slots: Slots<'a>, src: &[f32]) -> &'a mut [f32] {
    assert_eq!(slots.len(), src.len(), "write_copy: lengths differ");
    slots.iter_mut().zip(src).for_each(|(d, &s)| {
        d.write(s);
    });
    // SAFETY: every slot was just written.
    unsafe { assume_init(slots) }
}
