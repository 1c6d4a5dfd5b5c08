//! Just enough HTTP/1.1 to be a client of the HTTP variants and a server of the Lambda Runtime API:
//! heads, `Content-Length` and chunked bodies, keep-alive. No dependency, so the harness itself
//! adds nothing measurable to what it times.

use std::io::{self, Read, Write};

/// One request or response as read off the wire.
#[derive(Debug, Default)]
pub(crate) struct Message {
    /// `GET /path HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub(crate) start_line: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// The first header of that name, compared case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status code of a response (0 when the start line is not a status line).
    pub(crate) fn status(&self) -> u16 {
        self.start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Method and path of a request.
    pub(crate) fn method_path(&self) -> (&str, &str) {
        let mut parts = self.start_line.split(' ');
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
    }
}

/// A stream with a read buffer that survives between messages (keep-alive).
pub(crate) struct Conn<S> {
    pub(crate) stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const MAX_HEAD: usize = 64 * 1024;

impl<S: Read + Write> Conn<S> {
    pub(crate) fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Reads one message. `Ok(None)` is a clean end of stream before its first byte. A response
    /// without `Content-Length` or chunked encoding is read to the end of the stream; a request
    /// without either has no body.
    pub(crate) fn read_message(&mut self, is_response: bool) -> io::Result<Option<Message>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf[self.start..self.end], b"\r\n\r\n") {
                break self.start + i + 4;
            }
            if self.end - self.start > MAX_HEAD {
                return Err(invalid("head too large"));
            }
            if self.fill()? == 0 {
                if self.start == self.end {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = std::str::from_utf8(&self.buf[self.start..head_end - 4])
            .map_err(|_| invalid("head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let mut msg = Message {
            start_line: lines.next().unwrap_or("").to_owned(),
            ..Message::default()
        };
        for line in lines {
            if let Some((n, v)) = line.split_once(':') {
                msg.headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        self.start = head_end;
        let chunked = msg
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            self.read_chunked(&mut msg.body)?;
        } else if let Some(len) = msg.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            msg.body = self.take(len)?;
        } else if is_response && msg.status() >= 200 && msg.status() != 204 && msg.status() != 304 {
            msg.body = self.buf[self.start..self.end].to_vec();
            self.start = self.end;
            self.stream.read_to_end(&mut msg.body)?;
        }
        Ok(Some(msg))
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>) -> io::Result<()> {
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            body.extend_from_slice(&self.take(size)?);
            if !self.line()?.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf[self.start..self.end], b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.start..self.start + i]).into();
                self.start += i + 2;
                return Ok(line);
            }
            if self.end - self.start > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn take(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let buffered = (self.end - self.start).min(len);
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        if out.len() < len {
            out.resize(len, 0);
            self.stream.read_exact(&mut out[buffered..])?;
        }
        Ok(out)
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Reads until the peer closes the stream, discarding what comes.
    pub(crate) fn drain(&mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The request every HTTP variant gets: a POST of JSON to `/`, asking to close afterwards.
pub(crate) fn post_request(port: u16, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    struct Rw(Cursor<Vec<u8>>);
    impl Read for Rw {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // One byte at a time, to exercise every buffer boundary.
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }
    impl Write for Rw {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(bytes: &[u8]) -> Conn<Rw> {
        Conn::new(Rw(Cursor::new(bytes.to_vec())))
    }

    #[test]
    fn reads_keep_alive_requests_with_content_length() -> io::Result<()> {
        let mut c =
            conn(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n");
        let first = c.read_message(false)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        assert_eq!(first.method_path(), ("POST", "/a"));
        assert_eq!(first.body, b"abc");
        let second = c.read_message(false)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        assert_eq!(second.method_path(), ("GET", "/b"));
        assert!(second.body.is_empty());
        assert!(c.read_message(false)?.is_none());
        Ok(())
    }

    #[test]
    fn reads_chunked_response() -> io::Result<()> {
        let mut c = conn(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
        let res = c.read_message(true)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        assert_eq!(res.status(), 200);
        assert_eq!(res.body, b"abcde");
        Ok(())
    }

    #[test]
    fn reads_response_to_eof_without_length() -> io::Result<()> {
        let mut c = conn(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello");
        let res = c.read_message(true)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        assert_eq!(res.body, b"hello");
        Ok(())
    }
}
