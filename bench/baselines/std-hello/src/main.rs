//! The physical lower limit for exec-to-first-response: std only, one blocking thread, no
//! parsing beyond what HTTP/1.1 framing needs, and a fixed JSON answer.
//!
//! Reads `PORT` (default 8080), binds `0.0.0.0:$PORT`, and answers every request with
//! `{"message":"Hello, world!"}`. Request bodies must carry `Content-Length` (no chunked
//! decoding); connections are kept alive unless the client sends `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\r\n{\"message\":\"Hello, world!\"}";

fn main() -> io::Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "PORT is not a port"))?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    for stream in listener.incoming() {
        // A broken connection is that client's problem, not the server's.
        let _ = stream.and_then(serve);
    }
    Ok(())
}

/// Serves one connection until the peer closes it or asks to.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        // Read until the end of the head.
        let head_end = loop {
            if let Some(i) = find(&buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = stream.read(&mut buf[filled..])?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
        };
        let (length, close) = parse_head(&buf[..head_end]);
        // Drain the body (an unread body would make close() send a reset), reading no further
        // than its end so that a pipelined next request stays in the buffer.
        let body_here = filled - head_end;
        if body_here >= length {
            let used = head_end + length;
            buf.copy_within(used..filled, 0);
            filled -= used;
        } else {
            let mut left = length - body_here;
            while left > 0 {
                let want = left.min(buf.len());
                let n = stream.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(());
                }
                left -= n;
            }
            filled = 0;
        }
        stream.write_all(RESPONSE)?;
        if close {
            return Ok(());
        }
    }
}

/// Returns (`Content-Length`, whether the client sent `Connection: close`).
fn parse_head(head: &[u8]) -> (usize, bool) {
    let mut length = 0;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    (length, close)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
