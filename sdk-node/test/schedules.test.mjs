// Saved jobs and schedules against a real server.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as sdk from "../dist/index.js";
import { client } from "./support.mjs";

const c = client();
after(() => c.close());
const suffix = process.pid;

test("a saved shell job is versioned and runs with extra arguments", async () => {
  const name = `node-greet-${suffix}`;
  const first = await c.savedJobs.saveShell(name, "echo hello", { description: "greets" });
  assert.equal(first.version, 1);
  const second = await c.savedJobs.saveShell(name, "echo hi");
  assert.equal(second.version, 2);
  assert.equal((await c.savedJobs.get(name, { version: 1 })).cmd, "echo hello");
  assert.ok((await c.savedJobs.list()).some((saved) => saved.name === name && saved.version === 2));
  const job = await c.savedJobs.run(name, { args: ["there", "it's me"] });
  assert.equal((await job.result(60)).toString(), "hi there it's me\n");
  await assert.rejects(c.savedJobs.create(name, sdk.shellSpec("true")), sdk.AlreadyExists);
  await c.savedJobs.delete(name);
  await assert.rejects(c.savedJobs.get(name), sdk.NotFound);
});

test("a saved function job runs in the Node runner", async () => {
  const name = `node-fn-${suffix}`;
  await c.savedJobs.saveFunction(name, (a, b) => a * b, [6, 7]);
  assert.equal(await (await c.savedJobs.run(name)).result(60), 42);
  await c.savedJobs.delete(name);
});

test("a schedule previews, triggers, pauses and keeps its history", async () => {
  const saved = `node-nightly-job-${suffix}`;
  const name = `node-nightly-${suffix}`;
  await c.savedJobs.saveShell(saved, "echo fired");
  const created = await c.schedules.create(name, "30 2 * * *", { savedJob: saved, timezone: "Europe/Berlin" });
  assert.equal(created.savedJob, saved);
  assert.equal(created.paused, false);
  assert.ok(created.nextFireAt instanceof Date);
  const times = await c.schedules.preview(name, { count: 3, after: new Date("2026-03-28T12:00:00Z") });
  assert.deepEqual(times.map((t) => t.toISOString()), [
    "2026-03-29T01:00:00.000Z", // 02:30 does not exist on the spring-forward day: 03:00, the end of the gap
    "2026-03-30T00:30:00.000Z",
    "2026-03-31T00:30:00.000Z",
  ]);
  const fire = await c.schedules.trigger(name);
  assert.equal(fire.manual, true);
  assert.ok(fire.jobId > 0);
  assert.equal((await (await c.get(fire.jobId)).result(60)).toString(), "fired\n");
  assert.ok((await c.schedules.history(name)).some((f) => f.jobId === fire.jobId));
  assert.equal((await c.schedules.pause(name)).paused, true);
  assert.equal((await c.schedules.resume(name)).paused, false);
  assert.ok((await c.schedules.list()).some((s) => s.name === name));
  const updated = await c.schedules.update(name, "@hourly", { savedJob: saved });
  assert.equal(updated.cron, "@hourly");
  await assert.rejects(c.savedJobs.delete(saved), sdk.InvalidRequest); // a schedule still runs it
  await c.schedules.delete(name);
  await assert.rejects(c.schedules.get(name), sdk.NotFound);
  await c.savedJobs.delete(saved);
  assert.throws(() => sdk.scheduleSpec("x", "* * * * *", {}), sdk.InvalidRequest);
});
