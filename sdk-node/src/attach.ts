/** Live output and input: `job.stream()`, `job.logs()` and `job.attach()`. */
import { status as GrpcStatus, type ClientDuplexStream } from "@grpc/grpc-js";
import {
  OutputStream,
  Signal,
  type AttachEvent,
  type AttachRequest,
} from "./gen/cloudpipe_proto/v1/jobs.js";
import { fromServiceError, InvalidRequest, isServiceError } from "./errors.js";
import { Outage, sleep } from "./retry.js";
import { statusFromPb, type JobStatus } from "./status.js";
import type { Transport } from "./transport.js";

export type StreamName = "stdout" | "stderr";
export type SignalName = "TERM" | "INT" | "KILL";

/** Bytes the job wrote to `stream`, starting `offset` bytes into it. */
export interface OutputEvent {
  type: "output";
  stream: StreamName;
  offset: number;
  data: Buffer;
  /** `data` decoded as UTF-8 (a character split between chunks shows as U+FFFD). */
  text: string;
}
export interface StatusEvent {
  type: "status";
  status: JobStatus;
  reason: string;
}
/** The job ended; always the last event. */
export interface ExitEvent {
  type: "exit";
  status: JobStatus;
  returnCode: number | null;
  reason: string;
}
export type JobEvent = OutputEvent | StatusEvent | ExitEvent;

const STREAMS: Partial<Record<OutputStream, StreamName>> = {
  [OutputStream.OUTPUT_STREAM_STDOUT]: "stdout",
  [OutputStream.OUTPUT_STREAM_STDERR]: "stderr",
};
const SIGNALS: Record<SignalName, Signal> = {
  TERM: Signal.SIGNAL_TERM,
  INT: Signal.SIGNAL_INT,
  KILL: Signal.SIGNAL_KILL,
};

type Call = ClientDuplexStream<AttachRequest, AttachEvent>;

/**
 * A live connection to a job: iterate it (`for await`) for events; write to its stdin;
 * signal it. Output already received is never delivered twice: if the connection
 * drops, iterating reconnects and resumes from the offsets it has; what was written
 * while no connection was open is sent on the next one.
 *
 * ```js
 * const session = job.attach();
 * session.write("2 + 2\n");
 * session.closeStdin();
 * for await (const event of session) if (event.type === "output") process.stdout.write(event.data);
 * ```
 */
export class Attachment implements AsyncIterable<JobEvent> {
  readonly offsets: Record<StreamName, number>;
  private outbox: AttachRequest[] = [];
  private call: Call | null = null;
  private ended = false;

  constructor(
    private readonly transport: Transport,
    readonly jobId: number,
    stdoutOffset = 0,
    stderrOffset = 0,
  ) {
    this.offsets = { stdout: stdoutOffset, stderr: stderrOffset };
  }

  /** Send bytes to the job's stdin (the job must be interactive and running). */
  write(data: Uint8Array | string): void {
    this.send({ action: { $case: "stdin", value: Buffer.from(data) } });
  }

  closeStdin(): void {
    this.send({ action: { $case: "closeStdin", value: true } });
  }

  /** TERM or INT reach the job's processes; KILL kills the job (it ends killed). */
  signal(name: SignalName): void {
    const value = SIGNALS[name];
    if (value === undefined) throw new InvalidRequest(`signal: ${JSON.stringify(name)} is not TERM, INT or KILL`);
    this.send({ action: { $case: "signal", value } });
  }

  private send(request: AttachRequest): void {
    if (this.call !== null) this.call.write(request);
    else this.outbox.push(request);
  }

  /** Stop watching (the job keeps running). */
  close(): void {
    this.ended = true;
    this.call?.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JobEvent> {
    const outage = new Outage(this.transport.retryFor, `job ${this.jobId}`);
    try {
      while (!this.ended) {
        outage.opened();
        const call = this.connect();
        try {
          for await (const message of call as AsyncIterable<AttachEvent>) {
            outage.progress();
            const event = toEvent(message);
            if (event.type === "output") this.offsets[event.stream] = event.offset + event.data.length;
            else if (event.type === "exit") this.ended = true;
            yield event;
            if (this.ended) return;
          }
          if (this.ended) return;
        } catch (error) {
          if (this.ended && isServiceError(error) && error.code === GrpcStatus.CANCELLED) return;
          if (!isServiceError(error) || error.code !== GrpcStatus.UNAVAILABLE) throw fromServiceError(error);
        } finally {
          this.call = null;
        }
        // the server went away (restart, shutdown): reconnect from our offsets
        await sleep(outage.delay());
      }
    } finally {
      this.close();
    }
  }

  private connect(): Call {
    const call = this.transport.jobs.attach(this.transport.metadata());
    call.write({
      action: {
        $case: "start",
        value: { id: this.jobId, stdoutOffset: this.offsets.stdout, stderrOffset: this.offsets.stderr },
      },
    });
    for (const request of this.outbox.splice(0)) call.write(request);
    this.call = call;
    return call;
  }
}

function toEvent(message: AttachEvent): JobEvent {
  const event = message.event;
  if (event?.$case === "output") {
    const stream = STREAMS[event.value.stream];
    if (stream === undefined) throw new InvalidRequest(`unknown output stream ${event.value.stream}: upgrade the SDK`);
    const data = Buffer.from(event.value.data);
    return { type: "output", stream, offset: event.value.offset, data, text: data.toString("utf8") };
  }
  if (event?.$case === "status") {
    return { type: "status", status: statusFromPb(event.value.status), reason: event.value.reason };
  }
  if (event?.$case === "exit") {
    return {
      type: "exit",
      status: statusFromPb(event.value.status),
      returnCode: event.value.returnCode ?? null,
      reason: event.value.reason,
    };
  }
  throw new InvalidRequest(`unknown attach event ${JSON.stringify(event)}: upgrade the SDK`);
}
