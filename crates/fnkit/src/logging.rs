//! A small JSON-lines log subscriber: one object per line on stdout, the request's fields (its
//! id, trace and span ids: `fnkit_core::adapter::logscope`) and the fields of the user's own spans
//! flattened into every line of a request. No regex engine, no chrono: start-up costs one
//! allocation for the filter.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use fnkit_core::adapter::logscope::{self, RequestLog};
use fnkit_core::Platform;

/// The shape of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `{"timestamp","level","target","message","request_id",...}`: Knative, OpenFaaS, local.
    Json,
    /// Lambda's JSON log format (`AWS_LAMBDA_LOG_FORMAT=JSON`):
    /// `{"timestamp","level","message","requestId",...}`.
    LambdaJson,
    /// Lambda's text format: `<timestamp> <LEVEL> <requestId> <message> k=v`.
    LambdaText,
}

/// Which levels pass, globally and per target prefix (`RUST_LOG=info,hyper=warn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Parses the common `RUST_LOG` forms: `level` and `target=level`, comma-separated. Anything
    /// else (spans, regexes) is ignored; an empty or absent value means `info`.
    pub(crate) fn parse(spec: Option<&str>) -> Self {
        let mut filter = Self {
            default: LevelFilter::INFO,
            targets: Vec::new(),
        };
        for part in spec.unwrap_or("").split(',').map(str::trim) {
            match part.split_once('=') {
                None => {
                    if let Some(level) = parse_level(part) {
                        filter.default = level;
                    }
                }
                Some((target, level)) => {
                    if let Some(level) = parse_level(level) {
                        filter.targets.push((target.trim().to_owned(), level));
                    }
                }
            }
        }
        // Longest prefix first, so the most specific directive wins.
        filter.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        filter
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| {
                target.starts_with(prefix.as_str())
                    && (target.len() == prefix.len() || target[prefix.len()..].starts_with("::"))
            })
            .map_or(self.default, |(_, level)| *level)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.level_for(meta.target())
    }

    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, std::cmp::max)
    }
}

fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "off" => LevelFilter::OFF,
        "error" | "fatal" | "critical" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return None,
    })
}

/// How many invocations the Lambda runtime runs at once, by its own rule.
fn lambda_concurrency() -> usize {
    #[cfg(feature = "lambda")]
    return fnkit_lambda::max_concurrency();
    #[cfg(not(feature = "lambda"))]
    1
}

/// Installs the subscriber for `platform` as the global default. Does nothing if one is set.
pub(crate) fn init(platform: Platform) {
    let var = fnkit_core::adapter::env_var;
    let (format, filter) = if platform == Platform::Lambda {
        // Concurrent invocations (Lambda Managed Instances) interleave their lines: only JSON
        // lines carry each one's request id, so JSON it is whatever the setting says.
        let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"))
            || lambda_concurrency() > 1;
        let format = if json {
            Format::LambdaJson
        } else {
            Format::LambdaText
        };
        // Lambda's own level setting wins over RUST_LOG where it is set (JSON format only).
        let level = json.then(|| var("AWS_LAMBDA_LOG_LEVEL")).flatten();
        (
            format,
            Filter::parse(level.or_else(|| var("RUST_LOG")).as_deref()),
        )
    } else {
        (Format::Json, Filter::parse(var("RUST_LOG").as_deref()))
    };
    let layer = JsonLines { format, filter };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

struct JsonLines {
    format: Format,
    filter: Filter,
}

/// Span fields, pre-rendered as `,"key":value` JSON members.
struct SpanFields(String);

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = JsonVisitor::new(self.format);
        attrs.record(&mut visitor);
        span.extensions_mut().insert(SpanFields(visitor.fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = JsonVisitor::new(self.format);
        values.record(&mut visitor);
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(fields) => fields.0.push_str(&visitor.fields),
            None => ext.insert(SpanFields(visitor.fields)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut visitor = JsonVisitor::new(self.format);
        event.record(&mut visitor);
        let mut spans = String::new();
        logscope::current(|log| {
            if let Some(log) = log {
                request_fields(self.format, log, &mut spans);
            }
        });
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    spans.push_str(&fields.0);
                }
            }
        }
        let line = render(self.format, event.metadata(), &visitor, &spans);
        // One write per line keeps lines whole when several threads log.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

fn render(format: Format, meta: &Metadata<'_>, event: &JsonVisitor, spans: &str) -> String {
    let mut line = String::with_capacity(128 + event.message.len() + event.fields.len());
    let ts = Timestamp(SystemTime::now());
    match format {
        Format::LambdaText => {
            let request_id = event
                .request_id
                .as_deref()
                .or_else(|| find_request_id(spans));
            let _ = write!(line, "{ts} {} ", level_name(*meta.level()));
            if let Some(id) = request_id {
                line.push_str(id);
                line.push(' ');
            }
            line.push_str(&event.message);
            // Remaining fields as ` key=value` pairs.
            for (k, v) in text_pairs(&event.fields).chain(text_pairs(spans)) {
                if k != "requestId" && k != "request_id" {
                    let _ = write!(line, " {k}={v}");
                }
            }
        }
        Format::Json | Format::LambdaJson => {
            let _ = write!(
                line,
                "{{\"timestamp\":\"{ts}\",\"level\":\"{}\"",
                level_name(*meta.level())
            );
            line.push_str(",\"message\":");
            push_json_str(&mut line, &event.message);
            if format == Format::Json {
                line.push_str(",\"target\":");
                push_json_str(&mut line, meta.target());
            }
            line.push_str(spans);
            line.push_str(&event.fields);
            line.push('}');
        }
    }
    line.push('\n');
    line
}

/// The request's own members: `,"request_id":"…"` (`requestId` on Lambda), then `trace_id` and
/// `span_id` once its trace is known.
fn request_fields(format: Format, log: &RequestLog, out: &mut String) {
    push_key(out, format, "request_id");
    push_json_str(out, log.request_id());
    if let Some(span) = log.span() {
        push_key(out, format, "trace_id");
        push_json_str(out, span.trace_id.as_str());
        push_key(out, format, "span_id");
        push_json_str(out, span.span_id.as_str());
    }
}

/// `,"name":`, with Lambda's name for the request id in Lambda's formats.
fn push_key(out: &mut String, format: Format, name: &str) {
    let name = match (format, name) {
        (Format::LambdaJson | Format::LambdaText, "request_id") => "requestId",
        (_, name) => name,
    };
    out.push(',');
    push_json_str(out, name);
    out.push(':');
}

fn find_request_id(spans: &str) -> Option<&str> {
    text_pairs(spans)
        .find(|(k, _)| *k == "requestId" || *k == "request_id")
        .map(|(_, v)| v.trim_matches('"'))
}

/// Splits pre-rendered `,"k":v` members back into pairs (values are JSON without commas
/// outside strings only when simple; good enough for the text format's trailing pairs).
fn text_pairs(rendered: &str) -> impl Iterator<Item = (&str, &str)> {
    rendered.split(",\"").filter_map(|member| {
        let (k, v) = member.split_once("\":")?;
        Some((k, v))
    })
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

struct JsonVisitor {
    format: Format,
    message: String,
    fields: String,
    request_id: Option<String>,
}

impl JsonVisitor {
    fn new(format: Format) -> Self {
        Self {
            format,
            message: String::new(),
            // One allocation for the usual few fields (a request id is 53 bytes rendered).
            fields: String::with_capacity(96),
            request_id: None,
        }
    }

    fn key(&mut self, field: &Field) {
        push_key(&mut self.fields, self.format, field.name());
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        if field.name() == "request_id" {
            self.request_id = Some(value.to_owned());
        }
        self.key(field);
        push_json_str(&mut self.fields, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.fields, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.fields, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.fields, "{value}");
        } else {
            self.fields.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.fields.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Most values (ids, paths, messages) need no escaping: copy them whole.
    if !s
        .bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An RFC 3339 UTC timestamp with milliseconds: `2026-11-23T16:18:58.123Z`.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_450_738_123);
        assert_eq!(Timestamp(t).to_string(), "2026-11-23T16:18:58.123Z");
        assert_eq!(
            Timestamp(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(Timestamp(t).to_string(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn rust_log_directives_pick_the_most_specific_target() {
        let f = Filter::parse(Some("warn,fnkit_http=debug,fnkit_http::server=error"));
        assert_eq!(f.level_for("other"), LevelFilter::WARN);
        assert_eq!(f.level_for("fnkit_http"), LevelFilter::DEBUG);
        assert_eq!(f.level_for("fnkit_http::cloudevents"), LevelFilter::DEBUG);
        assert_eq!(f.level_for("fnkit_http::server"), LevelFilter::ERROR);
        assert_eq!(f.level_for("fnkit_httpx"), LevelFilter::WARN);
        assert_eq!(f.max(), LevelFilter::DEBUG);
    }

    #[test]
    fn absent_or_garbage_rust_log_means_info() {
        assert_eq!(Filter::parse(None).level_for("x"), LevelFilter::INFO);
        assert_eq!(
            Filter::parse(Some("[{x}]")).level_for("x"),
            LevelFilter::INFO
        );
        assert_eq!(
            Filter::parse(Some("WARN")).level_for("x"),
            LevelFilter::WARN
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é");
    }
}
