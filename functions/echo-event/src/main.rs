//! `echo-event`: a CloudEvent function. Replies with the incoming event's `data`,
//! `datacontenttype` and `subject`, from this function's `source`, with `type` = incoming + `.reply`.
//! `Context::reply_to` gives the reply the distributed-tracing extension: a `traceparent` in the
//! invocation's trace (from the request headers, the event's extension or X-Ray, whichever fnkit
//! found valid) naming this invocation's span as the parent.
//!
//! To show how errors map to statuses a broker understands, an event with the extension
//! `fail=transient` fails with a retryable 500 and `fail=permanent` with a final 422. The
//! extension `reply=none` makes it answer with no event (202 over HTTP, `null` on Lambda), and
//! `reply=invalid` with an event whose extension name breaks the spec, which fnkit refuses to
//! send (500 `InternalError`) on every platform.

use fnkit::cloudevents::{AttributesReader, AttributesWriter, EventBuilder};
use fnkit::{Context, Error, Event};

async fn echo(mut event: Event, ctx: Context) -> Result<Option<Event>, Error> {
    match event.extension("fail").map(ToString::to_string).as_deref() {
        Some("transient") => return Err(Error::handler("asked to fail (transient)")),
        Some("permanent") => return Err(Error::rejected("asked to fail (permanent)")),
        _ => {}
    }
    let reply_mode = event.extension("reply").map(ToString::to_string);
    if reply_mode.as_deref() == Some("none") {
        return Ok(None);
    }
    let mut reply = ctx
        .reply_to(&event)
        .build()
        .map_err(|e| Error::internal(e.to_string()))?;
    reply.set_subject(event.subject());
    if reply_mode.as_deref() == Some("invalid") {
        reply.set_extension("Not_Valid", "x");
    }
    let (content_type, schema, data) = event.take_data();
    if let Some(data) = data {
        reply.set_data(
            content_type.unwrap_or_else(|| "application/json".to_owned()),
            data,
        );
        reply.set_dataschema(schema);
    }
    Ok(Some(reply))
}

fn main() -> Result<(), Error> {
    fnkit::run(fnkit::events(echo))
}
