"""Auth service settings: one frozen dataclass read from `CLOUDPIPE_AUTH_<FIELD>`
variables (empty counts as unset). Certificate paths default to the file names that
`cloudpipe pki init` writes into CLOUDPIPE_AUTH_PKI_DIR."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cloudpipe_common.errors import InvalidArgument
from cloudpipe_common.settings import default_data_dir, parse_setting


@dataclass(frozen=True)
class AuthServiceSettings:
    internal_listen: str = "127.0.0.1:9001"  # mutual TLS, for cloudpipe servers
    external_listen: str = "127.0.0.1:9000"  # TLS, for people
    data_dir: Path = Path("/var/lib/cloudpipe-auth")
    store_url: str = ""  # empty: sqlite:///<data_dir>/auth.db
    pki_dir: Path = Path("")  # where ca.pem, auth-store-*.pem, external-*.pem live
    ca: str = ""  # internal CA verifying client certificates (default <pki_dir>/ca.pem)
    internal_cert: str = ""
    internal_key: str = ""
    external_cert: str = ""
    external_key: str = ""
    admin_token: str = ""  # empty: the admin API is off
    # POST /v1/accounts and /v2/accounts for anyone. Off by default: an installation opens
    # sign-up on purpose (CLOUDPIPE_AUTH_OPEN_SIGNUP=true); the admin API creates accounts
    # either way.
    open_signup: bool = False
    # comma-separated names nobody may register, nor lookalikes of them (Admin, admin\n):
    # the servers' CLOUDPIPE_ADMIN_NAME belongs here when it is not "admin"
    reserved_names: str = "admin"
    min_password_length: int = 8
    session_ttl: float = 3600.0
    failure_burst: int = 10  # failed attempts allowed at once per account / per source
    failure_refill_seconds: float = 6.0  # then one more every this many seconds
    log_level: str = "INFO"
    # comma-separated addresses (or *) of proxies whose X-Forwarded-For names the client of
    # the external listener for the failure limiter: the HTTP gateway, whose web UI relays
    # sign-ins. Empty: uvicorn's default ($FORWARDED_ALLOW_IPS, else 127.0.0.1).
    trusted_proxies: str = ""

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'auth.db'}"

    def path(self, field: str, default_name: str) -> Path:
        value: str = getattr(self, field)
        if value:
            return Path(value)
        if not str(self.pki_dir) or str(self.pki_dir) == ".":
            raise InvalidArgument(f"CLOUDPIPE_AUTH_{field.upper()} or CLOUDPIPE_AUTH_PKI_DIR must be set")
        return self.pki_dir / default_name

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> AuthServiceSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"data_dir": default_data_dir(env) / "auth"}
        for item in dataclasses.fields(cls):
            name = f"CLOUDPIPE_AUTH_{item.name.upper()}"
            if env.get(name):
                values[item.name] = parse_setting(name, env[name], item.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.min_password_length < 1:
            raise InvalidArgument("CLOUDPIPE_AUTH_MIN_PASSWORD_LENGTH must be at least 1")
        if settings.session_ttl <= 0:
            raise InvalidArgument("CLOUDPIPE_AUTH_SESSION_TTL must be positive")
        return settings
