//! Where a run's time went, read back from its journal: one span per driver call (from its
//! intent to its outcome) and, per kind of step, how many calls, their summed time and the wall
//! time during which at least one was in flight. What `drover timeline` prints and a Gantt chart
//! draws.
//!
//! Pure over journal entries: no store, no clock. An intent without an outcome (a crashed
//! process, a call still in flight) is a span without an end.

use std::collections::BTreeMap;

use drover_store::JournalEntry;

use crate::records::{self, InputBody, IntentRecord, OutcomeRecord, KIND_INPUT, KIND_INTENT};
use crate::EngineError;

/// One driver call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpan {
    pub command: u64,
    /// The step's journal name: `migrate`, `upgrade`, `reboot`, `host-facts`…
    pub step: String,
    pub attempt: u32,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub to: Option<String>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// `succeeded`, `failed`, `timed-out`; `None` while unanswered.
    pub result: Option<&'static str>,
}

/// Time spent on one kind of step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepTotals {
    pub calls: usize,
    pub failed: usize,
    /// Sum of every call's duration (concurrent calls count each).
    pub busy_ms: u64,
    /// Wall time with at least one such call in flight.
    pub covered_ms: u64,
}

/// The spans of a run's journal, in the order their intents were written.
pub fn step_spans(entries: &[JournalEntry]) -> Result<Vec<StepSpan>, EngineError> {
    let mut spans: Vec<StepSpan> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for entry in entries {
        match entry.kind.as_str() {
            KIND_INTENT => {
                let intent: IntentRecord = records::from_json(&entry.payload_json)?;
                open.insert(intent.command, spans.len());
                spans.push(span_of(intent, entry.at_ms));
            }
            KIND_INPUT => {
                let input: records::InputRecord = records::from_json(&entry.payload_json)?;
                if let InputBody::Outcome { command, outcome } = input.input {
                    // Outcomes of observations issued without an intent have no span.
                    if let Some(index) = open.remove(&command) {
                        spans[index].ended_ms = Some(input.at_ms);
                        spans[index].result = Some(result_name(&outcome));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(spans)
}

fn span_of(intent: IntentRecord, at_ms: u64) -> StepSpan {
    StepSpan {
        command: intent.command,
        step: intent.step,
        attempt: intent.attempt,
        host: intent.host,
        vm: intent.vm,
        to: intent.to,
        started_ms: at_ms,
        ended_ms: None,
        result: None,
    }
}

fn result_name(outcome: &OutcomeRecord) -> &'static str {
    match outcome {
        OutcomeRecord::Succeeded { .. } => "succeeded",
        OutcomeRecord::Failed { .. } => "failed",
        OutcomeRecord::TimedOut => "timed-out",
    }
}

/// Per step name: calls, failures, summed time and covered wall time. Unfinished spans count up
/// to `now_ms`.
pub fn totals_by_step(spans: &[StepSpan], now_ms: u64) -> BTreeMap<String, StepTotals> {
    let mut intervals: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut totals: BTreeMap<String, StepTotals> = BTreeMap::new();
    for span in spans {
        let end = span.ended_ms.unwrap_or(now_ms).max(span.started_ms);
        let entry = totals.entry(span.step.clone()).or_default();
        entry.calls += 1;
        entry.failed += usize::from(matches!(span.result, Some("failed" | "timed-out")));
        entry.busy_ms += end - span.started_ms;
        intervals
            .entry(span.step.clone())
            .or_default()
            .push((span.started_ms, end));
    }
    for (step, list) in &mut intervals {
        totals.get_mut(step).expect("same keys").covered_ms = covered_ms(list);
    }
    totals
}

/// The length of the union of intervals.
pub fn covered_ms(intervals: &mut [(u64, u64)]) -> u64 {
    intervals.sort_unstable();
    let mut covered = 0;
    let mut current: Option<(u64, u64)> = None;
    for &(start, end) in intervals.iter() {
        current = match current {
            Some((open_start, open_end)) if start <= open_end => {
                Some((open_start, open_end.max(end)))
            }
            Some((open_start, open_end)) => {
                covered += open_end - open_start;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    covered + current.map_or(0, |(start, end)| end - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, at_ms: u64, kind: &str, payload_json: &str) -> JournalEntry {
        JournalEntry {
            seq,
            at_ms,
            kind: kind.into(),
            payload_json: payload_json.into(),
        }
    }

    #[test]
    fn union_of_intervals_counts_overlaps_once() {
        assert_eq!(covered_ms(&mut []), 0);
        assert_eq!(covered_ms(&mut [(0, 10), (5, 15), (20, 30)]), 25);
        assert_eq!(covered_ms(&mut [(20, 30), (0, 40)]), 40);
        assert_eq!(covered_ms(&mut [(0, 10), (10, 20)]), 20);
    }

    #[test]
    fn spans_pair_intents_with_outcomes_and_leave_unanswered_ones_open() {
        let entries = [
            entry(1, 0, "start", "{}"),
            entry(
                2,
                100,
                KIND_INTENT,
                r#"{"command":1,"step":"migrate","attempt":1,"timeout_ms":1000,"host":"h1","vm":"a","to":"h2"}"#,
            ),
            entry(
                3,
                150,
                KIND_INTENT,
                r#"{"command":2,"step":"migrate","attempt":1,"timeout_ms":1000,"host":"h1","vm":"b","to":"h2"}"#,
            ),
            entry(
                4,
                400,
                KIND_INPUT,
                r#"{"at_ms":400,"input":"outcome","command":1,"outcome":{"result":"succeeded","observation":{"seen":"nothing"}}}"#,
            ),
            entry(
                5,
                500,
                KIND_INPUT,
                r#"{"at_ms":500,"input":"outcome","command":2,"outcome":{"result":"timed-out"}}"#,
            ),
            entry(
                6,
                600,
                KIND_INTENT,
                r#"{"command":3,"step":"upgrade","attempt":1,"timeout_ms":1000,"host":"h1"}"#,
            ),
        ];
        let spans = step_spans(&entries).unwrap();
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[0].started_ms, spans[0].ended_ms), (100, Some(400)));
        assert_eq!(spans[1].result, Some("timed-out"));
        assert_eq!(spans[2].ended_ms, None);
        let totals = totals_by_step(&spans, 1000);
        let migrate = &totals["migrate"];
        assert_eq!(
            (
                migrate.calls,
                migrate.failed,
                migrate.busy_ms,
                migrate.covered_ms
            ),
            (2, 1, 650, 400)
        );
        assert_eq!(totals["upgrade"].busy_ms, 400);
    }
}
