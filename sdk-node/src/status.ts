/** Job statuses, as lower-case names like the Python SDK's `JobStatus` values. */
import { JobStatus as PbStatus } from "./gen/cloudpipe_proto/v1/jobs.js";
import { InvalidRequest } from "./errors.js";

export type JobStatus = "waiting" | "queued" | "processing" | "done" | "error" | "killed" | "stalled";

const FROM_PB: Partial<Record<PbStatus, JobStatus>> = {
  [PbStatus.JOB_STATUS_WAITING]: "waiting",
  [PbStatus.JOB_STATUS_QUEUED]: "queued",
  [PbStatus.JOB_STATUS_PROCESSING]: "processing",
  [PbStatus.JOB_STATUS_DONE]: "done",
  [PbStatus.JOB_STATUS_ERROR]: "error",
  [PbStatus.JOB_STATUS_KILLED]: "killed",
  [PbStatus.JOB_STATUS_STALLED]: "stalled",
};
const TO_PB = new Map(Object.entries(FROM_PB).map(([pb, name]) => [name, Number(pb) as PbStatus]));
const FINISHED: ReadonlySet<JobStatus> = new Set(["done", "error", "killed", "stalled"]);

export function statusFromPb(status: PbStatus): JobStatus {
  const name = FROM_PB[status];
  if (name === undefined) throw new InvalidRequest(`unknown job status ${status}: upgrade the SDK`);
  return name;
}

export function statusToPb(status: JobStatus): PbStatus {
  const value = TO_PB.get(status);
  if (value === undefined) throw new InvalidRequest(`unknown job status ${JSON.stringify(status)}`);
  return value;
}

/** Whether a job in this status has ended (done, error, killed or stalled). */
export function isFinished(status: JobStatus): boolean {
  return FINISHED.has(status);
}
