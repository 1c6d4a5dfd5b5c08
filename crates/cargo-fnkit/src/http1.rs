//! Just enough HTTP/1.1 for the local emulators and `invoke`, on `std::net` threads.
//!
//! The emulators serve one developer's requests, so a thread per connection is plenty, and
//! keeping hyper and tokio out of the tool means none of their features can leak into the
//! functions' builds through cargo's feature unification. Request bodies are read whole
//! (`Content-Length` or chunked; trailers join the headers); a response body is either bytes or a
//! stream passed on chunk by chunk as it arrives. Keep-alive is honoured, as fnkit's Lambda client
//! holds one connection to the Runtime API.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The largest head (request or status line plus headers) read.
const MAX_HEAD: usize = 64 * 1024;

/// Header (or trailer) lines: names as received, values trimmed.
pub(crate) type Headers = Vec<(String, String)>;

/// A body read as it arrives.
pub(crate) type BodyStream = Box<dyn Read + Send>;

/// A request, body read whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// `GET`, `POST`, …
    pub(crate) method: String,
    /// The request target: path and query.
    pub(crate) target: String,
    /// Headers in the order received, then the trailers of a chunked body.
    pub(crate) headers: Headers,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// A response: its body is `body`, or `stream` when set (sent chunked as it is read).
#[derive(Default)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// Headers in order.
    pub(crate) headers: Headers,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// A body to pass on as it arrives, instead of `body`.
    pub(crate) stream: Option<BodyStream>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("stream", &self.stream.is_some())
            .finish()
    }
}

/// Finds a header (names compare case-insensitively).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Request {
    /// The value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The target's path, without the query.
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

impl Response {
    /// A response with a status, one content type and a body.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
            stream: None,
        }
    }

    /// A JSON response.
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The value of header `name`.
    #[cfg(test)]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Serves `listener` with `handler`, a thread per connection, until the process ends.
pub(crate) fn serve<F>(listener: TcpListener, handler: F)
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = Arc::clone(&handler);
            thread::spawn(move || {
                let _ = serve_connection(stream, &*handler);
            });
        }
    });
}

fn serve_connection(stream: TcpStream, handler: &dyn Fn(Request) -> Response) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        // curl and other clients wait for `100 Continue` before sending a larger body.
        let continue_ = |w: &mut TcpStream| w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        let Some(request) = read_request_then(&mut reader, || continue_(&mut writer))? else {
            return Ok(());
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let head_only = request.method == "HEAD";
        let response = handler(request);
        // A failure while streaming ends the connection: the client sees a cut chunked body.
        write_response(&mut writer, response, close, head_only)?;
        if close {
            return Ok(());
        }
    }
}

/// `GET target` on `addr`, answered within 10 s (the emulators' unit tests).
#[cfg(test)]
pub(crate) fn get(addr: &str, target: &str) -> Response {
    let req = Request {
        method: "GET".into(),
        target: target.into(),
        ..Request::default()
    };
    send(addr, &req, Some(Instant::now() + Duration::from_secs(10))).expect("an answer")
}

/// Reads one request; `None` when the peer closed the connection between requests.
#[cfg(test)]
pub(crate) fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    read_request_then(reader, || Ok(()))
}

/// Reads one request, calling `on_expect` between the head and the body when the client sent
/// `Expect: 100-continue`.
fn read_request_then(
    reader: &mut impl BufRead,
    on_expect: impl FnOnce() -> io::Result<()>,
) -> io::Result<Option<Request>> {
    let Some(lines) = read_head(reader)? else {
        return Ok(None);
    };
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    let mut headers = parse_headers(&lines[1..])?;
    if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        on_expect()?;
    }
    let mut body = Vec::new();
    if is_chunked(&headers) {
        let mut chunked = Chunked::new(&mut *reader);
        chunked.read_to_end(&mut body)?;
        headers.append(&mut chunked.trailers);
    } else if let Some(len) = content_length(&headers)? {
        read_exactly(reader, len, &mut body)?;
    }
    Ok(Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    }))
}

/// Writes `response`: with a `Content-Length`, or chunked as its stream delivers (`Connection:
/// close` added when `close`).
pub(crate) fn write_response(
    out: &mut impl Write,
    mut response: Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        if !name.eq_ignore_ascii_case("content-length")
            && !name.eq_ignore_ascii_case("transfer-encoding")
            && !name.eq_ignore_ascii_case("connection")
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let stream = response.stream.take().filter(|_| !head_only);
    if stream.is_some() {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    match stream {
        Some(mut stream) => {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                write!(out, "{n:x}\r\n")?;
                out.write_all(&buf[..n])?;
                out.write_all(b"\r\n")?;
                out.flush()?;
            }
            out.write_all(b"0\r\n\r\n")?;
        }
        None if !head_only => out.write_all(&response.body)?,
        None => {}
    }
    out.flush()
}

/// Sends `request` to `addr` (`host:port`) on a new connection and reads the answer whole,
/// failing with `TimedOut` when it is not complete before `deadline`.
pub(crate) fn send(
    addr: &str,
    request: &Request,
    deadline: Option<Instant>,
) -> io::Result<Response> {
    let mut response = send_streaming(addr, request, deadline)?;
    if let Some(mut stream) = response.stream.take() {
        stream.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// Sends `request` and reads the answer's head; the body is left in `stream` (absent for a body
/// that cannot exist: HEAD, 204, 304), to be read before `deadline`.
pub(crate) fn send_streaming(
    addr: &str,
    request: &Request,
    deadline: Option<Instant>,
) -> io::Result<Response> {
    let stream = TcpStream::connect(addr)?;
    let _ = stream.set_nodelay(true);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\n",
        request.method, request.target
    );
    for (name, value) in &request.headers {
        if ![
            "host",
            "content-length",
            "connection",
            "transfer-encoding",
            "expect",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    let mut writer = stream.try_clone()?;
    writer.write_all(head.as_bytes())?;
    writer.write_all(&request.body)?;
    writer.flush()?;
    let mut reader = BufReader::new(Deadlined { stream, deadline });
    // Interim answers (`100 Continue`) come before the real one.
    let (status, lines) = loop {
        let lines =
            read_head(&mut reader)?.ok_or_else(|| invalid("the connection closed early"))?;
        let status: u16 = lines[0]
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("malformed status line"))?;
        if status >= 200 {
            break (status, lines);
        }
    };
    let headers = parse_headers(&lines[1..])?;
    let no_body = request.method == "HEAD" || status == 204 || status == 304;
    let stream: Option<BodyStream> = if no_body {
        None
    } else if is_chunked(&headers) {
        Some(Box::new(Chunked::new(reader)))
    } else if let Some(len) = content_length(&headers)? {
        Some(Box::new(Exactly(reader.take(len))))
    } else {
        Some(Box::new(reader)) // until the server closes
    };
    Ok(Response {
        status,
        headers,
        body: Vec::new(),
        stream,
    })
}

/// A stream whose reads fail with `TimedOut` past the deadline.
struct Deadlined {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        }
        self.stream.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, "deadline passed"),
            _ => e,
        })
    }
}

/// A `Content-Length` body: ending before the length is an error, not EOF.
struct Exactly<R>(io::Take<R>);

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() && self.0.limit() > 0 {
            return Err(invalid("the body ended early"));
        }
        Ok(n)
    }
}

fn read_exactly(reader: &mut impl Read, len: u64, body: &mut Vec<u8>) -> io::Result<()> {
    Exactly(reader.take(len)).read_to_end(body).map(|_| ())
}

/// A chunked body, decoded; the trailers are kept once it has been read to the end.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: usize,
    /// Whether the current chunk's data ended and its CRLF is still to be read.
    after_chunk: bool,
    done: bool,
    trailers: Headers,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Chunked<R> {
        Chunked {
            inner,
            left: 0,
            after_chunk: false,
            done: false,
            trailers: Vec::new(),
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(invalid("the chunked body ended early"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            if self.after_chunk {
                self.line()?; // the CRLF that ends the previous chunk's data
                self.after_chunk = false;
            }
            let size_line = self.line()?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            self.left = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if self.left == 0 {
                loop {
                    let line = self.line().unwrap_or_default();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        self.trailers
                            .push((n.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("the chunked body ended early"));
        }
        self.left -= n;
        self.after_chunk = self.left == 0;
        Ok(n)
    }
}

/// The start line and header lines, up to the blank line; `None` at EOF before any byte.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return if lines.is_empty() && total == 0 {
                Ok(None)
            } else {
                Err(invalid("the connection closed inside the head"))
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(invalid("head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if lines.is_empty() {
                continue; // a stray CRLF between requests
            }
            return Ok(Some(lines));
        }
        lines.push(line.to_owned());
    }
}

fn parse_headers(lines: &[String]) -> io::Result<Headers> {
    lines
        .iter()
        .map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| invalid("malformed header line"))
        })
        .collect()
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<u64>> {
    header(headers, "content-length")
        .map(|v| v.parse().map_err(|_| invalid("bad Content-Length")))
        .transpose()
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The reason phrase of the statuses the emulators send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_request_with_trailers_is_read_whole() {
        let raw = "POST /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                   4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";
        let req = read_request(&mut raw.as_bytes())
            .expect("readable")
            .expect("a request");
        assert_eq!((req.method.as_str(), req.path()), ("POST", "/x"));
        assert_eq!(req.body, b"Wikipedia");
        assert_eq!(
            req.header("x-trailer"),
            Some("t"),
            "trailers join the headers"
        );
    }

    #[test]
    fn requests_and_responses_round_trip_over_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        serve(listener, |req| {
            Response::new(
                201,
                "text/plain",
                [req.method.as_bytes(), &req.body].concat(),
            )
            .with_header("X-Path", req.target)
        });
        let req = Request {
            method: "PUT".into(),
            target: "/a?b=c".into(),
            headers: vec![("X-Test".into(), "1".into())],
            body: b"hello".to_vec(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let resp = send(&addr, &req, Some(deadline)).expect("an answer");
        assert_eq!(resp.status, 201);
        assert_eq!(resp.body, b"PUThello");
        assert_eq!(resp.header("x-path"), Some("/a?b=c"));
    }

    #[test]
    fn a_streamed_body_is_passed_on_chunk_by_chunk() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        // The body's second half comes 300 ms after the first.
        serve(listener, |_| {
            let (first, second) = (io::Cursor::new(b"one ".to_vec()), Slow(Some(b"two")));
            Response {
                status: 200,
                stream: Some(Box::new(first.chain(second))),
                ..Response::default()
            }
        });
        let started = Instant::now();
        let resp = send_streaming(&addr, &Request::default_get("/"), None).expect("a head");
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        let mut stream = resp.stream.expect("a body");
        let mut first = [0u8; 4];
        stream.read_exact(&mut first).expect("the first chunk");
        assert_eq!(&first, b"one ");
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "before the rest exists"
        );
        let mut rest = String::new();
        stream.read_to_string(&mut rest).expect("the rest");
        assert_eq!(rest, "two");
    }

    /// A reader that waits 300 ms before its one read.
    struct Slow(Option<&'static [u8; 3]>);

    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(data) => {
                    thread::sleep(Duration::from_millis(300));
                    buf[..3].copy_from_slice(data);
                    Ok(3)
                }
                None => Ok(0),
            }
        }
    }

    #[test]
    fn a_client_that_expects_100_continue_gets_it_before_sending_the_body() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address");
        serve(listener, |req| Response::new(200, "text/plain", req.body));
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
            )
            .expect("the head");
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).expect("an interim answer");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"ok").expect("the body");
        let mut reader = BufReader::new(stream);
        let lines = read_head(&mut reader).expect("a head").expect("lines");
        assert_eq!(lines[0], "HTTP/1.1 200 OK");
    }

    #[test]
    fn a_late_answer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        serve(listener, |_| {
            thread::sleep(Duration::from_millis(500));
            Response::new(200, "text/plain", "late")
        });
        let deadline = Instant::now() + Duration::from_millis(50);
        let err = send(&addr, &Request::default_get("/"), Some(deadline)).expect_err("too late");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    impl Request {
        fn default_get(target: &str) -> Request {
            Request {
                method: "GET".into(),
                target: target.into(),
                ..Request::default()
            }
        }
    }
}
