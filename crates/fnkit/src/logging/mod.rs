//! A small JSON-lines log subscriber: one object per line on stdout, the request's fields (its
//! id, trace and span ids: `fnkit_core::adapter::logscope`) and the fields of the user's own spans
//! flattened into every line of a request. No regex engine, no chrono, no span registry: the
//! subscriber implements `tracing_core::Subscriber` itself, with a slab of live spans behind a
//! mutex and a per-thread stack of entered spans. Start-up parses the filter and allocates the
//! `Dispatch`; the span slab and a thread's stack allocate on first use.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, Level, LevelFilter, Metadata, Subscriber};

use fnkit_core::adapter::logscope::{self, RequestLog};
use fnkit_core::Platform;

mod spans;

#[cfg(test)]
use spans::SlotState;
use spans::{SpanData, Spans};

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

/// Installs the subscriber for `platform` as the global default. Does nothing if one is set.
pub(crate) fn init(platform: Platform) {
    // `set_global_default` refuses a second subscriber: checking first skips reading the
    // environment for one.
    if tracing_core::dispatcher::has_been_set() {
        return;
    }
    let var = fnkit_core::adapter::env_var;
    let (format, filter) = if platform == Platform::Lambda {
        // Concurrent invocations (Lambda Managed Instances) interleave their lines: only JSON
        // lines carry each one's request id, so JSON it is whatever the setting says.
        let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"))
            || crate::runtime::lambda_concurrency() > 1;
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
    let dispatch = Dispatch::new(JsonLines::new(format, filter));
    let _ = tracing_core::dispatcher::set_global_default(dispatch);
}

/// The subscriber: which events pass, how a line looks, and the user's live spans.
struct JsonLines {
    format: Format,
    filter: Filter,
    /// Tells this subscriber's entries on a thread's span stack from another's (one subscriber in
    /// a function; tests install one per test).
    owner: usize,
    spans: Mutex<Spans>,
    /// Where the tests' lines go instead of stdout.
    #[cfg(test)]
    capture: Option<std::sync::Arc<Mutex<String>>>,
}

/// Numbers subscribers for [`JsonLines::owner`].
static NEXT_OWNER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The spans entered on this thread, innermost last (tracing-subscriber's `SpanStack`).
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// One `enter` of a span on this thread.
struct Entered {
    owner: usize,
    id: u64,
    /// The span was already on the stack: this entry does not make it current again (as
    /// tracing-subscriber's registry: the current span is the innermost non-duplicate entry).
    duplicate: bool,
}

impl JsonLines {
    fn new(format: Format, filter: Filter) -> Self {
        Self {
            format,
            filter,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            spans: Mutex::new(Spans::default()),
            #[cfg(test)]
            capture: None,
        }
    }

    /// The live spans. A panic elsewhere while they were locked leaves them consistent (no user
    /// code runs under the lock), so a poisoned lock is taken as it is.
    fn spans(&self) -> MutexGuard<'_, Spans> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of this thread's current span: the innermost entered, duplicates skipped.
    fn current(&self) -> Option<u64> {
        ENTERED
            .try_with(|stack| {
                let stack = stack.try_borrow().ok()?;
                let top = stack
                    .iter()
                    .rev()
                    .find(|e| e.owner == self.owner && !e.duplicate)?;
                Some(top.id)
            })
            .ok()
            .flatten()
    }

    /// The span a new span or event belongs to: none if it is a root, the explicit parent if it
    /// names one, else the current span.
    fn parent_of(&self, is_root: bool, is_contextual: bool, explicit: Option<&Id>) -> Option<u64> {
        if is_root {
            None
        } else if is_contextual {
            self.current()
        } else {
            explicit.map(Id::into_u64)
        }
    }

    /// The line `event` makes: its fields, the request's and those of its spans, root first.
    fn line(&self, event: &Event<'_>) -> String {
        let mut visitor = JsonVisitor::new(self.format);
        event.record(&mut visitor);
        let mut spans = String::new();
        logscope::current(|log| {
            if let Some(log) = log {
                request_fields(self.format, log, &mut spans);
            }
        });
        let parent = self.parent_of(event.is_root(), event.is_contextual(), event.parent());
        if let Some(id) = parent {
            self.spans().push_fields(id, &mut spans);
        }
        render(self.format, event.metadata(), &visitor, &spans)
    }

    fn write(&self, line: &str) {
        #[cfg(test)]
        if let Some(capture) = &self.capture {
            capture
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(line);
            return;
        }
        // One write per line keeps lines whole when several threads log.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

// Fields are rendered (user `Debug` and `Display` code, which may itself log) before the span
// lock is taken, and nothing is called out to while it is held or a thread's stack is borrowed.
impl Subscriber for JsonLines {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.filter.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max())
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut visitor = JsonVisitor::new(self.format);
        attrs.record(&mut visitor);
        let parent = self.parent_of(attrs.is_root(), attrs.is_contextual(), attrs.parent());
        let mut spans = self.spans();
        // A child holds a reference to its parent: a span lives until its children have closed.
        let parent = parent.filter(|&id| spans.retain(id));
        spans.insert(SpanData {
            meta: attrs.metadata(),
            parent,
            fields: visitor.fields,
            refs: 1,
        })
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut visitor = JsonVisitor::new(self.format);
        values.record(&mut visitor);
        if let Some(data) = self.spans().get_mut(span.into_u64()) {
            data.fields.push_str(&visitor.fields);
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = self.line(event);
        self.write(&line);
    }

    fn enter(&self, span: &Id) {
        let id = span.into_u64();
        let _ = ENTERED.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                let duplicate = stack.iter().any(|e| e.owner == self.owner && e.id == id);
                stack.push(Entered {
                    owner: self.owner,
                    id,
                    duplicate,
                });
            }
        });
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        // The innermost entry of the span, wherever it is: exits may come out of order.
        let _ = ENTERED.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                if let Some(at) = stack
                    .iter()
                    .rposition(|e| e.owner == self.owner && e.id == id)
                {
                    stack.remove(at);
                }
            }
        });
    }

    fn current_span(&self) -> Current {
        let Some(id) = self.current() else {
            return Current::none();
        };
        match self.spans().get(id) {
            Some(data) => Current::new(Id::from_u64(id), data.meta),
            None => Current::none(),
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        self.spans().retain(span.into_u64());
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        self.spans().release(span.into_u64())
    }
}

fn render(format: Format, meta: &Metadata<'_>, event: &JsonVisitor, spans: &str) -> String {
    let mut line = String::with_capacity(128 + event.message.len() + event.fields.len());
    let ts = Timestamp(SystemTime::now()).text();
    let ts = std::str::from_utf8(&ts).unwrap_or_default();
    let level = level_name(*meta.level());
    match format {
        Format::LambdaText => {
            let request_id = event
                .request_id
                .as_deref()
                .or_else(|| find_request_id(spans));
            for part in [ts, " ", level, " "] {
                line.push_str(part);
            }
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
            for part in ["{\"timestamp\":\"", ts, "\",\"level\":\"", level, "\""] {
                line.push_str(part);
            }
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
        // serde_json's float printer, which the binary has anyway (core's `Display` for `f64`
        // would add its own); not finite is `null`, as in JSON.
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(self.fields, "{n}");
            }
            None => self.fields.push_str("null"),
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
        // A message (`format_args!`) is written in place; it is escaped with the line.
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
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

impl Timestamp {
    /// The timestamp as its 24 ASCII bytes, written digit by digit: every log line has one, and
    /// `write!` with widths and fill costs several times as much.
    fn text(&self) -> [u8; 24] {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let fields = [
            (0..4, year),
            (5..7, month),
            (8..10, day),
            (11..13, rem / 3600),
            (14..16, rem / 60 % 60),
            (17..19, rem % 60),
            (20..23, u64::from(since.subsec_millis())),
        ];
        for (range, mut n) in fields {
            for digit in out[range].iter_mut().rev() {
                *digit = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.text()).unwrap_or_default())
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
    use std::sync::{mpsc, Arc};
    use std::time::Duration;
    use tracing::dispatcher::with_default;

    /// A subscriber at `info` whose lines go to the returned buffer instead of stdout.
    fn capture(format: Format) -> (Dispatch, Arc<Mutex<String>>) {
        let out = Arc::new(Mutex::new(String::new()));
        let mut subscriber = JsonLines::new(format, Filter::parse(None));
        subscriber.capture = Some(out.clone());
        (Dispatch::new(subscriber), out)
    }

    /// The captured lines, each without its timestamp (`{"level":…` or `INFO …`).
    fn lines(out: &Mutex<String>) -> Vec<String> {
        let out = out.lock().unwrap();
        out.lines()
            .map(|line| match line.strip_prefix("{\"timestamp\":\"") {
                // `2026-11-23T16:18:58.123Z",`
                Some(rest) => format!("{{{}", &rest[26..]),
                None => line[25..].to_owned(),
            })
            .collect()
    }

    /// How many spans `dispatch`'s subscriber holds.
    fn live_spans(dispatch: &Dispatch) -> usize {
        let subscriber = dispatch.downcast_ref::<JsonLines>().unwrap();
        let spans = subscriber.spans();
        spans
            .slots
            .iter()
            .filter(|slot| matches!(slot.state, SlotState::Live(_)))
            .count()
    }

    const TARGET: &str = r#""target":"fnkit::logging::tests""#;

    #[test]
    fn float_fields_are_json_numbers_and_not_finite_ones_null() {
        let (dispatch, out) = capture(Format::Json);
        with_default(&dispatch, || {
            tracing::info!(x = 1.5_f64, y = 0.1_f64, z = f64::NAN, w = 1e21_f64, "f");
        });
        assert_eq!(
            lines(&out),
            [format!(
                r#"{{"level":"INFO","message":"f",{TARGET},"x":1.5,"y":0.1,"z":null,"w":1e+21}}"#
            )]
        );
    }

    #[test]
    fn span_fields_are_flattened_into_an_event_root_first() {
        let (dispatch, out) = capture(Format::Json);
        with_default(&dispatch, || {
            let outer = tracing::info_span!("outer", a = 1, s = "x");
            let _outer = outer.enter();
            let inner = tracing::info_span!("inner", b = true);
            let _inner = inner.enter();
            tracing::info!(c = 2, "hello");
        });
        assert_eq!(
            lines(&out),
            [format!(
                r#"{{"level":"INFO","message":"hello",{TARGET},"a":1,"s":"x","b":true,"c":2}}"#
            )]
        );
    }

    #[test]
    fn an_explicit_parent_wins_over_the_current_span() {
        let (dispatch, out) = capture(Format::LambdaJson);
        with_default(&dispatch, || {
            let entered = tracing::info_span!("entered", e = 1);
            let _entered = entered.enter();
            let parent = tracing::info_span!(parent: None, "parent", p = 2);
            let child = tracing::info_span!(parent: &parent, "child", c = 3);
            tracing::info!(parent: &child, "explicit");
            tracing::info!(parent: None, "root");
            let root = tracing::info_span!(parent: None, "root span", r = 4);
            let _root = root.enter();
            tracing::info!("in a root span");
        });
        assert_eq!(
            lines(&out),
            [
                r#"{"level":"INFO","message":"explicit","p":2,"c":3}"#,
                r#"{"level":"INFO","message":"root"}"#,
                r#"{"level":"INFO","message":"in a root span","r":4}"#,
            ]
        );
    }

    #[test]
    fn fields_recorded_after_creation_are_appended() {
        let (dispatch, out) = capture(Format::Json);
        with_default(&dispatch, || {
            let span = tracing::info_span!("s", a = 1, late = tracing::field::Empty);
            span.record("late", "v");
            let _entered = span.enter();
            tracing::info!("m");
        });
        assert_eq!(
            lines(&out),
            [format!(
                r#"{{"level":"INFO","message":"m",{TARGET},"a":1,"late":"v"}}"#
            )]
        );
    }

    #[test]
    fn closed_spans_leave_the_store_empty() {
        let (dispatch, out) = capture(Format::LambdaText);
        with_default(&dispatch, || {
            let parent = tracing::info_span!("parent", p = 1);
            let child = parent.in_scope(|| tracing::info_span!("child", c = 2));
            let clone = child.clone();
            assert_eq!(live_spans(&dispatch), 2);
            // The child keeps its parent: its lines still carry the parent's fields.
            drop(parent);
            drop(child);
            assert_eq!(live_spans(&dispatch), 2);
            clone.in_scope(|| tracing::info!("late"));
            drop(clone);
            assert_eq!(live_spans(&dispatch), 0);
            // Slots are reused.
            let again = tracing::info_span!("again");
            again.in_scope(|| tracing::info!("again"));
        });
        assert_eq!(live_spans(&dispatch), 0);
        let subscriber = dispatch.downcast_ref::<JsonLines>().unwrap();
        assert_eq!(subscriber.spans().slots.len(), 2);
        assert_eq!(lines(&out), ["INFO late p=1 c=2", "INFO again"]);
    }

    #[test]
    fn a_stale_id_never_finds_the_span_that_reuses_its_slot() {
        let (dispatch, _out) = capture(Format::Json);
        with_default(&dispatch, || {
            let first = tracing::info_span!("first");
            let stale = first.id().unwrap();
            drop(first);
            let second = tracing::info_span!("second", s = 1);
            let id = second.id().unwrap();
            // Same slot, next generation.
            assert_eq!(id.into_u64(), stale.into_u64() + (1 << 32));
            let subscriber = dispatch.downcast_ref::<JsonLines>().unwrap();
            assert!(subscriber.spans().get(stale.into_u64()).is_none());
            // A stray close or clone of the stale id leaves the new span alone.
            assert!(!dispatch.try_close(stale.clone()));
            let _ = dispatch.clone_span(&stale);
            assert_eq!(subscriber.spans().get(id.into_u64()).unwrap().refs, 1);
            assert!(subscriber.spans().get(0).is_none());
        });
        assert_eq!(live_spans(&dispatch), 0);
    }

    #[test]
    fn an_event_outside_any_span_has_its_own_and_the_requests_fields() {
        for (format, expect) in [
            (
                Format::Json,
                [
                    format!(r#"{{"level":"INFO","message":"alone",{TARGET},"x":1}}"#),
                    format!(
                        r#"{{"level":"WARN","message":"in a request",{TARGET},"request_id":"r-1"}}"#
                    ),
                ],
            ),
            (
                Format::LambdaJson,
                [
                    r#"{"level":"INFO","message":"alone","x":1}"#.to_owned(),
                    r#"{"level":"WARN","message":"in a request","requestId":"r-1"}"#.to_owned(),
                ],
            ),
            (
                Format::LambdaText,
                [
                    "INFO alone x=1".to_owned(),
                    "WARN r-1 in a request".to_owned(),
                ],
            ),
        ] {
            let (dispatch, out) = capture(format);
            with_default(&dispatch, || {
                tracing::info!(x = 1, "alone");
                let log = RequestLog::new("r-1");
                let _request = logscope::enter(&log);
                tracing::warn!("in a request");
                tracing::debug!("below the filter");
            });
            assert_eq!(lines(&out), expect, "{format:?}");
        }
    }

    #[test]
    fn a_span_entered_on_another_thread_is_current_there_only() {
        let (dispatch, out) = capture(Format::Json);
        let span = with_default(&dispatch, || tracing::info_span!("job", job = 7));
        let (entered_tx, entered_rx) = mpsc::channel();
        let (logged_tx, logged_rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                with_default(&dispatch, move || {
                    let entered = span.entered();
                    entered_tx.send(()).unwrap();
                    logged_rx.recv().unwrap();
                    tracing::info!("there");
                    assert_eq!(tracing::Span::current().metadata().unwrap().name(), "job");
                    // Exited and closed on this thread.
                    drop(entered);
                });
            });
            entered_rx.recv().unwrap();
            with_default(&dispatch, || {
                assert!(tracing::Span::current().is_none());
                tracing::info!("here");
            });
            logged_tx.send(()).unwrap();
        });
        assert_eq!(
            lines(&out),
            [
                format!(r#"{{"level":"INFO","message":"here",{TARGET}}}"#),
                format!(r#"{{"level":"INFO","message":"there",{TARGET},"job":7}}"#),
            ]
        );
        assert_eq!(live_spans(&dispatch), 0);
    }

    #[test]
    fn exits_out_of_order_leave_the_innermost_remaining_span_current() {
        let (dispatch, out) = capture(Format::LambdaText);
        with_default(&dispatch, || {
            let a = tracing::info_span!(parent: None, "a", a = 1);
            let b = tracing::info_span!(parent: None, "b", b = 2);
            let entered_a = a.enter();
            let entered_b = b.enter();
            drop(entered_a);
            tracing::info!("b only");
            let entered_a = a.enter();
            tracing::info!("a again");
            drop(entered_b);
            tracing::info!("a still");
            drop(entered_a);
            tracing::info!("none");
        });
        assert_eq!(
            lines(&out),
            [
                "INFO b only b=2",
                "INFO a again a=1",
                "INFO a still a=1",
                "INFO none"
            ]
        );
    }

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
