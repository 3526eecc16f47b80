// A task module for `dramatis worker`, used by the README and the single-binary build.
// In a clone (after npm ci); elsewhere `dramatis` (see the README's Install section):
//   npx deno run -A cli.ts worker examples/tasks.ts            # run workers
//   npx deno run -A cli.ts send examples/tasks.ts greet '["Ada"]'
//   npx bun cli.ts compile examples/tasks.ts -o dist/app       # one executable
import { appendFileSync } from "node:fs";
import process from "node:process";
import { actor } from "@dramatis/dramatis";

export const greet = actor(function greet(name: string) {
  const line = `Hello, ${name}!`;
  console.log(line);
  // Where the greeting goes when GREET_LOG is set (the binary's end-to-end test reads it).
  if (process.env.GREET_LOG) appendFileSync(process.env.GREET_LOG, line + "\n");
}, { maxRetries: 3 });
