// The SDK's own logic, without a server: error mapping and the retry policy.
import assert from "node:assert/strict";
import { test } from "node:test";
import { status } from "@grpc/grpc-js";
import { fromServiceError } from "../dist/errors.js";
import { backoff, Outage } from "../dist/retry.js";
import { memoryBytes, shellSpec, functionSpec } from "../dist/options.js";
import * as sdk from "../dist/index.js";

function rpcError(code, details) {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: null });
}

test("gRPC status codes map to the same error classes as the Python SDK", () => {
  const table = [
    [status.UNAUTHENTICATED, sdk.AuthError, "UNAUTHENTICATED"],
    [status.PERMISSION_DENIED, sdk.AuthError, "PERMISSION_DENIED"],
    [status.NOT_FOUND, sdk.NotFound, "NOT_FOUND"],
    [status.ALREADY_EXISTS, sdk.AlreadyExists, "ALREADY_EXISTS"],
    [status.INVALID_ARGUMENT, sdk.InvalidRequest, "INVALID_ARGUMENT"],
    [status.FAILED_PRECONDITION, sdk.InvalidRequest, "FAILED_PRECONDITION"],
    [status.UNAVAILABLE, sdk.Unavailable, "UNAVAILABLE"],
    [status.DEADLINE_EXCEEDED, sdk.Timeout, "DEADLINE_EXCEEDED"],
    [status.INTERNAL, sdk.CloudpipeError, "INTERNAL"],
  ];
  for (const [code, cls, name] of table) {
    const mapped = fromServiceError(rpcError(code, "what happened"));
    assert.equal(mapped.constructor, cls, name);
    assert.ok(mapped instanceof sdk.CloudpipeError);
    assert.equal(mapped.code, name);
    assert.equal(mapped.message, `what happened (${name})`);
  }
});

test("job failures form one tree under CloudpipeError", () => {
  const killed = new sdk.JobKilled({ jobId: 7, status: "killed", reason: "by you", returnCode: null, stdoutTail: "", stderrTail: "x" });
  assert.ok(killed instanceof sdk.JobFailed && killed instanceof sdk.CloudpipeError);
  assert.equal(killed.name, "JobKilled");
  assert.match(killed.message, /job 7 ended killed: by you\n--- stderr \(tail\) ---\nx/);
  assert.ok(new sdk.RemoteError(1, "TypeError", "m", "TypeError: m\n    at f") instanceof sdk.CloudpipeError);
});

test("backoff starts at 0.1 s, doubles, and stays at most 2 s apart", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(backoff), [0.1, 0.2, 0.4, 0.8, 1.6, 2, 2]);
});

test("a stream outage gives up with Unavailable after retryFor seconds without the server", async () => {
  const outage = new Outage(0.3, "job 1");
  outage.opened();
  assert.equal(outage.delay(), 0.1);
  await new Promise((done) => setTimeout(done, 350));
  outage.opened();
  assert.throws(() => outage.delay(), sdk.Unavailable);
});

test("job options become the job spec", () => {
  const spec = shellSpec("echo hi", {
    image: "img", cpus: 1.5, memory: "512M", timeout: 2.5, env: { A: "1" }, name: "n", tags: { t: "v" },
    network: true, restartable: true, freshContainer: true, stdin: "in", resultSource: "file:/tmp/r",
    interactive: true, dependsOn: [3, { id: 4 }], idempotencyKey: "k",
  });
  assert.equal(spec.resources.memoryBytes, 512 * 2 ** 20);
  assert.equal(spec.resources.cpus, 1.5);
  assert.deepEqual(spec.maxRuntime, { seconds: 2, nanos: 5e8 });
  assert.deepEqual(spec.dependsOn, [3, 4]);
  assert.equal(spec.stdin.toString(), "in");
  assert.equal(spec.interactive && spec.network && spec.restartable && spec.freshContainer, true);
  assert.equal(memoryBytes("2GiB"), 2 ** 31);
  assert.throws(() => memoryBytes("lots"), sdk.InvalidRequest);
  assert.throws(() => shellSpec(""), sdk.InvalidRequest);
});

test("a function travels as its source with JSON arguments", () => {
  const spec = functionSpec(function add(a, b) { return a + b; }, [1, { b: [2] }], { retries: 2 });
  assert.equal(spec.cmd, "cloudpipe-node-runner");
  assert.equal(spec.image, sdk.NODE_RUNNER_IMAGE);
  assert.equal(spec.resultSource, "file:/tmp/.result");
  assert.equal(spec.env.CLOUDPIPE_RETRIES, "2");
  assert.equal(spec.tags.function, "add");
  const payload = JSON.parse(spec.stdin.toString());
  assert.deepEqual(payload.args, [1, { b: [2] }]);
  assert.match(payload.source, /^function add\(a, b\)/);
  assert.throws(() => functionSpec(Math.max, []), sdk.InvalidRequest);
  assert.throws(() => functionSpec((x) => x, [10n]), sdk.InvalidRequest);
});
