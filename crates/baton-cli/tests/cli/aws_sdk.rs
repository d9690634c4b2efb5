//! The AWS SDK for Rust (`aws-sdk-sqs`) against the real `baton` binary: the basic flow an
//! application runs, unchanged but for the endpoint; and, on a server with keys, the SDK's own
//! SigV4 signer with the SQS credentials `baton key create --sqs` printed.

use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

use aws_sdk_sqs::error::ProvideErrorMetadata;

use crate::common::{baton, temp_dir, Server};

fn client(endpoint: &str, id: &str, secret: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("sa-east-1"))
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

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

#[tokio::test]
async fn the_aws_sdk_for_rust_signs_with_a_keys_sqs_credentials() {
    let dir = temp_dir("sdk-sigv4");
    let dir_arg = dir.to_str().unwrap();
    let created = baton(
        &[
            "key",
            "create",
            "--data-dir",
            dir_arg,
            "--name",
            "worker",
            "--allow",
            "send,receive,manage:queue:sdk-*",
            "--sqs",
        ],
        "",
    )
    .assert_success()
    .json();
    let id = created["access_key_id"].as_str().unwrap().to_string();
    let secret = created["secret_access_key"].as_str().unwrap().to_string();
    assert!(id.starts_with("BKIA") && id.len() == 20, "{created}");
    let server = Server::start_in(&dir, &[], &[]);
    let signed = client(&server.url, &id, &secret);
    let mut created = None;
    for _ in 0..100 {
        if let Ok(output) = signed.create_queue().queue_name("sdk-signed").send().await {
            created = Some(output);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = created.unwrap().queue_url.unwrap();
    signed
        .send_message()
        .queue_url(&url)
        .message_body("signed by aws-sigv4")
        .send()
        .await
        .unwrap();
    let received = signed
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap();
    assert_eq!(messages[0].body.as_deref(), Some("signed by aws-sigv4"));

    let wrong = client(&server.url, &id, &"w".repeat(40));
    let error = wrong.list_queues().send().await.unwrap_err();
    assert_eq!(
        error.into_service_error().code(),
        Some("SignatureDoesNotMatch")
    );
    let denied = signed
        .create_queue()
        .queue_name("elsewhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied.into_service_error().code(), Some("AccessDenied"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
