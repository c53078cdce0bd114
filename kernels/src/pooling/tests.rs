use super::*;
use crate::reference::pooling as r;
use crate::testutil::*;

fn split_rows(n: usize) -> Vec<Range<usize>> {
    // Whole range, and a split into uneven chunks (what a thread pool does).
    let mid = n / 3;
    if n > 1 {
        vec![0..mid, mid..n]
    } else {
        std::iter::once(0..n).collect()
    }
}

#[test]
fn pool_f32_matches_reference() {
    let mut rng = Rng::new(7);
    for isa in tiers() {
        // Tiers without dedicated pooling kernels (aarch64: the portable build is NEON) are skipped.
        let Some(k) = PoolKernels::for_isa(isa) else {
            continue;
        };
        for w in window_cases(11, 40, false, |c, _| c) {
            let x = rng.vec_f32(w.input_len());
            let (lo, hi) = if rng.range(0, 1) == 0 {
                (f32::MIN, f32::MAX)
            } else {
                (0.0, 0.5)
            };
            for (name, f, want) in [
                ("max", k.max_f32, r::max_pool_f32(&w, &x, lo, hi)),
                ("avg", k.avg_f32, r::avg_pool_f32(&w, &x, lo, hi)),
            ] {
                let mut got = vec![f32::NAN; w.output_len()];
                let rl = w.w.output * w.out_c;
                for rows in split_rows(w.output_rows()) {
                    let part = &mut got[rows.start * rl..rows.end * rl];
                    f(&w, &x, part, rows, lo, hi);
                }
                assert_close(
                    &got,
                    &want,
                    1e-6,
                    &format!("{} {name}_pool_f32 {w:?}", isa.name()),
                );
            }
        }
    }
}

fn check_q<T: Q8 + std::fmt::Debug + PartialEq>(
    x: &[T],
    w: &Window2d,
    k_max: PoolQ<T>,
    k_avg: PoolQ<T>,
    lo: i32,
    hi: i32,
    what: &str,
) {
    let xi: Vec<i32> = x.iter().map(|v| v.to_i32()).collect();
    for (name, f, want) in [
        ("max", k_max, r::max_pool_q(w, &xi, T::MIN, lo, hi)),
        ("avg", k_avg, r::avg_pool_q(w, &xi, lo, hi)),
    ] {
        let mut got = vec![T::default(); w.output_len()];
        let rl = w.w.output * w.out_c;
        for rows in split_rows(w.output_rows()) {
            let part = &mut got[rows.start * rl..rows.end * rl];
            f(w, x, part, rows, lo, hi);
        }
        let got: Vec<i32> = got.iter().map(|v| v.to_i32()).collect();
        if let Some((i, g, e)) = first_diff(&got, &want) {
            panic!("{what} {name}: {w:?}: first difference at {i}: got {g}, want {e}");
        }
    }
}

#[test]
fn pool_q_matches_reference_exactly() {
    let mut rng = Rng::new(8);
    for isa in tiers() {
        // Tiers without dedicated pooling kernels (aarch64: the portable build is NEON) are skipped.
        let Some(k) = PoolKernels::for_isa(isa) else {
            continue;
        };
        for w in window_cases(12, 40, false, |c, _| c) {
            let (lo, hi) = if rng.range(0, 1) == 0 {
                (-128, 127)
            } else {
                (-20, 90)
            };
            let x = rng.vec_i8(w.input_len());
            check_q(
                &x,
                &w,
                k.max_i8,
                k.avg_i8,
                lo,
                hi,
                &format!("{} i8", isa.name()),
            );
            let (lo, hi) = if rng.range(0, 1) == 0 {
                (0, 255)
            } else {
                (30, 200)
            };
            let x = rng.vec_u8(w.input_len());
            check_q(
                &x,
                &w,
                k.max_u8,
                k.avg_u8,
                lo,
                hi,
                &format!("{} u8", isa.name()),
            );
        }
    }
}

#[test]
fn avg_q_rounds_half_away_from_zero() {
    // 1x2 window over [-1, -2] -> -1.5 -> -2; over [1, 2] -> 1.5 -> 2; [-1, 0] -> -0.5 -> -1.
    let w = Window2d::new(crate::window::WindowSpec {
        k_w: 2,
        stride_w: 2,
        ..crate::window::WindowSpec::new(1, 1, 6, 1, 1)
    })
    .unwrap();
    let x: [i8; 6] = [-1, -2, 1, 2, -1, 0];
    let mut out = [0i8; 3];
    (PoolKernels::active().avg_i8)(&w, &x, &mut out, 0..1, -128, 127);
    assert_eq!(out, [-2, 2, -1]);
}

#[test]
fn active_tier_is_the_best_enabled() {
    let best = tiers()
        .into_iter()
        .filter(|i| PoolKernels::for_isa(*i).is_some())
        .max()
        .unwrap();
    assert_eq!(PoolKernels::active().isa, best);
}
