# Python Dramatiq actors for dramatis's interop tests (tests/_python.ts runs them with the real
# Dramatiq 2.2 from ../shared/peers). Configured by environment variables:
#   DRAMATIS_TEST_BROKER   "rabbitmq" or "redis"
#   DRAMATIS_TEST_URL      the broker URL
#   DRAMATIS_TEST_QUEUE    the queue every actor here uses
#   DRAMATIS_TEST_OUT      a file each run appends one JSON line to
#   DRAMATIS_TEST_MAX_PRIORITY, DRAMATIS_TEST_NAMESPACE   optional broker settings
import json
import os
import time

import dramatiq
from dramatiq.middleware import CurrentMessage

kind = os.environ["DRAMATIS_TEST_BROKER"]
url = os.environ["DRAMATIS_TEST_URL"]
queue = os.environ["DRAMATIS_TEST_QUEUE"]
out = os.environ.get("DRAMATIS_TEST_OUT", os.devnull)

if kind == "rabbitmq":
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    max_priority = os.environ.get("DRAMATIS_TEST_MAX_PRIORITY")
    broker = RabbitmqBroker(
        url=url,
        confirm_delivery=True,
        max_priority=int(max_priority) if max_priority else None,
    )
else:
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=os.environ.get("DRAMATIS_TEST_NAMESPACE", "dramatiq"))

broker.add_middleware(CurrentMessage())
dramatiq.set_broker(broker)


def record(actor, args, kwargs):
    message = CurrentMessage.get_current_message()
    line = {
        "side": "python",
        "actor": actor,
        "args": list(args),
        "kwargs": kwargs,
        "message_id": message.message_id,
        "options": message.options,
        "pid": os.getpid(),
        "t": time.time() * 1000,
    }
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")


@dramatiq.actor(queue_name=queue, max_retries=0)
def py_record(*args, **kwargs):
    record("py_record", args, kwargs)


@dramatiq.actor(queue_name=queue, max_retries=1, min_backoff=100, max_backoff=200)
def py_fail(*args, **kwargs):
    record("py_fail", args, kwargs)
    raise RuntimeError("py_fail always fails")


@dramatiq.actor(queue_name=queue, max_retries=0)
def py_slow(ms, *args, **kwargs):
    record("py_slow_start", (ms, *args), kwargs)
    time.sleep(ms / 1000)
    record("py_slow", (ms, *args), kwargs)


# Declared so that Python can send to the dramatis actors; never run by a Python worker here.
@dramatiq.actor(queue_name=queue, actor_name="ts_record")
def ts_record(*args, **kwargs):
    raise RuntimeError("ts_record is a dramatis actor: a Python worker must not run it")


@dramatiq.actor(queue_name=queue, actor_name="ts_slow")
def ts_slow(*args, **kwargs):
    raise RuntimeError("ts_slow is a dramatis actor: a Python worker must not run it")
