"""SecretService servicer: validate, convert, call the service layer, convert back.
No answer carries a value."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cloudpipe_proto.v1 import secrets_pb2 as pb
from cloudpipe_proto.v1 import secrets_pb2_grpc as pb_grpc
from cloudpipe_server.rpc.interceptor import current_principal
from cloudpipe_server.secrets.service import SecretService
from cloudpipe_server.store.base import StoredSecret

Context: TypeAlias = grpc.aio.ServicerContext


def secret_to_pb(secret: StoredSecret) -> pb.Secret:
    message = pb.Secret(name=secret.name)
    message.created_at.FromDatetime(secret.created_at)
    message.updated_at.FromDatetime(secret.updated_at)
    return message


class SecretServicer(pb_grpc.SecretServiceServicer):
    def __init__(self, service: SecretService) -> None:
        self._service = service

    async def Set(self, request: pb.SetSecretRequest, context: Context) -> pb.Secret:
        return secret_to_pb(await self._service.set(current_principal(), request.name, request.value))

    async def List(self, request: pb.ListSecretsRequest, context: Context) -> pb.ListSecretsResponse:
        secrets = await self._service.list_all(current_principal())
        return pb.ListSecretsResponse(secrets=[secret_to_pb(s) for s in secrets])

    async def Delete(self, request: pb.DeleteSecretRequest, context: Context) -> pb.DeleteSecretResponse:
        await self._service.delete(current_principal(), request.name)
        return pb.DeleteSecretResponse()
