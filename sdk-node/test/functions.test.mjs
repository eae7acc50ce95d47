// JavaScript function jobs in cloudpipe/runner-node against a real server.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as sdk from "../dist/index.js";
import { client } from "./support.mjs";

const c = client();
after(() => c.close());

test("run ships a function and JSON arguments and returns its result", async () => {
  assert.equal(await c.run((a, b) => a + b, 2, 3), 5);
  const value = await c.run(
    async (doc) => {
      const os = require("node:os");
      const { sep } = await import("node:path");
      console.log("visible in the job's stdout");
      return { doubled: doc.items.map((x) => x * 2), user: os.userInfo().uid, sep, node: process.versions.node };
    },
    { items: [1, 2, 3] },
  );
  assert.deepEqual(value.doubled, [2, 4, 6]);
  assert.equal(value.user, 1000, "the runner is not root");
  assert.equal(value.sep, "/");
  assert.ok(Number(value.node.split(".")[0]) >= 18);
  assert.equal(await c.run(function nothing() {}), null);
  assert.equal(await c.run({ square(x) { return x * x; } }.square, 7), 49);
});

test("submit returns the job; its stdout and tags are there", async () => {
  const job = await c.submit((x) => { console.log(`got ${x}`); return x; }, ["hi"], { tags: { purpose: "test" } });
  assert.equal(await job.result(60), "hi");
  const info = await job.refresh();
  assert.equal(info.stdout.toString(), "got hi\n");
  assert.equal(info.isFunction, true);
  assert.equal(info.tags.purpose, "test");
});

test("a function that throws gives a RemoteError with the remote name and stack", async () => {
  await assert.rejects(
    c.run(function checkLimit(n) {
      if (n > 10) throw new RangeError(`${n} is over the limit`);
    }, 11),
    (error) => {
      assert.ok(error instanceof sdk.RemoteError && error instanceof sdk.CloudpipeError);
      assert.equal(error.remoteName, "RangeError");
      assert.equal(error.remoteMessage, "11 is over the limit");
      assert.match(error.remoteStack, /at checkLimit/);
      assert.doesNotMatch(error.remoteStack, /callWithRetries/, "the runner's own frames are left out");
      return true;
    },
  );
  await assert.rejects(c.run(() => 10n), (e) => e instanceof sdk.RemoteError && /BigInt/.test(e.remoteMessage));
  await assert.rejects(c.run(() => { throw "a string"; }), (e) => e.remoteName === "string" && e.remoteMessage === "a string");
});

test("a function using its outer scope fails clearly (only its source travels)", async () => {
  const outside = 5;
  await assert.rejects(c.run(() => outside + 1), (e) => e.remoteName === "ReferenceError");
});

test("retries call the function again in the same container", async () => {
  const value = await c.run.call(
    c.withOptions({ retries: 1 }),
    () => {
      const fs = require("node:fs");
      if (!fs.existsSync("/tmp/tried")) {
        fs.writeFileSync("/tmp/tried", "1");
        throw new Error("first try fails");
      }
      return "second try";
    },
  );
  assert.equal(value, "second try");
});

test("map runs each input as a job, in order, at most `concurrency` at a time", async () => {
  const spans = await c.map(
    async (x) => {
      const start = Date.now();
      await new Promise((done) => setTimeout(done, 700));
      return { x: x * x, start, end: Date.now() };
    },
    [1, 2, 3, 4, 5],
    { concurrency: 2 },
  );
  assert.deepEqual(spans.map((s) => s.x), [1, 4, 9, 16, 25]);
  const overlapping = Math.max(...spans.map((s) => spans.filter((t) => t.start < s.end && s.start < t.end).length));
  assert.ok(overlapping <= 2, `at most 2 ran at once, saw ${overlapping}`);
  assert.deepEqual(await c.map((x) => x, []), []);
});

test("map rejects with the first failure and kills the map's unfinished jobs", async () => {
  const name = `node-map-${process.pid}`;
  await assert.rejects(
    c.map(async (x) => {
      if (x === 0) throw new TypeError("zero");
      await new Promise((done) => setTimeout(done, 60_000));
    }, [0, 1], { concurrency: 2, name }),
    (e) => e instanceof sdk.RemoteError && e.remoteMessage === "zero",
  );
  const jobs = await c.list({ names: [name] });
  assert.equal(jobs.length, 2);
  for (const job of jobs) assert.notEqual(await job.wait(60), "processing");
  assert.deepEqual(jobs.map((j) => j.info.status).sort(), ["error", "killed"].sort());
});
