#!/usr/bin/env node
// Cloudpipe job bootstrap for the Node runner image (cloudpipe/runner-node).
//
// Run as `cloudpipe-node-runner` with the job on stdin; the other half is
// sdk-node/src/functions.ts.
//
// * stdin holds JSON {"v": 1, "source": "<fn.toString()>", "args": [...], "name": "..."};
// * the function is rebuilt from its source alone (with `require`, `module`,
//   `__filename` and `__dirname` of the working directory in scope; `import()` works)
//   and called as `await fn(...args)`;
// * a JSON envelope is written atomically to $CLOUDPIPE_RESULT_PATH (default /tmp/.result):
//     {"ok": true, "value": <result, undefined as null>, "node": "v18.19.0"}
//     {"ok": false, "name": "TypeError", "message": "...", "stack": "...", "node": "..."}
// * exit status 0 on success; on failure the stack also goes to stderr and the exit
//   status is 1.
//
// $CLOUDPIPE_RETRIES (default 0): call the function again up to that many times when it
// throws, pausing 1, 2, 4... seconds (at most 30) in between.
// `cloudpipe-node-runner --version` prints the Node version (the image build's probe).
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const PAYLOAD_VERSION = 1;
const DEFAULT_RESULT_PATH = "/tmp/.result";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

// Method shorthand (`name(a) {}`, `async name() {}`, `*gen() {}`) is not an expression
// by itself: these are the ways to read a function's source as one.
function candidates(source) {
  const text = source.trim();
  const found = [text, `function ${text}`];
  if (text.startsWith("async ")) found.push(`async function ${text.slice(6).trimStart()}`);
  if (text.startsWith("*")) found.push(`function${text}`);
  if (text.startsWith("async *")) found.push(`async function${text.slice(6)}`);
  return found;
}

function compile(source) {
  const filename = join(process.cwd(), "[cloudpipe job]");
  const scope = {
    require: createRequire(filename),
    module: { exports: {} },
    __filename: filename,
    __dirname: process.cwd(),
  };
  let firstError;
  for (const text of candidates(source)) {
    try {
      const make = new Function(...Object.keys(scope), `"use strict";\nreturn (${text}\n);`);
      const fn = make(...Object.values(scope));
      if (typeof fn === "function") return fn;
    } catch (error) {
      firstError ??= error;
    }
  }
  throw new TypeError(`cannot rebuild the function from its source: ${firstError?.message ?? "not a function"}`);
}

// The job's own frames only: not the runner's, nor Node's internals.
function jobStack(stack) {
  return stack
    .split("\n")
    .filter((line) => !/^\s+at /.test(line) || line.includes("eval at") || !(line.includes(import.meta.url) || line.includes("node:internal")))
    .join("\n");
}

function failure(error) {
  const isError = error instanceof Error;
  return {
    ok: false,
    name: isError ? error.name : typeof error,
    message: isError ? error.message : String(error),
    stack: isError && error.stack ? jobStack(String(error.stack)) : String(error),
    node: process.version,
  };
}

const sleep = (seconds) => new Promise((done) => setTimeout(done, seconds * 1000));

async function callWithRetries(fn, args) {
  const retries = Number.parseInt(process.env.CLOUDPIPE_RETRIES || "0", 10) || 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(...args);
    } catch (error) {
      if (attempt >= retries) throw error;
      const delay = Math.min(2 ** attempt, 30);
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      process.stderr.write(`cloudpipe: attempt ${attempt + 1} of ${retries + 1} threw ${what}; retrying in ${delay} s\n`);
      await sleep(delay);
    }
  }
}

async function run(text) {
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    return failure(new TypeError(`the job payload is not JSON: ${error.message}`));
  }
  if (payload?.v !== PAYLOAD_VERSION) {
    return failure(new TypeError(`job payload version ${payload?.v} is not ${PAYLOAD_VERSION}: update the runner image or the SDK`));
  }
  try {
    const fn = compile(String(payload.source));
    const value = await callWithRetries(fn, Array.isArray(payload.args) ? payload.args : []);
    return { ok: true, value: value === undefined ? null : value, node: process.version };
  } catch (error) {
    return failure(error);
  }
}

function serialize(envelope) {
  try {
    return [JSON.stringify(envelope), envelope];
  } catch (error) {
    const what = envelope.ok ? "return value" : "error";
    const fallback = failure(new TypeError(`cannot serialize the job's ${what} as JSON: ${error.message}`));
    return [JSON.stringify(fallback), fallback];
  }
}

function writeAtomically(path, data) {
  const tmp = `${path}.tmp.${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

async function main() {
  if (process.argv[2] === "--version") {
    process.stdout.write(`${process.version}\n`);
    return 0;
  }
  const resultPath = resolve(process.env.CLOUDPIPE_RESULT_PATH || DEFAULT_RESULT_PATH);
  const [data, envelope] = serialize(await run(await readStdin()));
  writeAtomically(resultPath, data);
  if (envelope.ok) return 0;
  process.stderr.write(`${envelope.stack}\n`);
  return 1;
}

// process.exit: timers or sockets the job left open must not keep the job alive; on
// Linux, writes to pipes and files are synchronous, so no output is lost.
main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`cloudpipe: runner failed: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
