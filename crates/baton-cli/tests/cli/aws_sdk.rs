//! The AWS SDK for Rust (`aws-sdk-sqs`) against the real `baton` binary: the basic flow an
//! application runs, unchanged but for the endpoint.

use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

use crate::common::Server;

#[tokio::test]
async fn the_aws_sdk_for_rust_runs_the_basic_flow() {
    let server = Server::start();
    let endpoint = server.url.clone();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("any", "any", None, None, "test"))
        .build();
    let client = aws_sdk_sqs::Client::from_conf(config);
    // The broker may still be recovering: retry the first call briefly.
    let mut created = None;
    for _ in 0..100 {
        if let Ok(output) = client.create_queue().queue_name("sdk-jobs").send().await {
            created = Some(output);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = created.unwrap().queue_url.unwrap();
    assert!(url.ends_with("/000000000000/sdk-jobs"), "{url}");

    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body("hello from rust")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("greeting")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        sent.md5_of_message_body.as_deref(),
        Some("c2d91083db45a033f3a16b252cf8394e")
    );
    assert!(sent.message_id.is_some());

    let received = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.body.as_deref(), Some("hello from rust"));
    assert_eq!(message.message_id, sent.message_id);
    let attributes = message.message_attributes.as_ref().unwrap();
    assert_eq!(attributes["kind"].string_value.as_deref(), Some("greeting"));

    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(message.receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attributes[&QueueAttributeName::ApproximateNumberOfMessages],
        "0"
    );
    assert_eq!(
        attributes[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0"
    );

    let error = client
        .get_queue_url()
        .queue_name("no-such-queue")
        .send()
        .await
        .unwrap_err();
    let service = error.into_service_error();
    assert!(service.is_queue_does_not_exist(), "{service:?}");

    client.delete_queue().queue_url(&url).send().await.unwrap();
}
