/**
 * How JavaScript function jobs travel, the Node counterpart of cloudpipe_sdk/_serialize.py.
 * The runner image (runner_images/node/cloudpipe-node-runner.mjs) is the other half.
 *
 * stdin: JSON `{"v": 1, "source": fn.toString(), "args": [...], "name": fn.name}`.
 * The function is rebuilt from its source alone: it must not use variables of the
 * scope it was written in (pass them as arguments; `require` and `import()` work).
 * Result, written by the runner to `/tmp/.result` (the job's `file:` result source):
 * `{"ok": true, "value": ..., "node": "v18.19.0"}` or
 * `{"ok": false, "name": "TypeError", "message": "...", "stack": "...", "node": ...}`.
 */
import { InvalidRequest, RemoteError } from "./errors.js";

export const NODE_RUNNER_COMMAND = "cloudpipe-node-runner";
export const NODE_RESULT_PATH = "/tmp/.result";
export const PAYLOAD_VERSION = 1;

export interface Envelope {
  ok: boolean;
  value?: unknown;
  name?: string;
  message?: string;
  stack?: string;
  node?: string;
}

/** The job's stdin for `fn(...args)`. InvalidRequest when `fn` has no source (native or
 * bound functions) or an argument is not JSON-serializable. */
export function functionPayload(fn: (...args: never[]) => unknown, args: unknown[]): Buffer {
  if (typeof fn !== "function") throw new InvalidRequest("run: the first argument must be a function");
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new InvalidRequest(`run: function ${fn.name || "(anonymous)"} has no JavaScript source (native or bound)`);
  }
  let text: string;
  try {
    text = JSON.stringify({ v: PAYLOAD_VERSION, source, args, name: fn.name });
  } catch (error) {
    throw new InvalidRequest(`run: the arguments are not JSON-serializable: ${(error as Error).message}`);
  }
  return Buffer.from(text, "utf8");
}

/** Whether a job is a JavaScript function call (its result is an envelope). */
export function isFunctionJob(cmd: string): boolean {
  return cmd.trim() === NODE_RUNNER_COMMAND;
}

export function parseEnvelope(data: Uint8Array, jobId: number): Envelope {
  let envelope: unknown;
  try {
    envelope = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch {
    throw new InvalidRequest(`job ${jobId}: the result is not a Cloudpipe Node runner envelope`);
  }
  if (typeof envelope !== "object" || envelope === null || !("ok" in envelope)) {
    throw new InvalidRequest(`job ${jobId}: the result is not a Cloudpipe Node runner envelope`);
  }
  return envelope as Envelope;
}

export function remoteError(jobId: number, envelope: Envelope): RemoteError {
  return new RemoteError(jobId, envelope.name ?? "Error", envelope.message ?? "", envelope.stack ?? "");
}
