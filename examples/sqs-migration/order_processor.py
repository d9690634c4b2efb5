"""An order processor written for Amazon SQS with boto3 — nothing in it knows about Baton.

It is configured the way any boto3 program is, by the environment: credentials, the region,
and (to run against something other than AWS) ``AWS_ENDPOINT_URL``. It creates its queues
(a work queue with a dead-letter queue, a FIFO queue for payments), sends orders in a batch,
processes them with long polling, gives a poison message back until SQS dead-letters it,
handles a payment sequence in order with deduplication, and prints what it saw as JSON.
"""

import json

import boto3


def main() -> None:
    sqs = boto3.client("sqs")

    dlq_url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    orders_url = sqs.create_queue(
        QueueName="orders",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]

    entries = [
        {
            "Id": f"order-{n}",
            "MessageBody": json.dumps({"order": n, "total": 10 * n}),
            "MessageAttributes": {"customer": {"DataType": "String", "StringValue": f"customer-{n % 3}"}},
        }
        for n in range(1, 11)
    ]
    sent = sqs.send_message_batch(QueueUrl=orders_url, Entries=entries)
    sqs.send_message(QueueUrl=orders_url, MessageBody=json.dumps({"order": 666, "poison": True}))

    processed, total, poison_receives = [], 0, 0
    for _ in range(50):
        answer = sqs.receive_message(
            QueueUrl=orders_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            MessageAttributeNames=["All"], AttributeNames=["ApproximateReceiveCount"],
        )
        for message in answer.get("Messages", []):
            order = json.loads(message["Body"])
            if order.get("poison"):
                poison_receives += 1
                # Cannot process it: make it visible again at once; SQS dead-letters it after
                # maxReceiveCount receives.
                sqs.change_message_visibility(
                    QueueUrl=orders_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                continue
            assert message["MessageAttributes"]["customer"]["StringValue"] == f"customer-{order['order'] % 3}"
            processed.append(order["order"])
            total += order["total"]
            sqs.delete_message(QueueUrl=orders_url, ReceiptHandle=message["ReceiptHandle"])
        dead = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        if len(processed) == 10 and dead["Attributes"]["ApproximateNumberOfMessages"] == "1":
            break
    dead_letters = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]

    payments_url = sqs.create_queue(
        QueueName="payments.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    # A client retry sends "debit 30" twice: content-based deduplication keeps the first only.
    for step in ["open account-7", "debit 30", "debit 30", "credit 5", "close account-7"]:
        sqs.send_message(QueueUrl=payments_url, MessageBody=step, MessageGroupId="account-7")
    in_order = []
    for _ in range(20):
        answer = sqs.receive_message(QueueUrl=payments_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for message in messages:
            in_order.append(message["Body"])
            sqs.delete_message(QueueUrl=payments_url, ReceiptHandle=message["ReceiptHandle"])

    print(json.dumps({
        "queues": sorted(sqs.list_queues()["QueueUrls"]),
        "sent": len(sent["Successful"]) + 1,
        "processed": sorted(processed),
        "total": total,
        "poison_receives": poison_receives,
        "dead_letters": [json.loads(m["Body"]) for m in dead_letters],
        "payments_in_order": in_order,
    }))


if __name__ == "__main__":
    main()
