//! Thread-pool hand-off: the fixed cost of splitting one operator over the pool.
//! Ids: `pool/<threads>/<tasks>/<work>`: a job of `tasks` tasks, each summing `work` numbers
//! (work 0: the pure hand-off and join).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sparq_kernels::pool::ThreadPool;
use std::sync::atomic::{AtomicU64, Ordering};

fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    let data: Vec<u64> = (0..1 << 16).collect();
    for threads in [1usize, 2] {
        let pool = ThreadPool::new(threads).unwrap();
        for (tasks, work) in [(2usize, 0usize), (2, 4096), (8, 1024)] {
            let id = BenchmarkId::new(format!("{threads}/{tasks}"), work);
            let sink = AtomicU64::new(0);
            g.bench_function(id, |b| {
                b.iter(|| {
                    pool.run(tasks, &|i| {
                        let s: u64 = data[i * work..(i + 1) * work].iter().sum();
                        sink.fetch_add(black_box(s), Ordering::Relaxed);
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
