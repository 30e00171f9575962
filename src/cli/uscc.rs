//! `qinglian uscc check`: one key per line classified, as TSV or JSON lines.

use std::io::{BufRead, BufWriter, Write};

use clap::{Subcommand, ValueEnum};

use super::{CommandResult, Done, Failure, Output};
use crate::keys::{self, KeyClass};

/// Arguments of `uscc`.
#[derive(Debug, clap::Args)]
pub(super) struct UsccArgs {
    #[command(subcommand)]
    command: UsccCommand,
}

#[derive(Debug, Subcommand)]
enum UsccCommand {
    /// Classify one key per line of FILE (or standard input) and print one result per line.
    Check {
        /// Input file, or - for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Tsv)]
        format: CheckFormat,
        /// Print a header line first (TSV only).
        #[arg(long)]
        header: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    /// Tab-separated columns.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

/// Runs `uscc`.
pub(super) fn execute(args: UsccArgs) -> CommandResult {
    let UsccCommand::Check {
        input,
        format,
        header,
    } = args.command;
    uscc_check(&input, format, header).map_err(Failure::Usage)?;
    Ok(Done::Ok)
}

/// One line of `uscc check` output.
#[derive(serde::Serialize)]
struct CheckRow<'a> {
    input: &'a str,
    valid: bool,
    normalized: &'a str,
    class: &'static str,
    reason: String,
    authority: &'static str,
    #[serde(rename = "type")]
    org_type: &'static str,
    division: &'a str,
    division_name: &'static str,
    warning: String,
}

const CHECK_COLUMNS: [&str; 10] = [
    "input",
    "valid",
    "normalized",
    "class",
    "reason",
    "authority",
    "type",
    "division",
    "division_name",
    "warning",
];

fn tsv_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t")
}

fn uscc_check(input: &str, format: CheckFormat, header: bool) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = BufWriter::new(Output::Stdout);
    let write_err = |e: std::io::Error| format!("cannot write output: {e}");
    if header && matches!(format, CheckFormat::Tsv) {
        writeln!(out, "{}", CHECK_COLUMNS.join("\t")).map_err(write_err)?;
    }
    let mut buf = Vec::with_capacity(64);
    let mut reader = reader;
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read {input}: {e}"))?;
        if n == 0 || Output::Stdout.is_closed() {
            break;
        }
        line_no += 1;
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = std::str::from_utf8(bytes)
            .map_err(|e| format!("{input}: line {line_no}: not UTF-8 ({e})"))?;
        let check = keys::classify(line);
        let mut warnings = Vec::new();
        let invisible = keys::invisible_chars(line);
        if !invisible.is_empty() {
            let listed: Vec<String> = invisible
                .iter()
                .map(|(at, c)| format!("U+{:04X} at {at}", u32::from(*c)))
                .collect();
            warnings.push(format!(
                "invisible characters removed: {}",
                listed.join(", ")
            ));
        }
        let decoded = if check.normalized.len() == 18 && check.normalized.is_ascii() {
            keys::decode(&check.normalized)
        } else {
            keys::Decoded::default()
        };
        let row = CheckRow {
            input: line,
            valid: check.class == KeyClass::Valid,
            normalized: &check.normalized,
            class: check.class.as_str(),
            reason: check
                .reason
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            authority: decoded.authority.unwrap_or(""),
            org_type: decoded.org_type.unwrap_or(""),
            division: &decoded.division_code,
            division_name: decoded.division.unwrap_or(""),
            warning: {
                warnings.extend(decoded.warnings.iter().map(ToString::to_string));
                warnings.join("; ")
            },
        };
        match format {
            CheckFormat::Jsonl => {
                serde_json::to_writer(&mut out, &row).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(write_err)?;
            }
            CheckFormat::Tsv => {
                let fields = [
                    tsv_field(row.input),
                    row.valid.to_string(),
                    tsv_field(row.normalized),
                    row.class.to_string(),
                    row.reason,
                    row.authority.to_string(),
                    row.org_type.to_string(),
                    row.division.to_string(),
                    row.division_name.to_string(),
                    row.warning,
                ];
                writeln!(out, "{}", fields.join("\t")).map_err(write_err)?;
            }
        }
    }
    out.flush().map_err(write_err)
}
