# A Python Dramatiq worker for tests/tracing_python_test.ts:
#   tracing_retry.py <namespace> <queue>
# Runs actor "hop" once: it prints the message's options (trace_ctx included) as JSON and fails,
# so Python's Retries enqueues the retry on <queue>.DQ; then the worker stops, leaving the retry
# for a dramatis worker. Shows that Python Dramatiq keeps the trace context it does not know.
import json
import sys
import threading
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Retries

namespace, queue = sys.argv[1], sys.argv[2]
broker = RedisBroker(
    url="redis://127.0.0.1:6379/0",
    namespace=namespace,
    middleware=[CurrentMessage(), Retries(min_backoff=1500, max_backoff=1500)],
)
dramatiq.set_broker(broker)
ran = threading.Event()


@dramatiq.actor(queue_name=queue, actor_name="hop")
def hop(n):
    print(json.dumps(CurrentMessage.get_current_message().options), flush=True)
    ran.set()
    raise RuntimeError("the Python run fails once")


worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
worker.start()
if not ran.wait(30):
    sys.exit("the Python worker never ran the message")
time.sleep(0.5)  # Retries enqueues the retry after the actor returns
worker.stop()
broker.close()
