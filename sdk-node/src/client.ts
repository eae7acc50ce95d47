/** `Client`: the entry point of the SDK. */
import { randomUUID } from "node:crypto";
import { JobView, type JobSpec } from "./gen/cloudpipe_proto/v1/jobs.js";
import { InvalidRequest } from "./errors.js";
import { Job, jobInfo } from "./job.js";
import { functionSpec, shellSpec, type JobOptions, type ShellOptions } from "./options.js";
import { SavedJobs, Schedules } from "./schedules.js";
import { statusToPb, type JobStatus } from "./status.js";
import { resolveOptions, Transport, type ConnectOptions } from "./transport.js";

type Fn<A extends unknown[], R> = (...args: A) => R;

export interface ListOptions {
  ids?: number[];
  names?: string[];
  statuses?: JobStatus[];
  createdAfter?: Date;
  createdBefore?: Date;
  /** Default 100; the server clamps to 9999. */
  limit?: number;
  /** Default true. */
  newestFirst?: boolean;
}

export interface MapOptions extends JobOptions {
  /** At most this many jobs of the map run (or wait in the queue) at once; default 8. */
  concurrency?: number;
  /** Seconds for each call's job to finish. */
  callTimeout?: number;
}

/**
 * A connection to a Cloudpipe server. Settings come from the arguments, then the
 * environment (`CLOUDPIPE_ADDRESS`, `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT`,
 * `CLOUDPIPE_TLS_CA`), then defaults (localhost:50051). Every RPC has a deadline of
 * `rpcTimeout` seconds; an unavailable server is retried with backoff for `retryFor`
 * seconds. Close it when done.
 *
 * ```js
 * import { Client } from "@cloudpipe/sdk";
 * const client = new Client("localhost:50051", { apiKey: "..." });
 * (await (await client.shell("echo hello")).result()).toString();   // "hello\n"
 * await client.run((a, b) => a + b, 2, 3);                          // 5
 * client.close();
 * ```
 */
export class Client {
  readonly address: string;
  readonly savedJobs: SavedJobs;
  readonly schedules: Schedules;
  private readonly transport: Transport;
  private readonly defaults: JobOptions;
  private readonly owner: boolean;

  constructor(address?: string, options: ConnectOptions = {}) {
    this.transport = new Transport(resolveOptions({ ...options, address: address ?? options.address }));
    this.address = this.transport.options.address;
    this.savedJobs = new SavedJobs(this.transport);
    this.schedules = new Schedules(this.transport);
    this.defaults = {};
    this.owner = true;
  }

  /** A view of this client whose function jobs and shell jobs use `options` by default
   * (it shares the connection; closing it does nothing). */
  withOptions(options: JobOptions): Client {
    const view = Object.create(Client.prototype) as Client;
    Object.assign(view, this, { defaults: { ...this.defaults, ...options }, owner: false });
    return view;
  }

  close(): void {
    if (this.owner) this.transport.close();
  }

  // -- submitting -------------------------------------------------------------------

  /** Run `cmd` with `/bin/bash -c` in a container; returns its Job.
   *
   * ```js
   * const job = await client.shell("cat", { stdin: "hi" });
   * (await job.result()).toString();   // "hi"
   * ```
   */
  async shell(cmd: string, options: ShellOptions = {}): Promise<Job<Buffer>> {
    return (await this.submitSpecs([shellSpec(cmd, { ...this.defaults, ...options })]))[0] as Job<Buffer>;
  }

  /** Call `fn(...args)` in the Node runner image (cloudpipe/runner-node) and return what it
   * returned (awaited, if it returned a promise). `fn` travels as its source: it must
   * not use variables from the scope it was written in; arguments and the result must
   * be JSON-serializable. Throws RemoteError (with the remote stack) when it threw.
   *
   * ```js
   * await client.run((n) => n * 2, 21);   // 42
   * ```
   */
  async run<A extends unknown[], R>(fn: Fn<A, R>, ...args: A): Promise<Awaited<R>> {
    return (await this.submit(fn, args)).result();
  }

  /** Submit the call `fn(...args)`; returns its Job (`job.result()` is the value). */
  async submit<A extends unknown[], R>(fn: Fn<A, R>, args: A, options: JobOptions = {}): Promise<Job<Awaited<R>>> {
    const spec = functionSpec(fn as Fn<never[], unknown>, args, { ...this.defaults, ...options });
    return (await this.submitSpecs([spec]))[0] as Job<Awaited<R>>;
  }

  /** `fn(item)` for every item, each call a job, at most `concurrency` at a time;
   * resolves with the results in order. The first failure rejects the map, and the
   * map's jobs not finished then are killed.
   *
   * ```js
   * await client.map((x) => x * x, [1, 2, 3], { concurrency: 2 });   // [1, 4, 9]
   * ```
   */
  async map<T, R>(fn: (item: T) => R, items: Iterable<T>, options: MapOptions = {}): Promise<Awaited<R>[]> {
    const { concurrency = 8, callTimeout, ...jobOptions } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidRequest(`concurrency: must be a whole number of at least 1, got ${concurrency}`);
    }
    const inputs = [...items];
    const results: Awaited<R>[] = new Array(inputs.length);
    const running = new Set<Job<Awaited<R>>>();
    let next = 0;
    let failed: unknown = null;
    const worker = async (): Promise<void> => {
      while (failed === null && next < inputs.length) {
        const index = next++;
        const job = await this.submit(fn, [inputs[index]], jobOptions);
        running.add(job);
        try {
          results[index] = await job.result(callTimeout);
        } finally {
          running.delete(job);
        }
      }
    };
    const kills: Promise<unknown>[] = [];
    const workers = Array.from({ length: Math.min(concurrency, inputs.length) }, () =>
      worker().catch((error: unknown) => {
        if (failed !== null) return; // a job this map killed, or a later failure
        failed = error;
        kills.push(Promise.allSettled([...running].map((job) => job.kill())));
      }),
    );
    await Promise.all(workers);
    await Promise.all(kills);
    if (failed !== null) throw failed;
    return results;
  }

  /** Submit specs atomically in one RPC. Each gets an idempotency key, so a Submit
   * retried after UNAVAILABLE returns the same jobs instead of new ones. */
  private async submitSpecs(specs: JobSpec[]): Promise<Job<unknown>[]> {
    const base = randomUUID();
    specs.forEach((spec, index) => {
      spec.idempotencyKey ||= specs.length === 1 ? base : `${base}-${index}`;
    });
    const jobs = this.transport.jobs;
    const response = await this.transport.call(jobs, jobs.submit, { jobs: specs });
    if (response.ids.length !== specs.length) {
      throw new InvalidRequest(`the server returned ${response.ids.length} ids for ${specs.length} jobs`);
    }
    return response.ids.map((id) => new Job(this.transport, id));
  }

  // -- reading ------------------------------------------------------------------------

  /** The job with this id (NotFound if it is not in your account). */
  async get<T = Buffer>(id: number): Promise<Job<T>> {
    const job = new Job<T>(this.transport, id);
    await job.refresh();
    return job;
  }

  /** Your jobs matching every filter, newest first by default. */
  async list(options: ListOptions = {}): Promise<Job<unknown>[]> {
    const jobs = this.transport.jobs;
    const response = await this.transport.call(jobs, jobs.list, {
      ids: options.ids ?? [],
      names: options.names ?? [],
      statuses: (options.statuses ?? []).map(statusToPb),
      afterId: 0,
      beforeId: 0,
      createdAfter: options.createdAfter,
      createdBefore: options.createdBefore,
      limit: options.limit ?? 100,
      newestFirst: options.newestFirst ?? true,
      view: JobView.JOB_VIEW_FULL, // a Job's info carries its output
    });
    return response.jobs.map((job) => new Job(this.transport, job.id, jobInfo(job)));
  }

  /** Kill every unfinished job of your account; returns their ids. */
  async killAll(): Promise<number[]> {
    const jobs = this.transport.jobs;
    return (await this.transport.call(jobs, jobs.killAll, {})).ids;
  }

  /** Number of your jobs per status. */
  async queueStats(): Promise<Record<string, number>> {
    const jobs = this.transport.jobs;
    return (await this.transport.call(jobs, jobs.queueStats, {})).counts;
  }
}
