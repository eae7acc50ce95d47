"""Server settings: one frozen dataclass, read from the environment in one place.

Every setting has a `CLOUDPIPE_*` variable; the admin credential also honours the
original server's `PIPE_ADMINNAME` / `PIPE_ADMINKEY`. Command-line flags override the
environment (see `cloudpipe_server.__main__`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cloudpipe_common.limits import (
    DEFAULT_OUTPUT_CAP_BYTES,
    DEFAULT_RESULT_CAP_BYTES,
    MAX_MESSAGE_BYTES,
    job_answer_bytes,
)
from cloudpipe_common.settings import default_data_dir, parse_setting
from cloudpipe_server.errors import InvalidArgument

DEFAULT_RUNNER_IMAGE = "cloudpipe/runner-python3:latest"


@dataclass(frozen=True)
class Settings:
    """Everything the server can be configured with. Sizes in bytes, times in seconds."""

    listen: str = "127.0.0.1:50051"
    # This server's identity in leases and container labels. It must survive restarts
    # (so a restarted server re-adopts its containers) and differ between replicas.
    # Empty: "<hostname>-<listen>".
    server_id: str = ""
    # Servers sharing one store; labels their containers. Empty: derived from the store URL.
    cluster_id: str = ""
    data_dir: Path = Path("/var/lib/cloudpipe")
    store_url: str = ""  # empty: sqlite:///<data_dir>/cloudpipe.db
    admin_name: str = "admin"
    admin_key: str = ""  # empty: generated once and written to <data_dir>/admin.key
    allow_anonymous: bool = False
    default_image: str = DEFAULT_RUNNER_IMAGE
    python_image: str = DEFAULT_RUNNER_IMAGE
    max_concurrent_jobs: int = 4
    poll_interval: float = 0.5
    lease_seconds: float = 30.0
    max_attempts: int = 3
    default_cpus: float = 1.0
    default_memory_bytes: int = 1 << 30
    default_pids: int = 512
    default_max_runtime: float = 3600.0
    job_user: str = "65534:65534"
    pull_missing_images: bool = True
    # Image builds (ImageService): each build's containers get this much memory and
    # these CPUs; a build longer than the timeout fails (docs/sdk.md, "Images").
    image_build_memory_bytes: int = 2 << 30
    image_build_cpus: float = 1.0
    image_build_timeout: float = 900.0
    image_builds_at_once: int = 2  # per server; more wait for a slot
    image_max_per_account: int = 100
    volume_max_per_account: int = 20
    secrets_key_file: str = ""  # empty: <data_dir>/secrets.key (made on first use, 0600)
    secret_max_per_account: int = 100
    volume_max_bytes: int = 10 << 30  # per volume, checked at each upload (jobs' own writes are not capped)
    # Per stream (stdout, stderr); beyond it output is dropped and noted. With the result
    # cap, it must leave a job's whole answer within one gRPC message (validate).
    output_cap_bytes: int = DEFAULT_OUTPUT_CAP_BYTES
    # A `file:` result over this many bytes fails the job with a reason saying so; it is
    # never held whole in memory (the archive is streamed and counted).
    result_cap_bytes: int = DEFAULT_RESULT_CAP_BYTES
    # Job inputs and outputs (s3:// and http(s):// URLs; docs/sdk.md, "Inputs and
    # outputs"): all inputs of one job, and all its outputs, at most this many bytes each
    # (a job over it fails, saying so); each request's connect and read timeout; and
    # whether a URL or S3 endpoint may resolve to a loopback, private, link-local or
    # metadata address (off: refused, so users cannot reach the server's own network).
    transfer_input_max_bytes: int = 1 << 30
    transfer_output_max_bytes: int = 1 << 30
    transfer_timeout: float = 30.0
    transfer_deadline: float = 900.0  # seconds for all of a job's inputs, and all of its outputs
    transfer_max_output_files: int = 10_000
    transfer_allow_private_addresses: bool = False
    docker_host: str = ""  # empty: DOCKER_HOST or the local socket
    # Run jobs on several Docker engines, each job placed on one (cloudpipe_server/nodes):
    # a JSON file listing them. Empty (the default): the one engine of docker_host.
    nodes_file: str = ""
    # A node whose engine has not answered for this long is lost: the jobs it ran are
    # requeued (restartable) or STALLED once their leases expire.
    node_lost_seconds: float = 60.0
    log_level: str = "INFO"
    # Serve Prometheus metrics at http://<this>/metrics; empty (the default): not served.
    # No credentials are checked there: use loopback or a private address.
    metrics_listen: str = ""
    # API keys checked by the auth service's internal API over mutual TLS (spec 5.1);
    # empty: only the admin credential works, as with the original's NullAuthService.
    auth_service: str = ""  # e.g. https://authstore:9001/v1
    auth_ca: str = ""  # the internal CA (ca.pem from `cloudpipe pki init`)
    auth_cert: str = ""  # this server's client certificate (cloudpipe-cert.pem)
    auth_key: str = ""  # and its key (cloudpipe-key.pem)
    auth_cache_ttl: float = 30.0  # seconds a positive answer is reused (a revoked key lives this long)
    auth_timeout: float = 5.0
    # Failed authentications per peer address: this many at once, then one per refill.
    auth_failure_burst: int = 20
    auth_failure_refill_seconds: float = 3.0
    # TLS for the gRPC port (server-cert.pem / server-key.pem); empty: plaintext.
    tls_cert: str = ""
    tls_key: str = ""
    # Per-account quotas; 0: no limit.
    max_queued_per_account: int = 0  # WAITING + QUEUED jobs; Submit beyond it: RESOURCE_EXHAUSTED
    max_running_per_account: int = 0  # PROCESSING jobs; more stay queued until one ends
    # The schedule firing loop: longest sleep between passes (it also wakes for the
    # next due fire), and how late a fire may be found before it counts as missed
    # (then the schedule's catch-up policy decides).
    scheduler_interval: float = 1.0
    scheduler_misfire_grace: float = 10.0
    # Warm containers (docs/warm-containers.md): per (account, image, limits), taking
    # jobs one after another through the runner image's agent. At most
    # `warm_pool_max_containers` (0: max_concurrent_jobs), removed after
    # `warm_pool_idle_seconds` idle; `warm_pool_prewarm` ("account[=n],...") starts
    # some with the default image and limits as soon as the server runs.
    warm_pool: bool = True
    warm_pool_max_containers: int = 0
    warm_pool_idle_seconds: float = 300.0
    warm_pool_prewarm: str = ""
    # Retention (docs/retention.md): finished jobs' stdout, stderr, result and stdin are
    # emptied this many days after they finished, and the jobs themselves deleted after
    # `retention_job_days`; 0 (the default): kept for ever. Every server sweeps, at most
    # `retention_batch` jobs per statement, every `retention_interval` seconds.
    retention_output_days: float = 0.0
    retention_job_days: float = 0.0
    # ... and each account's finished jobs' output kept within this many bytes, the oldest
    # emptied first (0: no budget)
    retention_account_bytes: int = 0
    retention_interval: float = 300.0
    retention_batch: int = 500
    # Seconds between sweeps for accounts deleted in the auth service: their unfinished
    # jobs are killed and their schedules paused (cloudpipe_server/deleted_accounts.py).
    deleted_account_sweep_interval: float = 30.0

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'cloudpipe.db'}"

    @property
    def store_url_for_logs(self) -> str:
        """The store URL with any password replaced, safe to log."""
        parts = urlsplit(self.resolved_store_url)
        if parts.password is None:
            return self.resolved_store_url
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `CLOUDPIPE_<FIELD>` variables; empty values count as unset.
        Raises InvalidArgument naming the variable when a value does not parse."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"data_dir": default_data_dir(env)}
        aliases = {"admin_name": ("PIPE_ADMINNAME",), "admin_key": ("PIPE_ADMINKEY",)}
        for item in dataclasses.fields(cls):
            names = (f"CLOUDPIPE_{item.name.upper()}", *aliases.get(item.name, ()))
            raw = next((env[n] for n in names if env.get(n)), None)
            if raw is None:
                continue
            values[item.name] = parse_setting(names[0], raw, cls.__dataclass_fields__[item.name].type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.output_cap_bytes < 1 or self.result_cap_bytes < 1:
            raise InvalidArgument("CLOUDPIPE_OUTPUT_CAP_BYTES and CLOUDPIPE_RESULT_CAP_BYTES must be at least 1")
        answer = job_answer_bytes(self.output_cap_bytes, self.result_cap_bytes)
        if answer > MAX_MESSAGE_BYTES:
            raise InvalidArgument(
                f"CLOUDPIPE_OUTPUT_CAP_BYTES ({self.output_cap_bytes}, per stream, twice) and"
                f" CLOUDPIPE_RESULT_CAP_BYTES ({self.result_cap_bytes}) leave a job's answer up to {answer} bytes"
                f" with its stdin, over the {MAX_MESSAGE_BYTES}-byte message limit: its Get would fail;"
                " lower them"
            )
        if self.image_build_memory_bytes < (64 << 20) or self.image_build_cpus <= 0 or self.image_build_timeout <= 0:
            raise InvalidArgument(
                "CLOUDPIPE_IMAGE_BUILD_MEMORY_BYTES must be at least 64 MiB, _CPUS and _TIMEOUT positive"
            )
        if self.image_builds_at_once < 1 or self.image_max_per_account < 1:
            raise InvalidArgument("CLOUDPIPE_IMAGE_BUILDS_AT_ONCE and _MAX_PER_ACCOUNT must be at least 1")
        if self.volume_max_per_account < 1 or self.volume_max_bytes < 1:
            raise InvalidArgument("CLOUDPIPE_VOLUME_MAX_PER_ACCOUNT and _MAX_BYTES must be at least 1")
        if (
            min(self.transfer_input_max_bytes, self.transfer_output_max_bytes, self.transfer_max_output_files) < 1
            or self.transfer_timeout <= 0
            or self.transfer_deadline <= 0
        ):
            raise InvalidArgument(
                "CLOUDPIPE_TRANSFER_INPUT_MAX_BYTES, _OUTPUT_MAX_BYTES and _MAX_OUTPUT_FILES must be at least 1,"
                " _TIMEOUT and _DEADLINE positive"
            )
        if self.max_concurrent_jobs < 1:
            raise InvalidArgument("CLOUDPIPE_MAX_CONCURRENT_JOBS must be at least 1")
        if self.lease_seconds <= self.poll_interval:
            raise InvalidArgument("CLOUDPIPE_LEASE_SECONDS must be longer than CLOUDPIPE_POLL_INTERVAL")
        if self.max_attempts < 1:
            raise InvalidArgument("CLOUDPIPE_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.node_lost_seconds < 86_400 * 365:  # NaN fails too
            raise InvalidArgument("CLOUDPIPE_NODE_LOST_SECONDS must be a positive number of seconds")
        if self.auth_service:
            if not self.auth_service.startswith("https://"):
                raise InvalidArgument("CLOUDPIPE_AUTH_SERVICE must be an https:// URL (mutual TLS)")
            missing = [n for n in ("auth_ca", "auth_cert", "auth_key") if not getattr(self, n)]
            if missing:
                names = ", ".join(f"CLOUDPIPE_{n.upper()}" for n in missing)
                raise InvalidArgument(f"CLOUDPIPE_AUTH_SERVICE needs {names}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise InvalidArgument("CLOUDPIPE_TLS_CERT and CLOUDPIPE_TLS_KEY go together")
        if self.scheduler_interval <= 0 or self.scheduler_misfire_grace < 0:
            raise InvalidArgument("CLOUDPIPE_SCHEDULER_INTERVAL must be positive, _MISFIRE_GRACE not negative")
        if self.warm_pool_max_containers < 0 or self.warm_pool_idle_seconds <= 0:
            raise InvalidArgument(
                "CLOUDPIPE_WARM_POOL_MAX_CONTAINERS must not be negative, _IDLE_SECONDS must be positive"
            )
        for entry in filter(None, (e.strip() for e in self.warm_pool_prewarm.split(","))):
            _, _, count = entry.partition("=")
            if not entry.partition("=")[0].strip() or (count and not count.strip().isdigit()):
                raise InvalidArgument(f"CLOUDPIPE_WARM_POOL_PREWARM: {entry!r} is not account or account=count")
        if self.retention_account_bytes < 0:
            raise InvalidArgument("CLOUDPIPE_RETENTION_ACCOUNT_BYTES must not be negative (0: no budget)")
        if self.retention_output_days < 0 or self.retention_job_days < 0:
            raise InvalidArgument("CLOUDPIPE_RETENTION_OUTPUT_DAYS / _JOB_DAYS must not be negative (0: keep)")
        if self.deleted_account_sweep_interval <= 0:
            raise InvalidArgument("CLOUDPIPE_DELETED_ACCOUNT_SWEEP_INTERVAL must be positive")
        if self.retention_interval <= 0 or self.retention_batch < 1:
            raise InvalidArgument("CLOUDPIPE_RETENTION_INTERVAL must be positive, _BATCH at least 1")
        if self.max_queued_per_account < 0 or self.max_running_per_account < 0:
            raise InvalidArgument("CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT / _RUNNING_PER_ACCOUNT must not be negative")
