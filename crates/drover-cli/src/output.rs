//! Output conventions shared by every command: `-o table|json|yaml`, kubectl-style tables, colour
//! only on a terminal and never with `NO_COLOR`. Data goes to stdout; logs and progress to stderr.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use serde::Serialize;

use crate::exit::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// The machine-readable formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentFormat {
    Json,
    Yaml,
}

impl OutputFormat {
    /// The document format asked for, or `None` for the human table view.
    pub fn document(self) -> Option<DocumentFormat> {
        match self {
            OutputFormat::Table => None,
            OutputFormat::Json => Some(DocumentFormat::Json),
            OutputFormat::Yaml => Some(DocumentFormat::Yaml),
        }
    }
}

/// Prints a serializable document as JSON or YAML on stdout.
pub fn print_document<T: Serialize>(document: &T, format: DocumentFormat) -> Result<(), Failure> {
    match format {
        DocumentFormat::Json => write_json_document(document, std::io::stdout().lock()),
        DocumentFormat::Yaml => {
            let text = serde_yaml_ng::to_string(document).map_err(Failure::internal)?;
            print!("{text}");
            Ok(())
        }
    }
}

/// Writes `document` as pretty JSON and a newline through one buffer: the plan document of a
/// big cluster is tens of MiB, and building it as one `String` first would cost a copy and that
/// much memory again. A closed pipe ends drover quietly, as `print!` does (`closed_pipe`).
pub fn write_json_document<T: Serialize>(
    document: &T,
    out: impl std::io::Write,
) -> Result<(), Failure> {
    use std::io::Write;

    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    let written = serde_json::to_writer_pretty(&mut out, document)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(crate::closed_pipe::EXIT_CLOSED_PIPE)
        }
        Err(error) => Err(Failure::internal(error)),
    }
}

/// Whether stdout gets ANSI colours: a terminal, and `NO_COLOR` unset or empty.
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A kubectl-style table: upper-case headers, no borders, columns separated by spaces.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| Cell::new(h.to_uppercase())));
    if color_enabled() {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

/// A cell coloured by a status word, when colour is on.
pub fn status_cell(text: &str) -> Cell {
    let cell = Cell::new(text);
    if !color_enabled() {
        return cell;
    }
    match text {
        "pass" | "ok" | "done" => cell.fg(Color::Green),
        "warn" => cell.fg(Color::Yellow),
        "fail" | "failed" => cell.fg(Color::Red),
        _ => cell,
    }
}

/// Prints a table followed by a blank line, trimming the padding at line ends.
pub fn print_table(table: &Table) {
    for line in table.to_string().lines() {
        println!("{}", line.trim_end());
    }
    println!();
}
