"""Routing and wiring: the Starlette app that serves the multyvac HTTP API over the
Cloudpipe gRPC API.

Starlette rather than FastAPI: the Go server's quirks (exact Content-Types, the method
check before authentication, plain-text Go 404s, no 422 validation layer, no slash
redirects) are easier to keep with plain Request/Response objects. Each route is a
small ASGI endpoint that accepts every method and decides itself, as Go's ServeMux
handlers did.

The gateway is a pure client of the gRPC server: it holds no job state, forwards the
Basic credentials as gRPC metadata and lets the server decide. Every gRPC call has a
deadline, since multyvac sets no HTTP timeout and would wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudpipe_common.logs import bind_log_context
from cloudpipe_proto.v1 import images_pb2_grpc as images_grpc
from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_proto.v1 import quotas_pb2_grpc as quotas_grpc
from cloudpipe_proto.v1 import schedules_pb2_grpc as schedules_grpc
from cloudpipe_proto.v1 import secrets_pb2_grpc as secrets_grpc
from cloudpipe_proto.v1 import volumes_pb2_grpc as volumes_grpc
from cloudpipe_sdk._channel import open_aio_channel
from http_gateway import job_json, multyvac, ui
from http_gateway.caller import Caller
from http_gateway.config import GatewaySettings
from http_gateway.golang import parse_query
from http_gateway.metrics import GatewayMetrics, MetricsMiddleware
from http_gateway.multyvac import ApiError, Reply
from http_gateway.multyvac_keys import key_json
from http_gateway.multyvac_sync import SyncPorts, as_sync_job, is_sync, mount_of
from http_gateway.multyvac_volumes import MultyvacVolumes, vnf, volume_name
from http_gateway.ui_accounts import AccountsApi
from http_gateway.ui_api import UiApi
from http_gateway.ui_errors import service_failure
from http_gateway.ui_images import ImageApi
from http_gateway.ui_live import EventStream, Feeds
from http_gateway.ui_quotas import QuotaApi
from http_gateway.ui_schedules import ScheduleApi, UsageApi
from http_gateway.ui_secrets import SecretApi
from http_gateway.ui_volumes import FileDownload, VolumeApi

log = logging.getLogger(__name__)

NOT_FOUND = Reply(404, multyvac.TEXT, b"404 page not found\n")

Handler = Callable[[Request], Awaitable[Reply]]


class Endpoint:
    """An ASGI endpoint around one handler: every method reaches it, an ApiError is
    answered in the Go envelope, a client gone mid-body gets nothing, and anything else
    is logged and answered 500 WTF."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            reply = await self._handler(request)
        except ApiError as exc:
            reply = exc.reply()
        except ClientDisconnect:  # gone mid-body: nobody to answer
            log.info("%s %s: the client went away before sending its whole body", request.method, request.url.path)
            return
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            reply = multyvac.wtf(type(exc).__name__).reply()
        headers = {"content-type": reply.content_type}
        if reply.location:
            headers["location"] = reply.location
        if reply.disposition:
            headers["content-disposition"] = reply.disposition
        await Response(reply.body, reply.status, headers=headers)(scope, receive, send)


class Gateway:
    """The handlers; `open()` must run inside the serving event loop before any request."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self.metrics = metrics
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._services: dict[str, Any] = {}
        self.volumes = MultyvacVolumes(self, settings.rpc_timeout)
        self._sync: SyncPorts | None = None

    async def open(self) -> None:
        self._channel = open_aio_channel(self._settings.server, self._settings.server_tls_ca)
        self._stub = pb_grpc.JobServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._services = {
            "jobs": self._stub,
            "schedules": schedules_grpc.ScheduleServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "saved_jobs": schedules_grpc.SavedJobServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "images": images_grpc.ImageServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "volumes": volumes_grpc.VolumeServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "secrets": secrets_grpc.SecretServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "quotas": quotas_grpc.QuotaServiceStub(self._channel),  # type: ignore[no-untyped-call]
        }
        self._sync = SyncPorts(self._stub, self._settings.host_port[0], self._settings.sync_offer_seconds)
        log.info("gateway for gRPC server %s", self._settings.server)

    @property
    def stub(self) -> Any:
        return self._stub

    def service_stub(self, service: str) -> Any:
        """The stub of `service`, for the UI's streaming calls (volume downloads and uploads)."""
        return self._services[service]

    async def close(self) -> None:
        if self._sync is not None:
            await self._sync.close()
        if self._channel is not None:
            await self._channel.close()

    # -- plumbing -------------------------------------------------------------------------

    async def call(self, op: str, method: str, request: Any, caller: Caller, jid: int = 0) -> Any:
        started = time.perf_counter()
        try:
            answer = await getattr(self._stub, method)(
                request, metadata=caller.metadata, timeout=self._settings.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            self.metrics.observe_call(method, exc.code().name, time.perf_counter() - started)
            log.info("%s for %s failed: %s %s", method, caller.account, exc.code().name, exc.details())
            raise multyvac.rpc_failure(op, exc, caller.account, jid) from None
        self.metrics.observe_call(method, "OK", time.perf_counter() - started)
        return answer

    async def call_service(self, service: str, method: str, request: Any, caller: Caller) -> Any:
        """A unary call of `service` ("jobs", "schedules", "saved_jobs", "images", "volumes",
        "secrets", "quotas") for the UI's routes; a failure is answered by its meaning (ui_errors), not as a
        multyvac job route."""
        started = time.perf_counter()
        metric = f"{service}.{method}"
        try:
            answer = await getattr(self._services[service], method)(
                request, metadata=caller.metadata, timeout=self._settings.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            self.metrics.observe_call(metric, exc.code().name, time.perf_counter() - started)
            log.info("%s for %s failed: %s %s", metric, caller.account, exc.code().name, exc.details())
            raise service_failure(exc, caller.account) from None
        self.metrics.observe_call(metric, "OK", time.perf_counter() - started)
        return answer

    async def _authenticate(self, caller: Caller, op: str = "probe") -> None:
        """Have the server check the credentials, with a List that cannot match anything."""
        await self.call(op, "List", pb.ListJobsRequest(ids=[multyvac.MAX_JID], limit=1), caller)

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        """`error`, once the server has accepted the credentials: the Go server
        authenticated before parsing, so bad credentials win over bad input."""
        await self._authenticate(caller)
        return error

    verified = _verified  # for the route modules (multyvac_volumes)

    @staticmethod
    def caller(request: Request) -> Caller:
        account, key = multyvac.basic_credentials(request.headers.get("authorization"))
        metadata = multyvac.grpc_metadata(account, key)
        if metadata is None:
            raise multyvac.afail(account)
        bind_log_context(account=account)  # the rest of the request (its own task) logs with it
        return Caller(account, metadata)

    async def _body(self, request: Request, caller: Caller, kill: bool = False, verified: bool = False) -> bytes:
        """The request body, at most `max_body_bytes` of it (413 beyond, once the
        credentials are known good: `verified` says they already are)."""
        limit = self._settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_large = declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size = 0
        if not too_large:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    too_large = True
                    break
                chunks.append(chunk)
        if too_large:
            error = multyvac.body_too_large(limit, kill)
            raise error if verified else await self._verified(caller, error)
        return b"".join(chunks)

    # -- routes ---------------------------------------------------------------------------

    async def auth_service(self, request: Request) -> Reply:
        return job_json.auth_service_reply(self._settings.auth_address, self._settings.auth_style)

    async def job(self, request: Request) -> Reply:
        if request.method == "GET":
            return await self._list(request)
        if request.method == "POST":
            return await self._submit(request)
        raise multyvac.minval()

    async def _list(self, request: Request) -> Reply:
        caller = self.caller(request)
        try:
            plan = multyvac.parse_list_query(request.scope["query_string"])
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        if plan.empty:
            await self._authenticate(caller)
            return job_json.jobs_reply([], self._settings.default_image)
        response = await self.call("list", "List", plan.request, caller)
        rendered = [job_json.render_job(job, self._settings.default_image) for job in response.jobs]
        for job, out in zip(response.jobs, rendered, strict=True):
            if is_sync(job.spec) and job.status == pb.JOB_STATUS_PROCESSING and self._sync is not None:
                port = await self._sync.offer(
                    job, caller, multyvac.basic_credentials(request.headers.get("authorization"))[1]
                )
                if port:
                    out["collected"]["ports"] = {"tcp": {"22": {"address": request.url.hostname, "port": port}}}
        return multyvac.json_reply({"jobs": rendered})

    async def _submit(self, request: Request) -> Reply:
        caller = self.caller(request)
        # As Go: credentials first, so bad ones cost neither buffering nor parsing a body.
        await self._authenticate(caller, "submit_check")
        body = await self._body(request, caller, verified=True)
        # Parsing a large body takes a while: not on the event loop.
        specs = await asyncio.to_thread(multyvac.parse_submission, body, self._settings.default_image)
        for spec in specs:
            if is_sync(spec):
                as_sync_job(spec)
        await self.volumes.with_mounts(specs, caller)  # multyvac's `vol`: mounted at their paths
        for spec in specs:
            if is_sync(spec) and not mount_of(spec):  # its volume is missing: no port would ever show
                raise vnf(volume_name(spec.volumes[0]) if spec.volumes else "")
        response = await self.call("submit", "Submit", pb.SubmitRequest(jobs=specs), caller)
        return multyvac.json_reply({"jids": list(response.ids)})

    async def kill(self, request: Request) -> Reply:
        """Kill one job. `sudo=true` is accepted and changes nothing: the gRPC API has
        no cross-account kill yet, so every kill is scoped to the caller's account."""
        caller = self.caller(request)
        body = await self._body(request, caller, kill=True) if request.method in ("POST", "PUT", "PATCH") else b""
        try:
            jid, _sudo = multyvac.parse_kill_form(
                request.method, request.headers.get("content-type"), body, request.scope["query_string"]
            )
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        if not 0 < jid <= multyvac.MAX_JID:
            raise await self._verified(caller, multyvac.jnf(jid))
        await self.call("kill", "Kill", pb.KillJobRequest(id=jid), caller, jid)
        return Reply(200, multyvac.TEXT, multyvac.OK_BODY)

    async def kill_all(self, request: Request) -> Reply:
        if request.method != "POST":  # a GET must never kill everything (crawlers, prefetch)
            raise multyvac.minval("POST")
        caller = self.caller(request)
        await self.call("kill_all", "KillAll", pb.KillAllRequest(), caller)
        return Reply(200, multyvac.TEXT, multyvac.OK_BODY)

    async def key(self, request: Request) -> Reply:
        """`GET /v1/key[?id=ACCOUNT]`: the SSH key of the caller's API key (multyvac_keys)."""
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self.caller(request)
        await self._authenticate(caller)
        wanted = parse_query(request.scope["query_string"])[0].get("id", [caller.account])
        api_key = multyvac.basic_credentials(request.headers.get("authorization"))[1]
        keys = [key_json(caller.account, api_key)] if caller.account in wanted else []
        return multyvac.json_reply({"keys": keys})

    async def queue_stats(self, request: Request) -> Reply:
        caller = self.caller(request)
        response = await self.call("stats", "QueueStats", pb.QueueStatsRequest(), caller)
        return job_json.stats_reply(dict(response.counts))

    # -- the web UI's additions (http_gateway/ui.py) --------------------------------------

    async def ui_job(self, request: Request) -> Reply:
        """`GET /ui/api/job?jid=N`: one job of the caller as in `GET /v1/job`, plus its
        image, reason and attempts; 404 JNF when the caller has no such job."""
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self.caller(request)
        try:
            jid = ui.parse_jid(request.scope["query_string"])
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        # Get, not List: it includes the output a running job has written so far.
        job = await self.call("get", "Get", pb.GetJobRequest(id=jid), caller, jid)
        return multyvac.json_reply(ui.job_detail(job, self._settings.default_image))

    async def ui_account(self, request: Request) -> Reply:
        """`GET /ui/api/account`: checks the credentials (the UI's login) and tells the
        account name and the gRPC address this gateway uses (the profile's SDK snippet)."""
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self.caller(request)
        await self._authenticate(caller)
        return multyvac.json_reply({"account": caller.account, "server": self._settings.server})

    async def metrics_text(self, request: Request) -> Reply:
        """`GET /metrics`: the Prometheus text format (no credentials; no account in it)."""
        if request.method != "GET":
            raise multyvac.minval("GET")
        body, content_type = self.metrics.exposition()
        return Reply(200, content_type, body)

    async def ui_redirect(self, request: Request) -> Reply:
        return Reply(301, "text/html; charset=utf-8", b"", location="/ui/")

    async def not_found(self, request: Request) -> Reply:
        """Go's ServeMux: an unclean path is redirected to its clean form, anything else
        that no route matches is a plain-text 404."""
        path = request.url.path
        clean = clean_path(path)
        if clean == path:
            return NOT_FOUND
        query = request.scope["query_string"]
        # The path is decoded (`%E2%82%AC` is `€`): escape it again, as Go's `url.String()`.
        location = urllib.parse.quote(clean, safe="/$&+,:;=@") + ("?" + query.decode("latin-1") if query else "")
        note = f'<a href="{_html_escape(location)}">Moved Permanently</a>.\n\n' if request.method == "GET" else ""
        return Reply(301, "text/html; charset=utf-8", note.encode(), location=location)


def _html_escape(text: str) -> str:
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        text = text.replace(raw, escaped)
    return text


def clean_path(path: str) -> str:
    """Go's `cleanPath`: `path.Clean` of a rooted path, keeping a trailing slash."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    clean = "/" + "/".join(parts)
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None) -> ASGIApp:
    """The ASGI app for `settings`; its lifespan opens and closes the gRPC channel. Its
    metrics go to `registry` (a new one of its own when None), served at `/metrics`."""
    metrics = GatewayMetrics(registry if registry is not None else CollectorRegistry())
    gateway = Gateway(settings, metrics)
    ui_api = UiApi(gateway)
    feeds = Feeds(gateway)
    schedules = ScheduleApi(gateway)
    usage = UsageApi(gateway)
    images = ImageApi(gateway)
    volumes = VolumeApi(gateway)
    secrets = SecretApi(gateway)
    quotas = QuotaApi(gateway)
    accounts = AccountsApi(settings.auth_url, settings.auth_ca, settings.rpc_timeout)

    async def ui_job(request: Request) -> Reply:
        """`view=summary`: the job page's details without output (ui_api); else as before."""
        if parse_query(request.scope["query_string"])[0].get("view") == ["summary"]:
            return await ui_api.job(request)
        return await gateway.ui_job(request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.open()
        await accounts.open()
        try:
            yield
        finally:
            await accounts.close()
            await gateway.close()

    routes = [
        Route("/v1/auth_service", Endpoint(gateway.auth_service)),
        Route("/v1/job", Endpoint(gateway.job)),
        Route("/v1/job/kill", Endpoint(gateway.kill)),
        Route("/v1/job/kill_all", Endpoint(gateway.kill_all)),
        Route("/v1/job/queue_stats", Endpoint(gateway.queue_stats)),
        Route("/v1/key", Endpoint(gateway.key)),
        Route("/v1/volume", Endpoint(gateway.volumes.volumes)),
        Route("/v1/volume/{name}", Endpoint(gateway.volumes.files)),
        Route("/v1/volume/{name}/ls", Endpoint(gateway.volumes.ls)),
        Route("/v1/volume/{name}/mkdir", Endpoint(gateway.volumes.mkdir)),
        Route("/v1/volume/{name}/rm", Endpoint(gateway.volumes.rm)),
        Route("/metrics", Endpoint(gateway.metrics_text)),
        # The web UI: `/` stays Go's 404 (a multyvac client probing it sees the same server).
        Route("/ui", Endpoint(gateway.ui_redirect)),
        Route("/ui/api/job", Endpoint(ui_job)),
        Route("/ui/api/job/output", Endpoint(ui_api.output)),
        Route("/ui/api/job/rerun", Endpoint(ui_api.rerun)),
        Route("/ui/api/job/live", EventStream(feeds.job, metrics.live_feeds)),
        Route("/ui/api/jobs", Endpoint(ui_api.jobs)),
        Route("/ui/api/jobs/kill", Endpoint(ui_api.kill_many)),
        Route("/ui/api/jobs/live", EventStream(feeds.jobs, metrics.live_feeds)),
        Route("/ui/api/account", Endpoint(gateway.ui_account)),
        Route("/ui/api/schedules", Endpoint(schedules.schedules)),
        Route("/ui/api/schedule/history", Endpoint(schedules.history)),
        Route("/ui/api/schedule/pause", Endpoint(schedules.pause)),
        Route("/ui/api/schedule/resume", Endpoint(schedules.resume)),
        Route("/ui/api/schedule/trigger", Endpoint(schedules.trigger)),
        Route("/ui/api/usage", Endpoint(usage.usage)),
        Route("/ui/api/saved-jobs", Endpoint(schedules.saved_jobs)),
        Route("/ui/api/saved-job", Endpoint(schedules.saved_job)),
        Route("/ui/api/saved-job/run", Endpoint(schedules.run)),
        Route("/ui/api/images", Endpoint(images.images)),
        Route("/ui/api/image/delete", Endpoint(images.delete)),
        Route("/ui/api/volumes", Endpoint(volumes.volumes)),
        Route("/ui/api/volume/create", Endpoint(volumes.create)),
        Route("/ui/api/volume/delete", Endpoint(volumes.delete)),
        Route("/ui/api/volume/files", Endpoint(volumes.files)),
        Route("/ui/api/volume/download", FileDownload(volumes)),
        Route("/ui/api/volume/upload", Endpoint(volumes.upload)),
        Route("/ui/api/volume/remove", Endpoint(volumes.remove)),
        Route("/ui/api/secrets", Endpoint(secrets.secrets)),
        Route("/ui/api/secret/set", Endpoint(secrets.set)),
        Route("/ui/api/secret/delete", Endpoint(secrets.delete)),
        Route("/ui/api/quotas", Endpoint(quotas.quotas)),
        Route("/ui/api/quota", Endpoint(quotas.quota)),
        Route("/ui/api/quota/set", Endpoint(quotas.set)),
        Route("/ui/api/auth/signup", Endpoint(accounts.signup)),
        Route("/ui/api/auth/login", Endpoint(accounts.login)),
        Route("/ui/api/auth/logout", Endpoint(accounts.logout)),
        Route("/ui/api/auth/keys", Endpoint(accounts.keys)),
        Route("/ui/api/auth/keys/revoke", Endpoint(accounts.revoke_key)),
        Route("/ui/api/auth/admin/accounts", Endpoint(accounts.admin_accounts)),
        Route("/ui/api/auth/admin/account/disable", Endpoint(accounts.admin_disable)),
        Route("/ui/api/auth/admin/account/delete", Endpoint(accounts.admin_delete)),
        Route("/ui/api/auth/admin/keys", Endpoint(accounts.admin_keys)),
        Route("/ui/api/auth/admin/keys/revoke-all", Endpoint(accounts.admin_revoke_all)),
        Mount("/ui", ui.static_app()),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.redirect_slashes = False  # Go 404s `/v1/job/`; it never adds or drops a slash
    app.router.default = Endpoint(gateway.not_found)
    paths = [route.path for route in routes if isinstance(route, Route)]
    return MetricsMiddleware(app, metrics, paths)
