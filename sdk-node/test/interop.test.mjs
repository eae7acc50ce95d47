// A Python job and a Node job of the same account see each other: the Python side
// (tests/sdk_node/test_node_sdk.py) submits a job before these tests and reads the
// Node jobs' ids from CLOUDPIPE_TEST_NODE_JOBS after them.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, test } from "node:test";
import { client } from "./support.mjs";

const c = client();
after(() => c.close());

test("the Python SDK's function job is visible to the Node SDK", { skip: !process.env.CLOUDPIPE_TEST_PYTHON_JOB }, async () => {
  const id = Number(process.env.CLOUDPIPE_TEST_PYTHON_JOB);
  const job = await c.get(id);
  assert.equal(await job.wait(120), "done");
  const info = job.info;
  assert.equal(info.cmd, "python3 -m cloudpipe_runner");
  assert.match(info.image, /^cloudpipe\/runner-python3/); // the image it ran in, though it named none
  assert.equal(info.isFunction, false, "a pickled result stays bytes here");
  assert.ok(info.result.length > 0);
  assert.equal(info.stdout.toString(), "from python\n");
  assert.ok((await c.list({ ids: [id] })).length === 1);
});

test("Node jobs are left for the Python SDK to read", { skip: !process.env.CLOUDPIPE_TEST_NODE_JOBS }, async () => {
  const shell = await c.shell("echo from node", { name: "interop-node-shell" });
  const fn = await c.submit((x) => ({ doubled: x * 2 }), [21], { name: "interop-node-function" });
  assert.equal((await shell.result(60)).toString(), "from node\n");
  assert.deepEqual(await fn.result(60), { doubled: 42 });
  writeFileSync(process.env.CLOUDPIPE_TEST_NODE_JOBS, JSON.stringify({ shell: shell.id, function: fn.id }));
});
