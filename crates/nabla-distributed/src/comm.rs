//! MPI, as nabla uses it: the processes of the job ([`Mpi`], [`Comm`]) and
//! the few collectives data-parallel training needs, each non-blocking
//! underneath and waited on with a deadline, so that no rank waits forever
//! for one that died or hangs.
//!
//! The calls go to the C functions of rsmpi's `ffi` module: the training
//! loop starts a bucket's allreduce in one call (a parameter's gradient
//! is ready) and waits for it in another (the backward pass is over),
//! which rsmpi's scoped requests cannot span.

use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::Communicator;
use mpi::Threading;
use nabla_train::{Result, TrainError};

/// The default for how long a rank waits for the others before it ends the
/// job (`NABLA_DIST_TIMEOUT`, in seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The MPI library, started; finalized when dropped. Keep it alive for the
/// whole program (in `main`).
pub struct Mpi {
    // (dropping the universe calls MPI_Finalize)
    _universe: mpi::environment::Universe,
    comm: Comm,
}

impl Mpi {
    /// Starts MPI (`MPI_Init_thread`). nabla calls MPI from the thread its
    /// training runs on, one call at a time: MPI_THREAD_SERIALIZED.
    pub fn init() -> Result<Mpi> {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| dist("MPI was already started in this process"))?;
        if provided < Threading::Serialized {
            return Err(dist(format!(
                "this MPI library offers threading level {provided:?}; nabla needs Serialized"
            )));
        }
        let world = universe.world();
        // the ranks on this machine: their number sets the threads of each
        let local = world.split_shared(world.rank());
        let timeout = match std::env::var("NABLA_DIST_TIMEOUT") {
            Err(_) => DEFAULT_TIMEOUT,
            Ok(s) => match s.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => Duration::from_secs_f64(t),
                _ => {
                    return Err(dist(format!(
                        "NABLA_DIST_TIMEOUT must be a positive number of seconds, got {s:?}"
                    )))
                }
            },
        };
        let comm = Comm {
            raw: RawComm(world.as_raw()),
            rank: world.rank() as usize,
            size: world.size() as usize,
            local_rank: local.rank() as usize,
            local_size: local.size() as usize,
            timeout,
        };
        Ok(Mpi {
            _universe: universe,
            comm,
        })
    }

    pub fn comm(&self) -> Comm {
        self.comm
    }
}

/// An MPI communicator handle; MPI_Comm is a pointer in Open MPI and an
/// integer in MPICH.
#[derive(Clone, Copy)]
struct RawComm(ffi::MPI_Comm);

// SAFETY: the handle names a communicator that lives as long as MPI does;
// nabla makes its MPI calls one at a time (MPI_THREAD_SERIALIZED), from
// whichever thread the training runs on.
unsafe impl Send for RawComm {}
unsafe impl Sync for RawComm {}

/// The job's processes: this one's rank, their number, and how they sit
/// on the machines.
#[derive(Clone, Copy)]
pub struct Comm {
    raw: RawComm,
    pub rank: usize,
    pub size: usize,
    /// This process's rank among those on its machine, and their number.
    pub local_rank: usize,
    pub local_size: usize,
    /// How long a collective may wait for the other ranks.
    pub timeout: Duration,
}

/// A collective under way; its buffers must stay untouched until waited.
pub struct Pending {
    request: ffi::MPI_Request,
    started: Instant,
}

// SAFETY: as `RawComm`: requests are tested and waited on one call at a time.
unsafe impl Send for Pending {}

impl Comm {
    /// Rank 0's `bytes` on every rank (the others' are ignored): a
    /// checkpoint read by rank 0 alone, for a run directory that only rank
    /// 0's machine sees.
    // (the `unsafe` blocks below read the MPI library's datatype constants)
    pub fn broadcast_bytes(&self, bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
        let mut len = [bytes.len() as u64];
        self.broadcast_raw(
            len.as_mut_ptr().cast(),
            1,
            unsafe { ffi::RSMPI_UINT64_T },
            what,
        )?;
        let mut bytes = bytes;
        bytes.resize(len[0] as usize, 0);
        let n = count(bytes.len())?;
        self.broadcast_raw(
            bytes.as_mut_ptr().cast(),
            n,
            unsafe { ffi::RSMPI_UINT8_T },
            what,
        )?;
        Ok(bytes)
    }

    /// `buf` on every rank set to rank 0's.
    pub fn broadcast_f32(&self, buf: &mut [f32], what: &str) -> Result<()> {
        let n = count(buf.len())?;
        self.broadcast_raw(
            buf.as_mut_ptr().cast(),
            n,
            unsafe { ffi::RSMPI_FLOAT },
            what,
        )
    }

    fn broadcast_raw(
        &self,
        buf: *mut std::ffi::c_void,
        n: i32,
        datatype: ffi::MPI_Datatype,
        what: &str,
    ) -> Result<()> {
        let mut request = null_request();
        // SAFETY: the callers' buffers hold `n` values of `datatype` and stay
        // borrowed until the request is waited on below.
        let rc = unsafe { ffi::MPI_Ibcast(buf, n, datatype, 0, self.raw.0, &mut request) };
        self.check(rc, what)?;
        self.wait(&mut self.pending(request), what)
    }

    /// Every rank's `value`, in rank order.
    pub fn all_gather_u64(&self, value: u64, what: &str) -> Result<Vec<u64>> {
        let send = [value];
        let mut all = vec![0u64; self.size];
        let mut request = null_request();
        // SAFETY: `send` and `all` live until the request is waited on below.
        let rc = unsafe {
            ffi::MPI_Iallgather(
                send.as_ptr().cast(),
                1,
                ffi::RSMPI_UINT64_T,
                all.as_mut_ptr().cast(),
                1,
                ffi::RSMPI_UINT64_T,
                self.raw.0,
                &mut request,
            )
        };
        self.check(rc, what)?;
        self.wait(&mut self.pending(request), what)?;
        Ok(all)
    }

    /// `values` summed over the ranks, in place.
    pub fn sum_f64(&self, values: &mut [f64], what: &str) -> Result<()> {
        let send = values.to_vec();
        // SAFETY: `send` and `values` live, untouched, until the wait below.
        let mut pending = unsafe {
            self.start_sum(
                send.as_ptr().cast(),
                values.as_mut_ptr().cast(),
                values.len(),
                ffi::RSMPI_DOUBLE,
                what,
            )?
        };
        self.wait(&mut pending, what)
    }

    /// Starts summing `send` over the ranks into `recv`.
    ///
    /// # Safety
    /// Neither buffer may be read, written, moved or freed until the
    /// returned request has been waited on ([`wait`](Comm::wait)) or has
    /// tested complete ([`test`](Comm::test)).
    pub unsafe fn start_sum_f32(
        &self,
        send: &[f32],
        recv: &mut [f32],
        what: &str,
    ) -> Result<Pending> {
        assert_eq!(send.len(), recv.len());
        // SAFETY: the caller keeps both buffers as they are until the end.
        unsafe {
            self.start_sum(
                send.as_ptr().cast(),
                recv.as_mut_ptr().cast(),
                send.len(),
                ffi::RSMPI_FLOAT,
                what,
            )
        }
    }

    /// `MPI_Iallreduce` of `n` values of `datatype` with `MPI_SUM`.
    ///
    /// # Safety
    /// As [`start_sum_f32`](Comm::start_sum_f32), for buffers of `n` values.
    unsafe fn start_sum(
        &self,
        send: *const std::ffi::c_void,
        recv: *mut std::ffi::c_void,
        n: usize,
        datatype: ffi::MPI_Datatype,
        what: &str,
    ) -> Result<Pending> {
        let mut request = null_request();
        // SAFETY: the caller's buffers hold `n` values and outlive the request.
        let rc = unsafe {
            ffi::MPI_Iallreduce(
                send,
                recv,
                count(n)?,
                datatype,
                ffi::RSMPI_SUM,
                self.raw.0,
                &mut request,
            )
        };
        self.check(rc, what)?;
        Ok(self.pending(request))
    }

    /// Whether the collective is done (MPI progresses it during the call).
    pub fn test(&self, pending: &mut Pending) -> bool {
        let mut done = 0;
        // SAFETY: a live request of this process.
        unsafe { ffi::MPI_Test(&mut pending.request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
        done != 0
    }

    /// Waits for the collective; past the timeout the job ends (a
    /// collective cannot be cancelled, and a rank that waits alone forever
    /// would keep the others' resources).
    pub fn wait(&self, pending: &mut Pending, what: &str) -> Result<()> {
        let mut spins = 0u32;
        while !self.test(pending) {
            spins += 1;
            if spins.is_multiple_of(1024) {
                if pending.started.elapsed() > self.timeout {
                    // (of more ranks, any one of the others may be the silent one)
                    let silent = match self.size {
                        2 => format!("rank {}", 1 - self.rank),
                        _ => "the other ranks".to_string(),
                    };
                    self.abort(&format!(
                        "rank {} of {}: no answer from {silent} for {:.0} s while {what}; \
                         a rank has died or hangs (NABLA_DIST_TIMEOUT sets the wait); ending the job",
                        self.rank,
                        self.size,
                        self.timeout.as_secs_f64()
                    ));
                }
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Prints `message` and ends every process of the job (`MPI_Abort`).
    pub fn abort(&self, message: &str) -> ! {
        eprintln!("error: {message}");
        // SAFETY: MPI is running; MPI_Abort does not return.
        unsafe { ffi::MPI_Abort(self.raw.0, 1) };
        std::process::exit(1)
    }

    fn pending(&self, request: ffi::MPI_Request) -> Pending {
        Pending {
            request,
            started: Instant::now(),
        }
    }

    fn check(&self, rc: i32, what: &str) -> Result<()> {
        // (MPI's default handler aborts on errors; this is for handlers that return)
        match rc {
            0 => Ok(()),
            rc => Err(dist(format!(
                "rank {}: MPI error {rc} while {what}",
                self.rank
            ))),
        }
    }
}

fn null_request() -> ffi::MPI_Request {
    // SAFETY: reading an extern constant of the MPI library.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

fn count(len: usize) -> Result<i32> {
    i32::try_from(len)
        .map_err(|_| dist(format!("{len} values are more than one MPI call can send")))
}

pub(crate) fn dist(msg: impl Into<String>) -> TrainError {
    TrainError::Distributed(msg.into())
}
