//! Streamed responses over HTTP (docs/platforms.md §4.3, §6): `http-echo`'s `/stream` writes
//! chunks from a task while the platform sends them, chunked over HTTP/1.1 and as data frames
//! over HTTP/2; a stream that fails ends the answer the way each protocol marks it incomplete.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fnkit_tests::FnProcess;

/// One chunk of a chunked body, and when it arrived.
struct Arrival {
    at: Duration,
    data: Vec<u8>,
}

/// Sends `GET path` over HTTP/1.1 and reads the chunked answer as it arrives: the chunks with
/// their arrival times, and whether the last (empty) chunk came.
fn get_chunked(f: &FnProcess, path: &str) -> (Vec<Arrival>, bool) {
    let mut s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sent = Instant::now();
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        assert!(!lower.starts_with("content-length"), "not streamed: {line}");
        if lower.starts_with("http/1.1") {
            assert!(lower.contains(" 200 "), "{line}");
        }
    }
    let mut chunks = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return (chunks, false); // cut short
        }
        let size = usize::from_str_radix(line.trim(), 16).expect("a chunk size line");
        if size == 0 {
            return (chunks, true);
        }
        let mut data = vec![0; size + 2];
        if r.read_exact(&mut data).is_err() {
            return (chunks, false);
        }
        data.truncate(size);
        chunks.push(Arrival {
            at: sent.elapsed(),
            data,
        });
    }
}

#[test]
fn a_streamed_response_arrives_chunk_by_chunk_before_it_is_finished() {
    let f = FnProcess::start("http-echo", &[]);
    let (chunks, complete) = get_chunked(&f, "/stream?chunks=4&ms=250");
    assert!(complete);
    let text: Vec<String> = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    assert_eq!(text.concat(), "chunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    // The first chunk was out before the handler wrote the last one (750 ms later).
    let first = chunks.first().unwrap().at;
    let last = chunks.last().unwrap().at;
    assert!(
        first < Duration::from_millis(200),
        "first chunk after {first:?}"
    );
    assert!(
        last >= Duration::from_millis(700),
        "last chunk after {last:?}"
    );
}

#[test]
fn a_failing_stream_is_cut_after_what_was_sent_over_http1() {
    let f = FnProcess::start("http-echo", &[]);
    let (chunks, complete) = get_chunked(&f, "/stream?chunks=5&ms=20&fail_after=2");
    assert!(
        !complete,
        "a failed stream must not end with the last chunk"
    );
    let text: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
    assert_eq!(text, b"chunk 1\nchunk 2\n");
    assert!(f
        .wait_for_log(
            "the stream was asked to fail after 2",
            Duration::from_secs(2)
        )
        .is_some());
    // The process goes on serving.
    let (_, complete) = get_chunked(&f, "/stream?chunks=1");
    assert!(complete);
}

#[test]
fn a_stream_over_http2_is_sent_as_data_frames_and_reset_on_failure() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let f = FnProcess::start("http-echo", &[("K_SERVICE", "http-echo")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(f.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let get = |path: &str| {
            http::Request::get(format!("http://{}{path}", f.addr))
                .body(Empty::<bytes::Bytes>::new())
                .unwrap()
        };
        let sent = Instant::now();
        let resp = sender
            .send_request(get("/stream?chunks=3&ms=250"))
            .await
            .unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let mut body = resp.into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            // The end of the stream may come as an empty DATA frame of its own.
            if !data.is_empty() {
                frames.push((sent.elapsed(), data));
            }
        }
        assert_eq!(frames.len(), 3);
        assert!(
            frames[0].0 < Duration::from_millis(200),
            "{:?}",
            frames[0].0
        );
        assert!(
            frames[2].0 >= Duration::from_millis(450),
            "{:?}",
            frames[2].0
        );

        let resp = sender
            .send_request(get("/stream?chunks=5&ms=20&fail_after=2"))
            .await
            .unwrap();
        let mut body = resp.into_body();
        let mut got = Vec::new();
        let failed = loop {
            match body.frame().await {
                Some(Ok(frame)) => got.extend_from_slice(&frame.into_data().unwrap()),
                Some(Err(e)) => break format!("{e} ({e:?})"),
                None => panic!("the failed stream ended cleanly"),
            }
        };
        assert_eq!(got, b"chunk 1\nchunk 2\n");
        // hyper reports the peer's RST_STREAM as a body read error caused by INTERNAL_ERROR.
        assert!(failed.contains("INTERNAL_ERROR"), "{failed}");
    });
}
