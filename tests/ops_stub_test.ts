// The broker operations (tests/_ops_suite.ts) on the StubBroker, the reference implementation.
import { opsSuite } from "./_ops_suite.ts";
import { StubBroker } from "../mod.ts";

opsSuite("StubBroker", () => new StubBroker());
