//! `invoke()` allocates nothing: a counting global allocator watches a small CNN (conv, depthwise,
//! pool, add, mean, fully connected, softmax) run on 1 and 2 threads.
//!
//! This test has its own `main` (`harness = false`): the allocator counts every thread, and the
//! libtest harness's own threads allocate now and then while waiting for tests.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use sparq::{Interpreter, Model, Options};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    invoke_allocates_nothing();
    println!("invoke_allocates_nothing ... ok");
}

fn invoke_allocates_nothing() {
    let mut rng = Rng(11);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let x = rng.vec_f32(32 * 32 * 3);
    for threads in [1, 2] {
        let opts = Options {
            threads,
            profile: threads == 2,
            ..Options::default()
        };
        let mut it = Interpreter::new(&model, opts).unwrap();
        it.set_input(0, &x).unwrap();
        it.invoke().unwrap(); // warm-up: thread-locals, lazily initialised tables
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            it.invoke().unwrap();
        }
        COUNTING.store(false, Ordering::SeqCst);
        assert_eq!(
            ALLOCS.load(Ordering::SeqCst),
            0,
            "{threads} threads: invoke allocated"
        );
    }
}
