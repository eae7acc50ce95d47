/** Saved jobs (`client.savedJobs`) and schedules (`client.schedules`). */
import type { JobSpec } from "./gen/cloudpipe_proto/v1/jobs.js";
import {
  CatchupPolicy,
  FireOutcome,
  OverlapPolicy,
  type Fire as PbFire,
  type RunOverrides,
  type SavedJob as PbSavedJob,
  type Schedule as PbSchedule,
  type ScheduleSpec,
} from "./gen/cloudpipe_proto/v1/schedules.js";
import { InvalidRequest } from "./errors.js";
import { Job } from "./job.js";
import { functionSpec, memoryBytes, shellSpec, type JobOptions, type ShellOptions } from "./options.js";
import type { Transport } from "./transport.js";

export interface SavedJob {
  name: string;
  version: number;
  description: string;
  createdAt: Date | null;
  cmd: string;
  image: string;
}

export interface RunOptions {
  /** 0: the latest version. */
  version?: number;
  /** Appended to a shell command, each shell-quoted. */
  args?: string[];
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  image?: string;
  cpus?: number;
  memory?: number | string;
  timeout?: number;
  idempotencyKey?: string;
}

function savedJob(saved: PbSavedJob): SavedJob {
  return {
    name: saved.name,
    version: saved.version,
    description: saved.description,
    createdAt: saved.createdAt ?? null,
    cmd: saved.spec?.cmd ?? "",
    image: saved.spec?.image ?? "",
  };
}

const seconds = (value: number) => ({ seconds: Math.floor(value), nanos: Math.round((value % 1) * 1e9) });

/** Saved jobs of your account: named, versioned job templates. */
export class SavedJobs {
  constructor(private readonly transport: Transport) {}

  private get stub() {
    return this.transport.savedJobs;
  }

  /** Version 1 of a new saved job (AlreadyExists when the name is taken). */
  async create(name: string, spec: JobSpec, { description = "" } = {}): Promise<SavedJob> {
    const request = { name, spec, description };
    return savedJob(await this.transport.call(this.stub, this.stub.create, request, { retry: false }));
  }

  /** A new version of an existing saved job (NotFound for an unknown name). */
  async update(name: string, spec: JobSpec, { description = "" } = {}): Promise<SavedJob> {
    const request = { name, spec, description };
    return savedJob(await this.transport.call(this.stub, this.stub.update, request, { retry: false }));
  }

  /** Create or update a saved shell job.
   *
   * ```js
   * await client.savedJobs.saveShell("greet", "echo hello");
   * ```
   */
  async saveShell(name: string, cmd: string, options: ShellOptions & { description?: string } = {}): Promise<SavedJob> {
    return this.save(name, shellSpec(cmd, options), options.description);
  }

  /** Create or update a saved JavaScript function call. */
  async saveFunction(
    name: string,
    fn: (...args: never[]) => unknown,
    args: unknown[] = [],
    options: JobOptions & { description?: string } = {},
  ): Promise<SavedJob> {
    return this.save(name, functionSpec(fn, args, options), options.description);
  }

  private async save(name: string, spec: JobSpec, description = ""): Promise<SavedJob> {
    const exists = (await this.list()).some((saved) => saved.name === name);
    return exists ? this.update(name, spec, { description }) : this.create(name, spec, { description });
  }

  async get(name: string, { version = 0 } = {}): Promise<SavedJob> {
    return savedJob(await this.transport.call(this.stub, this.stub.get, { name, version }));
  }

  async list(): Promise<SavedJob[]> {
    return (await this.transport.call(this.stub, this.stub.list, {})).savedJobs.map(savedJob);
  }

  async delete(name: string): Promise<void> {
    await this.transport.call(this.stub, this.stub.delete, { name }, { retry: false });
  }

  /** Run a saved job, optionally with overrides; returns the new Job. */
  async run<T = Buffer>(name: string, options: RunOptions = {}): Promise<Job<T>> {
    const overrides: RunOverrides = {
      args: options.args ?? [],
      stdin: options.stdin === undefined ? undefined : Buffer.from(options.stdin),
      env: { ...(options.env ?? {}) },
      image: options.image ?? "",
      resources: { cpus: options.cpus ?? 0, memoryBytes: memoryBytes(options.memory), pids: 0 },
      maxRuntime: options.timeout === undefined ? undefined : seconds(options.timeout),
    };
    const request = {
      name,
      version: options.version ?? 0,
      overrides,
      idempotencyKey: options.idempotencyKey ?? "",
    };
    // retried only with an idempotency key (the server then returns the same job)
    const response = await this.transport.call(this.stub, this.stub.run, request, {
      retry: Boolean(options.idempotencyKey),
    });
    return new Job<T>(this.transport, response.jobId);
  }
}

export type Overlap = "skip" | "allow" | "buffer_one" | "cancel_previous";
export type Catchup = "skip" | "run_once" | "run_all";
const OVERLAP: Record<Overlap, OverlapPolicy> = {
  skip: OverlapPolicy.OVERLAP_POLICY_SKIP,
  allow: OverlapPolicy.OVERLAP_POLICY_ALLOW,
  buffer_one: OverlapPolicy.OVERLAP_POLICY_BUFFER_ONE,
  cancel_previous: OverlapPolicy.OVERLAP_POLICY_CANCEL_PREVIOUS,
};
const CATCHUP: Record<Catchup, CatchupPolicy> = {
  skip: CatchupPolicy.CATCHUP_POLICY_SKIP,
  run_once: CatchupPolicy.CATCHUP_POLICY_RUN_ONCE,
  run_all: CatchupPolicy.CATCHUP_POLICY_RUN_ALL,
};
const OUTCOMES: Partial<Record<FireOutcome, string>> = {
  [FireOutcome.FIRE_OUTCOME_PENDING]: "pending",
  [FireOutcome.FIRE_OUTCOME_BUFFERED]: "buffered",
  [FireOutcome.FIRE_OUTCOME_RUNNING]: "running",
  [FireOutcome.FIRE_OUTCOME_FINISHED]: "finished",
  [FireOutcome.FIRE_OUTCOME_SKIPPED]: "skipped",
  [FireOutcome.FIRE_OUTCOME_FAILED]: "failed",
};

/** What a schedule runs and when. Exactly one of `savedJob` and `job`. */
export interface ScheduleOptions {
  savedJob?: string;
  /** With `savedJob`: 0 runs the latest version at each fire. */
  version?: number;
  /** An inline job spec (e.g. from `shellSpec`). */
  job?: JobSpec;
  /** IANA zone; default UTC. */
  timezone?: string;
  /** Seconds. */
  jitter?: number;
  startAt?: Date;
  endAt?: Date;
  overlap?: Overlap;
  catchup?: Catchup;
  /** Seconds, for catchup "run_all" (default one hour). */
  catchupWindow?: number;
  description?: string;
}

export interface Fire {
  scheduledAt: Date | null;
  dueAt: Date | null;
  recordedAt: Date | null;
  outcome: string;
  jobId: number | null;
  jobStatus: string;
  reason: string;
  manual: boolean;
}

export interface Schedule {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  savedJob: string;
  paused: boolean;
  nextFireAt: Date | null;
  lastFire: Fire | null;
}

function fire(value: PbFire): Fire {
  return {
    scheduledAt: value.scheduledAt ?? null,
    dueAt: value.dueAt ?? null,
    recordedAt: value.recordedAt ?? null,
    outcome: OUTCOMES[value.outcome] ?? "unspecified",
    jobId: value.jobId || null,
    jobStatus: value.jobStatus,
    reason: value.reason,
    manual: value.manual,
  };
}

function schedule(value: PbSchedule): Schedule {
  const target = value.spec?.target;
  return {
    id: value.id,
    name: value.spec?.name ?? "",
    cron: value.spec?.cron ?? "",
    timezone: value.spec?.timezone ?? "",
    savedJob: target?.$case === "savedJob" ? target.value : "",
    paused: value.paused,
    nextFireAt: value.nextFireAt ?? null,
    lastFire: value.lastFire ? fire(value.lastFire) : null,
  };
}

/** A schedule definition (see `ScheduleOptions`). */
export function scheduleSpec(name: string, cron: string, options: ScheduleOptions): ScheduleSpec {
  const overlap = OVERLAP[options.overlap ?? "skip"];
  const catchup = CATCHUP[options.catchup ?? "run_once"];
  if (overlap === undefined || catchup === undefined) {
    throw new InvalidRequest(
      `overlap must be one of ${Object.keys(OVERLAP).join(", ")} and catchup one of ${Object.keys(CATCHUP).join(", ")}`,
    );
  }
  if ((options.savedJob === undefined) === (options.job === undefined)) {
    throw new InvalidRequest("a schedule runs either savedJob or job: give exactly one");
  }
  return {
    name,
    cron,
    timezone: options.timezone ?? "UTC",
    target:
      options.savedJob !== undefined
        ? { $case: "savedJob", value: options.savedJob }
        : { $case: "job", value: options.job as JobSpec },
    savedJobVersion: options.version ?? 0,
    jitter: seconds(options.jitter ?? 0),
    startAt: options.startAt,
    endAt: options.endAt,
    overlap,
    catchup,
    catchupWindow: seconds(options.catchupWindow ?? 3600),
    description: options.description ?? "",
  };
}

/** Schedules of your account: cron-timed runs of saved jobs or inline specs. */
export class Schedules {
  constructor(private readonly transport: Transport) {}

  private get stub() {
    return this.transport.schedules;
  }

  /** ```js
   * await client.schedules.create("nightly", "30 2 * * *", { savedJob: "report", timezone: "Europe/Berlin" });
   * ``` */
  async create(name: string, cron: string, options: ScheduleOptions): Promise<Schedule> {
    const spec = scheduleSpec(name, cron, options);
    return schedule(await this.transport.call(this.stub, this.stub.create, { spec }, { retry: false }));
  }

  /** Replace the definition (renamed to `newName` when given). */
  async update(name: string, cron: string, options: ScheduleOptions & { newName?: string }): Promise<Schedule> {
    const spec = scheduleSpec(options.newName ?? name, cron, options);
    return schedule(await this.transport.call(this.stub, this.stub.update, { name, spec }, { retry: false }));
  }

  async get(name: string): Promise<Schedule> {
    return schedule(await this.transport.call(this.stub, this.stub.get, { name }));
  }

  async list(): Promise<Schedule[]> {
    return (await this.transport.call(this.stub, this.stub.list, {})).schedules.map(schedule);
  }

  async delete(name: string): Promise<void> {
    await this.transport.call(this.stub, this.stub.delete, { name }, { retry: false });
  }

  async pause(name: string): Promise<Schedule> {
    return schedule(await this.transport.call(this.stub, this.stub.pause, { name }));
  }

  async resume(name: string): Promise<Schedule> {
    return schedule(await this.transport.call(this.stub, this.stub.resume, { name }));
  }

  /** Fire now, outside the cron times. */
  async trigger(name: string): Promise<Fire> {
    return fire(await this.transport.call(this.stub, this.stub.trigger, { name }, { retry: false }));
  }

  /** The next `count` cron times (scheduled, before jitter) after `after` (now). */
  async preview(name: string, { count = 10, after }: { count?: number; after?: Date } = {}): Promise<Date[]> {
    const request = { subject: { $case: "name" as const, value: name }, count, after };
    const response = await this.transport.call(this.stub, this.stub.preview, request);
    return response.times.map((time) => time.scheduledAt).filter((time): time is Date => time !== undefined);
  }

  /** Fires, newest first. */
  async history(name: string, { limit = 20 } = {}): Promise<Fire[]> {
    const response = await this.transport.call(this.stub, this.stub.history, { name, limit, before: undefined });
    return response.fires.map(fire);
  }
}
