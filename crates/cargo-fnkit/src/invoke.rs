//! `cargo fnkit invoke`: sends an event to the function `cargo fnkit run` serves, in the shape of
//! the platform it emulates, and prints the answer.

use std::time::{Duration, Instant};

use crate::events::{json_post, sample, to_http};
use crate::http1::{send, Request};
use crate::{fail, say, InvokeArgs, Platform, Result};

/// How long `invoke` waits for an answer.
const WAIT: Duration = Duration::from_secs(300);

/// `cargo fnkit invoke`.
pub(crate) fn run(args: &InvokeArgs) -> Result<()> {
    let data = match (&args.data, &args.data_file) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f).map_err(|e| fail!("--data-file {}: {e}", f.display()))?,
        ),
        (None, None) => None,
    };
    let request = request(args.platform, args.event.as_deref(), data.as_deref())?;
    let addr = format!("127.0.0.1:{}", args.port);
    let response = send(&addr, &request, Some(Instant::now() + WAIT)).map_err(|e| {
        fail!(
            "no answer from {addr} ({e}); is `cargo fnkit run --as {}` running there?",
            args.platform.as_str()
        )
    })?;
    say!("HTTP {}", response.status);
    for (name, value) in &response.headers {
        let n = name.to_ascii_lowercase();
        if n == "content-type" || n.starts_with("ce-") || n == "x-amz-function-error" {
            say!("{n}: {value}");
        }
    }
    say!("{}", String::from_utf8_lossy(&response.body));
    Ok(())
}

/// The request `invoke` sends.
fn request(platform: Platform, event: Option<&str>, data: Option<&str>) -> Result<Request> {
    let payload = match (event, data) {
        (Some(name), data) => Some((name, sample(name, data)?)),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(fail!(
                "nothing to send: give --event NAME (a sample event), --data JSON or --data-file \
                 FILE"
            ))
        }
    };
    if platform == Platform::Lambda {
        let body = match (&payload, data) {
            (Some((_, event)), _) => event.to_string(),
            (None, Some(data)) => {
                serde_json::from_str::<serde_json::Value>(data)
                    .map_err(|e| fail!("a Lambda payload is JSON; --data is not: {e}"))?;
                data.to_owned()
            }
            (None, None) => unreachable!("checked above"),
        };
        let mut req = json_post(body.into_bytes());
        req.target = "/2015-03-31/functions/function/invocations".to_owned();
        return Ok(req);
    }
    match (payload, data) {
        (Some((name, event)), _) => to_http(name, &event),
        (None, Some(data)) => Ok(json_post(data.as_bytes().to_vec())),
        (None, None) => unreachable!("checked above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_lambda_the_event_is_the_invoke_api_s_payload() {
        let req = request(Platform::Lambda, Some("sqs"), Some("{\"x\":1}")).expect("a request");
        assert_eq!(req.target, "/2015-03-31/functions/function/invocations");
        let event: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON");
        assert_eq!(event["Records"][0]["body"], "{\"x\":1}");
        let req = request(Platform::Lambda, None, Some("{\"name\":\"Ada\"}")).expect("a request");
        assert_eq!(req.body, b"{\"name\":\"Ada\"}");
        let err = request(Platform::Lambda, None, Some("nope"))
            .expect_err("not JSON")
            .0;
        assert!(err.contains("a Lambda payload is JSON"), "{err}");
    }

    #[test]
    fn nothing_to_send_is_an_error_that_says_what_to_give() {
        let err = request(Platform::Local, None, None).expect_err("empty").0;
        assert!(err.contains("--event NAME"), "{err}");
    }

    #[test]
    fn data_alone_is_a_json_post_over_http() {
        let req = request(Platform::Knative, None, Some("{\"name\":\"Ada\"}")).expect("a request");
        assert_eq!((req.method.as_str(), req.target.as_str()), ("POST", "/"));
        assert_eq!(req.header("content-type"), Some("application/json"));
    }
}
