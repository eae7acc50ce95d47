// Shell jobs against a real server: options, results, failures, live output, attach,
// wait/kill, list/get, and the errors a user sees.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as sdk from "../dist/index.js";
import { client, collect } from "./support.mjs";

const c = client();
after(() => c.close());

test("a shell job returns its stdout, and its state is readable", async () => {
  const job = await c.shell("echo hello; echo oops >&2", { name: "node-hello", tags: { by: "node" } });
  assert.equal((await job.result(60)).toString(), "hello\n");
  assert.equal(await job.status(), "done");
  const info = await job.refresh();
  assert.equal(info.returnCode, 0);
  assert.equal(info.stderr.toString(), "oops\n");
  assert.equal(info.name, "node-hello");
  assert.deepEqual(info.tags, { by: "node" });
  assert.ok(info.createdAt instanceof Date && info.finishedAt >= info.createdAt);
});

test("stdin, env, a file result source and resource options reach the job", async () => {
  const limits = [ // cgroup v2, else v1
    "(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us))",
    "(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)",
  ].join("; ");
  const job = await c.shell(`cat; echo "-$GREETING"; (${limits}) > /tmp/r`, {
    stdin: "typed",
    env: { GREETING: "hi" },
    resultSource: "file:/tmp/r",
    cpus: 1,
    memory: "256M",
    timeout: 60,
  });
  assert.equal((await job.result(60)).toString(), `100000 100000\n${256 * 2 ** 20}\n`);
  assert.equal((await job.refresh()).stdout.toString(), "typed-hi\n");
});

test("inputs and outputs travel with the job, and the server fetches the inputs before it starts", async () => {
  const url = "http://127.0.0.1:9/data.txt"; // loopback: a source this server refuses to reach
  const job = await c.shell("cat /in/data.txt", { inputs: { "/in/data.txt": url } });
  await assert.rejects(job.result(60), sdk.JobFailed);
  const info = await job.refresh();
  assert.deepEqual([info.inputs, info.outputs], [{ "/in/data.txt": url }, {}]);
  assert.match(info.reason, /127\.0\.0\.1/);
  assert.equal(info.stdout.length, 0); // it never ran
  await assert.rejects(c.shell("true", { outputs: { "/out/": "s3://bucket/run/" } }), (error) => {
    assert.ok(error instanceof sdk.InvalidRequest);
    assert.match(error.message, /storage_secret/);
    return true;
  });
});

test("a failing command throws JobFailed with its return code and stderr", async () => {
  const job = await c.shell("echo bad >&2; exit 3");
  await assert.rejects(job.result(60), (error) => {
    assert.ok(error instanceof sdk.JobFailed && !(error instanceof sdk.JobKilled));
    assert.equal(error.returnCode, 3);
    assert.equal(error.stderrTail, "bad");
    assert.equal(error.status, "error");
    return true;
  });
  assert.ok((await job.exception()) instanceof sdk.JobFailed);
});

test("a job that outlives its timeout is stopped", async () => {
  const job = await c.shell("sleep 30", { timeout: 1 });
  await assert.rejects(job.result(60), sdk.JobFailed);
  assert.match((await job.refresh()).reason, /.+/);
});

test("output arrives live, as an async iterator, before the job ends", async () => {
  const job = await c.shell("echo first; sleep 1.5; echo second >&2");
  const seen = [];
  for await (const event of job.stream()) seen.push({ ...event, at: Date.now() });
  const outputs = seen.filter((e) => e.type === "output");
  assert.deepEqual(outputs.map((e) => [e.stream, e.text]), [["stdout", "first\n"], ["stderr", "second\n"]]);
  const exit = seen.at(-1);
  assert.equal(exit.type, "exit");
  assert.equal(exit.returnCode, 0);
  assert.ok(exit.at - outputs[0].at >= 1000, "the first line came before the job finished");
  // a finished job replays its output; offsets skip what a client has
  const replay = (await collect(job.stream({ stdoutOffset: 3 }))).filter((e) => e.type === "output");
  assert.deepEqual(replay.map((e) => e.text), ["st\n", "second\n"]);
  assert.deepEqual(await collect(job.logs()), ["first\n", "second\n"]);
  assert.equal((await collect(job.logs({ follow: true }))).join(""), "first\nsecond\n");
});

test("attach types into an interactive job and closes its stdin", async () => {
  const job = await c.shell("while read line; do echo \"got $line\"; done; echo bye", { interactive: true });
  const session = job.attach();
  session.write("one\n");
  session.write(Buffer.from("two\n"));
  session.closeStdin();
  const events = await collect(session);
  const text = events.filter((e) => e.type === "output").map((e) => e.text).join("");
  assert.equal(text, "got one\ngot two\nbye\n");
  assert.equal(events.at(-1).status, "done");
});

test("attach signals a job: TERM reaches its trap, KILL kills it", async () => {
  const trapped = await c.shell("trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done", {
    interactive: true,
  });
  const session = trapped.attach();
  let text = "";
  let exit;
  for await (const event of session) {
    if (event.type === "output") {
      text += event.text;
      if (text === "ready\n") session.signal("TERM");
    } else if (event.type === "exit") exit = event;
  }
  assert.equal(text, "ready\ngot TERM\n");
  assert.equal(exit.returnCode, 7);

  const stubborn = await c.shell("trap '' TERM INT; echo ready; sleep 60", { interactive: true });
  const second = stubborn.attach();
  for await (const event of second) if (event.type === "output") second.signal("KILL");
  assert.equal(await stubborn.wait(60), "killed");
  await assert.rejects(stubborn.result(), sdk.JobKilled);
});

test("wait with a timeout throws Timeout; kill ends the job killed", async () => {
  const job = await c.shell("sleep 60");
  await assert.rejects(job.wait(0.5), sdk.Timeout);
  await job.kill();
  assert.equal(await job.wait(60), "killed");
  await assert.rejects(job.result(), (error) => error instanceof sdk.JobKilled && error.jobId === job.id);
});

test("dependsOn holds a job until its dependencies are done", async () => {
  const first = await c.shell("sleep 1; echo first");
  const second = await c.shell("echo second", { dependsOn: [first] });
  assert.equal((await second.result(60)).toString(), "second\n");
  const [a, b] = [await first.refresh(), await second.refresh()];
  assert.ok(b.startedAt >= a.finishedAt);
});

test("get and list find jobs by id, name and status", async () => {
  const name = `node-list-${process.pid}`;
  const jobs = [await c.shell("true", { name }), await c.shell("false", { name })];
  await Promise.allSettled(jobs.map((job) => job.wait(60)));
  const listed = await c.list({ names: [name] });
  assert.deepEqual(listed.map((job) => job.id), jobs.map((job) => job.id).reverse());
  assert.deepEqual((await c.list({ names: [name], statuses: ["error"] })).map((j) => j.info.status), ["error"]);
  assert.deepEqual((await c.list({ names: [name], newestFirst: false, limit: 1 })).map((j) => j.id), [jobs[0].id]);
  assert.equal((await c.get(jobs[0].id)).info.cmd, "true");
  const stats = await c.queueStats();
  assert.ok(stats.done >= 1 && stats.error >= 1);
});

test("errors are typed: NotFound, InvalidRequest, AuthError, Unavailable", async () => {
  await assert.rejects(c.get(987654321), (error) => error instanceof sdk.NotFound && error.code === "NOT_FOUND");
  await assert.rejects(c.shell("true", { resultSource: "magic" }), sdk.InvalidRequest);
  const stranger = client({ apiKey: "wrong" });
  await assert.rejects(stranger.shell("true"), sdk.AuthError);
  stranger.close();
  // nothing listens on port 9 of the loopback: the client retries, then gives up
  const nowhere = new sdk.Client("127.0.0.1:9", { retryFor: 0.6, rpcTimeout: 5 });
  const started = Date.now();
  await assert.rejects(nowhere.get(1), sdk.Unavailable);
  assert.ok(Date.now() - started >= 500, "retried for retryFor seconds");
  nowhere.close();
});

test("killAll kills every unfinished job of the account", async () => {
  const job = await c.shell("sleep 60");
  const killed = await c.killAll();
  assert.ok(killed.includes(job.id));
  assert.equal(await job.wait(60), "killed");
});
