/** `Job`: a handle on one submitted job, and `JobInfo`, what the server knows of it. */
import { status as GrpcStatus, type ClientReadableStream } from "@grpc/grpc-js";
import { JobView, type Job as PbJob, type JobStatusEvent } from "./gen/cloudpipe_proto/v1/jobs.js";
import { fromServiceError, isServiceError, JobFailed, JobKilled, JobStalled, Timeout } from "./errors.js";
import { isFunctionJob, parseEnvelope, remoteError } from "./functions.js";
import { Outage, sleep } from "./retry.js";
import { isFinished, statusFromPb, type JobStatus } from "./status.js";
import { Attachment, type JobEvent } from "./attach.js";
import type { Transport } from "./transport.js";

const TAIL_LINES = 20;

/** A job as the server last described it (the SDK's own type, not the wire's). */
export interface JobInfo {
  id: number;
  status: JobStatus;
  account: string;
  name: string;
  cmd: string;
  image: string;
  tags: Record<string, string>;
  /** What the job declared: container path -> URL fetched before it starts / uploaded after. */
  inputs: Record<string, string>;
  outputs: Record<string, string>;
  createdAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Set once the container exited. */
  returnCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  result: Buffer;
  reason: string;
  attempts: number;
  killRequested: boolean;
  /** Container run time in seconds, when known. */
  runtime: number | null;
  /** Whether it is a JavaScript function call (`client.run`). */
  isFunction: boolean;
}

export function jobInfo(job: PbJob): JobInfo {
  const spec = job.spec;
  return {
    id: job.id,
    status: statusFromPb(job.status),
    account: job.account,
    name: spec?.name ?? "",
    cmd: spec?.cmd ?? "",
    image: job.image || (spec?.image ?? ""), // the image it runs in, defaults resolved
    tags: { ...(spec?.tags ?? {}) },
    inputs: { ...(spec?.inputs ?? {}) },
    outputs: { ...(spec?.outputs ?? {}) },
    createdAt: job.createdAt ?? null,
    startedAt: job.startedAt ?? null,
    finishedAt: job.finishedAt ?? null,
    returnCode: job.returnCode ?? null,
    stdout: Buffer.from(job.stdout),
    stderr: Buffer.from(job.stderr),
    result: Buffer.from(job.result),
    reason: job.reason,
    attempts: job.attempts,
    killRequested: job.killRequested,
    runtime: job.runtime ? job.runtime.seconds + job.runtime.nanos / 1e9 : null,
    isFunction: isFunctionJob(spec?.cmd ?? ""),
  };
}

function tail(data: Buffer, lines = TAIL_LINES): string {
  return data.toString("utf8").split("\n").filter((line, i, all) => i < all.length - 1 || line).slice(-lines).join("\n");
}

function failure(info: JobInfo): JobFailed {
  const Cls = info.status === "killed" ? JobKilled : info.status === "stalled" ? JobStalled : JobFailed;
  return new Cls({
    jobId: info.id,
    status: info.status,
    reason: info.reason,
    returnCode: info.returnCode,
    stdoutTail: tail(info.stdout),
    stderrTail: tail(info.stderr),
  });
}

/** (value, undefined) for a finished job with a result, (undefined, its failure) otherwise. */
export function settle(info: JobInfo): [unknown, Error | undefined] {
  if (info.isFunction && info.result.length) {
    const envelope = parseEnvelope(info.result, info.id);
    if (envelope.ok && info.status === "done") return [envelope.value ?? null, undefined];
    if (!envelope.ok) return [undefined, remoteError(info.id, envelope)];
  }
  if (info.status === "done") return [info.result, undefined];
  return [undefined, failure(info)];
}

/**
 * A submitted job.
 *
 * ```js
 * const job = await client.shell("echo hello");
 * (await job.result()).toString();   // "hello\n"
 * ```
 */
export class Job<T = Buffer> {
  private snapshot: JobInfo | null;

  constructor(
    private readonly transport: Transport,
    readonly id: number,
    snapshot: JobInfo | null = null,
  ) {
    this.snapshot = snapshot;
  }

  /** The state last fetched, or null before the first fetch. */
  get info(): JobInfo | null {
    return this.snapshot;
  }

  /** Fetch the job's current state. */
  async refresh(): Promise<JobInfo> {
    const job = await this.transport.call(this.transport.jobs, this.transport.jobs.get, { id: this.id, view: JobView.JOB_VIEW_FULL });
    this.snapshot = jobInfo(job);
    return this.snapshot;
  }

  private async finalInfo(): Promise<JobInfo> {
    if (this.snapshot !== null && isFinished(this.snapshot.status)) return this.snapshot;
    return this.refresh();
  }

  async status(): Promise<JobStatus> {
    return (await this.finalInfo()).status;
  }

  /** Wait until the job finishes and return its final status. Timeout when it still
   * runs after `timeout` seconds. Reconnects (with backoff) while the server restarts. */
  async wait(timeout?: number): Promise<JobStatus> {
    if (this.snapshot !== null && isFinished(this.snapshot.status)) return this.snapshot.status;
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout * 1000;
    const outage = new Outage(this.transport.retryFor, `job ${this.id}`);
    for (;;) {
      outage.opened();
      const stream: ClientReadableStream<JobStatusEvent> = this.transport.jobs.wait(
        { id: this.id },
        this.transport.metadata(),
        { deadline: Number.isFinite(deadline) ? new Date(deadline) : Infinity },
      );
      try {
        for await (const event of stream as AsyncIterable<JobStatusEvent>) {
          outage.progress();
          if (isFinished(statusFromPb(event.status))) {
            stream.cancel();
            return (await this.refresh()).status;
          }
        }
      } catch (error) {
        if (isServiceError(error) && error.code === GrpcStatus.DEADLINE_EXCEEDED) {
          throw new Timeout(`job ${this.id} did not finish within ${timeout} s`);
        }
        if (!isServiceError(error) || error.code !== GrpcStatus.UNAVAILABLE) throw fromServiceError(error);
      }
      await sleep(outage.delay());
    }
  }

  /** Wait for the job and return its result: a shell job's bytes (stdout, or the
   * `file:` result), a function job's return value. Throws JobFailed / JobKilled /
   * JobStalled when there is none, RemoteError when the function threw, Timeout when
   * the job still runs after `timeout` seconds. */
  async result(timeout?: number): Promise<T> {
    await this.wait(timeout);
    const [value, error] = settle(await this.finalInfo());
    if (error !== undefined) throw error;
    return value as T;
  }

  /** The failure `result()` would throw, or null if the job succeeded. */
  async exception(timeout?: number): Promise<Error | null> {
    await this.wait(timeout);
    return settle(await this.finalInfo())[1] ?? null;
  }

  /** Kill the job; a finished job stays as it is. */
  async kill(): Promise<void> {
    const job = await this.transport.call(this.transport.jobs, this.transport.jobs.kill, { id: this.id });
    this.snapshot = jobInfo(job);
  }

  /** Events as they happen: output chunks (from the given offsets on), status changes
   * and, last, the exit. A finished job replays its output. */
  stream({ stdoutOffset = 0, stderrOffset = 0 } = {}): AsyncIterable<JobEvent> {
    return new Attachment(this.transport, this.id, stdoutOffset, stderrOffset);
  }

  /** The output as text: what exists now (stdout, then stderr), or with
   * `follow: true` everything as it is written, until the job ends. */
  async *logs({ follow = false } = {}): AsyncIterable<string> {
    if (!follow) {
      const info = await this.refresh();
      for (const data of [info.stdout, info.stderr]) if (data.length) yield data.toString("utf8");
      return;
    }
    for await (const event of this.stream()) if (event.type === "output") yield event.text;
  }

  /** Connect to the job to watch it and type into it (submit with `interactive: true`
   * to keep its stdin open). With `stdin`, send it and close stdin. */
  attach({ stdin }: { stdin?: Uint8Array | string } = {}): Attachment {
    const attachment = new Attachment(this.transport, this.id);
    if (stdin !== undefined) {
      attachment.write(stdin);
      attachment.closeStdin();
    }
    return attachment;
  }

  toString(): string {
    return `<Job ${this.id} ${this.snapshot?.status ?? "?"}>`;
  }
}
