//! The server's fuzz targets' checks (`fuzz/src/server.rs`) in the normal test suite: their
//! seed corpus and kept crash inputs replayed, and the seeds made here — SQS requests as the
//! AWS SDKs encode them (query: form parameters; JSON 1.0: target and body), native API bodies
//! and filter policies as docs/api.md shows them (`BATON_WRITE_FUZZ_SEEDS=1 cargo test -p
//! baton-server --test it fuzz_seeds` rewrites `fuzz/corpus/`).

#[path = "../../../../fuzz/src/server.rs"]
mod checks;
#[path = "../../../../fuzz/src/replay.rs"]
mod replay;

const URL: &str = "http://localhost:8080/000000000000/orders";

fn form(params: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

fn json(target: &str, body: &str) -> Vec<u8> {
    format!("AmazonSQS.{target}\n{body}").into_bytes()
}

fn native(selector: u8, body: &str) -> Vec<u8> {
    let mut input = vec![selector];
    input.extend_from_slice(body.as_bytes());
    input
}

fn filter(policy: &str, attributes: &str) -> Vec<u8> {
    format!("{policy}\0{attributes}").into_bytes()
}

#[test]
fn fuzz_seeds_are_requests_as_clients_send_them() {
    let query = [
        (
            "send",
            form(&[
                ("Action", "SendMessage"),
                ("Version", "2012-11-05"),
                ("QueueUrl", URL),
                ("MessageBody", "{\"order\":42}"),
                ("DelaySeconds", "5"),
                ("MessageAttribute.1.Name", "kind"),
                ("MessageAttribute.1.Value.DataType", "String"),
                ("MessageAttribute.1.Value.StringValue", "gift"),
                ("MessageAttribute.2.Name", "blob"),
                ("MessageAttribute.2.Value.DataType", "Binary"),
                ("MessageAttribute.2.Value.BinaryValue", "AAEC"),
                ("MessageSystemAttribute.1.Name", "AWSTraceHeader"),
                ("MessageSystemAttribute.1.Value.DataType", "String"),
                ("MessageSystemAttribute.1.Value.StringValue", "Root=1-5759e988-bd862e3fe1be46a994272793"),
            ]),
        ),
        (
            "send-batch",
            form(&[
                ("Action", "SendMessageBatch"),
                ("QueueUrl", URL),
                ("SendMessageBatchRequestEntry.1.Id", "a"),
                ("SendMessageBatchRequestEntry.1.MessageBody", "first"),
                ("SendMessageBatchRequestEntry.1.MessageGroupId", "g-1"),
                ("SendMessageBatchRequestEntry.2.Id", "b"),
                ("SendMessageBatchRequestEntry.2.MessageBody", "second"),
                ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Name", "n"),
                ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType", "Number"),
                ("SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue", "12.5"),
            ]),
        ),
        (
            "receive",
            form(&[
                ("Action", "ReceiveMessage"),
                ("QueueUrl", URL),
                ("MaxNumberOfMessages", "10"),
                ("WaitTimeSeconds", "20"),
                ("AttributeName.1", "All"),
                ("MessageAttributeName.1", "All"),
            ]),
        ),
        (
            "create",
            form(&[
                ("Action", "CreateQueue"),
                ("QueueName", "orders.fifo"),
                ("Attribute.1.Name", "FifoQueue"),
                ("Attribute.1.Value", "true"),
                ("Attribute.2.Name", "RedrivePolicy"),
                ("Attribute.2.Value", "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq.fifo\",\"maxReceiveCount\":\"3\"}"),
                ("Tag.1.Key", "team"),
                ("Tag.1.Value", "core"),
            ]),
        ),
        (
            "delete-batch",
            form(&[
                ("Action", "DeleteMessageBatch"),
                ("QueueUrl", URL),
                ("DeleteMessageBatchRequestEntry.1.Id", "a"),
                ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", "AAAAAAAAAAEAAAAB"),
            ]),
        ),
        ("url-query", b"Action=ListQueues&QueueNamePrefix=or\0".to_vec()),
    ];
    replay::seeds("sqs_query", checks::sqs_query, &query);

    let sqs_json = [
        (
            "send",
            json(
                "SendMessage",
                r#"{"QueueUrl":"http://localhost:8080/000000000000/orders","MessageBody":"{\"order\":42}","DelaySeconds":5,"MessageAttributes":{"kind":{"DataType":"String","StringValue":"gift"},"blob":{"DataType":"Binary","BinaryValue":"AAEC"}}}"#,
            ),
        ),
        (
            "send-batch",
            json(
                "SendMessageBatch",
                r#"{"QueueUrl":"http://localhost:8080/000000000000/orders.fifo","Entries":[{"Id":"a","MessageBody":"first","MessageGroupId":"g","MessageDeduplicationId":"d"},{"Id":"b","MessageBody":"second","MessageGroupId":"g"}]}"#,
            ),
        ),
        (
            "receive",
            json(
                "ReceiveMessage",
                r#"{"QueueUrl":"http://localhost:8080/000000000000/orders","MaxNumberOfMessages":10,"WaitTimeSeconds":20,"MessageSystemAttributeNames":["All"]}"#,
            ),
        ),
        ("list", json("ListQueues", "")),
    ];
    replay::seeds("sqs_json", checks::sqs_json, &sqs_json);

    let bodies = [
        (
            "send",
            native(
                0,
                r#"{"messages":[{"body":"hello"},{"body":"{\"order\":42}","attributes":{"kind":"gift","n":{"data_type":"Number","value":"12.5"}},"group_id":"g-1","dedup_id":"d-1","delay_ms":500}]}"#,
            ),
        ),
        (
            "receive",
            native(
                1,
                r#"{"max":10,"wait_ms":20000,"visibility_timeout_ms":30000}"#,
            ),
        ),
        ("ack", native(2, r#"{"receipts":["AAAAAAAAAAEAAAAB"]}"#)),
        (
            "nack",
            native(3, r#"{"receipts":["AAAAAAAAAAEAAAAB"],"delay_ms":1000}"#),
        ),
        (
            "create",
            native(
                4,
                r#"{"fifo":true,"visibility_timeout_ms":30000,"dead_letter":{"queue":"dlq","max_receive_count":3}}"#,
            ),
        ),
        (
            "subscribe",
            native(
                8,
                r#"{"target":{"queue":"eu-orders"},"pattern":"order.eu.*","filter":{"kind":["gift",{"prefix":"g"}],"amount":[{"numeric":[">",0,"<=",100]}]}}"#,
            ),
        ),
        (
            "publish",
            native(
                7,
                r#"{"messages":[{"body":"hi","routing_key":"order.eu.created"}]}"#,
            ),
        ),
    ];
    replay::seeds("native_json", checks::native_json, &bodies);

    let filters = [
        (
            "exact-and-numeric",
            filter(
                r#"{"kind":["gift","sale"],"amount":[{"numeric":[">=",10,"<",100]}]}"#,
                r#"{"kind":"gift","amount":{"data_type":"Number","value":"42"}}"#,
            ),
        ),
        (
            "anything-but",
            filter(
                r#"{"region":[{"anything-but":["eu",7]}],"env":[{"anything-but":{"prefix":"test"}}]}"#,
                r#"{"region":"us","env":"prod"}"#,
            ),
        ),
        (
            "exists",
            filter(
                r#"{"trace":[{"exists":false}],"kind":[{"exists":true}]}"#,
                r#"{"kind":"x"}"#,
            ),
        ),
        (
            "prefix",
            filter(r#"{"kind":[{"prefix":"gi"}]}"#, r#"{"kind":"gift"}"#),
        ),
    ];
    replay::seeds("topic_filter", checks::topic_filter, &filters);
}

#[test]
fn fuzz_corpus_and_regressions_pass_their_checks() {
    for (target, check) in [
        ("sqs_query", checks::sqs_query as fn(&[u8])),
        ("sqs_json", checks::sqs_json),
        ("native_json", checks::native_json),
        ("topic_filter", checks::topic_filter),
    ] {
        replay::replay(target, check);
    }
}
