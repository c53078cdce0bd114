//! int8 goldens from LiteRT's reference kernels (tests/fixtures/eltops_litert.txt, made by
//! tools/gen_eltops_fixtures.py): every output must be equal, code for code.

use sparq_kernels::activation::{self, ReluKind};
use sparq_kernels::elementwise::{self, Activation, BinaryOp, BroadcastPlan, QParams};

struct Tensor {
    q: QParams,
    shape: Vec<usize>,
    codes: Vec<i8>,
}

struct Case {
    name: String,
    opts: Vec<(String, f64)>,
    ins: Vec<Tensor>,
    outs: Vec<Tensor>,
}

impl Case {
    fn opt(&self, k: &str) -> f64 {
        self.opts
            .iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("{}: no option {k}", self.name))
            .1
    }
}

fn load() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/eltops_litert.txt"
    );
    let text = std::fs::read_to_string(path).expect("read eltops_litert.txt");
    let mut cases = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    while let Some(line) = lines.next() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[0] {
            "case" => cases.push(Case {
                name: w[1].into(),
                opts: vec![],
                ins: vec![],
                outs: vec![],
            }),
            "ops" | "end" => {}
            "opt" => cases
                .last_mut()
                .unwrap()
                .opts
                .push((w[1].into(), w[2].parse().unwrap())),
            "in" | "out" => {
                let q = QParams::new(w[1].parse().unwrap(), w[2].parse().unwrap());
                let shape: Vec<usize> = w[4..].iter().map(|s| s.parse().unwrap()).collect();
                let codes: Vec<i8> = lines
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(|s| s.parse().unwrap())
                    .collect();
                assert_eq!(codes.len(), shape.iter().product::<usize>());
                let t = Tensor { q, shape, codes };
                let c = cases.last_mut().unwrap();
                if w[0] == "in" {
                    c.ins.push(t)
                } else {
                    c.outs.push(t)
                }
            }
            other => panic!("unexpected line kind {other}"),
        }
    }
    cases
}

fn check(case: &Case, got: &[i8]) {
    let want = &case.outs[0].codes;
    assert_eq!(got.len(), want.len(), "{}: length", case.name);
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        let input = case.ins[0].codes.get(i).copied();
        panic!(
            "{}: first difference at element {i} (input code {input:?}): got {}, LiteRT {}",
            case.name, got[i], want[i]
        );
    }
}

#[test]
fn int8_ops_equal_litert_reference() {
    let cases = load();
    assert!(cases.len() >= 12, "fixture incomplete");
    let mut checked = 0;
    for c in &cases {
        let x = &c.ins[0];
        let o = &c.outs[0];
        let mut got = vec![0i8; o.codes.len()];
        let lut = |r: Result<activation::Lut8<i8>, _>, got: &mut Vec<i8>| {
            r.unwrap_or_else(|e| panic!("{}: {e}", c.name))
                .apply(&x.codes, got)
        };
        let binary = |op: BinaryOp, act: Activation, got: &mut Vec<i8>| {
            let y = &c.ins[1];
            let plan = BroadcastPlan::new("TEST", &x.shape, &y.shape).unwrap();
            assert_eq!(plan.out_shape(), &o.shape[..], "{}", c.name);
            let p = elementwise::prepare_binary_q::<i8>(op, x.q, y.q, o.q, act).unwrap();
            elementwise::binary_i8(&p, &plan, &x.codes, &y.codes, got, 0);
        };
        match c.name.as_str() {
            "hard_swish" | "hard_swish_wide" => {
                lut(activation::prepare_hard_swish_q(x.q, o.q), &mut got)
            }
            "logistic" => lut(activation::prepare_logistic_q(x.q, o.q), &mut got),
            "tanh" => lut(activation::prepare_tanh_q(x.q, o.q), &mut got),
            "relu" => lut(
                activation::prepare_relu_q(ReluKind::Relu, x.q, o.q),
                &mut got,
            ),
            "relu6" => lut(
                activation::prepare_relu_q(ReluKind::Relu6, x.q, o.q),
                &mut got,
            ),
            "leaky_relu" => lut(
                activation::prepare_leaky_relu_q(c.opt("alpha") as f32, x.q, o.q),
                &mut got,
            ),
            "softmax" | "softmax_sharp" => {
                let p =
                    activation::prepare_softmax_q::<i8>(c.opt("beta") as f32, x.q, o.q).unwrap();
                activation::softmax_q(&p, &x.codes, &mut got, *x.shape.last().unwrap());
            }
            "log_softmax" | "log_softmax_sharp" => {
                let p = activation::prepare_log_softmax_q(x.q, o.q)
                    .unwrap_or_else(|e| panic!("{}: {e}", c.name));
                activation::log_softmax_q(&p, &x.codes, &mut got, *x.shape.last().unwrap());
            }
            "add" => binary(BinaryOp::Add, Activation::None, &mut got),
            "add_relu" => binary(BinaryOp::Add, Activation::Relu, &mut got),
            "sub" => binary(BinaryOp::Sub, Activation::None, &mut got),
            "mul" => binary(BinaryOp::Mul, Activation::None, &mut got),
            "squared_difference" => binary(BinaryOp::SquaredDifference, Activation::None, &mut got),
            "resize_bilinear_half_pixel"
            | "resize_bilinear_align"
            | "resize_bilinear_plain"
            | "resize_nearest" => {
                let p = sparq_kernels::resize::ResizePlan::new(
                    "RESIZE",
                    &x.shape,
                    c.opt("h") as i64,
                    c.opt("w") as i64,
                    c.opt("align_corners") != 0.0,
                    c.opt("half_pixel_centers") != 0.0,
                )
                .unwrap();
                assert_eq!(&p.out_shape()[..], &o.shape[..], "{}", c.name);
                if c.name == "resize_nearest" {
                    sparq_kernels::resize::resize_nearest(&p, &x.codes, &mut got);
                } else {
                    sparq_kernels::resize::resize_bilinear_i8(&p, &x.codes, &mut got);
                }
            }
            "concat" => {
                let y = &c.ins[1];
                let plan = sparq_kernels::shape_ops::ConcatPlan::new(
                    c.opt("axis") as i64,
                    &[&x.shape, &y.shape],
                )
                .unwrap();
                let rq = [
                    sparq_kernels::shape_ops::prepare_concat_requant::<i8>(x.q, o.q).unwrap(),
                    sparq_kernels::shape_ops::prepare_concat_requant::<i8>(y.q, o.q).unwrap(),
                ];
                sparq_kernels::shape_ops::concat_q(&plan, &[&x.codes, &y.codes], &rq, &mut got);
            }
            other => panic!("no check for fixture case {other}"),
        }
        check(c, &got);
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}
