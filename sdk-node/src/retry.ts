/**
 * The one policy for an unavailable server (gRPC UNAVAILABLE), as in the Python SDK
 * (cloudpipe_sdk/_retry.py): try again with exponential backoff (0.1 s, doubling, at
 * most 2 s apart) until the server has been unavailable for `retryFor` seconds in a
 * row, then raise Unavailable.
 *
 * Unary calls use `retrying`. Streams (Wait, Attach) keep an `Outage` per stream:
 * `opened()` before each connection, `progress()` for each message, `delay()` after a
 * lost connection. A connection that delivered a message, or stayed open longer than
 * the longest backoff, shows the server was up: the clock starts again from its loss.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Unavailable, isServiceError } from "./errors.js";

export const MAX_WAIT = 2.0;
const MULTIPLIER = 0.1;

/** Seconds to wait before attempt `attempt + 1` (attempt counts from 1). */
export function backoff(attempt: number): number {
  return Math.min(MULTIPLIER * 2 ** (attempt - 1), MAX_WAIT);
}

export function unavailable(error: unknown): boolean {
  return isServiceError(error) && error.code === GrpcStatus.UNAVAILABLE;
}

export const sleep = (seconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const now = (): number => performance.now() / 1000;

/** Call `attempt` until it succeeds, retrying UNAVAILABLE for `retryFor` seconds
 * (`retry: false`: one attempt). Other errors, and the last UNAVAILABLE, are thrown. */
export async function retrying<T>(retryFor: number, attempt: () => Promise<T>, retry = true): Promise<T> {
  const started = now();
  for (let number = 1; ; number++) {
    try {
      return await attempt();
    } catch (error) {
      if (!retry || !unavailable(error) || now() - started >= retryFor) throw error;
      await sleep(backoff(number));
    }
  }
}

/** Reconnection of one stream under the policy above; `what` names it in the error. */
export class Outage {
  private attempts = 0;
  private first = 0;
  private openedAt = now();
  constructor(
    private readonly retryFor: number,
    private readonly what: string,
  ) {}

  opened(): void {
    this.openedAt = now();
  }

  progress(): void {
    this.attempts = 0;
  }

  /** Seconds to wait before reconnecting; throws Unavailable once the server has been
   * unavailable for `retryFor` seconds in a row. */
  delay(): number {
    const time = now();
    if (time - this.openedAt > MAX_WAIT) this.attempts = 0; // that connection was up
    if (this.attempts === 0) this.first = time;
    this.attempts += 1;
    if (time - this.first >= this.retryFor) {
      throw new Unavailable(`${this.what}: the server has been unavailable for ${this.retryFor} s`);
    }
    return backoff(this.attempts);
  }
}
