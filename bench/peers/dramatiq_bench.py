# Python Dramatiq 2.2 on RabbitMQ, measured the way bench/rabbitmq.ts measures dramatis (which
# runs this with /usr/bin/python3 and PYTHONPATH = the extracted Dramatiq + bench/peers):
#   python3 dramatiq_bench.py enqueue <n> <confirm 0|1>   -> {"rate": messages/s}
#   python3 -m dramatiq dramatiq_bench -p 2 -t 8          (the drain: counts go to BENCH_OUT)
# Environment: BENCH_URL (amqp URL), BENCH_QUEUE, BENCH_OUT.
import json
import os
import sys
import threading
import time

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

confirm = len(sys.argv) > 3 and sys.argv[3] == "1"
broker = RabbitmqBroker(url=os.environ["BENCH_URL"], confirm_delivery=confirm)
dramatiq.set_broker(broker)
queue = os.environ.get("BENCH_QUEUE", "default")
out = os.environ.get("BENCH_OUT", os.devnull)

count = 0
lock = threading.Lock()
reporter = None


def report():
    reported = 0
    while True:
        time.sleep(0.02)
        with lock:
            n = count
        if n > reported:
            with open(out, "a") as f:
                f.write(f"{n - reported}\n")
            reported = n


@dramatiq.actor(queue_name=queue, max_retries=0)
def noop():
    global count, reporter
    with lock:
        count += 1
        if reporter is None:
            with open(out, "a") as f:
                f.write(f"start {int(time.time() * 1000)}\n")
            reporter = threading.Thread(target=report, daemon=True)
            reporter.start()


if __name__ == "__main__" and sys.argv[1] == "enqueue":
    n = int(sys.argv[2])
    for _ in range(500):  # warm-up: connection, declarations
        noop.send()
    t0 = time.perf_counter()
    for _ in range(n):
        noop.send()
    rate = n / (time.perf_counter() - t0)
    broker.close()
    print(json.dumps({"rate": rate}))
