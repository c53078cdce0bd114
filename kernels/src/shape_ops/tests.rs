use super::*;

fn iota(n: usize) -> Vec<i32> {
    (0..n as i32).collect()
}

/// Multi-index of flat `i` in `shape`.
fn unravel(shape: &[usize], mut i: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
    idx
}

fn ravel(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |a, (&i, &d)| a * d + i)
}

#[test]
fn pad_matches_reference() {
    for (shape, pads) in [
        (vec![2usize, 3], vec![(1i64, 2i64), (0, 1)]),
        (vec![1, 2, 2, 3], vec![(0, 0), (1, 1), (2, 0), (0, 0)]),
        (vec![4], vec![(3, 0)]),
        (
            vec![2, 1, 3, 1, 2],
            vec![(1, 0), (0, 2), (1, 1), (0, 0), (2, 1)],
        ),
    ] {
        let plan = PadPlan::new(&shape, &pads).unwrap();
        let x = iota(shape.iter().product());
        let n: usize = plan.out_shape().iter().product();
        let mut out = vec![0; n];
        pad(&plan, &x, -7, &mut out);
        for (i, &v) in out.iter().enumerate() {
            let idx = unravel(plan.out_shape(), i);
            let src: Option<Vec<usize>> = idx
                .iter()
                .zip(&pads)
                .zip(&shape)
                .map(|((&o, &(b, _)), &d)| o.checked_sub(b as usize).filter(|&s| s < d))
                .collect();
            let want = src.map_or(-7, |s| x[ravel(&shape, &s)]);
            assert_eq!(v, want, "PAD {shape:?} {pads:?}: element {i}");
        }
    }
    assert!(PadPlan::new(&[2], &[(-1, 0)]).is_err());
    assert!(PadPlan::new(&[2], &[(0, 0), (0, 0)]).is_err());
}

#[test]
fn concat_split_pack_unpack() {
    let a = iota(2 * 3 * 2);
    let b: Vec<i32> = (100..104).collect();
    let plan = ConcatPlan::new(-2, &[&[2, 3, 2], &[2, 1, 2]]).unwrap();
    assert_eq!(plan.out_shape(), &[2, 4, 2]);
    let mut out = vec![0; 16];
    concat(&plan, &[&a, &b], &mut out);
    assert_eq!(
        out,
        [0, 1, 2, 3, 4, 5, 100, 101, 6, 7, 8, 9, 10, 11, 102, 103]
    );
    let (mut a2, mut b2) = (vec![0; 12], vec![0; 4]);
    let sp = ConcatPlan::split(1, &[2, 4, 2], &[3, 1]).unwrap();
    split(&sp, &out, &mut [&mut a2, &mut b2]);
    assert_eq!((a2, b2), (a.clone(), b.clone()));
    // PACK of three [2, 2] along axis 1 → [2, 3, 2].
    let xs = [iota(4), vec![10, 11, 12, 13], vec![20, 21, 22, 23]];
    let pp = ConcatPlan::pack(1, &[2, 2], 3).unwrap();
    assert_eq!(pp.out_shape(), &[2, 3, 2]);
    let mut packed = vec![0; 12];
    concat(&pp, &[&xs[0], &xs[1], &xs[2]], &mut packed);
    assert_eq!(packed, [0, 1, 10, 11, 20, 21, 2, 3, 12, 13, 22, 23]);
    let up = ConcatPlan::unpack(1, &[2, 3, 2]).unwrap();
    let mut parts = [vec![0; 4], vec![0; 4], vec![0; 4]];
    {
        let [p0, p1, p2] = &mut parts;
        split(&up, &packed, &mut [p0, p1, p2]);
    }
    assert_eq!(parts, xs);
    assert!(ConcatPlan::new(0, &[&[2, 3], &[2, 4]]).is_err());
    assert!(ConcatPlan::new(2, &[&[2, 3]]).is_err());
    assert!(ConcatPlan::split(0, &[4], &[1, 2]).is_err());
}

#[test]
fn concat_requantizes_like_tflite() {
    let qo = QParams::new(0.1, 3);
    let qi = QParams::new(0.25, -10);
    assert!(prepare_concat_requant::<i8>(qo, qo).unwrap().is_none());
    let t = prepare_concat_requant::<i8>(qi, qo).unwrap().unwrap();
    let scale = 0.25f32 * (1.0f32 / 0.1);
    for v in -128i32..128 {
        let want = ((v as f32 * scale + 10.0 * scale).round() as i32 + 3).clamp(-128, 127);
        assert_eq!(t.get(v as i8) as i32, want, "code {v}");
    }
    let plan = ConcatPlan::new(0, &[&[2], &[3]]).unwrap();
    let mut out = [0i8; 5];
    concat_q(
        &plan,
        &[&[1, 2], &[-10, 0, 4]],
        &[None, Some(t.clone())],
        &mut out,
    );
    assert_eq!(out, [1, 2, t.get(-10), t.get(0), t.get(4)]);
}

fn spec(begin: &[i64], end: &[i64], strides: &[i64], masks: [u32; 5]) -> StridedSliceSpec {
    StridedSliceSpec {
        begin: begin.to_vec(),
        end: end.to_vec(),
        strides: strides.to_vec(),
        begin_mask: masks[0],
        end_mask: masks[1],
        ellipsis_mask: masks[2],
        new_axis_mask: masks[3],
        shrink_axis_mask: masks[4],
        offset: false,
    }
}

#[test]
fn strided_slice_matches_numpy() {
    // Expected values from numpy on x = arange(24).reshape(2, 3, 4).
    let x = iota(24);
    let cases: Vec<(&str, StridedSliceSpec, Vec<usize>, Vec<i32>)> = vec![
        (
            "x[:, ::-1, 1:3]",
            spec(&[0, 0, 1], &[0, 0, 3], &[1, -1, 1], [0b011, 0b011, 0, 0, 0]),
            vec![2, 3, 2],
            vec![9, 10, 5, 6, 1, 2, 21, 22, 17, 18, 13, 14],
        ),
        (
            "x[1, :, -1]",
            spec(
                &[1, 0, -1],
                &[2, 0, 0],
                &[1, 1, 1],
                [0b010, 0b010, 0, 0, 0b101],
            ),
            vec![3],
            vec![15, 19, 23],
        ),
        (
            "x[..., ::2]",
            spec(&[0, 0], &[0, 0], &[1, 2], [0b10, 0b10, 0b01, 0, 0]),
            vec![2, 3, 2],
            vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22],
        ),
        (
            "x[None, 0:1]",
            spec(&[0, 0], &[0, 1], &[1, 1], [0, 0, 0, 0b01, 0]),
            vec![1, 1, 3, 4],
            iota(12),
        ),
        (
            "x[-1:-3:-1, 2:0:-1, -5:100]",
            spec(&[-1, 2, -5], &[-3, 0, 100], &[-1, -1, 1], [0; 5]),
            vec![2, 2, 4],
            vec![20, 21, 22, 23, 16, 17, 18, 19, 8, 9, 10, 11, 4, 5, 6, 7],
        ),
        (
            "x[:, 1:1]",
            spec(&[0, 1], &[0, 1], &[1, 1], [0b01, 0b01, 0, 0, 0]),
            vec![2, 0, 4],
            vec![],
        ),
        (
            "x[0, ..., None, 1]",
            spec(
                &[0, 0, 0, 1],
                &[1, 0, 0, 2],
                &[1; 4],
                [0, 0, 0b0010, 0b0100, 0b1001],
            ),
            vec![3, 1],
            vec![1, 5, 9],
        ),
    ];
    for (name, s, shape, want) in cases {
        let plan = SlicePlan::strided(&[2, 3, 4], &s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.out_shape(), &shape[..], "{name}: shape");
        let mut out = vec![0; want.len()];
        slice(&plan, &x, &mut out);
        assert_eq!(out, want, "{name}");
    }
    assert!(SlicePlan::strided(&[2, 3], &spec(&[0], &[1], &[0], [0; 5])).is_err());
    assert!(SlicePlan::strided(&[2, 3], &spec(&[5], &[6], &[1], [0, 0, 0, 0, 1])).is_err());
    assert!(
        SlicePlan::strided(&[2, 3], &spec(&[0, 0, 0], &[1, 1, 1], &[1, 1, 1], [0; 5])).is_err()
    );
}

#[test]
fn slice_and_transpose() {
    let x = iota(2 * 3 * 4);
    let plan = SlicePlan::slice(&[2, 3, 4], &[1, 0, 2], &[-1, 2, 2]).unwrap();
    assert_eq!(plan.out_shape(), &[1, 2, 2]);
    let mut out = vec![0; 4];
    slice(&plan, &x, &mut out);
    assert_eq!(out, [14, 15, 18, 19]);
    assert!(SlicePlan::slice(&[2, 3, 4], &[1, 0, 2], &[2, 1, 1]).is_err());

    for (shape, perm) in [
        (vec![2usize, 3, 4], vec![2i64, 0, 1]),
        (vec![1, 5, 1, 3], vec![3, 1, 0, 2]),
        (vec![2, 2, 3, 1, 2, 2], vec![5, 4, 3, 2, 1, 0]),
        (vec![7], vec![0]),
    ] {
        let plan = TransposePlan::new(&shape, &perm).unwrap();
        let x = iota(shape.iter().product());
        let mut out = vec![0; x.len()];
        transpose(&plan, &x, &mut out);
        for (i, &v) in out.iter().enumerate() {
            let oi = unravel(plan.out_shape(), i);
            let mut ii = vec![0; shape.len()];
            for (k, &p) in perm.iter().enumerate() {
                ii[p as usize] = oi[k];
            }
            assert_eq!(
                v,
                x[ravel(&shape, &ii)],
                "TRANSPOSE {shape:?} {perm:?}: element {i}"
            );
        }
    }
    assert!(TransposePlan::new(&[2, 3], &[0, 0]).is_err());
}

#[test]
fn depth_space_round_trip() {
    let shape = [2usize, 2, 3, 8];
    let x = iota(shape.iter().product());
    let os = depth_to_space_shape(&shape, 2).unwrap();
    assert_eq!(os, [2, 4, 6, 2]);
    let mut y = vec![0; x.len()];
    depth_to_space(&shape, 2, &x, &mut y);
    // out[n, h*b+i, w*b+j, c] = in[n, h, w, (i*b+j)*C' + c]
    for (k, &v) in y.iter().enumerate() {
        let [n, oh, ow, c] = unravel(&os, k)[..] else {
            unreachable!()
        };
        let src = ravel(
            &shape,
            &[n, oh / 2, ow / 2, ((oh % 2) * 2 + ow % 2) * 2 + c],
        );
        assert_eq!(v, x[src], "DEPTH_TO_SPACE element {k}");
    }
    assert_eq!(space_to_depth_shape(&os, 2).unwrap(), shape);
    let mut z = vec![0; x.len()];
    space_to_depth(&os, 2, &y, &mut z);
    assert_eq!(z, x);
    assert!(depth_to_space_shape(&[1, 2, 2, 6], 2).is_err());
    assert!(space_to_depth_shape(&[1, 3, 2, 6], 2).is_err());
    assert!(depth_to_space_shape(&[1, 2, 2, 4], 0).is_err());
}

#[test]
fn gather_matches_reference() {
    let params = iota(2 * 3 * 4);
    // axis 1, indices [[2, 0], [1, 1]] → shape [2, 2, 2, 4]
    let plan = GatherPlan::new(&[2, 3, 4], &[2, 2], 1, 0).unwrap();
    assert_eq!(plan.out_shape(), &[2, 2, 2, 4]);
    let idx = [2i32, 0, 1, 1];
    let mut out = vec![0; 32];
    gather(&plan, &params, &idx, &mut out).unwrap();
    for (k, &v) in out.iter().enumerate() {
        let [a, i, j, c] = unravel(&[2, 2, 2, 4], k)[..] else {
            unreachable!()
        };
        assert_eq!(
            v,
            params[ravel(&[2, 3, 4], &[a, idx[i * 2 + j] as usize, c])],
            "GATHER element {k}"
        );
    }
    // batch_dims 1: params [2, 3, 4], indices [2, 2], axis 1 → [2, 2, 4]
    let plan = GatherPlan::new(&[2, 3, 4], &[2, 2], 1, 1).unwrap();
    assert_eq!(plan.out_shape(), &[2, 2, 4]);
    let mut out = vec![0; 16];
    gather(&plan, &params, &[2i64, 0, 1, 2], &mut out).unwrap();
    assert_eq!(&out[..4], &params[8..12]);
    assert_eq!(&out[8..12], &params[16..20]);
    assert!(gather(&plan, &params, &[3i64, 0, 1, 2], &mut out).is_err());
    assert!(gather(&plan, &params, &[-1i64, 0, 1, 2], &mut out).is_err());
    assert!(GatherPlan::new(&[2, 3], &[2], 2, 0).is_err());
}
