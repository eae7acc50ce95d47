// Shared by the tests: a Client for the server the test command started
// (tests/sdk_node/test_node_sdk.py sets CLOUDPIPE_ADDRESS and CLOUDPIPE_API_KEY).
import { Client } from "../dist/index.js";

export function client(options = {}) {
  if (!process.env.CLOUDPIPE_ADDRESS) throw new Error("CLOUDPIPE_ADDRESS is not set: run these tests from tests/sdk_node");
  return new Client(undefined, options);
}

export async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}
