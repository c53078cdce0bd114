//! `sparq-run`: run a `.sparq` or `.tflite` model on `.npy` inputs (or seeded random ones),
//! write its outputs, time it, profile it, or describe it. See `sparq-run --help`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sparq::npy::{NpyArray, NpyDtype};
use sparq::{DType, Interpreter, Model, Options, TensorInfo};

const HELP: &str = "\
sparq-run: run a .sparq or .tflite model

usage: sparq-run [MODEL] [options]

  MODEL                   a .sparq file, or a .tflite file (imported on the fly); without
                          MODEL: a demo on the bundled digits CNN (f32, float16, int8 and
                          pruned-sparse variants side by side on its 450 test images)
  --input X.npy           an input, in graph-input order (repeat for several inputs); without
                          --input, inputs are seeded random values. A float32 .npy given for an
                          int8/uint8 input is quantized with the input's scale and zero point.
  --seed S                seed of the random inputs (default 0)
  --output Y.npy          write an output, in graph-output order (repeat)
  --output-tensor NAME[=FILE]
                          also write an intermediate tensor (default FILE: NAME with '/', ';',
                          ':' and spaces replaced by '_', plus .npy)
  --threads N             threads per invoke (default 1)
  --bench                 time invoke: load and prepare ms, min/p50/p90/p99 ms, peak memory
  --warmup W              untimed runs before timing (default 5)
  --runs N                timed runs (default 50)
  --profile               time per operator
  --inspect               describe the model: ops, tensors, dtypes, sizes, sparsity
  --json                  print one JSON object on stdout instead of text
  -h, --help              this help
";

#[derive(Default)]
struct Args {
    model: Option<PathBuf>,
    inputs: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
    output_tensors: Vec<(String, PathBuf)>,
    threads: usize,
    seed: u64,
    bench: bool,
    warmup: usize,
    runs: usize,
    profile: bool,
    inspect: bool,
    json: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args {
        threads: 1,
        warmup: 5,
        runs: 50,
        ..Args::default()
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy().to_string();
        let mut value = |name: &str| {
            it.next()
                .map(|v| v.to_string_lossy().to_string())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{name}: {v:?} is not a non-negative integer"))
        };
        match s.as_str() {
            "-h" | "--help" => return Ok(None),
            "--input" => a.inputs.push(value("--input")?.into()),
            "--output" => a.outputs.push(value("--output")?.into()),
            "--output-tensor" => {
                let v = value("--output-tensor")?;
                let (name, file) = match v.split_once('=') {
                    Some((n, f)) => (n.to_string(), PathBuf::from(f)),
                    None => {
                        let clean: String = v
                            .chars()
                            .map(|c| if "/;: \\".contains(c) { '_' } else { c })
                            .collect();
                        (v.clone(), PathBuf::from(format!("{clean}.npy")))
                    }
                };
                a.output_tensors.push((name, file));
            }
            "--threads" => {
                a.threads = number("--threads", value("--threads")?)?;
                if a.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--seed" => a.seed = number("--seed", value("--seed")?)? as u64,
            "--warmup" => a.warmup = number("--warmup", value("--warmup")?)?,
            "--runs" => {
                a.runs = number("--runs", value("--runs")?)?;
                if a.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--bench" => a.bench = true,
            "--profile" => a.profile = true,
            "--inspect" => a.inspect = true,
            "--json" => a.json = true,
            _ if s.starts_with('-') => return Err(format!("unknown option {s} (see --help)")),
            _ => {
                if a.model.is_some() {
                    return Err(format!("more than one model given ({s})"));
                }
                a.model = Some(arg.into());
            }
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sparq-run: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the cause.
            eprintln!("sparq-run: error: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Loads a `.sparq` (mapped) or a `.tflite` (imported).
fn load(path: &Path) -> Result<Model, String> {
    let is_tflite = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tflite"));
    if is_tflite {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let def = sparq::convert::import_tflite(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Model::from_def(&def).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Model::open(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn npy_dtype(d: DType) -> NpyDtype {
    match d {
        DType::F32 => NpyDtype::F32,
        DType::F16 => NpyDtype::F16,
        DType::I8 => NpyDtype::I8,
        DType::U8 => NpyDtype::U8,
        DType::I32 => NpyDtype::I32,
    }
}

/// Shapes agree when equal after dropping leading 1s (a batch of one).
fn same_shape(a: &[usize], b: &[usize]) -> bool {
    let strip = |s: &[usize]| {
        s.iter()
            .skip_while(|&&d| d == 1)
            .copied()
            .collect::<Vec<_>>()
    };
    strip(a) == strip(b)
}

/// The bytes to feed input `info` from `arr` (exact dtype, or f32 quantized for q8 inputs).
fn input_bytes(info: &TensorInfo, arr: &NpyArray, path: &Path) -> Result<Vec<u8>, String> {
    let here = path.display();
    if !same_shape(&arr.shape, &info.shape) {
        return Err(format!(
            "{here}: shape {:?} does not match input \"{}\" {:?}",
            arr.shape, info.name, info.shape
        ));
    }
    if arr.dtype == npy_dtype(info.dtype) {
        return Ok(arr.data.clone());
    }
    let q8 = matches!(info.dtype, DType::I8 | DType::U8);
    if arr.dtype == NpyDtype::F32 && q8 {
        let q = info
            .quant
            .as_ref()
            .filter(|q| q.scales.len() == 1)
            .ok_or_else(|| format!("input \"{}\" has no per-tensor quantization", info.name))?;
        let (scale, zp) = (q.scales[0], q.zero_points[0] as i32);
        let (lo, hi) = if info.dtype == DType::I8 {
            (-128, 127)
        } else {
            (0, 255)
        };
        return Ok(arr
            .to_f32()
            .iter()
            .map(|&v| {
                (((v / scale).round() as i32)
                    .saturating_add(zp)
                    .clamp(lo, hi)) as u8
            })
            .collect());
    }
    Err(format!(
        "{here}: dtype {} does not match input \"{}\" ({})",
        arr.dtype, info.name, info.dtype
    ))
}

/// Seeded random bytes for an input (xorshift64*).
fn random_bytes(info: &TensorInfo, seed: u64, k: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (k as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03);
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let n = info.num_elements;
    match info.dtype {
        DType::F32 => (0..n)
            .flat_map(|_| ((next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_le_bytes())
            .collect(),
        DType::F16 => (0..n)
            .flat_map(|_| {
                half::f16::from_f32((next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_le_bytes()
            })
            .collect(),
        DType::I8 | DType::U8 => (0..n).map(|_| (next() >> 56) as u8).collect(),
        DType::I32 => (0..n)
            .flat_map(|_| ((next() >> 60) as i32).to_le_bytes())
            .collect(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Peak resident memory (VmHWM) in KiB, where the OS reports it.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "null".into()
    }
}

fn shape_str(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn tensor_json(info: &TensorInfo) -> String {
    let quant = match &info.quant {
        Some(q) if q.scales.len() == 1 => {
            format!(
                ", \"scale\": {}, \"zero_point\": {}",
                json_f(q.scales[0] as f64),
                q.zero_points[0]
            )
        }
        Some(q) => format!(", \"scales\": {}", q.scales.len()),
        None => String::new(),
    };
    format!(
        "{{\"name\": {}, \"shape\": {}, \"dtype\": \"{}\", \"bytes\": {}{quant}}}",
        json_str(&info.name),
        shape_str(&info.shape),
        info.dtype,
        info.byte_size
    )
}

fn inspect(model: &Model, json: bool) -> String {
    let tensors = model.tensors();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for op in model.operators() {
        match kinds.iter_mut().find(|(k, _)| k == op.kind.name()) {
            Some(e) => e.1 += 1,
            None => kinds.push((op.kind.name().to_string(), 1)),
        }
    }
    let params: usize = tensors
        .iter()
        .filter(|t| t.is_constant)
        .map(|t| t.num_elements)
        .sum();
    let sparse: Vec<(String, f64, (usize, usize))> = (0..tensors.len())
        .filter_map(|i| {
            model
                .sparse(i)
                .map(|s| (tensors[i].name.clone(), s.sparsity(), s.block()))
        })
        .collect();
    if json {
        let ops: Vec<String> = model
            .operators()
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let ins: Vec<String> = op
                    .inputs
                    .iter()
                    .map(|t| t.map_or("-1".into(), |t| t.to_string()))
                    .collect();
                let outs: Vec<String> = op.outputs.iter().map(|t| t.to_string()).collect();
                format!(
                    "{{\"index\": {i}, \"kind\": \"{}\", \"inputs\": [{}], \"outputs\": [{}]}}",
                    op.kind,
                    ins.join(", "),
                    outs.join(", ")
                )
            })
            .collect();
        let ts: Vec<String> = tensors.iter().map(tensor_json).collect();
        let sp: Vec<String> = sparse
            .iter()
            .map(|(n, s, b)| {
                format!(
                    "{{\"tensor\": {}, \"sparsity\": {}, \"block\": [{}, {}]}}",
                    json_str(n),
                    json_f(*s),
                    b.0,
                    b.1
                )
            })
            .collect();
        format!(
            "\"operators\": [{}], \"tensors\": [{}], \"parameters\": {params}, \"weight_bytes\": {}, \"sparse\": [{}]",
            ops.join(", "),
            ts.join(", "),
            model.weight_bytes(),
            sp.join(", ")
        )
    } else {
        let mut o = String::new();
        let _ = writeln!(o, "operators: {}", model.operators().len());
        for (k, n) in &kinds {
            let _ = writeln!(o, "  {k:<24} {n}");
        }
        let _ = writeln!(
            o,
            "tensors: {} ({params} parameters, {} weight bytes)",
            tensors.len(),
            model.weight_bytes()
        );
        for (i, t) in tensors.iter().enumerate() {
            let role = if model.inputs().contains(&i) {
                "input"
            } else if model.outputs().contains(&i) {
                "output"
            } else if t.is_constant {
                "const"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "  {i:>4} {role:<6} {:<4} {:<20} {:>10} B  {}",
                t.dtype.name(),
                shape_str(&t.shape),
                t.byte_size,
                t.name
            );
        }
        if !sparse.is_empty() {
            let _ = writeln!(o, "sparse weights:");
            for (n, s, b) in &sparse {
                let _ = writeln!(o, "  {:>5.1}% zero, block {}x{}  {n}", s * 100.0, b.0, b.1);
            }
        }
        o
    }
}

fn to_npy(info: &TensorInfo, bytes: &[u8]) -> Result<NpyArray, String> {
    NpyArray::new(npy_dtype(info.dtype), info.shape.clone(), bytes.to_vec())
        .map_err(|e| e.to_string())
}

/// A short text summary of an output: shape, dtype, argmax and the first values.
fn summary(info: &TensorInfo, bytes: &[u8]) -> String {
    let vals: Vec<f32> = match info.dtype {
        DType::F32 => bytemuck::cast_slice::<u8, f32>(bytes).to_vec(),
        DType::F16 => bytemuck::cast_slice::<u8, half::f16>(bytes)
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        DType::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        DType::U8 => bytes.iter().map(|&b| b as f32).collect(),
        DType::I32 => bytemuck::cast_slice::<u8, i32>(bytes)
            .iter()
            .map(|&v| v as f32)
            .collect(),
    };
    let argmax =
        vals.iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        );
    let head: Vec<String> = vals.iter().take(8).map(|v| format!("{v}")).collect();
    format!(
        "{} {} {}: argmax {} ({}), first [{}{}]",
        info.name,
        info.dtype,
        shape_str(&info.shape),
        argmax.0,
        argmax.1,
        head.join(", "),
        if vals.len() > 8 { ", …" } else { "" }
    )
}

fn run(args: &Args) -> Result<(), String> {
    let Some(path) = args.model.as_ref() else {
        return demo(args.threads);
    };
    let t0 = Instant::now();
    let model = load(path)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    if args.inspect {
        let body = inspect(&model, args.json);
        if args.json {
            println!(
                "{{\"model\": {}, {body}}}",
                json_str(&path.display().to_string())
            );
        } else {
            print!("{body}");
        }
        return Ok(());
    }
    let keep: Vec<String> = args.output_tensors.iter().map(|(n, _)| n.clone()).collect();
    let options = Options {
        threads: args.threads,
        keep,
        profile: args.profile,
        ..Options::default()
    };
    let t1 = Instant::now();
    let mut it = Interpreter::new(&model, options).map_err(|e| e.to_string())?;
    let prepare_ms = t1.elapsed().as_secs_f64() * 1e3;

    let n_in = it.inputs().len();
    if !args.inputs.is_empty() && args.inputs.len() != n_in {
        return Err(format!(
            "the model has {n_in} inputs, {} --input given",
            args.inputs.len()
        ));
    }
    let infos: Vec<TensorInfo> = it.inputs().into_iter().cloned().collect();
    for (k, info) in infos.iter().enumerate() {
        let bytes = match args.inputs.get(k) {
            Some(p) => {
                let arr = NpyArray::read(p).map_err(|e| e.to_string())?;
                input_bytes(info, &arr, p)?
            }
            None => random_bytes(info, args.seed, k),
        };
        it.set_input_bytes(k, &bytes).map_err(|e| e.to_string())?;
    }
    let n_out = it.outputs().len();
    if args.outputs.len() > n_out {
        return Err(format!(
            "the model has {n_out} outputs, {} --output given",
            args.outputs.len()
        ));
    }

    let mut times = Vec::new();
    if args.bench {
        for _ in 0..args.warmup {
            it.invoke().map_err(|e| e.to_string())?;
        }
        it.reset_profile();
        for _ in 0..args.runs {
            let s = Instant::now();
            it.invoke().map_err(|e| e.to_string())?;
            times.push(s.elapsed().as_secs_f64() * 1e3);
        }
    } else {
        it.invoke().map_err(|e| e.to_string())?;
    }

    for (k, p) in args.outputs.iter().enumerate() {
        let info = it.outputs()[k].clone();
        let arr = to_npy(&info, it.output_bytes(k).map_err(|e| e.to_string())?)?;
        arr.write(p).map_err(|e| e.to_string())?;
    }
    for (name, p) in &args.output_tensors {
        let (info, bytes) = it.tensor(name).map_err(|e| e.to_string())?;
        to_npy(info, bytes)?.write(p).map_err(|e| e.to_string())?;
    }

    let runs = if args.bench { args.runs } else { 1 };
    let profile: Vec<(usize, String, Duration)> = it
        .profile()
        .unwrap_or_default()
        .into_iter()
        .map(|(i, k, d)| (i, k.name().to_string(), d / runs as u32))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let stats = [
        ("min", sorted.first().copied().unwrap_or(0.0)),
        ("p50", percentile(&sorted, 0.5)),
        ("p90", percentile(&sorted, 0.9)),
        ("p99", percentile(&sorted, 0.99)),
    ];
    let peak = peak_rss_kib();

    if args.json {
        let mut o = format!(
            "{{\"model\": {}, \"threads\": {}, \"load_ms\": {}, \"prepare_ms\": {}, \"arena_bytes\": {}",
            json_str(&path.display().to_string()),
            it.threads(),
            json_f(load_ms),
            json_f(prepare_ms),
            it.arena_bytes()
        );
        let ins: Vec<String> = it.inputs().iter().map(|t| tensor_json(t)).collect();
        let outs: Vec<String> = it.outputs().iter().map(|t| tensor_json(t)).collect();
        let _ = write!(
            o,
            ", \"inputs\": [{}], \"outputs\": [{}]",
            ins.join(", "),
            outs.join(", ")
        );
        if args.bench {
            let _ = write!(o, ", \"runs\": {}, \"warmup\": {}", args.runs, args.warmup);
            for (k, v) in stats {
                let _ = write!(o, ", \"{k}_ms\": {}", json_f(v));
            }
            if let Some(p) = peak {
                let _ = write!(o, ", \"peak_rss_kib\": {p}");
            }
        }
        if args.profile {
            let ops: Vec<String> = profile
                .iter()
                .map(|(i, k, d)| {
                    format!(
                        "{{\"index\": {i}, \"kind\": \"{k}\", \"ms\": {}}}",
                        json_f(d.as_secs_f64() * 1e3)
                    )
                })
                .collect();
            let _ = write!(o, ", \"profile\": [{}]", ops.join(", "));
        }
        o.push('}');
        println!("{o}");
        return Ok(());
    }

    println!(
        "{}: {} operators run, arena {} bytes, {} thread(s); load {load_ms:.2} ms, prepare {prepare_ms:.2} ms",
        path.display(),
        it.steps(),
        it.arena_bytes(),
        it.threads()
    );
    for k in 0..n_out {
        let info = it.outputs()[k];
        println!(
            "output {k}: {}",
            summary(info, it.output_bytes(k).map_err(|e| e.to_string())?)
        );
    }
    if args.bench {
        let line: Vec<String> = stats.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        print!(
            "invoke ms over {} runs (warmup {}): {}",
            args.runs,
            args.warmup,
            line.join(", ")
        );
        match peak {
            Some(p) => println!(", peak RSS {:.1} MiB", p as f64 / 1024.0),
            None => println!(),
        }
    }
    if args.profile {
        let total: Duration = profile.iter().map(|p| p.2).sum();
        let mut rows = profile.clone();
        rows.sort_by_key(|r| std::cmp::Reverse(r.2));
        println!(
            "per-operator time (mean over {runs} run(s)), total {:.3} ms:",
            total.as_secs_f64() * 1e3
        );
        // The kernel an operator chose at prepare, where its kind does not imply one (sparse).
        let kernels = it.kernels();
        for (i, k, d) in rows {
            let share = if total.is_zero() {
                0.0
            } else {
                d.as_secs_f64() / total.as_secs_f64() * 100.0
            };
            let kernel = kernels
                .iter()
                .find(|s| s.0 == i)
                .and_then(|s| s.2)
                .map_or(String::new(), |name| format!("  {name}"));
            println!(
                "  {i:>4} {k:<20} {:>9.3} ms {share:>5.1}%{kernel}",
                d.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

/// The bundled demo model: a small digits CNN (8×8 images), in the variants sparq runs, with
/// its test split. (The files are the committed test fixtures.)
const DEMO: &[(&str, &[u8])] = &[
    (
        "float32",
        include_bytes!("../../tests/fixtures/tflite/digits_cnn_float32.tflite"),
    ),
    (
        "float16 weights",
        include_bytes!("../../tests/fixtures/tflite/digits_cnn_fp16.tflite"),
    ),
    (
        "int8",
        include_bytes!("../../tests/fixtures/tflite/digits_cnn_int8.tflite"),
    ),
    (
        "90% pruned, sparse f32",
        include_bytes!("../../tests/fixtures/tflite/digits_cnn_p90_float32_sparse.tflite"),
    ),
    (
        "90% pruned, sparse int8",
        include_bytes!("../../tests/fixtures/tflite/digits_cnn_p90_int8_sparse.tflite"),
    ),
];
const DEMO_X: &[u8] = include_bytes!("../../tests/fixtures/digits_test_x.npy");
const DEMO_Y: &[u8] = include_bytes!("../../tests/fixtures/digits_test_y.npy");

/// Runs every demo variant on the test split: file size, weight bytes, accuracy, median invoke.
fn demo(threads: usize) -> Result<(), String> {
    let xs = NpyArray::from_bytes(DEMO_X)
        .map_err(|e| e.to_string())?
        .to_f32();
    let ys = NpyArray::from_bytes(DEMO_Y)
        .map_err(|e| e.to_string())?
        .to_f32();
    println!(
        "sparq demo: digits CNN (8x8 images), {} test images, {threads} thread(s)",
        ys.len()
    );
    println!(
        "{:<26} {:>9} {:>13} {:>9} {:>11}",
        "variant", "file B", "weights B", "accuracy", "invoke us"
    );
    for (name, bytes) in DEMO {
        let def = sparq::convert::import_tflite(bytes).map_err(|e| format!("{name}: {e}"))?;
        let model = Model::from_def(&def).map_err(|e| format!("{name}: {e}"))?;
        let mut it = Interpreter::new(
            &model,
            Options {
                threads,
                ..Options::default()
            },
        )
        .map_err(|e| format!("{name}: {e}"))?;
        let info = it.inputs()[0].clone();
        let per = info.num_elements;
        let mut correct = 0;
        let mut times = Vec::with_capacity(ys.len());
        for (s, &y) in ys.iter().enumerate() {
            let x = &xs[s * per..(s + 1) * per];
            let arr = NpyArray::from_f32(info.shape.clone(), x).map_err(|e| e.to_string())?;
            it.set_input_bytes(0, &input_bytes(&info, &arr, Path::new("demo"))?)
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            it.invoke().map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
            let out_info = it.outputs()[0].clone();
            let out = it.output_bytes(0).map_err(|e| e.to_string())?;
            let vals: Vec<f32> = match out_info.dtype {
                DType::F32 => bytemuck::cast_slice::<u8, f32>(out).to_vec(),
                DType::I8 => out.iter().map(|&b| b as i8 as f32).collect(),
                _ => out.iter().map(|&b| b as f32).collect(),
            };
            let best = (0..vals.len()).fold(0, |b, i| if vals[i] > vals[b] { i } else { b });
            correct += (best == y as usize) as usize;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<26} {:>9} {:>13} {:>8.2}% {:>11.1}",
            name,
            bytes.len(),
            model.weight_bytes(),
            100.0 * correct as f64 / ys.len() as f64,
            percentile(&times, 0.5)
        );
    }
    Ok(())
}
