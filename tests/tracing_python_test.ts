// The trace context crosses Python Dramatiq: sent by dramatis on Redis, run (and failed) by a
// Python worker whose Retries enqueues the retry, then retried by a dramatis worker whose process
// span still links to the first send.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actor, RedisBroker } from "../mod.ts";
import { Tracing } from "../telemetry/mod.ts";
import { RecordingTracer } from "./_tracer.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { drainWith } from "./_helpers.ts";

// The Python Dramatiq peer: ../shared/peers beside the project root (peers/README.md), or
// /work/shared/peers when the project is a worktree elsewhere.
const PEER_FILE = "dramatiq-2.2.0.tar.gz";
const PEER = [
  new URL(`../../shared/peers/${PEER_FILE}`, import.meta.url).pathname,
  `/work/shared/peers/${PEER_FILE}`,
].find((p) => existsSync(p));

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => stdout += d);
    child.stderr.on("data", (d) => stderr += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("Tracing: the trace context survives a retry by a Python Dramatiq worker", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "dramatis-py-"));
  const ns = randomNamespace("trpy");
  const queue = `hop_${ns}`;
  const tracer = new RecordingTracer();
  const broker = new RedisBroker({ url: SHARED_URL, namespace: ns });
  broker.addMiddleware(new Tracing({ tracer }));
  try {
    assert.ok(PEER, `${PEER_FILE} not found in ../shared/peers or /work/shared/peers`);
    const untar = await run("tar", ["xzf", PEER, "-C", tmp]);
    assert.equal(untar.code, 0, untar.stderr);
    const hop = actor(function hop(_n: number) {}, { broker, queueName: queue });
    const sent = await hop.send(1);

    const script = new URL("./python/tracing_retry.py", import.meta.url).pathname;
    const py = await run("/usr/bin/python3", [script, ns, queue], {
      PYTHONPATH: join(tmp, "dramatiq-2.2.0"),
    });
    assert.equal(py.code, 0, py.stderr);
    const seenByPython = JSON.parse(py.stdout.trim().split("\n")[0]);
    assert.deepEqual(seenByPython.trace_ctx, sent.options.trace_ctx);

    await drainWith(broker, queue, { timeout: 30_000 });
    const send = tracer.spans.find((s) => s.name === `send ${queue}`)!;
    const procs = tracer.spans.filter((s) => s.name === `process ${queue}`);
    assert.equal(procs.length, 1, "the retry ran here");
    assert.equal(procs[0].attributes["dramatis.message.retries"], 1, "it is Python's retry");
    assert.equal(procs[0].attributes["messaging.system"], "dramatiq");
    assert.deepEqual(procs[0].links, [{ traceId: send.traceId, spanId: send.spanId }]);
    assert.equal(procs[0].attributes["dramatis.outcome"], "success");
  } finally {
    await broker.close();
    await deleteKeys(`${ns}:`);
    rmSync(tmp, { recursive: true, force: true });
  }
});
