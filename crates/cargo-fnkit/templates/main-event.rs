//! `{{name}}`: a CloudEvent fnkit function. Replies to each event with its `data` and `subject`,
//! from this function's `source`, with `type` = the incoming type + `.reply`.

use fnkit::cloudevents::{AttributesReader, AttributesWriter, EventBuilder};
use fnkit::{Context, Error, Event};

async fn handle(mut event: Event, ctx: Context) -> Result<Option<Event>, Error> {
    let mut reply = ctx
        .reply_to(&event)
        .build()
        .map_err(|e| Error::internal(e.to_string()))?;
    reply.set_subject(event.subject());
    let (content_type, _schema, data) = event.take_data();
    if let Some(data) = data {
        reply.set_data(
            content_type.unwrap_or_else(|| "application/json".to_owned()),
            data,
        );
    }
    Ok(Some(reply))
}

fn main() -> Result<(), Error> {
    fnkit::run(fnkit::events(handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit::cloudevents::{Data, EventBuilderV10};
    use std::sync::Arc;

    #[test]
    fn replies_with_the_data_and_a_reply_type() {
        let event = EventBuilderV10::new()
            .id("1")
            .source("urn:test")
            .ty("com.example.order.created")
            .subject("order-7")
            .data("application/json", serde_json::json!({ "id": 7 }))
            .build()
            .expect("an event");
        let info = fnkit::FunctionInfo::from_lookup(fnkit::Platform::Local, |_| None);
        let ctx = Context::new(Arc::new(info), "test-request");
        let rt = fnkit::tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let reply = rt
            .block_on(handle(event, ctx))
            .expect("an answer")
            .expect("a reply event");
        assert_eq!(reply.ty(), "com.example.order.created.reply");
        assert_eq!(reply.subject(), Some("order-7"));
        assert_eq!(reply.data(), Some(&Data::Json(serde_json::json!({ "id": 7 }))));
    }
}
