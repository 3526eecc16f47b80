// `dramatis schedules [MODULE...]`: the declared schedules with their cron, zone, policy, next
// tick and the last tick the broker stored; --json; schedules known only to the broker; a bad
// cron expression refused when the module is imported, naming the field and the value.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { brokerFromUrl, Cron, Message } from "../mod.ts";
import type { Row } from "../cli/schedules.ts";
import { cleanup, e2e, oneLine, root, runCli, setup } from "./_cli.ts";

test(
  "cli schedules: lists name, cron, zone, next and last tick; --json; broker-only ones",
  e2e,
  async () => {
    const e = setup("schedules.ts");
    try {
      const before = Date.now();
      let r = await runCli(e, ["schedules", e.tasks]);
      assert.equal(r.code, 0, r.out);
      const lines = r.stdout.trimEnd().split("\n");
      assert.match(lines[0]!, /^Schedules \(file broker at .*; times in UTC\):$/);
      assert.match(lines[1]!, /^name\s+cron\s+timezone\s+missed\s+actor\s+next\s+last$/);
      assert.match(
        lines[2]!,
        /^every-second\s+\* \* \* \* \* \*\s+UTC\s+skip\s+tick\s+\S+ \S+Z\s+never$/,
      );
      assert.match(lines[3]!, /^nightly-report\s+30 2 \* \* \*\s+Europe\/Berlin\s+once\s+tick\s+/);
      assert.equal(lines.length, 4);

      // A tick stored in the broker (as a worker process would): the last tick, and a schedule
      // the broker knows that the modules do not declare.
      const broker = brokerFromUrl(e.env.DRAMATIS_BROKER!);
      const tick = new Cron("* * * * * *").previous(before)!;
      const msg = (name: string) =>
        new Message({ queueName: "ticks", actorName: "tick", messageId: name });
      assert.equal(await broker.enqueueTick("every-second", tick, msg("a")), true);
      assert.equal(await broker.enqueueTick("retired", 1_700_000_000_000, msg("b")), true);
      await broker.close();

      r = await runCli(e, ["schedules", e.tasks, "--json"]);
      assert.equal(r.code, 0, r.out);
      const rows = JSON.parse(r.stdout) as Row[];
      assert.deepEqual(rows.map((x) => x.name), ["every-second", "nightly-report", "retired"]);
      const [every, nightly, retired] = rows as [Row, Row, Row];
      assert.deepEqual(
        { ...every, next: undefined },
        {
          name: "every-second",
          cron: "* * * * * *",
          timezone: "UTC",
          missed: "skip",
          actor: "tick",
          queue: "ticks",
          next: undefined,
          last: tick,
          paused: null,
        },
      );
      assert.ok(every.next! > before && every.next! <= Date.now() + 1000, String(every.next));
      assert.equal(
        nightly.next,
        new Cron("30 2 * * *", { timezone: "Europe/Berlin" }).next(before),
      );
      assert.equal(nightly.last, null);
      assert.deepEqual(retired, {
        name: "retired",
        cron: null,
        timezone: null,
        missed: null,
        actor: null,
        queue: null,
        next: null,
        last: 1_700_000_000_000,
        paused: null,
      });

      r = await runCli(e, ["schedules"]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /^every-second\s+\(not declared\)\s+-\s+-\s+-\s+-\s+\S+ \S+Z$/m);
      assert.match(
        r.stdout,
        /^retired\s+\(not declared\)\s+-\s+-\s+-\s+-\s+2023-11-14 22:13:20Z$/m,
      );
    } finally {
      cleanup(e);
    }
  },
);

test("cli schedules: none declared and no ticks is one line saying so", e2e, async () => {
  const e = setup("schedules.ts");
  try {
    const r = await runCli(e, ["schedules", "--json"]);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(JSON.parse(r.stdout), []);
    const text = await runCli(e, ["schedules"]);
    assert.match(
      text.stdout,
      /^No schedules: the modules declare none, .*dramatis schedules tasks\.ts\n$/,
    );
  } finally {
    cleanup(e);
  }
});

test(
  "cli schedules and worker: a bad cron expression is refused at import, naming field and value",
  e2e,
  async () => {
    const e = setup("schedules.ts");
    try {
      const bad = join(e.dir, "bad.ts");
      writeFileSync(
        bad,
        `import { actor, schedule } from ${JSON.stringify(join(root, "mod.ts"))};\n` +
          `const a = actor(function a() {});\nschedule("bad", "0 25 * * *", a);\n`,
      );
      for (const args of [["schedules", bad], ["worker", bad, "-t", "1"]]) {
        const r = await runCli(e, args);
        assert.equal(r.code, 2, r.out);
        assert.match(
          r.out,
          /schedule "bad": cron field "hour" value "25" is out of range 0-23 \(in "0 25 \* \* \*"\)/,
        );
      }
    } finally {
      cleanup(e);
    }
  },
);

test(
  "cli schedules pause|resume NAME: shown as paused, kept by the broker; unknown NAME exit 5",
  e2e,
  async () => {
    const e = setup("schedules.ts");
    try {
      const before = Date.now();
      let r = await runCli(e, ["schedules", "pause", "every-second", e.tasks]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /^Paused schedule every-second on the file broker at .*: no process/);
      r = await runCli(e, ["schedules", "pause", "every-second", e.tasks]);
      assert.match(r.stdout, /^every-second was already paused on the file broker/);
      r = await runCli(e, ["schedules", e.tasks, "--json"]);
      const rows = JSON.parse(r.stdout) as Row[];
      const every = rows.find((x) => x.name === "every-second")!;
      assert.ok(every.paused! >= before && every.paused! <= Date.now(), String(every.paused));
      assert.equal(every.next, null);
      assert.equal(rows.find((x) => x.name === "nightly-report")!.paused, null);
      // Without the module: the broker knows the name from its pause.
      r = await runCli(e, ["schedules"]);
      assert.match(
        r.stdout,
        /^every-second\s+\(not declared\)\s+-\s+-\s+-\s+paused \S+ \S+Z\s+never$/m,
      );
      r = await runCli(e, ["schedules", "resume", "every-second"]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /^Resumed schedule every-second on the file broker/);
      r = await runCli(e, ["schedules", "resume", "every-second", "--json"]);
      assert.deepEqual(JSON.parse(r.stdout), {
        name: "every-second",
        action: "resume",
        changed: false,
      });
      r = await runCli(e, ["schedules", e.tasks, "--json"]);
      assert.equal((JSON.parse(r.stdout) as Row[])[0]!.paused, null);

      oneLine(
        await runCli(e, ["schedules", "pause", "no-such", e.tasks]),
        5,
        /^dramatis: no schedule named "no-such": no module given declares it and the file broker at .* has no tick of it; check the name with dramatis schedules MODULE\.\.\.$/,
      );
      oneLine(
        await runCli(e, ["schedules", "resume"]),
        64,
        /^dramatis: schedules resume needs a schedule name: dramatis schedules resume NAME \[MODULE\.\.\.\]/,
      );
    } finally {
      cleanup(e);
    }
  },
);
