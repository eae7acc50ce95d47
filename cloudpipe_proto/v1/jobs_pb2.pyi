import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_WAITING: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_PROCESSING: _ClassVar[JobStatus]
    JOB_STATUS_DONE: _ClassVar[JobStatus]
    JOB_STATUS_ERROR: _ClassVar[JobStatus]
    JOB_STATUS_KILLED: _ClassVar[JobStatus]
    JOB_STATUS_STALLED: _ClassVar[JobStatus]

class ResultType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_TYPE_UNSPECIFIED: _ClassVar[ResultType]
    RESULT_TYPE_BINARY: _ClassVar[ResultType]
    RESULT_TYPE_PICKLE: _ClassVar[ResultType]

class JobView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_VIEW_UNSPECIFIED: _ClassVar[JobView]
    JOB_VIEW_FULL: _ClassVar[JobView]
    JOB_VIEW_SUMMARY: _ClassVar[JobView]

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STREAM_UNSPECIFIED: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDOUT: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDERR: _ClassVar[OutputStream]

class Signal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_UNSPECIFIED: _ClassVar[Signal]
    SIGNAL_TERM: _ClassVar[Signal]
    SIGNAL_INT: _ClassVar[Signal]
    SIGNAL_KILL: _ClassVar[Signal]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_WAITING: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_PROCESSING: JobStatus
JOB_STATUS_DONE: JobStatus
JOB_STATUS_ERROR: JobStatus
JOB_STATUS_KILLED: JobStatus
JOB_STATUS_STALLED: JobStatus
RESULT_TYPE_UNSPECIFIED: ResultType
RESULT_TYPE_BINARY: ResultType
RESULT_TYPE_PICKLE: ResultType
JOB_VIEW_UNSPECIFIED: JobView
JOB_VIEW_FULL: JobView
JOB_VIEW_SUMMARY: JobView
OUTPUT_STREAM_UNSPECIFIED: OutputStream
OUTPUT_STREAM_STDOUT: OutputStream
OUTPUT_STREAM_STDERR: OutputStream
SIGNAL_UNSPECIFIED: Signal
SIGNAL_TERM: Signal
SIGNAL_INT: Signal
SIGNAL_KILL: Signal

class JobSpec(_message.Message):
    __slots__ = ("cmd", "name", "image", "stdin", "env", "tags", "result_source", "result_type", "max_runtime", "restartable", "depends_on", "resources", "network", "core", "multicore", "profile", "volumes", "serializer", "client_python", "interactive", "idempotency_key", "saved_job", "saved_job_version", "schedule_id", "fresh_container", "secrets", "tty", "inputs", "outputs", "storage_secret")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CMD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RESULT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RESTARTABLE_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CORE_FIELD_NUMBER: _ClassVar[int]
    MULTICORE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    SERIALIZER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PYTHON_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SAVED_JOB_FIELD_NUMBER: _ClassVar[int]
    SAVED_JOB_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    FRESH_CONTAINER_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_SECRET_FIELD_NUMBER: _ClassVar[int]
    cmd: str
    name: str
    image: str
    stdin: bytes
    env: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    result_source: str
    result_type: ResultType
    max_runtime: _duration_pb2.Duration
    restartable: bool
    depends_on: _containers.RepeatedScalarFieldContainer[int]
    resources: Resources
    network: bool
    core: str
    multicore: int
    profile: bool
    volumes: _containers.RepeatedScalarFieldContainer[str]
    serializer: str
    client_python: str
    interactive: bool
    idempotency_key: str
    saved_job: str
    saved_job_version: int
    schedule_id: str
    fresh_container: bool
    secrets: _containers.RepeatedScalarFieldContainer[str]
    tty: bool
    inputs: _containers.ScalarMap[str, str]
    outputs: _containers.ScalarMap[str, str]
    storage_secret: str
    def __init__(self, cmd: _Optional[str] = ..., name: _Optional[str] = ..., image: _Optional[str] = ..., stdin: _Optional[bytes] = ..., env: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., result_source: _Optional[str] = ..., result_type: _Optional[_Union[ResultType, str]] = ..., max_runtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., restartable: _Optional[bool] = ..., depends_on: _Optional[_Iterable[int]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., network: _Optional[bool] = ..., core: _Optional[str] = ..., multicore: _Optional[int] = ..., profile: _Optional[bool] = ..., volumes: _Optional[_Iterable[str]] = ..., serializer: _Optional[str] = ..., client_python: _Optional[str] = ..., interactive: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., saved_job: _Optional[str] = ..., saved_job_version: _Optional[int] = ..., schedule_id: _Optional[str] = ..., fresh_container: _Optional[bool] = ..., secrets: _Optional[_Iterable[str]] = ..., tty: _Optional[bool] = ..., inputs: _Optional[_Mapping[str, str]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., storage_secret: _Optional[str] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("cpus", "memory_bytes", "pids")
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    cpus: float
    memory_bytes: int
    pids: int
    def __init__(self, cpus: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., pids: _Optional[int] = ...) -> None: ...

class Collected(_message.Message):
    __slots__ = ("cputime_user_ns", "cputime_system_ns", "memory_max_usage_bytes", "memory_failcnt", "oom_killed")
    CPUTIME_USER_NS_FIELD_NUMBER: _ClassVar[int]
    CPUTIME_SYSTEM_NS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MAX_USAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FAILCNT_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    cputime_user_ns: int
    cputime_system_ns: int
    memory_max_usage_bytes: int
    memory_failcnt: int
    oom_killed: bool
    def __init__(self, cputime_user_ns: _Optional[int] = ..., cputime_system_ns: _Optional[int] = ..., memory_max_usage_bytes: _Optional[int] = ..., memory_failcnt: _Optional[int] = ..., oom_killed: _Optional[bool] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "status", "account", "created_at", "started_at", "finished_at", "return_code", "stdout", "stderr", "result", "reason", "runtime", "queue_delay", "overhead_delay", "collected", "kill_requested", "attempts", "image", "attempt_history")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DELAY_FIELD_NUMBER: _ClassVar[int]
    OVERHEAD_DELAY_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_FIELD_NUMBER: _ClassVar[int]
    KILL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: int
    spec: JobSpec
    status: JobStatus
    account: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    return_code: int
    stdout: bytes
    stderr: bytes
    result: bytes
    reason: str
    runtime: _duration_pb2.Duration
    queue_delay: _duration_pb2.Duration
    overhead_delay: _duration_pb2.Duration
    collected: Collected
    kill_requested: bool
    attempts: int
    image: str
    attempt_history: _containers.RepeatedCompositeFieldContainer[Attempt]
    def __init__(self, id: _Optional[int] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., account: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., return_code: _Optional[int] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., result: _Optional[bytes] = ..., reason: _Optional[str] = ..., runtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., queue_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., overhead_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., collected: _Optional[_Union[Collected, _Mapping]] = ..., kill_requested: _Optional[bool] = ..., attempts: _Optional[int] = ..., image: _Optional[str] = ..., attempt_history: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("number", "status", "started_at", "ended_at", "return_code", "reason", "owner")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    number: int
    status: JobStatus
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    return_code: int
    reason: str
    owner: str
    def __init__(self, number: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., return_code: _Optional[int] = ..., reason: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobSpec]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobSpec, _Mapping]]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id", "view")
    ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    id: int
    view: JobView
    def __init__(self, id: _Optional[int] = ..., view: _Optional[_Union[JobView, str]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("ids", "names", "statuses", "after_id", "before_id", "created_after", "created_before", "limit", "newest_first", "view")
    IDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    statuses: _containers.RepeatedScalarFieldContainer[JobStatus]
    after_id: int
    before_id: int
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    limit: int
    newest_first: bool
    view: JobView
    def __init__(self, ids: _Optional[_Iterable[int]] = ..., names: _Optional[_Iterable[str]] = ..., statuses: _Optional[_Iterable[_Union[JobStatus, str]]] = ..., after_id: _Optional[int] = ..., before_id: _Optional[int] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., newest_first: _Optional[bool] = ..., view: _Optional[_Union[JobView, str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class KillJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class KillAllRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KillAllResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteJobsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteJobsResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class WaitJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class WatchManyRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class JobStatusEvent(_message.Message):
    __slots__ = ("id", "status", "reason", "return_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    id: int
    status: JobStatus
    reason: str
    return_code: int
    def __init__(self, id: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., reason: _Optional[str] = ..., return_code: _Optional[int] = ...) -> None: ...

class AttachStart(_message.Message):
    __slots__ = ("id", "stdout_offset", "stderr_offset")
    ID_FIELD_NUMBER: _ClassVar[int]
    STDOUT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STDERR_OFFSET_FIELD_NUMBER: _ClassVar[int]
    id: int
    stdout_offset: int
    stderr_offset: int
    def __init__(self, id: _Optional[int] = ..., stdout_offset: _Optional[int] = ..., stderr_offset: _Optional[int] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("start", "stdin", "close_stdin", "signal", "resize")
    START_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    CLOSE_STDIN_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    start: AttachStart
    stdin: bytes
    close_stdin: bool
    signal: Signal
    resize: TerminalSize
    def __init__(self, start: _Optional[_Union[AttachStart, _Mapping]] = ..., stdin: _Optional[bytes] = ..., close_stdin: _Optional[bool] = ..., signal: _Optional[_Union[Signal, str]] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("rows", "columns")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    columns: int
    def __init__(self, rows: _Optional[int] = ..., columns: _Optional[int] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("stream", "offset", "data")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream: OutputStream
    offset: int
    data: bytes
    def __init__(self, stream: _Optional[_Union[OutputStream, str]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExitEvent(_message.Message):
    __slots__ = ("status", "return_code", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    return_code: int
    reason: str
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., return_code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class AttachEvent(_message.Message):
    __slots__ = ("output", "status", "exit")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    output: OutputChunk
    status: JobStatusEvent
    exit: ExitEvent
    def __init__(self, output: _Optional[_Union[OutputChunk, _Mapping]] = ..., status: _Optional[_Union[JobStatusEvent, _Mapping]] = ..., exit: _Optional[_Union[ExitEvent, _Mapping]] = ...) -> None: ...

class QueueStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UsageRequest(_message.Message):
    __slots__ = ("all_accounts", "window_minutes")
    ALL_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MINUTES_FIELD_NUMBER: _ClassVar[int]
    all_accounts: bool
    window_minutes: int
    def __init__(self, all_accounts: _Optional[bool] = ..., window_minutes: _Optional[int] = ...) -> None: ...

class AccountUsage(_message.Message):
    __slots__ = ("account", "counts", "done", "failed", "runtime")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    account: str
    counts: _containers.ScalarMap[str, int]
    done: int
    failed: int
    runtime: _duration_pb2.Duration
    def __init__(self, account: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., runtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class UsageResponse(_message.Message):
    __slots__ = ("window_start", "window_minutes", "counts", "done_per_minute", "failed_per_minute", "runtime", "accounts", "max_queued_per_account", "max_running_per_account")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MINUTES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    DONE_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    FAILED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PER_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_PER_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    window_start: _timestamp_pb2.Timestamp
    window_minutes: int
    counts: _containers.ScalarMap[str, int]
    done_per_minute: _containers.RepeatedScalarFieldContainer[int]
    failed_per_minute: _containers.RepeatedScalarFieldContainer[int]
    runtime: _duration_pb2.Duration
    accounts: _containers.RepeatedCompositeFieldContainer[AccountUsage]
    max_queued_per_account: int
    max_running_per_account: int
    def __init__(self, window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_minutes: _Optional[int] = ..., counts: _Optional[_Mapping[str, int]] = ..., done_per_minute: _Optional[_Iterable[int]] = ..., failed_per_minute: _Optional[_Iterable[int]] = ..., runtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., accounts: _Optional[_Iterable[_Union[AccountUsage, _Mapping]]] = ..., max_queued_per_account: _Optional[int] = ..., max_running_per_account: _Optional[int] = ...) -> None: ...

class QueueStatsResponse(_message.Message):
    __slots__ = ("counts",)
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.ScalarMap[str, int]
    def __init__(self, counts: _Optional[_Mapping[str, int]] = ...) -> None: ...
