//! SQS errors, with the codes and statuses of the SQS API reference in both protocols: the
//! JSON protocol answers `{"__type": "com.amazonaws.sqs#<Name>", "message"}` plus the
//! `x-amzn-query-error: <query code>;Sender` header; the query protocol an XML
//! `ErrorResponse` carrying the query code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use baton_core::{QueueError, ReceiptError};
use baton_engine::EngineError;

use super::protocol::{escape, Protocol, XML_NAMESPACE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsError {
    /// The JSON protocol's error name (`QueueDoesNotExist`).
    pub name: &'static str,
    /// The query protocol's code (`AWS.SimpleQueueService.NonExistentQueue`).
    pub query_code: &'static str,
    pub status: StatusCode,
    /// Sender (the caller's fault) or Receiver (ours).
    pub sender: bool,
    pub message: String,
}

macro_rules! errors {
    ($($fn:ident => $name:literal, $query:literal, $status:expr;)*) => {
        impl SqsError {
            $(pub fn $fn(message: impl Into<String>) -> Self {
                SqsError { name: $name, query_code: $query, status: $status, sender: true, message: message.into() }
            })*
        }
    };
}

errors! {
    queue_does_not_exist => "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", StatusCode::BAD_REQUEST;
    queue_name_exists => "QueueNameExists", "QueueAlreadyExists", StatusCode::BAD_REQUEST;
    invalid_parameter_value => "InvalidParameterValue", "InvalidParameterValue", StatusCode::BAD_REQUEST;
    missing_parameter => "MissingParameter", "MissingParameter", StatusCode::BAD_REQUEST;
    invalid_attribute_name => "InvalidAttributeName", "InvalidAttributeName", StatusCode::BAD_REQUEST;
    invalid_attribute_value => "InvalidAttributeValue", "InvalidAttributeValue", StatusCode::BAD_REQUEST;
    receipt_handle_is_invalid => "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", StatusCode::BAD_REQUEST;
    message_not_inflight => "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", StatusCode::BAD_REQUEST;
    batch_entry_ids_not_distinct => "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", StatusCode::BAD_REQUEST;
    too_many_entries_in_batch_request => "TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", StatusCode::BAD_REQUEST;
    empty_batch_request => "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", StatusCode::BAD_REQUEST;
    invalid_batch_entry_id => "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", StatusCode::BAD_REQUEST;
    batch_request_too_long => "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", StatusCode::BAD_REQUEST;
    purge_queue_in_progress => "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", StatusCode::BAD_REQUEST;
    over_limit => "OverLimit", "OverLimit", StatusCode::BAD_REQUEST;
    invalid_message_contents => "InvalidMessageContents", "InvalidMessageContents", StatusCode::BAD_REQUEST;
    invalid_action => "InvalidAction", "InvalidAction", StatusCode::BAD_REQUEST;
    unsupported_operation => "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", StatusCode::BAD_REQUEST;
    resource_not_found => "ResourceNotFoundException", "ResourceNotFoundException", StatusCode::BAD_REQUEST;
    access_denied => "AccessDenied", "AccessDenied", StatusCode::FORBIDDEN;
    // Signature Version 4 (SQS API Reference, "Common Errors"; `ExpiredToken` as AWS answers
    // a request made with expired credentials).
    missing_authentication_token => "MissingAuthenticationToken", "MissingAuthenticationToken", StatusCode::FORBIDDEN;
    incomplete_signature => "IncompleteSignature", "IncompleteSignature", StatusCode::BAD_REQUEST;
    invalid_client_token_id => "InvalidClientTokenId", "InvalidClientTokenId", StatusCode::FORBIDDEN;
    signature_does_not_match => "SignatureDoesNotMatch", "SignatureDoesNotMatch", StatusCode::FORBIDDEN;
    request_expired => "RequestExpired", "RequestExpired", StatusCode::BAD_REQUEST;
    expired_token => "ExpiredToken", "ExpiredToken", StatusCode::FORBIDDEN;
    // A Baton rate limit: the SDKs retry `RequestThrottled` and 429 with backoff.
    request_throttled => "RequestThrottled", "RequestThrottled", StatusCode::TOO_MANY_REQUESTS;
}

impl SqsError {
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        SqsError {
            name: "ServiceUnavailable",
            query_code: "ServiceUnavailable",
            status: StatusCode::SERVICE_UNAVAILABLE,
            sender: false,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SqsError {
            name: "InternalError",
            query_code: "InternalError",
            status: StatusCode::INTERNAL_SERVER_ERROR,
            sender: false,
            message: message.into(),
        }
    }

    pub fn render(&self, protocol: Protocol, request_id: &str) -> Response {
        let kind = if self.sender { "Sender" } else { "Receiver" };
        match protocol {
            Protocol::Json => {
                let body = serde_json::json!({
                    "__type": format!("com.amazonaws.sqs#{}", self.name),
                    "message": self.message,
                });
                let mut response = (self.status, axum::Json(body)).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    "content-type",
                    HeaderValue::from_static("application/x-amz-json-1.0"),
                );
                if let Ok(value) = HeaderValue::from_str(&format!("{};{kind}", self.query_code)) {
                    headers.insert("x-amzn-query-error", value);
                }
                if let Ok(value) = HeaderValue::from_str(request_id) {
                    headers.insert("x-amzn-requestid", value);
                }
                response
            }
            Protocol::Query => {
                let body = format!(
                    "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    self.query_code,
                    escape(&self.message)
                );
                (self.status, [("content-type", "text/xml")], body).into_response()
            }
        }
    }
}

impl From<EngineError> for SqsError {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        match error {
            EngineError::QueueNotFound { .. } => {
                SqsError::queue_does_not_exist("The specified queue does not exist.")
            }
            EngineError::QueueExists { .. } => SqsError::queue_name_exists(message),
            EngineError::QueueInUse { .. } => SqsError::invalid_parameter_value(message),
            EngineError::MetaConflict { .. } => SqsError::internal(message),
            EngineError::DeadLetterQueueInvalid { .. } => SqsError::invalid_attribute_value(message),
            EngineError::MessageNotFound { .. } => SqsError::invalid_parameter_value(message),
            EngineError::TooManyWaiters { .. } => SqsError::over_limit(message),
            EngineError::NotReady
            | EngineError::StorageUnavailable { .. }
            | EngineError::OutcomeUnknown { .. }
            | EngineError::DiskLow { .. }
            | EngineError::DiskFull { .. }
            | EngineError::MemoryPressure { .. }
            | EngineError::NotOnEngine { .. } => SqsError::service_unavailable(message),
            EngineError::BatchTooLarge { .. } => SqsError::invalid_parameter_value(message),
            EngineError::Receipt(ReceiptError::Invalid) => {
                SqsError::receipt_handle_is_invalid("The input receipt handle is invalid.")
            }
            EngineError::Receipt(ReceiptError::Stale) => SqsError::message_not_inflight(
                "The message referred to isn't in flight.",
            ),
            EngineError::Queue(queue) => match queue {
                QueueError::InvalidName { .. } => SqsError::invalid_parameter_value(message),
                QueueError::InvalidParameter { .. } => SqsError::invalid_parameter_value(message),
                QueueError::MessageTooLarge { max_bytes, .. } => SqsError::invalid_parameter_value(format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {max_bytes} bytes."
                )),
                QueueError::GroupIdRequired { .. } => SqsError::missing_parameter(
                    "The request must contain the parameter MessageGroupId.",
                ),
                QueueError::DedupIdRequired { .. } => SqsError::invalid_parameter_value(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ),
                QueueError::QueueFull { .. } => SqsError::over_limit(message),
                QueueError::TooManyInFlight { .. } => SqsError::over_limit(message),
            },
        }
    }
}
