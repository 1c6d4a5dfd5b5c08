//! Partial batch responses for SQS, Kinesis and DynamoDB Streams (docs/platforms.md §2.9).
//!
//! Return a [`BatchResponse`] from a typed handler of a batch event, and Lambda retries only the
//! records it names, provided the event source mapping has
//! `FunctionResponseTypes: [ReportBatchItemFailures]`. [`BatchResponse::process`] runs a closure
//! on each record and collects the failures:
//!
//! ```
//! use fnkit_lambda::batch::{BatchRecord, BatchResponse};
//!
//! struct Msg { id: String, body: String }
//! impl BatchRecord for Msg {
//!     fn item_identifier(&self) -> Option<&str> { Some(&self.id) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let records = vec![
//!     Msg { id: "a".into(), body: "1".into() },
//!     Msg { id: "b".into(), body: "x".into() },
//! ];
//! let response = BatchResponse::process(records, |m| async move {
//!     m.body.parse::<u32>().map(drop).map_err(|e| e.to_string())
//! })
//! .await?;
//! assert_eq!(
//!     serde_json::to_string(&response)?,
//!     r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::future::Future;

use serde::{Deserialize, Serialize};

use fnkit_core::Error;

/// `{"batchItemFailures":[{"itemIdentifier":"..."}]}`: the records Lambda should retry. Empty
/// means the whole batch succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The failed records.
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One failed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The SQS `messageId`, or the Kinesis / DynamoDB sequence number, of the failed record.
    pub item_identifier: String,
}

/// A record of a batch event: it knows the identifier Lambda expects for it in
/// `batchItemFailures` (SQS `messageId`; Kinesis `kinesis.sequenceNumber`; DynamoDB
/// `dynamodb.SequenceNumber`).
pub trait BatchRecord {
    /// The record's identifier, if it has one.
    fn item_identifier(&self) -> Option<&str>;
}

impl BatchResponse {
    /// A response where every record succeeded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks one record as failed.
    pub fn fail(&mut self, item_identifier: impl Into<String>) {
        self.batch_item_failures.push(BatchItemFailure {
            item_identifier: item_identifier.into(),
        });
    }

    /// Whether every record succeeded.
    pub fn is_empty(&self) -> bool {
        self.batch_item_failures.is_empty()
    }

    /// Runs `f` on each record in order and names those it fails in the response. An error
    /// is logged (at `warn`, with the identifier) and does not stop the other records.
    ///
    /// # Errors
    /// A failed record without an identifier: Lambda would read an empty identifier as "the
    /// whole batch failed", so the handler error says that plainly and the batch is retried.
    pub async fn process<R, F, Fut, E>(
        records: impl IntoIterator<Item = R>,
        mut f: F,
    ) -> Result<Self, Error>
    where
        R: BatchRecord,
        F: FnMut(R) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut response = Self::new();
        for record in records {
            let id = record.item_identifier().map(str::to_owned);
            if let Err(e) = f(record).await {
                match id.filter(|id| !id.is_empty()) {
                    Some(id) => {
                        tracing::warn!(item_identifier = %id, "batch record failed: {e}");
                        response.fail(id);
                    }
                    None => {
                        return Err(Error::handler(format!(
                            "a batch record without an identifier failed ({e}); the whole batch will be retried"
                        )))
                    }
                }
            }
        }
        Ok(response)
    }
}

#[cfg(feature = "sqs")]
impl BatchRecord for aws_lambda_events::event::sqs::SqsMessage {
    fn item_identifier(&self) -> Option<&str> {
        self.message_id.as_deref()
    }
}

#[cfg(feature = "sqs")]
impl<T: serde::de::DeserializeOwned + Serialize> BatchRecord
    for aws_lambda_events::event::sqs::SqsMessageObj<T>
{
    fn item_identifier(&self) -> Option<&str> {
        self.message_id.as_deref()
    }
}

#[cfg(feature = "kinesis")]
impl BatchRecord for aws_lambda_events::event::kinesis::KinesisEventRecord {
    fn item_identifier(&self) -> Option<&str> {
        Some(&self.kinesis.sequence_number)
    }
}

#[cfg(feature = "dynamodb")]
impl BatchRecord for aws_lambda_events::event::dynamodb::EventRecord {
    fn item_identifier(&self) -> Option<&str> {
        self.change.sequence_number.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R(Option<&'static str>, bool);
    impl BatchRecord for R {
        fn item_identifier(&self) -> Option<&str> {
            self.0
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn check(r: R) -> Result<(), &'static str> {
        if r.1 {
            Ok(())
        } else {
            Err("bad")
        }
    }

    #[test]
    fn all_succeeded_is_an_empty_list() {
        // docs/conformance.md #22: `[]` when all succeed.
        let resp = block_on(BatchResponse::process([R(Some("a"), true)], check)).unwrap();
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
    }

    #[test]
    fn only_failed_records_are_named() {
        let resp = block_on(BatchResponse::process(
            [R(Some("a"), true), R(Some("b"), false), R(Some("c"), false)],
            check,
        ))
        .unwrap();
        let ids: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn a_failed_record_without_identifier_fails_the_batch() {
        let e = block_on(BatchResponse::process([R(None, false)], check)).unwrap_err();
        assert!(e.message().contains("whole batch"), "{e}");
    }

    #[cfg(feature = "kinesis")]
    #[test]
    fn kinesis_records_are_named_by_sequence_number() {
        // docs/conformance.md #23.
        let event: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_slice(include_bytes!("../tests/data/kinesis-event.json")).unwrap();
        let record = &event.records[0];
        assert_eq!(
            record.item_identifier(),
            Some(record.kinesis.sequence_number.as_str())
        );
        assert!(!record.kinesis.sequence_number.is_empty());
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn dynamodb_records_are_named_by_sequence_number() {
        // docs/conformance.md #23.
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_slice(include_bytes!("../tests/data/dynamodb-event.json")).unwrap();
        let record = &event.records[0];
        assert_eq!(
            record.item_identifier(),
            record.change.sequence_number.as_deref()
        );
        assert!(record.item_identifier().is_some());
    }

    #[cfg(feature = "sqs")]
    #[test]
    fn sqs_records_are_named_by_message_id() {
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_slice(include_bytes!("../tests/data/sqs-event.json")).unwrap();
        let record = &event.records[0];
        assert_eq!(record.item_identifier(), record.message_id.as_deref());
        assert!(record.item_identifier().is_some());
    }
}
