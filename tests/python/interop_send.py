# Sends one message per line of a JSON array on argv[2] with Python Dramatiq, through the broker
# interop_actors.py configures: python3 interop_send.py ACTOR '[{"args": [1], "delay": 100,
# "options": {"broker_priority": 5}}, ...]'. Prints the message ids, one per line.
import json
import sys

import interop_actors

actor_name = sys.argv[1]
actor = interop_actors.broker.get_actor(actor_name)
for spec in json.loads(sys.argv[2]):
    message = actor.send_with_options(
        args=tuple(spec.get("args", [])),
        kwargs=spec.get("kwargs", {}),
        delay=spec.get("delay"),
        **spec.get("options", {}),
    )
    print(message.message_id, flush=True)
interop_actors.broker.close()
