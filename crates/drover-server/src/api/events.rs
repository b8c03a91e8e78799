//! `GET /runs/{id}/events`: Server-Sent Events. `run` carries the RunView whenever it changes
//! (at most ~4 per second), `step` each host step change, `end` once the run is over; a
//! `: keepalive` comment every 15 s. Streams end when the server shuts down. The number of
//! open streams is bounded (`max_sse_clients`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_core::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::runs::current_view;
use crate::problem::{ApiError, Problem};
use crate::runs_manager::RunHandle;
use crate::shutdown::shutdown_requested;
use crate::views::RunView;
use crate::AppState;

/// At most this many `run` events per second per stream.
const MIN_RUN_EVENT_INTERVAL: Duration = Duration::from_millis(250);
/// How often a run driven elsewhere is re-read from the journal.
const REPLAY_POLL_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

fn run_event(view: &RunView) -> Event {
    Event::default()
        .event("run")
        .data(serde_json::to_string(view).expect("a view is plain data"))
}

fn end_event(view: &RunView) -> Event {
    let data = serde_json::json!({"run": view.id, "phase": view.phase});
    Event::default().event("end").data(data.to_string())
}

/// Live events of a run (`?access_token=` is accepted here for EventSource).
#[utoipa::path(operation_id = "runEvents", get, path = "/api/v1/runs/{run}/events", tag = "runs",
    params(("run" = String, Path), ("access_token" = Option<String>, Query, description = "the token, for clients that cannot send headers")),
    responses((status = 200, description = "text/event-stream: `run`, `step` and `end` events", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = Arc::clone(&state.sse_slots)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::TooManyStreams("too many event streams are open; try again later".into())
        })?;
    let first = current_view(&state, &run_id).await?;
    let handle = state.manager.for_run(&run_id).filter(|h| h.is_live());
    let stream = async_stream::stream! {
        let _slot = permit;
        let mut shutdown = state.shutdown.clone();
        yield Ok(run_event(&first));
        if first.finished {
            yield Ok(end_event(&first));
            return;
        }
        match handle {
            Some(handle) => {
                let mut events = live_events(handle);
                loop {
                    tokio::select! {
                        next = events.next() => match next {
                            Some(event) => yield Ok(event),
                            None => return,
                        },
                        _ = shutdown_requested(&mut shutdown) => return,
                    }
                }
            }
            None => {
                let mut last = first;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(REPLAY_POLL_INTERVAL) => {}
                        _ = shutdown_requested(&mut shutdown) => return,
                    }
                    let Ok(view) = current_view(&state, &run_id).await else { return };
                    if serde_json::to_value(&*view).ok() != serde_json::to_value(&*last).ok() {
                        yield Ok(run_event(&view));
                    }
                    if view.finished {
                        yield Ok(end_event(&view));
                        return;
                    }
                    last = view;
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(KEEPALIVE_INTERVAL)
            .text("keepalive"),
    ))
}

/// Events of a run driven here: views (throttled), step changes, and the end.
struct LiveEvents {
    handle: Arc<RunHandle>,
    views: tokio::sync::watch::Receiver<Option<Arc<RunView>>>,
    steps: tokio::sync::broadcast::Receiver<crate::tracker::StepChange>,
    last_run_event: Instant,
    /// The final view was sent; `end` goes next.
    pending_end: Option<Arc<RunView>>,
    ended: bool,
}

fn live_events(handle: Arc<RunHandle>) -> LiveEvents {
    let mut views = handle.view.clone();
    views.mark_unchanged();
    LiveEvents {
        steps: handle.steps.subscribe(),
        views,
        handle,
        last_run_event: Instant::now(),
        pending_end: None,
        ended: false,
    }
}

impl LiveEvents {
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        if let Some(view) = self.pending_end.take() {
            self.ended = true;
            return Some(end_event(&view));
        }
        loop {
            tokio::select! {
                changed = self.views.changed() => {
                    let view = self.views.borrow_and_update().clone();
                    if changed.is_err() {
                        // The run's thread is gone: tell how it ended, if it did.
                        self.ended = true;
                        let view = view.or_else(|| self.handle.latest_view())?;
                        return view.finished.then(|| end_event(&view));
                    }
                    let Some(view) = view else { continue };
                    if !view.finished {
                        tokio::time::sleep_until(self.last_run_event + MIN_RUN_EVENT_INTERVAL).await;
                    }
                    let latest = self.views.borrow_and_update().clone().unwrap_or(view);
                    self.last_run_event = Instant::now();
                    if latest.finished {
                        self.pending_end = Some(Arc::clone(&latest));
                    }
                    return Some(run_event(&latest));
                }
                step = self.steps.recv() => match step {
                    Ok(change) => {
                        let data = serde_json::json!({"host": change.host, "step": change.step, "at_ms": change.at_ms});
                        return Some(Event::default().event("step").data(data.to_string()));
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => {
                        self.ended = true;
                        return None;
                    }
                },
            }
        }
    }
}
