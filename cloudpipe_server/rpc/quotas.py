"""QuotaService servicer: validate, convert, call the service layer, convert back."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cloudpipe_proto.v1 import quotas_pb2 as pb
from cloudpipe_proto.v1 import quotas_pb2_grpc as pb_grpc
from cloudpipe_server.jobs.quotas import AccountQuotas, QuotaService
from cloudpipe_server.rpc.interceptor import current_principal

Context: TypeAlias = grpc.aio.ServicerContext


def _limits(max_queued: int | None, max_running: int | None) -> pb.QuotaLimits:
    message = pb.QuotaLimits()
    if max_queued is not None:
        message.max_queued = max_queued
    if max_running is not None:
        message.max_running = max_running
    return message


def quotas_to_pb(quotas: AccountQuotas) -> pb.AccountQuotas:
    override = quotas.override
    message = pb.AccountQuotas(
        account=quotas.account,
        override=_limits(override.max_queued, override.max_running),
        effective=_limits(quotas.max_queued, quotas.max_running),
    )
    if override.updated_at is not None:
        message.updated_at.FromDatetime(override.updated_at)
    return message


class QuotaServicer(pb_grpc.QuotaServiceServicer):
    def __init__(self, service: QuotaService) -> None:
        self._service = service

    async def Get(self, request: pb.GetQuotasRequest, context: Context) -> pb.AccountQuotas:
        return quotas_to_pb(await self._service.get(current_principal(), request.account))

    async def Set(self, request: pb.SetQuotasRequest, context: Context) -> pb.AccountQuotas:
        given = request.override
        max_queued = given.max_queued if given.HasField("max_queued") else None
        max_running = given.max_running if given.HasField("max_running") else None
        return quotas_to_pb(await self._service.set(current_principal(), request.account, max_queued, max_running))

    async def List(self, request: pb.ListQuotasRequest, context: Context) -> pb.ListQuotasResponse:
        found = await self._service.list_all(current_principal())
        defaults = self._service.defaults
        return pb.ListQuotasResponse(
            accounts=[quotas_to_pb(q) for q in found],
            defaults=_limits(defaults.max_queued_per_account, defaults.max_running_per_account),
        )
