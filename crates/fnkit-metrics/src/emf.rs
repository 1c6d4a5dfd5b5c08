//! Lambda's metrics: one CloudWatch Embedded Metric Format line per invocation on stdout, which
//! CloudWatch Logs turns into metrics. No network call, nothing buffered.
//!
//! Specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::time::UNIX_EPOCH;

use fnkit_core::adapter::observe::Record;
use serde::Serialize;

/// The CloudWatch namespace of fnkit's metrics.
pub(crate) const NAMESPACE: &str = "fnkit";
/// The one dimension set: each function's metrics, per handler shape.
const DIMENSIONS: [[&str; 2]; 1] = [["function", "shape"]];

/// A metric's declaration in the `_aws` block.
#[derive(Debug, Serialize)]
struct MetricDef {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

const fn def(name: &'static str, unit: &'static str) -> MetricDef {
    MetricDef { name, unit }
}

/// The metrics of a warm invocation, then of the cold one.
const WARM: [MetricDef; 3] = [
    def("requests", "Count"),
    def("errors", "Count"),
    def("duration", "Milliseconds"),
];
const COLD: [MetricDef; 4] = [
    def("requests", "Count"),
    def("errors", "Count"),
    def("duration", "Milliseconds"),
    def("cold_start", "Milliseconds"),
];

#[derive(Serialize)]
struct Directive {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: [[&'static str; 2]; 1],
    #[serde(rename = "Metrics")]
    metrics: &'static [MetricDef],
}

#[derive(Serialize)]
struct Metadata {
    #[serde(rename = "Timestamp")]
    timestamp: u64,
    #[serde(rename = "CloudWatchMetrics")]
    cloudwatch_metrics: [Directive; 1],
}

/// One line: the `_aws` metadata, the dimensions' values, the metrics' values, and properties
/// (not metrics, searchable in Logs Insights) that say which invocation it was.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata,
    function: &'a str,
    shape: &'a str,
    requests: u8,
    errors: u8,
    duration: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold_start: Option<f64>,
    version: &'a str,
    request_id: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// The function's name and version, as the dimension and a property.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) version: String,
}

impl Function {
    /// From Lambda's environment (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_VERSION`).
    pub(crate) fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            fnkit_core::adapter::env_var(name).unwrap_or_else(|| default.to_owned())
        };
        Self {
            name: var("AWS_LAMBDA_FUNCTION_NAME", "unknown"),
            version: var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        }
    }
}

/// The EMF line of one invocation, newline included. `cold_start` (seconds) only on the first.
pub(crate) fn line(function: &Function, record: &Record<'_>, cold_start: Option<f64>) -> Vec<u8> {
    let end = record.started + record.duration;
    let timestamp = end
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let line = Line {
        aws: Metadata {
            timestamp,
            cloudwatch_metrics: [Directive {
                namespace: NAMESPACE,
                dimensions: DIMENSIONS,
                metrics: if cold_start.is_some() { &COLD } else { &WARM },
            }],
        },
        function: &function.name,
        shape: record.shape,
        requests: 1,
        errors: u8::from(record.error.is_some()),
        duration: record.duration.as_secs_f64() * 1000.0,
        cold_start: cold_start.map(|s| s * 1000.0),
        version: &function.version,
        request_id: record.request_id,
        status: record.status,
        error: record.error.map(fnkit_core::ErrorKind::as_str),
    };
    // Serializing these types cannot fail: no maps with non-string keys, no failing `Serialize`.
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::{ErrorKind, Platform, TraceContext};
    use serde_json::{json, Value};
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_cold_failed_invocation() {
        let trace = TraceContext::default();
        let started = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let record = Record {
            platform: Platform::Lambda,
            shape: "typed",
            request_id: "req-\"1\"",
            trace: &trace,
            started,
            duration: Duration::from_micros(2_500),
            status: 400,
            error: Some(ErrorKind::InvalidInput),
            http: None,
            trigger: "other",
            cold_start: true,
        };
        let f = Function {
            name: "hello".into(),
            version: "7".into(),
        };
        let bytes = line(&f, &record, Some(0.0125));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(bytes.ends_with(b"}\n"));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_002_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "fnkit",
                        "Dimensions": [["function", "shape"]],
                        "Metrics": [
                            {"Name": "requests", "Unit": "Count"},
                            {"Name": "errors", "Unit": "Count"},
                            {"Name": "duration", "Unit": "Milliseconds"},
                            {"Name": "cold_start", "Unit": "Milliseconds"},
                        ],
                    }],
                },
                "function": "hello",
                "shape": "typed",
                "requests": 1,
                "errors": 1,
                "duration": 2.5,
                "cold_start": 12.5,
                "version": "7",
                "request_id": "req-\"1\"",
                "status": 400,
                "error": "InvalidInput",
            })
        );
    }

    #[test]
    fn a_warm_invocation_declares_no_cold_start() {
        let trace = TraceContext::default();
        let record = Record {
            platform: Platform::Lambda,
            shape: "http",
            request_id: "r2",
            trace: &trace,
            started: SystemTime::now(),
            duration: Duration::from_millis(3),
            status: 200,
            error: None,
            http: None,
            trigger: "http",
            cold_start: false,
        };
        let f = Function {
            name: "f".into(),
            version: "$LATEST".into(),
        };
        let v: Value = serde_json::from_slice(&line(&f, &record, None)).unwrap();
        let metrics = &v["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(metrics.as_array().unwrap().len(), 3);
        assert!(v.get("cold_start").is_none() && v.get("error").is_none());
        assert_eq!((&v["errors"], &v["requests"]), (&json!(0), &json!(1)));
    }
}
