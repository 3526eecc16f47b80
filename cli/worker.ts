// `dramatis worker MODULE...`: checks the flags, then runs the supervisor (worker/supervisor.ts).
import { configureLogging, LEVELS, logToFile } from "../util/log.ts";
import { checkModuleFiles, moduleUrl } from "../worker/_import.ts";
import type { SupervisorOptions } from "../worker/supervisor.ts";
import { int, str, UsageError } from "./_args.ts";
import type { Run } from "./_commands.ts";
import { checkQueues } from "./_queue.ts";

export const run: Run = async (parsed, context) => {
  const modules = parsed.positionals;
  if (modules.length === 0 && !context.bundled) {
    throw new UsageError(
      "worker needs at least one module with actors: dramatis worker tasks.ts",
      "worker",
    );
  }
  const queues = str(parsed, "queues")?.split(",").map((q) => q.trim()).filter(Boolean);
  await checkQueues(queues ?? [], "--queues");
  const watch = str(parsed, "watch");
  if (parsed.flags["watch-use-polling"] && watch === undefined) {
    throw new UsageError("--watch-use-polling goes with --watch DIR.", "worker");
  }
  const options: SupervisorOptions = {
    modules: [
      ...(context.webWorkerModules ?? []),
      ...modules.map((m) => moduleUrl(m, context.cwd)),
    ],
    queues,
    processes: int(parsed, "processes"),
    threads: int(parsed, "threads"),
    concurrency: int(parsed, "concurrency"),
    shutdownTimeout: int(parsed, "shutdown-timeout", 0),
    watch,
    watchPolling: !!parsed.flags["watch-use-polling"],
    pidFile: str(parsed, "pid-file"),
    logFile: str(parsed, "log-file"),
    logLevel: parsed.flags.verbose ? LEVELS.DEBUG : LEVELS.INFO,
    processCommand: context.processCommand,
    webWorkerUrl: context.webWorkerUrl,
  };
  checkModuleFiles(options.modules); // before any process starts: one line, exit code 2
  if (options.logFile) logToFile(options.logFile);
  configureLogging({ level: options.logLevel! });
  if (str(parsed, "dashboard")) {
    // Its charts read the counters in the workers' records: turn the Metrics middleware on.
    (await import("../telemetry/_cli.ts")).askForMetrics();
    await (await import("./dashboard.ts")).besideWorker(str(parsed, "dashboard")!, options.modules);
  }
  const { runSupervisor } = await import("../worker/supervisor.ts");
  const metrics = str(parsed, "metrics");
  if (metrics !== undefined) {
    const { serveMetrics } = await import("../telemetry/_cli.ts");
    return await serveMetrics(metrics, options, context, () => runSupervisor(options));
  }
  return await runSupervisor(options);
};
