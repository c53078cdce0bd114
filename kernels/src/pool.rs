//! A small persistent thread pool for splitting one kernel call across cores.
//!
//! [`ThreadPool::run`] calls `f(0..tasks)` on the caller and the pool's workers and returns when
//! every call has finished, so `f` may borrow from the caller's stack. Posting a job allocates
//! nothing. Workers spin briefly after a job (a network runs many short ops back to back), then
//! sleep on a condition variable, so an idle pool costs no CPU.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker spins for the next job before sleeping.
const SPIN: Duration = Duration::from_micros(100);

/// Busy polls (a `pause` each, well under a microsecond in all) before a waiting thread starts
/// yielding its core between polls: when the machine has more runnable threads than cores, a
/// thread that only polls would take the core from the very thread it waits for (or from the
/// caller's next operator); when it has not, the yield returns at once.
const PAUSES: u32 = 256;

/// One poll of a wait loop: a `pause` for the first [`PAUSES`] polls, then a yield.
fn backoff(polls: u32) {
    if polls < PAUSES {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

type Job = dyn Fn(usize) + Sync;

/// A task over one chunk of each of two slices (see [`ThreadPool::run_chunks2_mut`]).
pub type ChunkPairFn<'a, T, U> = dyn Fn(usize, &mut [T], &mut [U]) + Sync + 'a;

/// A job pointer whose lifetime has been erased; see the SAFETY note in [`ThreadPool::run`].
#[derive(Clone, Copy)]
struct JobPtr(*const Job);

// SAFETY: the pointee is `Sync` (shared calls from several threads are allowed), and `run` keeps
// it alive until every worker has stopped using the pointer.
unsafe impl Send for JobPtr {}

struct State {
    epoch: u64,
    job: Option<JobPtr>,
    tasks: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Mirrors `state.epoch` for spinning without the lock.
    epoch: AtomicU64,
    /// Next task index to hand out.
    next: AtomicUsize,
    /// Tasks of the current job that have returned.
    finished: AtomicUsize,
    /// Workers holding the current job pointer (taken under the `state` lock).
    in_flight: AtomicUsize,
    done_lock: Mutex<()>,
    done: Condvar,
    panicked: AtomicBool,
    /// Workers that have started running (see [`ThreadPool::new`]).
    started: AtomicUsize,
    /// Workers asleep on `wake` (changed under the `state` lock): posting a job skips the
    /// wake-up system call when none sleeps.
    sleepers: AtomicUsize,
    /// The caller of `run` sleeps on `done` (set under `done_lock`): the last task skips the
    /// notification when it does not.
    caller_asleep: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a task panicked; the state itself stays consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static IN_POOL_TASK: Cell<bool> = const { Cell::new(false) };
}

/// A pool of `threads - 1` workers; the thread calling [`ThreadPool::run`] is the last one.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    run_lock: Mutex<()>,
}

impl ThreadPool {
    /// A pool that runs jobs on `threads` threads in total (the caller included); `threads <= 1`
    /// spawns nothing and runs every job inline.
    pub fn new(threads: usize) -> std::io::Result<ThreadPool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                epoch: 0,
                job: None,
                tasks: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            panicked: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            caller_asleep: AtomicBool::new(false),
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::new(),
            run_lock: Mutex::new(()),
        };
        for i in 1..threads.max(1) {
            let shared = Arc::clone(&pool.shared);
            let handle = std::thread::Builder::new()
                .name(format!("sparq-worker-{i}"))
                .spawn(move || {
                    shared.started.fetch_add(1, Ordering::Release);
                    worker(&shared)
                })?;
            pool.workers.push(handle);
        }
        // Wait until every worker runs, so thread start-up (which allocates) is over before the
        // first job: running a job then never allocates.
        while pool.shared.started.load(Ordering::Acquire) < pool.workers.len() {
            std::thread::yield_now();
        }
        Ok(pool)
    }

    /// Threads that run a job, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(i)` once for every `i` in `0..tasks`, spread over the pool, and returns when all
    /// calls have returned. Called from inside a task of this or another pool, it runs inline.
    /// If a call panics, the panic is re-raised here after every other call has finished.
    pub fn run<'a>(&self, tasks: usize, f: &'a (dyn Fn(usize) + Sync + 'a)) {
        if tasks == 0 {
            return;
        }
        if self.workers.is_empty() || tasks == 1 || IN_POOL_TASK.with(|c| c.get()) {
            (0..tasks).for_each(f);
            return;
        }
        let _serial = lock(&self.run_lock);
        let shared = &*self.shared;
        // SAFETY: only the lifetime is erased. A worker takes the pointer from `state.job` under
        // the lock and counts itself in `in_flight` before releasing the lock; this function
        // waits for every task to return, then clears `state.job` under the lock (so no worker
        // can take the pointer afterwards) and waits for `in_flight` to drop to 0, and it does
        // not unwind before that (its own calls are wrapped in `catch_unwind`). So the pointer
        // is never used after `f`'s borrow ends.
        let job: *const Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(f) };
        shared.next.store(0, Ordering::Relaxed);
        shared.finished.store(0, Ordering::Relaxed);
        shared.panicked.store(false, Ordering::Relaxed);
        let sleeping = {
            let mut st = lock(&shared.state);
            st.job = Some(JobPtr(job));
            st.tasks = tasks;
            st.epoch += 1;
            shared.epoch.store(st.epoch, Ordering::Release);
            // A worker goes to sleep only under this lock after seeing the old epoch, so the
            // count read here includes every worker that could miss the new one.
            shared.sleepers.load(Ordering::Relaxed)
        };
        if sleeping > 0 {
            shared.wake.notify_all();
        }
        // The caller works too; if a worker is slow to wake, the caller takes its tasks.
        run_tasks(shared, f, tasks);
        wait_until(|| shared.finished.load(Ordering::SeqCst) >= tasks, shared);
        lock(&shared.state).job = None;
        while shared.in_flight.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
        }
        if shared.panicked.load(Ordering::Relaxed) {
            panic!("a thread-pool task panicked");
        }
    }
}

/// Spins briefly, then sleeps on the `done` condition variable, until `cond` holds.
fn wait_until(cond: impl Fn() -> bool, shared: &Shared) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        spins += 1;
        if spins >= PAUSES && start.elapsed() > SPIN {
            let mut g = lock(&shared.done_lock);
            // SeqCst pairs with the last task's increment of `finished` and its SeqCst load of
            // this flag: either that task sees the flag and notifies, or `cond` sees its count.
            shared.caller_asleep.store(true, Ordering::SeqCst);
            while !cond() {
                g = shared.done.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            shared.caller_asleep.store(false, Ordering::SeqCst);
            return;
        }
        backoff(spins);
    }
}

impl ThreadPool {
    /// Splits `out` into consecutive chunks of `chunk` elements (the last one shorter) and calls
    /// `f(i, chunk_i)` for each, spread over the pool; each call gets its chunk exclusively.
    pub fn run_chunks_mut<T: Send>(
        &self,
        out: &mut [T],
        chunk: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let len = out.len();
        let chunk = chunk.max(1);
        let tasks = len.div_ceil(chunk);
        if tasks <= 1 || self.workers.is_empty() {
            for (i, c) in out.chunks_mut(chunk).enumerate() {
                f(i, c);
            }
            return;
        }
        let base = SendPtr(out.as_mut_ptr());
        self.run(tasks, &|i| {
            let start = i * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: `run` calls each `i` in `0..tasks` exactly once, so the ranges
            // `start..end` handed out are disjoint and inside `out`, which stays mutably
            // borrowed (and so untouched by anyone else) until `run` returns.
            let part =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(i, part);
        });
    }
}

impl ThreadPool {
    /// As [`ThreadPool::run_chunks_mut`] over two slices at once: call `i` gets chunk `i` of `a`
    /// (`a_chunk` elements) and chunk `i` of `b` (`b_chunk` elements), exclusively. Runs
    /// `tasks` calls; chunks past the end of a slice are empty.
    pub fn run_chunks2_mut<T: Send, U: Send>(
        &self,
        tasks: usize,
        a: &mut [T],
        a_chunk: usize,
        b: &mut [U],
        b_chunk: usize,
        f: &ChunkPairFn<'_, T, U>,
    ) {
        let (a_len, b_len) = (a.len(), b.len());
        let (pa, pb) = (SendPtr(a.as_mut_ptr()), SendPtr(b.as_mut_ptr()));
        let part = |i: usize, chunk: usize, len: usize| {
            let start = (i * chunk).min(len);
            (start, (start + chunk).min(len))
        };
        self.run(tasks, &|i| {
            let (a0, a1) = part(i, a_chunk, a_len);
            let (b0, b1) = part(i, b_chunk, b_len);
            // SAFETY: as in `run_chunks_mut`: each `i` runs once, so the ranges handed out of
            // each slice are disjoint and in bounds, and both slices stay mutably borrowed until
            // `run` returns.
            let (ca, cb) = unsafe {
                (
                    std::slice::from_raw_parts_mut(pa.get().add(a0), a1 - a0),
                    std::slice::from_raw_parts_mut(pb.get().add(b0), b1 - b0),
                )
            };
            f(i, ca, cb);
        });
    }
}

/// A raw pointer that may cross threads; see the SAFETY note in `run_chunks_mut`.
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: only used by `run_chunks_mut`, whose tasks touch disjoint parts of a `&mut [T]` with
// `T: Send`; sharing the base pointer is then like sending each part to its thread.
unsafe impl<T: Send> Sync for SendPtr<T> {}

fn run_tasks(shared: &Shared, f: &(dyn Fn(usize) + Sync + '_), tasks: usize) {
    IN_POOL_TASK.with(|c| c.set(true));
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= tasks {
            break;
        }
        // A panicking task still counts as finished, so the caller never waits forever; the
        // caller re-raises it.
        if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        if shared.finished.fetch_add(1, Ordering::SeqCst) + 1 == tasks
            && shared.caller_asleep.load(Ordering::SeqCst)
        {
            let _g = lock(&shared.done_lock);
            shared.done.notify_one();
        }
    }
    IN_POOL_TASK.with(|c| c.set(false));
}

fn worker(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while shared.epoch.load(Ordering::Acquire) == seen {
            spins += 1;
            if spins >= PAUSES && start.elapsed() > SPIN {
                break;
            }
            backoff(spins);
        }
        let (job, tasks) = {
            let mut st = lock(&shared.state);
            while st.epoch == seen && !st.shutdown {
                shared.sleepers.fetch_add(1, Ordering::Relaxed);
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_sub(1, Ordering::Relaxed);
            }
            if st.shutdown {
                return;
            }
            seen = st.epoch;
            match st.job {
                Some(job) => {
                    shared.in_flight.fetch_add(1, Ordering::AcqRel);
                    (job, st.tasks)
                }
                // The caller already finished this job alone.
                None => continue,
            }
        };
        // SAFETY: `run` keeps the job alive while `in_flight` counts this worker (see there).
        let f: &Job = unsafe { &*job.0 };
        run_tasks(shared, f, tasks);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads())
            .finish()
    }
}

/// Splits `0..n` into `parts` contiguous ranges whose lengths differ by at most `align`-sized
/// steps: part `i` of `parts`, with boundaries on multiples of `align` (except the end).
pub fn split_range(n: usize, parts: usize, i: usize, align: usize) -> std::ops::Range<usize> {
    let align = align.max(1);
    let parts = parts.max(1);
    let blocks = n.div_ceil(align);
    let lo = blocks * i / parts;
    let hi = blocks * (i + 1) / parts;
    (lo * align).min(n)..(hi * align).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            for tasks in [0usize, 1, 2, 3, 7, 64, 1000] {
                for _ in 0..20 {
                    let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                    pool.run(tasks, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    for (i, h) in hits.iter().enumerate() {
                        assert_eq!(
                            h.load(Ordering::Relaxed),
                            1,
                            "threads {threads} task {i}/{tasks}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn borrows_and_writes_disjoint_parts() {
        let pool = ThreadPool::new(3).unwrap();
        let out: Vec<Mutex<Vec<u32>>> = (0..4).map(|_| Mutex::new(Vec::new())).collect();
        let input: Vec<u32> = (0..1001).collect();
        pool.run(4, &|i| {
            let r = split_range(input.len(), 4, i, 16);
            out[i]
                .lock()
                .unwrap()
                .extend(input[r].iter().map(|v| v * 2));
        });
        let all: Vec<u32> = out
            .into_iter()
            .flat_map(|m| m.into_inner().unwrap())
            .collect();
        assert_eq!(all, input.iter().map(|v| v * 2).collect::<Vec<_>>());
    }

    #[test]
    fn nested_run_is_inline_and_sleeping_workers_wake() {
        let pool = ThreadPool::new(2).unwrap();
        let count = AtomicUsize::new(0);
        pool.run(2, &|_| {
            pool.run(3, &|_| {
                count.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(count.load(Ordering::Relaxed), 6);
        std::thread::sleep(SPIN * 5);
        pool.run(8, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 14);
    }

    #[test]
    fn many_short_jobs_back_to_back_and_after_sleeping() {
        for threads in [2, 3] {
            let pool = ThreadPool::new(threads).unwrap();
            for round in 0..4000usize {
                let tasks = 2 + round % 5;
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(tasks, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                for (i, h) in hits.iter().enumerate() {
                    let n = h.load(Ordering::Relaxed);
                    assert_eq!(
                        n, 1,
                        "threads {threads} round {round} task {i}/{tasks}: {n} runs"
                    );
                }
                if round % 1000 == 999 {
                    // Let the workers fall asleep, so the next job has to wake them.
                    std::thread::sleep(SPIN * 3);
                }
            }
        }
    }

    #[test]
    fn panic_propagates_after_all_tasks() {
        let pool = ThreadPool::new(2).unwrap();
        let count = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(10, &|i| {
                count.fetch_add(1, Ordering::Relaxed);
                if i == 3 {
                    panic!("task 3");
                }
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let again = AtomicUsize::new(0);
        pool.run(5, &|_| {
            again.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(again.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn chunks_are_exclusive_and_complete() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads).unwrap();
            for len in [0usize, 1, 7, 64, 1001] {
                for chunk in [1usize, 3, 64, 2000] {
                    let mut v = vec![0u32; len];
                    pool.run_chunks_mut(&mut v, chunk, &|i, part| {
                        for (j, x) in part.iter_mut().enumerate() {
                            *x += (i * chunk + j) as u32 + 1;
                        }
                    });
                    let want: Vec<u32> = (1..=len as u32).collect();
                    assert_eq!(v, want, "threads {threads} len {len} chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn two_slices_split_together() {
        let pool = ThreadPool::new(3).unwrap();
        let mut a = vec![0u32; 10];
        let mut b = vec![0u8; 7];
        pool.run_chunks2_mut(4, &mut a, 3, &mut b, 2, &|i, ca, cb| {
            ca.iter_mut().for_each(|x| *x = i as u32 + 1);
            cb.iter_mut().for_each(|x| *x = i as u8 + 1);
        });
        assert_eq!(a, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
        assert_eq!(b, [1, 1, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn split_range_covers_exactly() {
        for n in [0usize, 1, 5, 16, 17, 100, 1001] {
            for parts in 1..6 {
                for align in [1usize, 4, 16] {
                    let mut next = 0;
                    for i in 0..parts {
                        let r = split_range(n, parts, i, align);
                        assert_eq!(r.start, next, "n {n} parts {parts} align {align} part {i}");
                        assert!(r.start == n || r.start.is_multiple_of(align));
                        next = r.end;
                    }
                    assert_eq!(next, n, "n {n} parts {parts} align {align}");
                }
            }
        }
    }
}
