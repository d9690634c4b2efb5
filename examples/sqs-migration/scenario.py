"""Unchanged SQS programs moved from Amazon SQS to Baton by their endpoint URL only.

Runs ``order_processor.py`` (boto3) and ``rust/order_processor.rs`` (the AWS SDK for Rust),
each in its own process against a fresh Baton, with nothing but the standard AWS environment
variables set (``AWS_ENDPOINT_URL`` pointing at Baton), then checks what each printed and what
Baton holds afterwards through its own API and CLI: a queue is one queue whichever API
created it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import Baton, check, run_example, step, summary

HERE = Path(__file__).resolve().parent


def aws_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "example",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_DEFAULT_REGION": "eu-west-1",
    })
    return env


def run_program(name: str, command: list[str]) -> dict:
    with Baton() as baton:
        step(f"{name} with AWS_ENDPOINT_URL={baton.url}")
        done = subprocess.run(command, env=aws_env(baton.url), capture_output=True, text=True, timeout=60)
        check(done.returncode == 0, f"{name} failed: {done.stderr[-2000:]}")
        seen = json.loads(done.stdout)
        base = f"{baton.url}/000000000000/"
        check(seen["queues"] == [base + q for q in ("orders", "orders-dlq", "payments.fifo")], f"queues: {seen['queues']}")
        check(seen["sent"] == 11, f"11 orders sent: {seen}")
        check(seen["processed"] == list(range(1, 11)) and seen["total"] == 550, f"every good order processed once: {seen}")
        check(seen["poison_receives"] == 2, f"the poison message was received maxReceiveCount=2 times: {seen}")
        check(seen["dead_letters"] == [{"order": 666, "poison": True}], f"and then dead-lettered: {seen}")
        check(seen["payments_in_order"] == ["open account-7", "debit 30", "credit 5", "close account-7"],
              f"payments in order, the duplicate dropped: {seen['payments_in_order']}")

        step("the same queues through Baton's native API and CLI")
        orders = baton.ok("GET", "/v1/queues/orders")
        check(orders["stats"]["acked_total"] == 10 and orders["stats"]["dead_lettered_total"] == 1, f"orders: {orders['stats']}")
        check(orders["attributes"]["dead_letter"] == {"queue": "orders-dlq", "max_receive_count": 2}, f"{orders['attributes']}")
        payments = baton.ok("GET", "/v1/queues/payments.fifo")["stats"]
        check(payments["duplicates_total"] == 1 and payments["acked_total"] == 4, f"payments.fifo: {payments}")
        listed = [q["name"] for q in baton.cli_json("queue", "list")["queues"]]
        check(listed == ["orders", "orders-dlq", "payments.fifo"], f"`baton queue list`: {listed}")
        seen["native"] = orders["stats"]
        return seen


def main() -> None:
    python = run_program("order_processor.py (boto3)", [sys.executable, str(HERE / "order_processor.py")])
    rust = run_program("sqs-order-processor (aws-sdk-rust)", [os.environ["SQS_RUST_EXAMPLE_BIN"]])
    lines = []
    for name, seen in (("boto3", python), ("aws-sdk-rust", rust)):
        lines += [
            f"{name}: unchanged SQS code, only AWS_ENDPOINT_URL points at Baton",
            f"  {seen['sent']} orders sent, {len(seen['processed'])} processed (total {seen['total']}), "
            f"1 poison message dead-lettered after {seen['poison_receives']} receives",
            f"  payments.fifo: {len(seen['payments_in_order'])} steps in order, 1 duplicate dropped; "
            f"native API: orders acked {seen['native']['acked_total']}, dead-lettered {seen['native']['dead_lettered_total']}",
        ]
    summary(lines)


if __name__ == "__main__":
    run_example("sqs-migration", main)
