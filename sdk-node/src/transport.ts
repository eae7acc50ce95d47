/**
 * `Transport`: the channel, the stubs, the credentials and the call policy (deadline,
 * retries, error mapping) that `Job`, `Attachment`, `SavedJobs` and `Schedules` share.
 * They take a transport, never the client.
 */
import { readFileSync } from "node:fs";
import {
  credentials,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientUnaryCall,
  type ServiceError,
} from "@grpc/grpc-js";
import { JobServiceClient } from "./gen/cloudpipe_proto/v1/jobs.js";
import { SavedJobServiceClient, ScheduleServiceClient } from "./gen/cloudpipe_proto/v1/schedules.js";
import { fromServiceError } from "./errors.js";
import { retrying } from "./retry.js";

export const DEFAULT_ADDRESS = "localhost:50051";
const MAX_MESSAGE_BYTES = 256 << 20;

/** How to reach a server. Unset fields come from the environment (`CLOUDPIPE_ADDRESS`,
 * `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT`, `CLOUDPIPE_TLS_CA`), then the defaults. */
export interface ConnectOptions {
  /** host:port; default localhost:50051. */
  address?: string;
  /** Sent as `authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Sent as `x-cloudpipe-account`. */
  account?: string;
  /** A PEM file: with it the channel is TLS, verified against this CA. */
  tlsCa?: string;
  /** Deadline of every unary call, in seconds (default 30). */
  rpcTimeout?: number;
  /** How long an unavailable server is retried, in seconds (default 10). */
  retryFor?: number;
}

export interface ResolvedOptions {
  address: string;
  apiKey: string;
  account: string;
  tlsCa: string;
  rpcTimeout: number;
  retryFor: number;
}

export function resolveOptions(options: ConnectOptions, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  return {
    address: options.address || env.CLOUDPIPE_ADDRESS || DEFAULT_ADDRESS,
    apiKey: options.apiKey ?? env.CLOUDPIPE_API_KEY ?? "",
    account: options.account ?? env.CLOUDPIPE_ACCOUNT ?? "",
    tlsCa: options.tlsCa ?? env.CLOUDPIPE_TLS_CA ?? "",
    rpcTimeout: options.rpcTimeout ?? 30,
    retryFor: options.retryFor ?? 10,
  };
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
/** A generated unary method, called with metadata and options. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientUnaryCall;

export class Transport {
  readonly jobs: JobServiceClient;
  readonly savedJobs: SavedJobServiceClient;
  readonly schedules: ScheduleServiceClient;
  readonly options: ResolvedOptions;

  constructor(options: ResolvedOptions) {
    this.options = options;
    const creds: ChannelCredentials = options.tlsCa
      ? credentials.createSsl(readFileSync(options.tlsCa))
      : credentials.createInsecure();
    const channelOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    };
    this.jobs = new JobServiceClient(options.address, creds, channelOptions);
    // the other stubs share the first one's channel
    const shared = { ...channelOptions, channelOverride: this.jobs.getChannel() };
    this.savedJobs = new SavedJobServiceClient(options.address, creds, shared);
    this.schedules = new ScheduleServiceClient(options.address, creds, shared);
  }

  get retryFor(): number {
    return this.options.retryFor;
  }

  metadata(): Metadata {
    const metadata = new Metadata();
    if (this.options.apiKey) metadata.set("authorization", `Bearer ${this.options.apiKey}`);
    if (this.options.account) metadata.set("x-cloudpipe-account", this.options.account);
    return metadata;
  }

  /** A deadline `seconds` from now (the RPC timeout by default); none for Infinity. */
  deadline(seconds: number = this.options.rpcTimeout): Date | number {
    return Number.isFinite(seconds) ? new Date(Date.now() + seconds * 1000) : Infinity;
  }

  /** A unary call with a deadline, retried with backoff while the server is UNAVAILABLE
   * (`retry: false` for a call that changes something and is not idempotent); failures
   * become CloudpipeErrors. */
  async call<Req, Res>(
    client: object,
    method: UnaryMethod<Req, Res>,
    request: Req,
    { retry = true }: { retry?: boolean } = {},
  ): Promise<Res> {
    const once = (): Promise<Res> =>
      new Promise<Res>((resolve, reject) => {
        method.call(client, request, this.metadata(), { deadline: this.deadline() }, (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
    try {
      return await retrying(this.options.retryFor, once, retry);
    } catch (error) {
      throw fromServiceError(error);
    }
  }

  close(): void {
    this.savedJobs.close();
    this.schedules.close();
    this.jobs.close();
  }
}
