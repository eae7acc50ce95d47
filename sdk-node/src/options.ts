/** `JobOptions`: how a job runs, and the JobSpecs built from them for shell commands
 * and JavaScript function calls. */
import { ResultType, type JobSpec } from "./gen/cloudpipe_proto/v1/jobs.js";
import { InvalidRequest } from "./errors.js";
import { functionPayload, NODE_RESULT_PATH, NODE_RUNNER_COMMAND } from "./functions.js";

/** How jobs run; unset means the server's default. */
export interface JobOptions {
  /** Docker image (function jobs default to cloudpipe/runner-node:latest). */
  image?: string;
  /** CPU cores, fractions allowed. */
  cpus?: number;
  /** Bytes, or a size like "512M", "2G" (binary units). */
  memory?: number | string;
  /** The longest the container may run, in seconds. */
  timeout?: number;
  env?: Record<string, string>;
  name?: string;
  tags?: Record<string, string>;
  /** Give the container a network (off by default). */
  network?: boolean;
  /** Requeue the job when its runner dies (not when the job itself fails). */
  restartable?: boolean;
  /** Never run in a warm container of your account (docs/warm-containers.md). */
  freshContainer?: boolean;
  /** Volumes of your account mounted into the job: "name:/path" or "name:/path:ro". */
  volumes?: string[];
  /** Secrets of your account given to the job: "NAME" (an environment variable) or
   * "NAME:/path" (a file readable by the job alone); see docs/secrets.md. */
  secrets?: string[];
  /** Files the server fetches into the container before the job starts: container path
   * -> "s3://bucket/key", "https://..." or "http://..." (docs/sdk.md, "Inputs and outputs"). */
  inputs?: Record<string, string>;
  /** What the server uploads after the job ended done: container path -> "s3://bucket/key";
   * a path ending in "/" is a directory, uploaded under a prefix ending in "/". */
  outputs?: Record<string, string>;
  /** The name of your secret holding the object store's credentials (JSON: endpoint_url,
   * access_key_id, secret_access_key, region); s3:// URLs need one. */
  storageSecret?: string;
  /** Function jobs: call the function up to this many more times when it throws. */
  retries?: number;
}

/** Options of one shell job, on top of `JobOptions`. */
export interface ShellOptions extends JobOptions {
  /** Fed to the job's stdin, then EOF (unless `interactive`). */
  stdin?: Uint8Array | string;
  /** "stdout" (default) or "file:/absolute/path" in the container. */
  resultSource?: string;
  /** Keep stdin open for `job.attach()`. */
  interactive?: boolean;
  /** Ids (or Jobs) that must finish done before this job runs. */
  dependsOn?: Array<number | { id: number }>;
  /** A retried submit with the same key returns the same job. */
  idempotencyKey?: string;
}

export const NODE_RUNNER_IMAGE = "cloudpipe/runner-node:latest";
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i;
const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Bytes from a number, or from "512M", "1.5G", "2GiB"; 0 for undefined. */
export function memoryBytes(value: number | string | undefined): number {
  if (value === undefined) return 0;
  if (typeof value === "number") {
    if (value < 0 || !Number.isInteger(value)) throw new InvalidRequest(`memory: must be a whole number of bytes, got ${value}`);
    return value;
  }
  const match = SIZE.exec(value);
  if (!match) throw new InvalidRequest(`memory: ${JSON.stringify(value)} is not a size like 512M or 2G`);
  return Math.floor(Number(match[1]) * UNITS[match[2].toLowerCase()]);
}

function baseSpec(cmd: string, options: JobOptions): JobSpec {
  if (options.retries !== undefined && (options.retries < 0 || !Number.isInteger(options.retries))) {
    throw new InvalidRequest(`retries: must be a whole number, not negative, got ${options.retries}`);
  }
  return {
    cmd,
    name: options.name ?? "",
    image: options.image ?? "",
    stdin: Buffer.alloc(0),
    env: { ...(options.env ?? {}) },
    tags: { ...(options.tags ?? {}) },
    resultSource: "stdout",
    resultType: ResultType.RESULT_TYPE_BINARY,
    maxRuntime:
      options.timeout === undefined
        ? undefined
        : { seconds: Math.floor(options.timeout), nanos: Math.round((options.timeout % 1) * 1e9) },
    restartable: options.restartable ?? false,
    dependsOn: [],
    resources: { cpus: options.cpus ?? 0, memoryBytes: memoryBytes(options.memory), pids: 0 },
    network: options.network ?? false,
    core: "",
    multicore: 0,
    profile: false,
    volumes: options.volumes ?? [],
    serializer: "",
    clientPython: "",
    interactive: false,
    idempotencyKey: "",
    savedJob: "",
    savedJobVersion: 0,
    scheduleId: "",
    freshContainer: options.freshContainer ?? false,
    secrets: options.secrets ?? [],
    tty: false,
    inputs: { ...(options.inputs ?? {}) },
    outputs: { ...(options.outputs ?? {}) },
    storageSecret: options.storageSecret ?? "",
  };
}

export function shellSpec(cmd: string, options: ShellOptions = {}): JobSpec {
  if (!cmd) throw new InvalidRequest("cmd: must not be empty");
  const spec = baseSpec(cmd, options);
  const stdin = options.stdin ?? "";
  spec.stdin = typeof stdin === "string" ? Buffer.from(stdin) : Buffer.from(stdin);
  spec.resultSource = options.resultSource ?? "stdout";
  spec.interactive = options.interactive ?? false;
  spec.dependsOn = (options.dependsOn ?? []).map((dep) => (typeof dep === "number" ? dep : dep.id));
  spec.idempotencyKey = options.idempotencyKey ?? "";
  return spec;
}

/** The spec of the call `fn(...args)` in the Node runner image. */
export function functionSpec(fn: (...args: never[]) => unknown, args: unknown[], options: JobOptions = {}): JobSpec {
  const spec = baseSpec(NODE_RUNNER_COMMAND, { ...options, image: options.image ?? NODE_RUNNER_IMAGE });
  spec.stdin = functionPayload(fn, args);
  spec.resultSource = `file:${NODE_RESULT_PATH}`;
  if (options.retries) {
    spec.env.CLOUDPIPE_RETRIES = String(options.retries);
    spec.restartable = true;
  }
  spec.tags.function ??= fn.name || "anonymous";
  spec.tags.runtime ??= `node ${process.versions.node}`;
  return spec;
}
