"""Gateway settings: one frozen dataclass, read from the environment in one place.

Every setting has a `CLOUDPIPE_GATEWAY_*` variable, except the gRPC server address,
which is `CLOUDPIPE_ADDRESS` as for the SDK and CLI. Command-line flags override the
environment (see `http_gateway.__main__`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cloudpipe_common.errors import InvalidArgument
from cloudpipe_common.listen import split_host_port
from cloudpipe_common.settings import parse_setting

DEFAULT_IMAGE = "cloudpipe/runner-py2:latest"


class SettingsError(ValueError):
    """A setting does not parse; the message names the variable."""


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway can be configured with. Sizes in bytes, times in seconds."""

    listen: str = "127.0.0.1:8000"
    server: str = "localhost:50051"
    # Image of jobs that name no `layer`: multyvac's submit() needs Python 2.7 + multyvac.
    default_image: str = DEFAULT_IMAGE
    # Larger request bodies get 413 JPRS before anything is parsed.
    max_body_bytes: int = 16 << 20
    # Requests served at once (uvicorn's limit_concurrency); more get 503 (multyvac retries).
    max_concurrency: int = 500
    # Deadline of every gRPC call: multyvac has no HTTP timeout, so the gateway never waits longer.
    rpc_timeout: float = 15.0
    # What GET /v1/auth_service reports (spec 2.4.1); "null" while no auth service exists.
    auth_address: str = ""
    auth_style: str = "null"
    log_level: str = "INFO"
    access_log: bool = False
    # HTTPS for the gateway itself (server-cert.pem / server-key.pem from `cloudpipe pki init`).
    tls_cert: str = ""
    tls_key: str = ""
    # CA of the gRPC server's certificate when the server serves TLS (as the SDK's CLOUDPIPE_TLS_CA).
    server_tls_ca: str = ""
    # The auth service's external (people's) listener, https://HOST:9000, for the web UI's
    # sign-up, sign-in and key pages; empty: those pages say no auth service is connected.
    auth_url: str = ""
    # CA of its certificate (certs/ca.pem of `cloudpipe pki init`); empty: the system's CAs.
    auth_ca: str = ""
    # How long the SSH port of a multyvac volume-sync job waits for its client before the
    # job is killed (http_gateway/multyvac_sync.py).
    sync_offer_seconds: float = 120.0

    @property
    def host_port(self) -> tuple[str, int]:
        """`listen` split into host and port; `[::1]:8000` is accepted for IPv6."""
        try:
            return split_host_port(self.listen)
        except ValueError as exc:
            raise SettingsError(f"listen address {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> GatewaySettings:
        """Settings from the environment (empty values count as unset), then `overrides`
        (None values are skipped). Raises SettingsError naming a value that does not parse."""
        env = os.environ if environ is None else environ
        names = {
            "listen": "CLOUDPIPE_GATEWAY_LISTEN",
            "server": "CLOUDPIPE_ADDRESS",
            "default_image": "CLOUDPIPE_GATEWAY_DEFAULT_IMAGE",
            "max_body_bytes": "CLOUDPIPE_GATEWAY_MAX_BODY_BYTES",
            "max_concurrency": "CLOUDPIPE_GATEWAY_MAX_CONCURRENCY",
            "rpc_timeout": "CLOUDPIPE_GATEWAY_RPC_TIMEOUT",
            "auth_address": "CLOUDPIPE_GATEWAY_AUTH_ADDRESS",
            "auth_style": "CLOUDPIPE_GATEWAY_AUTH_STYLE",
            "log_level": "CLOUDPIPE_GATEWAY_LOG_LEVEL",
            "access_log": "CLOUDPIPE_GATEWAY_ACCESS_LOG",
            "tls_cert": "CLOUDPIPE_GATEWAY_TLS_CERT",
            "tls_key": "CLOUDPIPE_GATEWAY_TLS_KEY",
            "server_tls_ca": "CLOUDPIPE_TLS_CA",
            "auth_url": "CLOUDPIPE_GATEWAY_AUTH_URL",
            "auth_ca": "CLOUDPIPE_GATEWAY_AUTH_CA",
            "sync_offer_seconds": "CLOUDPIPE_GATEWAY_SYNC_OFFER_SECONDS",
        }
        kinds = {item.name: item.type for item in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for field, name in names.items():
            raw = env.get(name)
            if raw:
                try:
                    values[field] = parse_setting(name, raw, kinds[field])
                except InvalidArgument as exc:
                    raise SettingsError(str(exc)) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        self.host_port  # noqa: B018 - raises for a malformed address
        if self.max_body_bytes < 1:
            raise SettingsError("CLOUDPIPE_GATEWAY_MAX_BODY_BYTES must be positive")
        if self.max_concurrency < 1:
            raise SettingsError("CLOUDPIPE_GATEWAY_MAX_CONCURRENCY must be positive")
        if self.rpc_timeout <= 0:
            raise SettingsError("CLOUDPIPE_GATEWAY_RPC_TIMEOUT must be positive")
        if not 0 < self.sync_offer_seconds <= 3600:
            raise SettingsError("CLOUDPIPE_GATEWAY_SYNC_OFFER_SECONDS must be positive, at most 3600")
        if not self.default_image:
            raise SettingsError("CLOUDPIPE_GATEWAY_DEFAULT_IMAGE must not be empty")
        if self.auth_url and not self.auth_url.startswith(("https://", "http://")):
            raise SettingsError("CLOUDPIPE_GATEWAY_AUTH_URL must be an https:// (or http://) URL")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("CLOUDPIPE_GATEWAY_TLS_CERT and CLOUDPIPE_GATEWAY_TLS_KEY go together")
