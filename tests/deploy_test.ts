// The README's Deploying section: deploy/Dockerfile and deploy/dramatis.service are what the
// README shows, and they do what they say. Docker does not run here, so the Dockerfile is
// checked as a file and its steps are replayed: its compile command, run in a project that
// installed the packed package, builds the binary its run stage copies, and the binary started
// as ENTRYPOINT + CMD (with ENV) runs a message and stops 0 on the SIGTERM of `docker stop`.
// The unit: systemd-analyze verify (when installed), then started as systemd would: HUP
// (ExecReload) reloads, and one SIGTERM to the main process (KillMode=mixed) lets an in-flight
// message finish well within TimeoutStopSec.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { FileBroker } from "../mod.ts";
import {
  bunProject,
  killIfRunning,
  pack,
  root,
  run,
  runAsync,
  start,
  type Started,
  toolchainPath,
  until,
} from "./_package.ts";

const readme = readFileSync(join(root, "README.md"), "utf8");
const dockerfile = readFileSync(join(root, "deploy", "Dockerfile"), "utf8");
const unit = readFileSync(join(root, "deploy", "dramatis.service"), "utf8");

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions per stage (comments dropped, continuation lines joined). */
function parseDockerfile(text: string): { from: string; name?: string; steps: Instruction[] }[] {
  const stages: { from: string; name?: string; steps: Instruction[] }[] = [];
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim());
  for (const line of lines.filter((l) => l && !l.startsWith("#"))) {
    const [, op, args] = /^([A-Z]+)\s+(.*)$/.exec(line) ?? [];
    assert.ok(op, `not an instruction: ${line}`);
    if (op === "FROM") {
      const [from, as, name] = args.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === "AS" ? name : undefined, steps: [] });
    } else {
      assert.ok(stages.length, `${op} before FROM`);
      stages.at(-1)!.steps.push({ op, args });
    }
  }
  return stages;
}

/** `[Section]` key=value pairs of a systemd unit (a repeated key keeps its last value). */
function parseUnit(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current = "";
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("#")) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) sections[current = section[1]] = {};
    else {
      const eq = line.indexOf("=");
      assert.ok(current && eq > 0, `not a unit line: ${line}`);
      sections[current][line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return sections;
}

test("the README shows deploy/Dockerfile and deploy/dramatis.service as they are", () => {
  assert.ok(readme.includes("```dockerfile\n" + dockerfile + "```"), "README ≠ deploy/Dockerfile");
  assert.ok(readme.includes("```ini\n" + unit + "```"), "README ≠ deploy/dramatis.service");
});

/** What the Dockerfile builds and runs, read from it. */
function dockerPlan() {
  const stages = parseDockerfile(dockerfile);
  assert.equal(stages.length, 2);
  const [build, final] = stages;
  const bunVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies
    .bun;
  assert.equal(build.from, `oven/bun:${bunVersion}`, "build with the Bun the project pins");
  assert.doesNotMatch(final.from, /alpine|scratch|static/, "Bun's executables need glibc");
  const compile = build.steps.find((s) => s.op === "RUN" && / compile /.test(s.args));
  const [, cmd, modules, out] = /^(\S+) compile (.+) -o (\S+)$/.exec(compile?.args ?? "") ?? [];
  assert.equal(cmd, "./node_modules/.bin/dramatis", "compile with the project's own copy");
  const copy = final.steps.find((s) => s.op === "COPY" && s.args.startsWith("--from="));
  const [from, src, dest] = copy?.args.split(/\s+/) ?? [];
  assert.equal(from, `--from=${build.name}`);
  assert.equal(src, out, "the run stage copies what compile wrote");
  const json = (op: string) =>
    JSON.parse(final.steps.find((s) => s.op === op)?.args ?? "null") as string[];
  const entrypoint = json("ENTRYPOINT"), cmdArgs = json("CMD");
  assert.deepEqual(entrypoint, [dest], "ENTRYPOINT (exec form) is the copied binary");
  assert.equal(cmdArgs[0], "worker");
  const env: Record<string, string> = Object.fromEntries(
    final.steps.filter((s) => s.op === "ENV").map((s) => s.args.split("=", 2)),
  );
  const workdir = final.steps.findLast((s) => s.op === "WORKDIR")?.args;
  assert.equal(final.steps.find((s) => s.op === "STOPSIGNAL")?.args, "SIGTERM");
  return { modules: modules.split(/\s+/), out, dest, cmdArgs, env, workdir: workdir! };
}

test("deploy/Dockerfile: stages, paths and entrypoint agree with what compile produces", () => {
  dockerPlan();
});

test("deploy/dramatis.service: stop semantics matched to --shutdown-timeout", () => {
  const service = parseUnit(unit).Service;
  assert.equal(service.KillMode, "mixed", "SIGTERM to the supervisor only, SIGKILL to the rest");
  assert.equal(service.KillSignal, "SIGTERM");
  assert.equal(service.ExecReload, "/bin/kill -HUP $MAINPID");
  const [bin, command, ...args] = service.ExecStart.split(/\s+/);
  assert.equal(bin, dockerPlan().dest, "the unit runs the binary the Dockerfile installs");
  assert.equal(command, "worker");
  const ms = Number(args[args.indexOf("--shutdown-timeout") + 1]);
  assert.ok(ms > 0, "ExecStart sets --shutdown-timeout");
  const stopSec = Number(service.TimeoutStopSec);
  assert.ok(
    stopSec * 1000 >= ms + 10_000,
    `TimeoutStopSec=${stopSec} leaves under 10 s beyond --shutdown-timeout ${ms} ms`,
  );
  assert.match(service.Environment, /^DRAMATIS_BROKER=file:\/\/\/\S+$/, "an absolute broker dir");
  assert.equal(service.WorkingDirectory, `/var/lib/${service.StateDirectory}`);
});

const tasks = `import { appendFileSync } from "node:fs";
import process from "node:process";
import { actor } from "@dramatis/dramatis";

const note = (line: string) => appendFileSync(process.env.DEPLOY_LOG!, line + "\\n");

export const greet = actor(function greet(name: string) {
  note(\`hello \${name}\`);
});

export const slow = actor(async function slow(ms: number) {
  note("slow started");
  await new Promise((r) => setTimeout(r, ms));
  note("slow finished");
});
`;

test("Dockerfile and systemd unit, replayed: the binary runs, reloads and stops as they expect", {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-deploy-"));
  let proc: Started | undefined;
  try {
    const plan = dockerPlan();
    // The build stage: WORKDIR /src holds the project; paths under / are mapped into `dir`.
    const src = bunProject(join(dir, "src"), pack(dir));
    writeFileSync(join(src, "tasks.ts"), tasks);
    const out = join(dir, plan.out);
    run(join(src, "node_modules", ".bin", "dramatis"), [
      "compile",
      ...plan.modules,
      "-o",
      out,
    ], { cwd: src, env: { PATH: toolchainPath } });
    assert.ok(existsSync(out), `compile did not write ${plan.out}`);

    // The run stage: ENTRYPOINT + CMD, with ENV and WORKDIR, and nothing but the binary.
    const workdir = join(dir, plan.workdir);
    mkdirSync(workdir, { recursive: true });
    const deployLog = join(dir, "deploy.log");
    const env = {
      PATH: "/usr/bin:/bin",
      DEPLOY_LOG: deployLog,
      ...Object.fromEntries(
        Object.entries(plan.env).map(([k, v]) => [k, v.replace(plan.workdir, workdir)]),
      ),
    };
    const notes = () => existsSync(deployLog) ? readFileSync(deployLog, "utf8") : "";
    proc = start(out, plan.cmdArgs, { cwd: workdir, env });
    await until(
      "the container's worker did not boot",
      () => /ready for action/.test(proc!.log()),
      proc,
    );
    await runAsync(out, ["send", "greet", '["docker"]'], { cwd: workdir, env });
    await until("the message did not run", () => notes().includes("hello docker"), proc);
    process.kill(proc.pid, "SIGTERM"); // docker stop
    assert.equal(await proc.exited, 0, proc.log());

    // The unit, as systemd runs it: same binary, ExecStart's arguments.
    const service = parseUnit(unit).Service;
    if (spawnSync("systemd-analyze", ["--version"]).status === 0) {
      const copy = join(dir, "app-worker.service");
      writeFileSync(copy, unit.replaceAll(plan.dest, out).replace(/^(User|Group)=.*\n/gm, ""));
      const verify = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stderr);
      const problems = verify.stderr.split("\n").filter((l) => l.includes(copy));
      assert.deepEqual(problems, [], verify.stderr);
    } else {
      console.log("systemd-analyze is not installed: the unit file is checked by parsing only");
    }
    const [, ...args] = service.ExecStart.split(/\s+/);
    const [key, ...value] = service.Environment.split("=");
    const unitEnv: Record<string, string> = {
      ...env,
      [key]: value.join("=").replace(service.WorkingDirectory, workdir),
    };
    proc = start(out, args, { cwd: workdir, env: unitEnv });
    const ready = () => proc!.log().match(/ready for action/g)?.length ?? 0;
    await until("the unit's worker did not boot", () => ready() === 1, proc);
    process.kill(proc.pid, "SIGHUP"); // systemctl reload
    await until("HUP did not start fresh worker processes", () => ready() === 2, proc);
    await runAsync(out, ["send", "greet", '["after reload"]'], { cwd: workdir, env: unitEnv });
    await until("no message ran after the reload", () => notes().includes("after reload"), proc);
    await runAsync(out, ["send", "slow", "[2000]"], { cwd: workdir, env: unitEnv });
    await until("the slow message did not start", () => notes().includes("slow started"), proc);
    const t0 = Date.now();
    process.kill(proc.pid, "SIGTERM"); // systemctl stop, KillMode=mixed: the main process only
    assert.equal(await proc.exited, 0, proc.log());
    assert.ok(
      Date.now() - t0 < Number(service.TimeoutStopSec) * 1000,
      "stopping took longer than TimeoutStopSec: systemd would have SIGKILLed it",
    );
    assert.match(notes(), /slow started\nslow finished\n$/, "the in-flight message finished");
    const broker = new FileBroker({ dir: unitEnv.DRAMATIS_BROKER.slice("file://".length) });
    try {
      const stats = await broker.stats("default");
      assert.equal(stats.ready + stats.inFlight + stats.delayed, 0, JSON.stringify(stats));
    } finally {
      await broker.close();
    }
    assert.equal(notes().match(/slow started/g)?.length, 1, "the slow message ran once");
  } finally {
    if (proc) killIfRunning(proc);
    rmSync(dir, { recursive: true, force: true });
  }
});
