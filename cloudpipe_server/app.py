"""Composition root: the one place concrete store, executor and authenticator classes
are chosen and wired together."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from grpc import aio
from grpc_health.v1 import health
from prometheus_client import CollectorRegistry

from cloudpipe_common.ratelimit import FailureLimiter, LimiterConfig
from cloudpipe_server.auth import AnonymousAuthenticator, Authenticator, ChainAuthenticator, StaticAdminAuthenticator
from cloudpipe_server.config import Settings
from cloudpipe_server.deleted_accounts import DeletedAccounts
from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.executors.base import Executor, Limits
from cloudpipe_server.executors.docker import DockerConfig, DockerExecutor
from cloudpipe_server.executors.nodes import NodePoolExecutor, PoolNode
from cloudpipe_server.executors.warm import PooledDockerExecutor, WarmConfig, parse_prewarm
from cloudpipe_server.identity import IdentityLease
from cloudpipe_server.images.access import ImageAccess
from cloudpipe_server.images.build import BuildConfig, ImageBuilder
from cloudpipe_server.images.engine import Engine
from cloudpipe_server.images.service import ImageService
from cloudpipe_server.jobs.attach import Watch
from cloudpipe_server.jobs.compat import RunnerCheck
from cloudpipe_server.jobs.dispatcher import Dispatcher, DispatcherConfig
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub
from cloudpipe_server.jobs.quotas import Quotas, QuotaService
from cloudpipe_server.jobs.retention import Retention, RetentionConfig
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.jobs.usage import UsageService
from cloudpipe_server.metered_store import MeteredStore
from cloudpipe_server.metrics import QueueDepth, ServerMetrics, serve
from cloudpipe_server.nodes.spec import load_nodes
from cloudpipe_server.rpc.images import ImageServicer
from cloudpipe_server.rpc.interceptor import AuthInterceptor
from cloudpipe_server.rpc.jobs import JobServicer
from cloudpipe_server.rpc.metrics_interceptor import MetricsInterceptor
from cloudpipe_server.rpc.quotas import QuotaServicer
from cloudpipe_server.rpc.schedules import SavedJobServicer, ScheduleServicer
from cloudpipe_server.rpc.secrets import SecretServicer
from cloudpipe_server.rpc.server import build_server, set_executor_serving, set_serving
from cloudpipe_server.rpc.volumes import VolumeServicer
from cloudpipe_server.scheduler.apply import ApplyService
from cloudpipe_server.scheduler.firing import ServiceJobs
from cloudpipe_server.scheduler.loop import Scheduler, SchedulerConfig
from cloudpipe_server.scheduler.service import SavedJobService, ScheduleService
from cloudpipe_server.secrets.keyring import Keyring
from cloudpipe_server.secrets.service import SecretService
from cloudpipe_server.store import Stores, open_stores
from cloudpipe_server.transfers.base import TransferConfig
from cloudpipe_server.transfers.service import Transfers
from cloudpipe_server.volumes.engine import VolumeEngine
from cloudpipe_server.volumes.service import VolumeQuotas, VolumeService

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_authenticator(settings: Settings) -> Authenticator:
    """The admin credential from the settings, or from <data_dir>/admin.key (created
    once, mode 0600, when no key is configured). Anonymous only when asked for."""
    if settings.allow_anonymous:
        log.warning("!!! AUTHENTICATION IS DISABLED: anyone who can reach this port can run code !!!")
        return AnonymousAuthenticator()
    key = settings.admin_key
    if not key:
        path = settings.admin_key_file
        if path.exists():
            key = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_hex(32)  # hex: never starts with '-', safe in any shell or argv
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(key + "\n")
            log.info("generated an API key for account %r in %s", settings.admin_name, path)
        log.info("the API key of account %r is read from %s", settings.admin_name, path)
    admin = StaticAdminAuthenticator(settings.admin_name, key)
    if not settings.auth_service:
        return admin
    from cloudpipe_server.auth.remote import RemoteAuthConfig, RemoteAuthenticator

    remote = RemoteAuthenticator(
        RemoteAuthConfig(
            url=settings.auth_service,
            ca=settings.auth_ca,
            cert=settings.auth_cert,
            key=settings.auth_key,
            cache_ttl=settings.auth_cache_ttl,
            timeout=settings.auth_timeout,
        )
    )
    log.info("API keys are checked by the auth service at %s", settings.auth_service)
    return ChainAuthenticator([admin, remote], reserved=[settings.admin_name])


def cluster_of(settings: Settings) -> str:
    """Servers sharing one store form a cluster: their containers and volumes carry it."""
    return settings.cluster_id or hashlib.sha256(settings.store_url_for_logs.encode()).hexdigest()[:16]


def build_transfers(settings: Settings) -> Transfers:
    """Jobs' inputs and outputs go through files in <data_dir>/transfers (not /tmp,
    which may be memory)."""
    temp_dir = settings.data_dir / "transfers"
    temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Transfers(
        TransferConfig(
            input_max_bytes=settings.transfer_input_max_bytes,
            output_max_bytes=settings.transfer_output_max_bytes,
            allow_private_addresses=settings.transfer_allow_private_addresses,
            timeout=settings.transfer_timeout,
            deadline=settings.transfer_deadline,
            max_output_files=settings.transfer_max_output_files,
            temp_dir=str(temp_dir),
        )
    )


def build_executor(settings: Settings, owner: str, metrics: ServerMetrics | None = None) -> Executor:
    """Jobs run on the Docker engine: in warm containers when they can (unless
    CLOUDPIPE_WARM_POOL=false), otherwise each in a fresh container. With
    CLOUDPIPE_NODES_FILE, on the engines it names, each job placed on one of them."""
    if not settings.nodes_file:
        return _engine_executor(settings, owner, metrics, settings.docker_host)[0]
    nodes = []
    for spec in load_nodes(settings.nodes_file, os.environ):
        executor, fresh = _engine_executor(settings, owner, metrics, spec.url)
        nodes.append(PoolNode(spec, executor, _engine_info(fresh)))
    return NodePoolExecutor(nodes, utc_now, node_lost_seconds=settings.node_lost_seconds)


def _engine_info(fresh: DockerExecutor) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    async def info() -> Mapping[str, Any]:
        return await asyncio.to_thread(lambda: fresh.api.info())

    return info


def _engine_executor(
    settings: Settings, owner: str, metrics: ServerMetrics | None, base_url: str
) -> tuple[Executor, DockerExecutor]:
    """The executor of one engine, and its fresh-container executor."""
    docker_config = DockerConfig(
        owner=owner,
        cluster=cluster_of(settings),
        base_url=base_url,
        job_user=settings.job_user,
        pull_missing_images=settings.pull_missing_images,
        output_cap_bytes=settings.output_cap_bytes,
        result_cap_bytes=settings.result_cap_bytes,
    )
    fresh = DockerExecutor(docker_config, utc_now, transfers=build_transfers(settings))
    if not settings.warm_pool:
        return fresh, fresh
    warm = WarmConfig(
        max_containers=settings.warm_pool_max_containers or settings.max_concurrent_jobs,
        idle_seconds=settings.warm_pool_idle_seconds,
        prewarm=parse_prewarm(settings.warm_pool_prewarm),
        default_image=settings.default_image,
        default_limits=Limits(
            cpus=settings.default_cpus,
            memory_bytes=settings.default_memory_bytes,
            pids=settings.default_pids,
            max_runtime=None,
            network=False,
        ),
    )
    on_acquire = metrics.warm_acquired if metrics is not None else None
    return PooledDockerExecutor(fresh, docker_config, warm, utc_now, on_acquire=on_acquire), fresh


@dataclass
class RunningServer:
    """A started control plane; `stop()` shuts it down gracefully."""

    settings: Settings
    port: int
    server: aio.Server
    health: health.aio.HealthServicer
    dispatcher: Dispatcher
    executor: Executor
    stores: Stores
    authenticator: Authenticator | None = None
    scheduler: Scheduler | None = None
    identity: IdentityLease | None = None
    metrics: ServerMetrics | None = None
    queue_depth: QueueDepth | None = None
    metrics_server: WSGIServer | None = None
    retention: Retention | None = None
    deleted_accounts: DeletedAccounts | None = None
    images: ImageBuilder | None = None
    volume_engine: Engine | None = None

    async def stop(self, grace: float = 10.0) -> None:
        log.info("shutting down: no new jobs are claimed; waiting up to %.0f s", grace)
        await set_serving(self.health, False)
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.deleted_accounts is not None:
            await self.deleted_accounts.stop()
        if self.queue_depth is not None:
            await self.queue_depth.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        await self.dispatcher.stop(grace)
        await self.server.stop(grace=1.0)
        await self.executor.close()
        if self.images is not None:
            self.images.close()
        if self.volume_engine is not None:
            self.volume_engine.close()
        if self.identity is not None:
            await self.identity.release()  # a restart may take the identity at once
        await self.stores.close()
        if self.authenticator is not None:
            await self.authenticator.close()


def secrets_keyring(settings: Settings) -> Keyring:
    """The keyring of CLOUDPIPE_SECRETS_KEY_FILE (default <data_dir>/secrets.key)."""
    return Keyring(Path(settings.secrets_key_file) if settings.secrets_key_file else settings.data_dir / "secrets.key")


async def rotate_secrets_key(settings: Settings) -> int:
    """Re-encrypt every stored secret with a new key (`cloudpipe-server
    --rotate-secrets-key`); how many were. Servers sharing the store and the key file
    read the new key from it the first time an old one fails them."""
    stores = open_stores(settings.resolved_store_url)
    await stores.initialize()
    try:
        keyring = secrets_keyring(settings)
        keyring.load()
        return await SecretService(stores.secrets, keyring, utc_now).rotate_key()
    finally:
        await stores.close()


async def start_server(settings: Settings, *, executor: Executor | None = None) -> RunningServer:
    """Open the store, start the dispatcher and serve gRPC on `settings.listen`."""
    authenticator = build_authenticator(settings)
    stores = open_stores(settings.resolved_store_url)
    await stores.initialize()
    owner = settings.server_id or f"{socket.gethostname()}-{settings.listen}"
    identity = IdentityLease(stores.jobs, owner, settings.lease_seconds, utc_now)
    try:
        await identity.acquire()  # before the dispatcher adopts what is leased to `owner`
        return await _serve(settings, authenticator, stores, owner, identity, executor)
    except BaseException:
        await identity.release()  # only if this process holds it
        await stores.close()
        await authenticator.close()
        raise


async def _serve(
    settings: Settings,
    authenticator: Authenticator,
    stores: Stores,
    owner: str,
    identity: IdentityLease,
    executor: Executor | None,
) -> RunningServer:
    metrics = ServerMetrics(CollectorRegistry())
    accounts: set[str] = set()
    store = MeteredStore(stores.jobs, metrics, on_account=accounts.add)
    if executor is None:
        executor = build_executor(settings, owner, metrics)
    if isinstance(executor, PooledDockerExecutor):
        pool = executor.pool
        metrics.warm_pool_size.set_function(lambda: pool.size)
    events = JobEvents()
    hub = OutputHub()
    health_servicer = health.aio.HealthServicer()
    await set_executor_serving(health_servicer, False)  # until the engine first answers

    async def report_engine(up: bool) -> None:
        await set_executor_serving(health_servicer, up)

    keyring = secrets_keyring(settings)
    keyring.load()  # a missing key file is made now; a bad one stops the start here
    secrets = SecretService(stores.secrets, keyring, utc_now, settings.secret_max_per_account)
    defaults = Quotas(settings.max_queued_per_account, settings.max_running_per_account)
    quotas = QuotaService(stores.quotas, defaults, authenticator, utc_now)
    dispatcher = Dispatcher(
        store,
        executor,
        events,
        hub,
        DispatcherConfig(
            owner=owner,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            poll_interval=settings.poll_interval,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            default_image=settings.default_image,
            default_cpus=settings.default_cpus,
            default_memory_bytes=settings.default_memory_bytes,
            default_pids=settings.default_pids,
            default_max_runtime=settings.default_max_runtime,
            max_running_per_account=settings.max_running_per_account,
        ),
        utc_now,
        on_engine=report_engine,
        prepare=secrets.resolve,
    )
    builder = ImageBuilder(
        BuildConfig(
            runner_image=settings.python_image,
            base_url=settings.docker_host,
            memory_bytes=settings.image_build_memory_bytes,
            cpus=settings.image_build_cpus,
            timeout=settings.image_build_timeout,
            concurrent_builds=settings.image_builds_at_once,
            max_images_per_account=settings.image_max_per_account,
        )
    )
    volume_engine = Engine(settings.docker_host)
    volumes = VolumeService(
        VolumeEngine(volume_engine, cluster_of(settings), settings.python_image),
        VolumeQuotas(settings.volume_max_per_account, settings.volume_max_bytes),
    )
    service = JobService(
        store,
        dispatcher,
        events,
        utc_now,
        settings.poll_interval,
        watch=Watch(store, dispatcher, events, hub, settings.poll_interval),
        max_queued_per_account=settings.max_queued_per_account,
        queue_limit=quotas.max_queued,
        runner_check=RunnerCheck(executor.image_labels, settings.default_image),
        default_image=settings.default_image,
        image_access=ImageAccess(builder.inspect),
        mount_check=volumes.check_mounts,
        secret_check=secrets.check_uses,
    )
    schedule_store = stores.schedules
    jobs = ServiceJobs(service)
    scheduler = Scheduler(
        schedule_store,
        jobs,
        SchedulerConfig(
            owner=owner,
            interval=settings.scheduler_interval,
            lease_seconds=settings.lease_seconds,
            misfire_grace=settings.scheduler_misfire_grace,
        ),
        utc_now,
        on_fire=lambda fire, now: metrics.fire_recorded(fire, now, settings.scheduler_misfire_grace),
        accounts=authenticator,  # a deleted account's schedules do not fire
    )
    limiter = FailureLimiter(LimiterConfig(settings.auth_failure_burst, settings.auth_failure_refill_seconds))
    server, _ = build_server(
        JobServicer(
            service,
            UsageService(store, utc_now, quotas),
        ),
        AuthInterceptor(authenticator, limiter, on_failure=lambda reason: metrics.auth_failures.labels(reason).inc()),
        SavedJobServicer(SavedJobService(schedule_store, jobs, utc_now)),
        ScheduleServicer(
            schedule_service := ScheduleService(schedule_store, jobs, utc_now, wake=scheduler.wake),
            ApplyService(schedule_store, schedule_service, utc_now, wake=scheduler.wake),
        ),
        outer=[MetricsInterceptor(metrics)],
        health_servicer=health_servicer,
        images=ImageServicer(ImageService(builder)),
        volumes=VolumeServicer(volumes),
        secrets=SecretServicer(secrets),
        quotas=QuotaServicer(quotas),
    )
    retention = Retention(
        store,
        RetentionConfig(
            output_days=settings.retention_output_days,
            job_days=settings.retention_job_days,
            account_bytes=settings.retention_account_bytes,
            interval=settings.retention_interval,
            batch=settings.retention_batch,
        ),
        utc_now,
    )
    deleted_accounts = DeletedAccounts(
        store,
        schedule_store,
        authenticator,
        utc_now,
        settings.deleted_account_sweep_interval,
        on_killed=events.publish,
        quotas=quotas,
    )
    depth = QueueDepth(metrics, store.counts, lambda: len(dispatcher.running_job_ids))
    depth.accounts = accounts
    try:
        if settings.tls_cert:
            credentials = grpc.ssl_server_credentials(
                [(Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())]
            )
            port = server.add_secure_port(settings.listen, credentials)
        else:
            port = server.add_insecure_port(settings.listen)
    except RuntimeError:  # grpc's "Failed to bind to address"
        port = 0
    if port == 0:
        await executor.close()
        raise FailedPrecondition(
            f"CLOUDPIPE_LISTEN: cannot listen on {settings.listen}: the address is in use (another server?)"
            " or not this host's"
        )
    metrics_server = serve(metrics.registry, settings.metrics_listen) if settings.metrics_listen else None
    await server.start()
    dispatcher.start()
    executor.start()
    scheduler.start()
    retention.start()
    deleted_accounts.start()
    depth.start()
    await set_serving(health_servicer, True)
    host = settings.listen.rsplit(":", 1)[0]
    log.info(
        "cloudpipe server %s listening on %s:%d%s (store %s)",
        owner,
        host,
        port,
        " with TLS" if settings.tls_cert else "",
        settings.store_url_for_logs,
    )
    return RunningServer(
        settings,
        port,
        server,
        health_servicer,
        dispatcher,
        executor,
        stores,
        authenticator,
        scheduler,
        identity,
        metrics=metrics,
        queue_depth=depth,
        metrics_server=metrics_server,
        retention=retention,
        deleted_accounts=deleted_accounts,
        images=builder,
        volume_engine=volume_engine,
    )
