/**
 * Errors raised by the SDK; the same tree as the Python SDK's (cloudpipe_sdk/_errors.py).
 *
 * ```text
 * CloudpipeError
 *  ├── AuthError       credentials missing or wrong (UNAUTHENTICATED / PERMISSION_DENIED)
 *  ├── NotFound        no such job (saved job, schedule) in your account
 *  ├── AlreadyExists   a saved job or schedule of that name exists already
 *  ├── InvalidRequest  the server refused the request (INVALID_ARGUMENT / FAILED_PRECONDITION)
 *  ├── Unavailable     the server cannot be reached (after retries)
 *  ├── Timeout         a deadline passed before the job finished (DEADLINE_EXCEEDED)
 *  ├── JobFailed       the job ended without a result: reason, return code, output tails
 *  │    ├── JobKilled  the job was killed
 *  │    └── JobStalled the server lost the job's runner
 *  └── RemoteError     a JavaScript function job threw: the remote name, message, stack
 * ```
 */
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

/** Root of every error the SDK raises. `code` is the gRPC status name ("NOT_FOUND")
 * for errors from the server, empty for errors raised by the SDK itself. */
export class CloudpipeError extends Error {
  code = "";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server did not accept the credentials. */
export class AuthError extends CloudpipeError {}
/** The job (saved job, schedule) does not exist in your account. */
export class NotFound extends CloudpipeError {}
/** A saved job or schedule of that name exists already in your account. */
export class AlreadyExists extends CloudpipeError {}
/** The server rejected the request as invalid; the message names the field. */
export class InvalidRequest extends CloudpipeError {}
/** The server could not be reached or is overloaded; retrying later may help. */
export class Unavailable extends CloudpipeError {}
/** The job did not finish within the given time. */
export class Timeout extends CloudpipeError {}

export interface JobFailure {
  jobId: number;
  status: string;
  reason: string;
  returnCode: number | null;
  stdoutTail: string;
  stderrTail: string;
}

/** A job ended without a result.
 *
 * ```js
 * try { await (await client.shell("exit 3")).result(); }
 * catch (e) { if (e instanceof JobFailed) console.log(e.returnCode); } // 3
 * ```
 */
export class JobFailed extends CloudpipeError implements JobFailure {
  jobId: number;
  status: string;
  reason: string;
  returnCode: number | null;
  stdoutTail: string;
  stderrTail: string;
  constructor(failure: JobFailure) {
    let message = `job ${failure.jobId} ended ${failure.status}`;
    if (failure.reason) message += `: ${failure.reason}`;
    if (failure.stderrTail) message += `\n--- stderr (tail) ---\n${failure.stderrTail}`;
    super(message);
    this.jobId = failure.jobId;
    this.status = failure.status;
    this.reason = failure.reason;
    this.returnCode = failure.returnCode;
    this.stdoutTail = failure.stdoutTail;
    this.stderrTail = failure.stderrTail;
  }
}

/** The job was killed (on request, or by a limit). */
export class JobKilled extends JobFailed {}
/** The server lost the job's runner and the job was not restartable. */
export class JobStalled extends JobFailed {}

/** A JavaScript function job threw. `remoteName` and `remoteMessage` are the thrown
 * error's, `remoteStack` its stack as the runner printed it; `message` names the job. */
export class RemoteError extends CloudpipeError {
  jobId: number;
  remoteName: string;
  remoteMessage: string;
  remoteStack: string;
  constructor(jobId: number, remoteName: string, remoteMessage: string, remoteStack: string) {
    super(`job ${jobId}: ${remoteName}: ${remoteMessage}`);
    this.jobId = jobId;
    this.remoteName = remoteName;
    this.remoteMessage = remoteMessage;
    this.remoteStack = remoteStack;
    this.stack = `${this.name}: ${this.message}\n--- remote stack ---\n${remoteStack}`;
  }
}

const CODES = new Map<number, new (message: string) => CloudpipeError>([
  [GrpcStatus.UNAUTHENTICATED, AuthError],
  [GrpcStatus.PERMISSION_DENIED, AuthError],
  [GrpcStatus.NOT_FOUND, NotFound],
  [GrpcStatus.ALREADY_EXISTS, AlreadyExists],
  [GrpcStatus.INVALID_ARGUMENT, InvalidRequest],
  [GrpcStatus.FAILED_PRECONDITION, InvalidRequest],
  [GrpcStatus.UNAVAILABLE, Unavailable],
  [GrpcStatus.DEADLINE_EXCEEDED, Timeout],
]);

/** Whether `error` is a gRPC error with a status code. */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/** The SDK error for a failed RPC (any other error is returned as it is). */
export function fromServiceError(error: unknown): Error {
  if (error instanceof CloudpipeError || !isServiceError(error)) {
    return error instanceof Error ? error : new CloudpipeError(String(error));
  }
  const name = GrpcStatus[error.code] ?? "UNKNOWN";
  const Cls = CODES.get(error.code) ?? CloudpipeError;
  const mapped = new Cls(`${error.details || error.message} (${name})`);
  mapped.code = name;
  return mapped;
}
