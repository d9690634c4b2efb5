"""The order worker: takes orders from the queue `orders`, processes them, acks them.

    order_worker.py <baton url> <processed log>

Appends `processed <n>` to the log for each order it finished (before the ack, so an order
whose ack was lost shows twice: at-least-once). Stops at SIGTERM after the order in hand.
"""

import json
import signal
import sys
import time
import urllib.request

url, log_path = sys.argv[1], sys.argv[2]
running = True


def stop(*_):
    global running
    running = False


def post(path: str, body: dict) -> dict:
    request = urllib.request.Request(url + path, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


signal.signal(signal.SIGTERM, stop)
with open(log_path, "a") as log:
    while running:
        try:
            messages = post("/v1/queues/orders/receive", {"max": 10, "wait_ms": 200})["messages"]
        except OSError:
            time.sleep(0.2)  # the broker is away; try again
            continue
        for message in messages:
            time.sleep(0.01)  # the work
            log.write(f"processed {message['body'].split()[1]}\n")
            log.flush()
            post("/v1/queues/orders/ack", {"receipts": [message["receipt"]]})
