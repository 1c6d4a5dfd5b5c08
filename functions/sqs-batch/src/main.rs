//! `sqs-batch`: an SQS consumer with partial batch responses.
//!
//! Each message body is an order, `{"id": 7, "quantity": 2}`. A body that is not an order, or
//! an order with a quantity of zero, fails that record alone: the answer names it in
//! `batchItemFailures`, and Lambda returns only that message to the queue (the event source
//! mapping must have `FunctionResponseTypes: [ReportBatchItemFailures]`, as `sam/template.yaml`
//! sets).

use fnkit::lambda::sqs::{SqsEvent, SqsMessage};
use fnkit::lambda::BatchResponse;
use fnkit::{Context, Error};
use serde::Deserialize;

/// One message body.
#[derive(Debug, Deserialize)]
struct Order {
    id: u64,
    quantity: u32,
}

async fn process(message: SqsMessage) -> Result<(), String> {
    let body = message.body.as_deref().unwrap_or_default();
    let order: Order = serde_json::from_str(body).map_err(|e| format!("not an order: {e}"))?;
    if order.quantity == 0 {
        return Err(format!("order {} has no quantity", order.id));
    }
    Ok(())
}

async fn handle(event: SqsEvent, _ctx: Context) -> Result<BatchResponse, Error> {
    BatchResponse::process(event.records, process).await
}

fn main() -> Result<(), Error> {
    fnkit::run(handle)
}
