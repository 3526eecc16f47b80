#!/usr/bin/env bun
// The `dramatis` command of the npm package (`node_modules/.bin/dramatis`): the CLI of cli.ts,
// run by Bun. Deno users run cli.ts itself: `deno run -A jsr:@dramatis/dramatis/cli`.
import { main } from "../cli.ts";
import { args, exit } from "../runtime/process.ts";

exit(await main(args()));
