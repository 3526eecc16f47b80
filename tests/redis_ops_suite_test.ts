// The shared operation suites (tests/_ops_suite.ts, tests/_ops_worker_suite.ts) on the
// RedisBroker, against the shared redis-server; one namespace per test, its keys deleted after.
//   deno test -A tests/redis_ops_suite_test.ts        bun test tests/redis_ops_suite_test.ts
import { RedisBroker } from "../broker/redis/broker.ts";
import { opsSuite } from "./_ops_suite.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

opsSuite("RedisBroker", () => {
  const namespace = randomNamespace("ops");
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  const close = broker.close.bind(broker);
  broker.close = async () => {
    await close();
    await deleteKeys(`${namespace}:`);
  };
  return broker;
});
