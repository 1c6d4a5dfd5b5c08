//! A POST over plain HTTP/1.1 to the collector, written by hand on tokio's `TcpStream` (the
//! answer's head read by `httparse`, which hyper links already): one connection kept alive
//! between exports, opened again when it has gone. No TLS: `https://` endpoints are refused at
//! start-up (docs/tracing.md).
//!
//! Not hyper's client: its connection code is generic over the body type, and a second
//! instantiation next to the Lambda runtime's grew `hello` by 115 KB and its resident memory by up
//! to 250 KiB, exporter or not (docs/tracing.md §5). This is a few hundred bytes of code.

use std::fmt::Write as _;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest answer head read (a collector's is a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;

/// Where spans go: `http://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    host: String,
    port: u16,
    path: String,
    authority: HeaderValue,
    /// The URL, for log lines.
    pub(crate) url: String,
}

impl Target {
    /// Reads an `http://` URL. An `https://` one, or one that is not a URL, is an error that says
    /// why.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("the OTLP endpoint {url:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "the OTLP endpoint {url:?} is https: fnkit exports over plain http:// only \
                     (to a collector on localhost or in the same network; docs/tracing.md)"
                ))
            }
            _ => return Err(format!("the OTLP endpoint {url:?} is not an http:// URL")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the OTLP endpoint {url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let path = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .to_owned();
        Ok(Self {
            port: authority.port_u16().unwrap_or(80),
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|e| format!("the OTLP endpoint {url:?} has a bad host: {e}"))?,
            host,
            path,
            url: url.to_owned(),
        })
    }
}

/// The collector's connection, kept between exports.
#[derive(Debug, Default)]
pub(crate) struct Client {
    idle: Mutex<Option<TcpStream>>,
}

impl Client {
    /// POSTs `body` as `application/x-protobuf` with `headers` and gives the answer's status.
    /// A kept connection that fails is replaced once by a new one.
    pub(crate) async fn post(
        &self,
        target: &Target,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<StatusCode, String> {
        let head = request_head(target, headers, body.len());
        let kept = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut stream) = kept {
            if let Ok((status, reusable)) = exchange(&mut stream, &head, &body).await {
                self.keep(stream, reusable);
                return Ok(status);
            }
            // The collector closed it (an idle timeout, a frozen Lambda sandbox): a new one.
        }
        let mut stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (status, reusable) = exchange(&mut stream, &head, &body).await?;
        self.keep(stream, reusable);
        Ok(status)
    }

    fn keep(&self, stream: TcpStream, reusable: bool) {
        if reusable {
            *self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stream);
        }
    }
}

fn request_head(target: &Target, headers: &[(HeaderName, HeaderValue)], len: usize) -> Vec<u8> {
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {len}\r\nuser-agent: fnkit/{}\r\n",
        target.path,
        target.authority.to_str().unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut head = head.into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes the request, reads the whole answer; gives its status and whether the connection can
/// carry the next one.
async fn exchange(
    stream: &mut TcpStream,
    head: &[u8],
    body: &[u8],
) -> Result<(StatusCode, bool), String> {
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(head).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::with_capacity(256);
    loop {
        if reader.read_until(b'\n', &mut raw).await.map_err(io)? == 0 {
            return Err("the collector closed the connection without an answer".to_owned());
        }
        if raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\n\n") {
            break;
        }
        if raw.len() > MAX_HEAD {
            return Err("the collector's answer head is too long".to_owned());
        }
    }
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut fields);
    let parsed = answer
        .parse(&raw)
        .map_err(|e| format!("a malformed answer: {e}"))?;
    let (Some(code), true) = (answer.code, parsed.is_complete()) else {
        return Err("a malformed answer".to_owned());
    };
    let status = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    let value = |name: &str| {
        answer
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let close = value("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
        || answer.version == Some(0);
    // Read the body to its end (and throw it away), so the connection can carry the next export.
    if value("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        let mut line = Vec::new();
        loop {
            line.clear();
            reader.read_until(b'\n', &mut line).await.map_err(io)?;
            let text = std::str::from_utf8(&line).unwrap_or("");
            let size = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| "a malformed chunk".to_owned())?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await.map_err(io)? == 0
                        || line == b"\r\n"
                        || line == b"\n"
                    {
                        break;
                    }
                }
                break;
            }
            skip(&mut reader, size + 2).await?;
        }
        Ok((status, !close))
    } else if let Some(len) = value("content-length") {
        let len = len
            .parse()
            .map_err(|_| "a malformed Content-Length".to_owned())?;
        skip(&mut reader, len).await?;
        Ok((status, !close))
    } else if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Ok((status, !close))
    } else {
        // No length: the body ends with the connection.
        let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
        Ok((status, false))
    }
}

async fn skip(reader: &mut BufReader<&mut TcpStream>, n: u64) -> Result<(), String> {
    let copied = tokio::io::copy(&mut reader.take(n), &mut tokio::io::sink())
        .await
        .map_err(|e| e.to_string())?;
    if copied == n {
        Ok(())
    } else {
        Err("the collector closed the connection mid-answer".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_http_urls() {
        let t = Target::parse("http://collector:4318/v1/traces").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("collector", 4318));
        assert_eq!(t.path, "/v1/traces");
        assert_eq!(t.authority, "collector:4318");
        let t = Target::parse("http://[::1]/x?y=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.path, "/x?y=1");
        let e = Target::parse("https://api.example/v1/traces").unwrap_err();
        assert!(e.contains("plain http://"), "{e}");
        assert!(Target::parse("collector:4318").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
