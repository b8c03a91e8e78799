//! Prometheus metrics (`/metrics`): OpenMetrics text when the scraper asks for it
//! (`Accept: application/openmetrics-text`), else the classic text format 0.0.4 that
//! `promtool check metrics` and older scrapers read. Counters and the step histogram are fed by the
//! run threads as driver calls start and answer; the gauges (runs by state, hosts by step) are
//! computed when scraped, from the store and the active runs, so they can never drift.
//!
//! Labels never carry VM or host names (unbounded cardinality): clusters, steps, states only.
//! This module must not know HTTP routing or the engine's internals.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterStepLabels {
    cluster: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MigrationLabels {
    cluster: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route_template: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// How a migration call ended, for `drover_migrations_total{result}`.
#[derive(Clone, Copy, Debug)]
pub enum MigrationResult {
    Started,
    Succeeded,
    Failed,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    runs: Family<StateLabel, Gauge>,
    hosts: Family<ClusterStepLabels, Gauge>,
    migrations: Family<MigrationLabels, Counter>,
    step_duration_seconds: Family<StepLabel, Histogram>,
    api_requests: Family<RequestLabels, Counter>,
    /// Scrapes rebuild the gauges: one at a time.
    render_lock: Mutex<()>,
}

fn step_histogram() -> Histogram {
    // 1 s … ~9 h of platform time.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<StateLabel, Gauge>::default();
        let hosts = Family::<ClusterStepLabels, Gauge>::default();
        let migrations = Family::<MigrationLabels, Counter>::default();
        let step_duration_seconds = Family::<StepLabel, Histogram>::new_with_constructor(
            step_histogram as fn() -> Histogram,
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register(
            "drover_runs",
            "Runs in the state file by state",
            runs.clone(),
        );
        registry.register(
            "drover_hosts",
            "Hosts of served clusters by their step in the active run (idle without one)",
            hosts.clone(),
        );
        registry.register(
            "drover_migrations",
            "Live migrations started, succeeded and failed",
            migrations.clone(),
        );
        registry.register(
            "drover_step_duration_seconds",
            "Driver call durations from intent to outcome, in platform time",
            step_duration_seconds.clone(),
        );
        registry.register(
            "drover_api_requests",
            "API requests by method, route template and status",
            api_requests.clone(),
        );
        registry.register("drover_build_info", "The drover version", build_info);
        Metrics {
            registry,
            runs,
            hosts,
            migrations,
            step_duration_seconds,
            api_requests,
            render_lock: Mutex::new(()),
        }
    }

    pub fn migration(&self, cluster: &str, result: MigrationResult) {
        let result = match result {
            MigrationResult::Started => "started",
            MigrationResult::Succeeded => "succeeded",
            MigrationResult::Failed => "failed",
        };
        self.migrations
            .get_or_create(&MigrationLabels {
                cluster: cluster.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn step_duration(&self, step: &str, platform_ms: u64) {
        self.step_duration_seconds
            .get_or_create(&StepLabel {
                step: step.to_string(),
            })
            .observe(platform_ms as f64 / 1000.0);
    }

    pub fn api_request(&self, method: &str, route_template: &str, status: u16) {
        self.api_requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route_template: route_template.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics exposition, with the gauges set from the given counts.
    pub fn render(
        &self,
        runs_by_state: &BTreeMap<String, i64>,
        hosts_by_cluster_step: &BTreeMap<(String, String), i64>,
    ) -> String {
        let _one_at_a_time = self
            .render_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.runs.clear();
        for (state, count) in runs_by_state {
            self.runs
                .get_or_create(&StateLabel {
                    state: state.clone(),
                })
                .set(*count);
        }
        self.hosts.clear();
        for ((cluster, step), count) in hosts_by_cluster_step {
            self.hosts
                .get_or_create(&ClusterStepLabels {
                    cluster: cluster.clone(),
                    step: step.clone(),
                })
                .set(*count);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The media type of the classic Prometheus text format.
pub const CLASSIC_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The media type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (Prometheus sends it first); anything else,
/// `text/plain; version=0.0.4` and no header included, gets the classic format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';');
            let media_type = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|parameter| {
                parameter
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media_type.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

/// OpenMetrics text in the classic format: a counter family `x` is named `x_total` in its HELP
/// and TYPE lines (its samples already are), `_created` samples, `# UNIT` and `# EOF` go.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        let is_created_sample = !line.starts_with('#')
            && sample_name
                .strip_suffix("_created")
                .is_some_and(|family| counters.contains(family));
        if is_created_sample {
            continue;
        }
        text.push_str(&rename_counter_comment(line, &counters));
        text.push('\n');
    }
    text
}

fn rename_counter_comment(line: &str, counters: &std::collections::BTreeSet<&str>) -> String {
    for prefix in ["# HELP ", "# TYPE "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let (family, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(family) && !family.ends_with("_total") {
                return format!("{prefix}{family}_total {tail}");
            }
        }
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_in_the_classic_format() {
        let metrics = Metrics::new();
        metrics.api_request("GET", "/api/v1/whoami", 200);
        metrics.migration("pool", MigrationResult::Started);
        let openmetrics = metrics.render(&BTreeMap::new(), &BTreeMap::new());
        let classic = classic_text(&openmetrics);
        assert!(classic.contains("# HELP drover_api_requests_total API requests"));
        assert!(classic.contains("# TYPE drover_api_requests_total counter"));
        assert!(classic.contains("# HELP drover_migrations_total Live migrations"));
        assert!(classic.contains("drover_migrations_total{cluster=\"pool\",result=\"started\"} 1"));
        assert!(!classic.contains("# EOF"));
        assert!(classic.contains("# TYPE drover_step_duration_seconds histogram"));
    }

    #[test]
    fn only_an_openmetrics_accept_gets_openmetrics() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain; version=0.0.4")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
