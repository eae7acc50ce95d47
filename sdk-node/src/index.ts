/**
 * Cloudpipe for Node.js: shell jobs and JavaScript function jobs over gRPC.
 * See docs/node.md.
 */
export { Client, type ListOptions, type MapOptions } from "./client.js";
export { Job, type JobInfo } from "./job.js";
export {
  Attachment,
  type ExitEvent,
  type JobEvent,
  type OutputEvent,
  type SignalName,
  type StatusEvent,
  type StreamName,
} from "./attach.js";
export { shellSpec, functionSpec, NODE_RUNNER_IMAGE, type JobOptions, type ShellOptions } from "./options.js";
export {
  SavedJobs,
  Schedules,
  scheduleSpec,
  type Catchup,
  type Fire,
  type Overlap,
  type RunOptions,
  type SavedJob,
  type Schedule,
  type ScheduleOptions,
} from "./schedules.js";
export { isFinished, type JobStatus } from "./status.js";
export type { ConnectOptions } from "./transport.js";
export {
  AlreadyExists,
  AuthError,
  CloudpipeError,
  InvalidRequest,
  JobFailed,
  JobKilled,
  JobStalled,
  NotFound,
  RemoteError,
  Timeout,
  Unavailable,
} from "./errors.js";
