//! The activation arena: one buffer for every intermediate tensor, planned once at prepare.
//!
//! Each tensor that lives in the arena asks for `size` bytes from the step that writes it
//! (`first`) to the last step that reads it (`last`), both inclusive. Two tensors whose lifetimes
//! overlap never share bytes; tensors whose lifetimes are disjoint may. The planner is TFLite
//! Micro's greedy one: place the largest tensors first, each at the lowest aligned offset that
//! does not collide with an already placed tensor alive at the same time.

/// One buffer request: `size` bytes alive during steps `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub size: usize,
    pub first: usize,
    pub last: usize,
}

impl Request {
    fn overlaps_in_time(&self, other: &Request) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where each request goes and how many bytes the arena needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Byte offset of each request, in the order of the requests; a multiple of the alignment.
    pub offsets: Vec<usize>,
    /// Bytes the arena needs (the end of the highest placed request, rounded up to the alignment).
    pub total: usize,
}

/// Rounds `n` up to a multiple of `align` (a power of two), or `None` on overflow.
pub fn align_up(n: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    n.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// Plans the arena for `reqs`; every offset is a multiple of `align` (a power of two).
/// Returns `None` if the total size overflows `usize`.
pub fn plan(reqs: &[Request], align: usize) -> Option<Plan> {
    assert!(
        align.is_power_of_two(),
        "arena alignment must be a power of two"
    );
    let mut order: Vec<usize> = (0..reqs.len()).collect();
    // Largest first; ties by earlier birth then index, so the plan is deterministic.
    order.sort_by(|&a, &b| {
        reqs[b]
            .size
            .cmp(&reqs[a].size)
            .then(reqs[a].first.cmp(&reqs[b].first))
            .then(a.cmp(&b))
    });
    let mut offsets = vec![0usize; reqs.len()];
    // Placed requests as (offset, end, index), kept sorted by offset.
    let mut placed: Vec<(usize, usize, usize)> = Vec::with_capacity(reqs.len());
    let mut total = 0usize;
    for &i in &order {
        let r = &reqs[i];
        let size = align_up(r.size, align)?;
        let mut candidate = 0usize;
        if size > 0 {
            for &(off, end, j) in &placed {
                if !r.overlaps_in_time(&reqs[j]) || end == off {
                    continue;
                }
                if off >= candidate.checked_add(size)? {
                    break; // the gap before this buffer is large enough
                }
                candidate = candidate.max(end);
            }
        }
        let end = candidate.checked_add(size)?;
        offsets[i] = candidate;
        total = total.max(end);
        let pos = placed.partition_point(|&(off, _, _)| off <= candidate);
        placed.insert(pos, (candidate, end, i));
    }
    Some(Plan { offsets, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift64*), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check(reqs: &[Request], align: usize, plan: &Plan) {
        assert_eq!(plan.offsets.len(), reqs.len());
        for (i, a) in reqs.iter().enumerate() {
            let oa = plan.offsets[i];
            assert_eq!(oa % align, 0, "request {i} at {oa} is not {align}-aligned");
            assert!(
                oa + a.size <= plan.total,
                "request {i} {a:?} at {oa} exceeds {}",
                plan.total
            );
            for (j, b) in reqs.iter().enumerate().skip(i + 1) {
                let ob = plan.offsets[j];
                let disjoint_mem = oa + a.size <= ob || ob + b.size <= oa;
                assert!(
                    !a.overlaps_in_time(b) || disjoint_mem || a.size == 0 || b.size == 0,
                    "requests {i} {a:?} at {oa} and {j} {b:?} at {ob} overlap in time and memory"
                );
            }
        }
    }

    #[test]
    fn chain_reuses_memory() {
        // A chain a -> b -> c -> d: only two neighbours are ever alive together.
        let reqs = [
            Request {
                size: 100,
                first: 0,
                last: 1,
            },
            Request {
                size: 100,
                first: 1,
                last: 2,
            },
            Request {
                size: 100,
                first: 2,
                last: 3,
            },
            Request {
                size: 100,
                first: 3,
                last: 4,
            },
        ];
        let p = plan(&reqs, 64).unwrap();
        check(&reqs, 64, &p);
        assert_eq!(p.total, 256, "{p:?}");
    }

    #[test]
    fn all_alive_is_the_sum() {
        let reqs: Vec<Request> = (1..=5)
            .map(|i| Request {
                size: i * 64,
                first: 0,
                last: 9,
            })
            .collect();
        let p = plan(&reqs, 64).unwrap();
        check(&reqs, 64, &p);
        assert_eq!(p.total, 64 * 15);
    }

    #[test]
    fn small_fills_gap_left_by_dead_large() {
        // Big buffer dies at step 1; two small ones later fit where it was.
        let reqs = [
            Request {
                size: 1024,
                first: 0,
                last: 1,
            },
            Request {
                size: 512,
                first: 1,
                last: 3,
            },
            Request {
                size: 256,
                first: 2,
                last: 3,
            },
            Request {
                size: 256,
                first: 2,
                last: 3,
            },
        ];
        let p = plan(&reqs, 64).unwrap();
        check(&reqs, 64, &p);
        assert_eq!(p.total, 1536, "{p:?}");
    }

    #[test]
    fn empty_and_zero_sized() {
        assert_eq!(
            plan(&[], 64).unwrap(),
            Plan {
                offsets: vec![],
                total: 0
            }
        );
        let reqs = [
            Request {
                size: 0,
                first: 0,
                last: 0,
            },
            Request {
                size: 8,
                first: 0,
                last: 0,
            },
        ];
        let p = plan(&reqs, 16).unwrap();
        check(&reqs, 16, &p);
        assert_eq!(p.total, 16);
    }

    #[test]
    fn overflow_is_none() {
        let reqs = [
            Request {
                size: usize::MAX / 2,
                first: 0,
                last: 1,
            },
            Request {
                size: usize::MAX / 2 + 64,
                first: 0,
                last: 1,
            },
        ];
        assert!(plan(&reqs, 64).is_none());
        assert!(plan(
            &[Request {
                size: usize::MAX,
                first: 0,
                last: 0
            }],
            64
        )
        .is_none());
    }

    #[test]
    fn random_plans_never_collide() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..300 {
            let n = 1 + rng.below(40) as usize;
            let steps = 1 + rng.below(30) as usize;
            let reqs: Vec<Request> = (0..n)
                .map(|_| {
                    let first = rng.below(steps as u64) as usize;
                    let last = first + rng.below((steps - first) as u64) as usize;
                    Request {
                        size: rng.below(5000) as usize,
                        first,
                        last,
                    }
                })
                .collect();
            let align = [1usize, 16, 64][case % 3];
            let p = plan(&reqs, align).unwrap();
            check(&reqs, align, &p);
            // Never worse than giving everyone its own bytes.
            let sum: usize = reqs.iter().map(|r| align_up(r.size, align).unwrap()).sum();
            assert!(p.total <= sum, "case {case}: {} > {sum}", p.total);
            // Never better than the busiest step.
            let peak = (0..steps)
                .map(|s| {
                    reqs.iter()
                        .filter(|r| r.first <= s && s <= r.last)
                        .map(|r| r.size)
                        .sum()
                })
                .max()
                .unwrap_or(0);
            assert!(p.total >= peak, "case {case}: {} < peak {peak}", p.total);
        }
    }
}
