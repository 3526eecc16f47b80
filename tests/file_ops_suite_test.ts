// The shared operation suite (tests/_ops_suite.ts) on the FileBroker, one directory per test.
//   deno test -A tests/file_ops_suite_test.ts        bun test tests/file_ops_suite_test.ts
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { opsSuite } from "./_ops_suite.ts";

opsSuite("FileBroker", () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-ops-suite-`);
  const broker = new FileBroker({ dir });
  const close = broker.close.bind(broker);
  broker.close = async () => {
    await close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return broker;
});
