//! Following a Ganeti job to its end: `GET /2/jobs/ID` every poll interval until its `status` is
//! final, `DELETE /2/jobs/ID` at the deadline (doc/rapi.rst `/2/jobs/[job_id]`: "Cancel a
//! not-yet-started job"; a job already running its opcode is not stopped by it, and the error
//! says which it was).
//!
//! Statuses are Ganeti's (`src/Ganeti/Types.hs`, `JobStatus`): `queued`, `waiting`, `canceling`
//! and `running` are pending; `success`, `error` and `canceled` are final. A failed opcode's
//! `opresult` entry is `[error type, [message, classification?]]` (doc/rapi.rst, "For a successful
//! opcode, the opresult … In case an opcode has failed …"); both are kept in the error so the
//! journal records what Ganeti said.
//!
//! This module knows jobs only, not what they do.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::client::RapiClient;
use crate::GanetiError;

/// How long a job may take and how often it is asked about.
#[derive(Clone, Copy, Debug)]
pub struct JobPacing {
    pub timeout: Duration,
    pub poll: Duration,
}

/// The job statuses that are not final (`jobsPending` plus `running`, src/Ganeti/Constants.hs).
const PENDING_STATUSES: [&str; 4] = ["queued", "waiting", "canceling", "running"];

/// Waits for job `job_id`; returns its `opresult` list when it succeeded.
pub async fn follow(
    client: &RapiClient,
    job_id: u64,
    pacing: JobPacing,
) -> Result<Value, GanetiError> {
    let started = Instant::now();
    let deadline = started + pacing.timeout;
    loop {
        let job = client.get(&format!("/2/jobs/{job_id}")).await?;
        let status = job.get("status").and_then(Value::as_str).ok_or_else(|| {
            // An unknown job id answers every field null (R_2_jobs_id.GET maps a missing job's
            // fields to None).
            GanetiError::Protocol(format!("job {job_id} has no status (unknown job?): {job}"))
        })?;
        match status {
            "success" => return Ok(job.get("opresult").cloned().unwrap_or(Value::Null)),
            "error" | "canceled" => return Err(job_error(job_id, status, &job)),
            pending if PENDING_STATUSES.contains(&pending) => {
                if Instant::now() >= deadline {
                    let cancel_answer = cancel(client, job_id).await;
                    return Err(GanetiError::JobTimedOut {
                        job_id,
                        status: pending.to_string(),
                        waited_secs: started.elapsed().as_secs(),
                        cancel_answer,
                    });
                }
                tokio::time::sleep(pacing.poll).await;
            }
            other => {
                return Err(GanetiError::Protocol(format!(
                    "job {job_id} has status {other:?}, which Ganeti does not define"
                )))
            }
        }
    }
}

/// Submits a job and follows it.
pub async fn run(
    client: &RapiClient,
    method: Method,
    path: &str,
    body: Option<&Value>,
    pacing: JobPacing,
) -> Result<Value, GanetiError> {
    let job_id = client.submit(method, path, body).await?;
    tracing::debug!(job_id, path, "ganeti: following job");
    follow(client, job_id, pacing).await
}

/// `DELETE /2/jobs/ID`; its answer is `[success, message]` (`CancelJob`, lib/luxi.py). Never
/// fails: what it answered, or why it could not ask, is returned as text for the error.
async fn cancel(client: &RapiClient, job_id: u64) -> String {
    match client
        .request(Method::DELETE, &format!("/2/jobs/{job_id}"), None)
        .await
    {
        Ok(Value::Array(items)) => {
            let cancelled = items.first().and_then(Value::as_bool).unwrap_or(false);
            let message = items.get(1).and_then(Value::as_str).unwrap_or("");
            match cancelled {
                true => format!("cancelled: {message}"),
                false => format!("not cancelled: {message}"),
            }
        }
        Ok(other) => format!("answered {other}"),
        Err(error) => format!("cancel failed: {error}"),
    }
}

/// The first failed opcode's error (`[type, [message, classification?]]`), else the status.
fn job_error(job_id: u64, status: &str, job: &Value) -> GanetiError {
    let failed = job
        .get("opresult")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .zip(
            job.get("opstatus")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .find(|(_, opstatus)| opstatus.as_str() == Some("error"))
        .map(|(result, _)| result);
    let (error_type, message, classification) = match failed.and_then(Value::as_array) {
        Some(parts) => {
            let error_type = parts.first().and_then(Value::as_str).unwrap_or("error");
            let details = parts.get(1).and_then(Value::as_array);
            let message = details
                .and_then(|details| details.first())
                .map(text_of)
                .unwrap_or_else(|| parts.get(1).map(text_of).unwrap_or_default());
            let classification = details
                .and_then(|details| details.get(1))
                .and_then(Value::as_str)
                .map(str::to_string);
            (error_type.to_string(), message, classification)
        }
        None => (status.to_string(), format!("job {status}"), None),
    };
    GanetiError::Job {
        job_id,
        status: status.to_string(),
        error_type,
        message,
        classification,
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_opcode_keeps_its_type_message_and_classification() {
        // As the real cluster answered a migration of a `file` instance.
        let job = json!({
            "status": "error",
            "opstatus": ["error"],
            "opresult": [["OpPrereqError", ["Instance's disk layout 'file' does not allow migrations", "wrong_state"]]]
        });
        let error = job_error(13, "error", &job);
        assert_eq!(
            error,
            GanetiError::Job {
                job_id: 13,
                status: "error".into(),
                error_type: "OpPrereqError".into(),
                message: "Instance's disk layout 'file' does not allow migrations".into(),
                classification: Some("wrong_state".into()),
            }
        );
        assert!(error.to_string().contains("(wrong_state)"), "{error}");
    }

    #[test]
    fn a_canceled_job_without_results_says_so() {
        let job = json!({"status": "canceled", "opstatus": ["canceled"], "opresult": [null]});
        let error = job_error(7, "canceled", &job);
        assert!(error.to_string().contains("job 7 canceled"), "{error}");
    }
}
