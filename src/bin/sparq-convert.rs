//! `sparq-convert IN.tflite -o OUT.sparq [--quantize keep]`: imports a TFLite model, writes it
//! as `.sparq` and prints a summary (operators, parameters, bytes before and after, sparsity per
//! layer). Bad input ends with a one-line error and exit code 1; bad usage with exit code 2.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: sparq-convert IN.tflite -o OUT.sparq [options]

  -o, --output OUT.sparq   where to write the model (required)
  --quantize keep          keep the model's own types (default; the only mode implemented yet)
  --quiet                  print no summary
  -h, --help               this text

Not implemented yet (refused with an error): --quantize float16|dynamic|int8|uint8,
--calibration DIR, --per-tensor, --prune S, --block RxC, --sparse auto|dense|csr|bsr.";

struct Args {
    input: PathBuf,
    output: PathBuf,
    quiet: bool,
}

enum ArgError {
    Help,
    Usage(String),
    NotYet(String),
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, ArgError> {
    let mut input = None;
    let mut output = None;
    let mut quiet = false;
    let mut it = args.peekable();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| ArgError::Usage(format!("{flag} needs a value")))
        };
        match a.as_str() {
            "-h" | "--help" => return Err(ArgError::Help),
            "-o" | "--output" => output = Some(PathBuf::from(value(&a)?)),
            "--quiet" => quiet = true,
            "--quantize" => {
                let v = value(&a)?;
                match v.as_str() {
                    "keep" => {}
                    "float16" | "dynamic" | "int8" | "uint8" => {
                        return Err(ArgError::NotYet(format!("--quantize {v}")))
                    }
                    _ => {
                        return Err(ArgError::Usage(format!(
                            "--quantize {v}: expected keep, float16, dynamic, int8 or uint8"
                        )))
                    }
                }
            }
            "--calibration" | "--prune" | "--block" | "--sparse" => {
                let v = value(&a)?;
                return Err(ArgError::NotYet(format!("{a} {v}")));
            }
            "--per-tensor" => return Err(ArgError::NotYet(a)),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(ArgError::Usage(format!("unknown option {s}")))
            }
            _ if input.is_none() => input = Some(PathBuf::from(a)),
            _ => return Err(ArgError::Usage(format!("unexpected argument {a}"))),
        }
    }
    Ok(Args {
        input: input.ok_or_else(|| ArgError::Usage("missing IN.tflite".into()))?,
        output: output.ok_or_else(|| ArgError::Usage("missing -o OUT.sparq".into()))?,
        quiet,
    })
}

fn run(args: &Args) -> Result<String, String> {
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let def = sparq::convert::import_tflite(&bytes)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let file = sparq_schema::write(&def).map_err(|e| format!("cannot write .sparq: {e}"))?;
    // Check what was written opens before handing it out.
    sparq::Model::from_bytes(&file)
        .map_err(|e| format!("the converted model does not validate: {e}"))?;
    std::fs::write(&args.output, &file).map_err(|e| format!("{}: {e}", args.output.display()))?;
    Ok(format!(
        "{} -> {}\n{}",
        args.input.display(),
        args.output.display(),
        sparq::convert::summary::summary(&def, bytes.len(), file.len())
    ))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(ArgError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgError::Usage(m)) => {
            eprintln!("sparq-convert: {m}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        Err(ArgError::NotYet(m)) => {
            eprintln!("sparq-convert: {m}: not implemented yet (only --quantize keep for now)");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(summary) => {
            if !args.quiet {
                print!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(m) => {
            eprintln!("sparq-convert: {m}");
            ExitCode::FAILURE
        }
    }
}
