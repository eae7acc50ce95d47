"""The grpc.aio server: JobService, SavedJobService, ScheduleService, ImageService,
VolumeService, SecretService and QuotaService plus the
standard health and reflection services.

Health: the overall status ("") and JobService are SERVING while the server runs, also
while its executor's engine is away (reads, submits and kills still work); the engine
has its own name, `EXECUTOR_HEALTH_NAME`, NOT_SERVING while it does not answer (no job
is started then)."""

from __future__ import annotations

from collections.abc import Sequence

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cloudpipe_common.limits import MAX_MESSAGE_BYTES
from cloudpipe_proto.v1 import (
    images_pb2,
    images_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    quotas_pb2,
    quotas_pb2_grpc,
    schedules_pb2,
    schedules_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    volumes_pb2,
    volumes_pb2_grpc,
)
from cloudpipe_server.rpc.images import ImageServicer
from cloudpipe_server.rpc.interceptor import AuthInterceptor
from cloudpipe_server.rpc.jobs import JobServicer
from cloudpipe_server.rpc.quotas import QuotaServicer
from cloudpipe_server.rpc.schedules import SavedJobServicer, ScheduleServicer
from cloudpipe_server.rpc.secrets import SecretServicer
from cloudpipe_server.rpc.volumes import VolumeServicer

EXECUTOR_HEALTH_NAME = "cloudpipe.v1.Executor"  # not a gRPC service: the engine jobs run on

SERVICE_NAMES = (
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    health.SERVICE_NAME,
    reflection.SERVICE_NAME,
    schedules_pb2.DESCRIPTOR.services_by_name["SavedJobService"].full_name,
    schedules_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    images_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name,
    volumes_pb2.DESCRIPTOR.services_by_name["VolumeService"].full_name,
    secrets_pb2.DESCRIPTOR.services_by_name["SecretService"].full_name,
    quotas_pb2.DESCRIPTOR.services_by_name["QuotaService"].full_name,
)


def build_server(
    jobs: JobServicer,
    interceptor: AuthInterceptor,
    saved_jobs: SavedJobServicer | None = None,
    schedules: ScheduleServicer | None = None,
    outer: Sequence[aio.ServerInterceptor] = (),
    health_servicer: health.aio.HealthServicer | None = None,
    images: ImageServicer | None = None,
    volumes: VolumeServicer | None = None,
    secrets: SecretServicer | None = None,
    quotas: QuotaServicer | None = None,
) -> tuple[aio.Server, health.aio.HealthServicer]:
    """A server with every service registered; the caller binds ports and starts it.
    `outer` interceptors run before authentication (metrics)."""
    server = aio.server(
        interceptors=[*outer, interceptor],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # a second server on a port in use must fail to bind, not share the port
            ("grpc.so_reuseport", 0),
        ],
    )
    jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)  # type: ignore[no-untyped-call]
    if saved_jobs is not None:
        schedules_pb2_grpc.add_SavedJobServiceServicer_to_server(saved_jobs, server)  # type: ignore[no-untyped-call]
    if schedules is not None:
        schedules_pb2_grpc.add_ScheduleServiceServicer_to_server(schedules, server)  # type: ignore[no-untyped-call]
    if images is not None:
        images_pb2_grpc.add_ImageServiceServicer_to_server(images, server)  # type: ignore[no-untyped-call]
    if volumes is not None:
        volumes_pb2_grpc.add_VolumeServiceServicer_to_server(volumes, server)  # type: ignore[no-untyped-call]
    if secrets is not None:
        secrets_pb2_grpc.add_SecretServiceServicer_to_server(secrets, server)  # type: ignore[no-untyped-call]
    if quotas is not None:
        quotas_pb2_grpc.add_QuotaServiceServicer_to_server(quotas, server)  # type: ignore[no-untyped-call]
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    return server, health_servicer


def _status(serving: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    return health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    """The server's own status; stopping also takes the executor's name down."""
    for name in ("", *SERVICE_NAMES[:1]):
        await health_servicer.set(name, _status(serving))
    if not serving:
        await health_servicer.set(EXECUTOR_HEALTH_NAME, _status(False))


async def set_executor_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    """Whether the executor's engine answers."""
    await health_servicer.set(EXECUTOR_HEALTH_NAME, _status(serving))
