//! `drover timeline [RUN]`: where a run's wall time went, from its journal — per kind of step,
//! the calls, failures, summed time and the wall time during which one was in flight, plus the
//! time with no driver call in flight at all (Drover's own work, backoffs and waits). `-o
//! json|yaml` adds every call as a span.

use clap::Args;
use drover_engine::timeline::{covered_ms, step_spans, totals_by_step, StepSpan};
use serde::Serialize;

use crate::exit::Failure;
use crate::output::{print_document, table, OutputFormat};
use crate::runs::StateArgs;

#[derive(Args)]
pub struct TimelineArgs {
    /// Run id (default: the newest run).
    run: Option<String>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Serialize)]
struct TimelineDocument {
    run: String,
    started_at_ms: u64,
    last_entry_at_ms: u64,
    wall_ms: u64,
    /// Wall time with no driver call in flight.
    idle_ms: u64,
    steps: Vec<StepRow>,
    spans: Vec<SpanRow>,
}

#[derive(Serialize)]
struct StepRow {
    step: String,
    calls: usize,
    failed: usize,
    busy_ms: u64,
    covered_ms: u64,
}

#[derive(Serialize)]
struct SpanRow {
    step: String,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    started_ms: u64,
    ended_ms: Option<u64>,
    result: Option<&'static str>,
}

pub fn run(args: &TimelineArgs, state: &StateArgs) -> Result<(), Failure> {
    let (record, entries) = crate::runs::block_on(async {
        let store = crate::runs::open_store(&state.state)?;
        let record = crate::runs::select_run(store.as_ref(), args.run.as_deref(), false).await?;
        let entries = store.entries(&record.id).await.map_err(Failure::internal)?;
        Ok((record, entries))
    })?;
    let spans = step_spans(&entries).map_err(Failure::internal)?;
    let started_at_ms = entries.first().map_or(0, |e| e.at_ms);
    let last_entry_at_ms = entries.last().map_or(started_at_ms, |e| e.at_ms);
    let document = timeline_document(&record.id, &spans, started_at_ms, last_entry_at_ms);
    match args.output.document() {
        Some(format) => print_document(&document, format),
        None => {
            print_table(&document);
            Ok(())
        }
    }
}

fn timeline_document(run: &str, spans: &[StepSpan], start: u64, end: u64) -> TimelineDocument {
    let mut all: Vec<(u64, u64)> = spans
        .iter()
        .map(|s| (s.started_ms, s.ended_ms.unwrap_or(end).max(s.started_ms)))
        .collect();
    let wall_ms = end.saturating_sub(start);
    let steps = totals_by_step(spans, end)
        .into_iter()
        .map(|(step, totals)| StepRow {
            step,
            calls: totals.calls,
            failed: totals.failed,
            busy_ms: totals.busy_ms,
            covered_ms: totals.covered_ms,
        })
        .collect();
    TimelineDocument {
        run: run.to_string(),
        started_at_ms: start,
        last_entry_at_ms: end,
        wall_ms,
        idle_ms: wall_ms.saturating_sub(covered_ms(&mut all)),
        steps,
        spans: spans.iter().map(span_row).collect(),
    }
}

fn span_row(span: &StepSpan) -> SpanRow {
    SpanRow {
        step: span.step.clone(),
        attempt: span.attempt,
        host: span.host.clone(),
        vm: span.vm.clone(),
        to: span.to.clone(),
        started_ms: span.started_ms,
        ended_ms: span.ended_ms,
        result: span.result,
    }
}

fn print_table(document: &TimelineDocument) {
    println!(
        "Run {}: {} of wall time from its first to its last journal entry",
        document.run,
        seconds(document.wall_ms)
    );
    println!();
    let mut rows = table(&["step", "calls", "failed", "busy", "in flight", "of the run"]);
    for step in &document.steps {
        rows.add_row(vec![
            step.step.clone(),
            step.calls.to_string(),
            step.failed.to_string(),
            seconds(step.busy_ms),
            seconds(step.covered_ms),
            share(step.covered_ms, document.wall_ms),
        ]);
    }
    println!("{rows}");
    println!();
    println!(
        "No driver call in flight: {} ({} of the run: Drover's own work, backoffs, waits for windows or operators)",
        seconds(document.idle_ms),
        share(document.idle_ms, document.wall_ms)
    );
}

fn seconds(milliseconds: u64) -> String {
    format!("{:.1} s", milliseconds as f64 / 1000.0)
}

fn share(part_ms: u64, whole_ms: u64) -> String {
    if whole_ms == 0 {
        return "-".into();
    }
    format!("{:.1}%", part_ms as f64 * 100.0 / whole_ms as f64)
}
