"""`RemoteAuthenticator`: checks API keys with the auth service's internal API over
mutual TLS (spec 5.1), as the original server did, plus a short cache.

- `GET <base>/validate?accountName=&apiKey=`: 204 valid, 404 invalid (the original
  protocol, used when the caller names its account).
- `GET <base>/validate?apiKey=`: 200 `{"accountName"}` or 404 (our extension, used
  when the SDK sends a key alone).
- `GET <base>/account?accountName=`: 200 `{"accountName", "state"}` or 404 (our
  extension, asked before a schedule fires in the account's name; see `standing`).
- 429 means too many failed checks for that account: TooManyAttempts.
- Anything else (connect errors, timeouts, 5xx, unexpected statuses or bodies) is
  Unavailable: an outage is never taken as "allowed" nor as "wrong key".

Positive answers are cached for `cache_ttl` seconds, keyed by an HMAC of the
credentials under a per-process random key (never the key itself), so a revoked key
keeps working for at most that long. Negative answers are not cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cloudpipe_server.auth.base import Authenticator, Principal, Standing
from cloudpipe_server.errors import TooManyAttempts, Unauthenticated, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteAuthConfig:
    url: str  # e.g. https://authstore:9001/v1
    ca: str  # the internal CA that signed the auth service's certificate
    cert: str  # this server's client certificate (EKU clientAuth)
    key: str
    cache_ttl: float = 30.0
    timeout: float = 5.0
    cache_size: int = 10_000


class _RedactQuery(logging.Filter):
    """httpx logs every request URL at INFO; ours carry API keys in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())


def client_ssl_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    return context


class RemoteAuthenticator(Authenticator):
    def __init__(
        self,
        config: RemoteAuthConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = config.url if config.url.endswith("/") else config.url + "/"
        self._config = config
        _redact_httpx_logs()
        self._client = client or httpx.AsyncClient(
            verify=client_ssl_context(config.ca, config.cert, config.key),
            timeout=config.timeout,
            follow_redirects=False,
        )
        self._clock = clock
        self._salt = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._active: dict[str, float] = {}  # account -> until when ACTIVE is cached
        self._warned_no_states = False

    async def close(self) -> None:
        await self._client.aclose()

    def _cache_key(self, account: str | None, key: str) -> bytes:
        material = f"{account if account is not None else ''}\0{key}".encode("utf-8", "surrogatepass")
        return hmac.new(self._salt, material, hashlib.sha256).digest()

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        if not key:
            raise Unauthenticated("credentials missing: send an API key")
        cache_key = self._cache_key(account, key)
        now = self._clock()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await self._validate(account, key)
        if self._config.cache_ttl > 0:
            self._cache[cache_key] = (now + self._config.cache_ttl, principal)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self._config.cache_size:
                self._cache.popitem(last=False)
        return principal

    async def standing(self, account: str) -> Standing | None:
        """ACTIVE (cached like keys), DISABLED, or GONE for a deleted or unknown name.
        An auth service without the endpoint (the original auth-store answers any path
        with its heartbeat) cannot tell: ACTIVE, as before the check, with a warning."""
        now = self._clock()
        if self._active.get(account, float("-inf")) > now:
            return Standing.ACTIVE
        try:
            response = await self._client.get(self._base + "account", params={"accountName": account})
        except httpx.HTTPError as exc:
            log.warning("auth service unreachable: %s", type(exc).__name__)
            raise Unavailable(f"authentication service unavailable ({type(exc).__name__})") from None
        if response.status_code == 404:
            return Standing.GONE
        if response.status_code != 200:
            log.warning("auth service answered HTTP %d to an account check", response.status_code)
            raise Unavailable(f"authentication service answered HTTP {response.status_code}")
        state = _state(response)
        if state is None:
            if not self._warned_no_states:
                self._warned_no_states = True
                log.warning("the auth service does not report account states: schedules fire unchecked")
            return Standing.ACTIVE
        if state is Standing.ACTIVE and self._config.cache_ttl > 0:
            if len(self._active) >= self._config.cache_size:
                self._active.clear()
            self._active[account] = now + self._config.cache_ttl
        return state

    async def _validate(self, account: str | None, key: str) -> Principal:
        params = {"apiKey": key} if account is None else {"accountName": account, "apiKey": key}
        try:
            response = await self._client.get(self._base + "validate", params=params)
        except httpx.HTTPError as exc:
            log.warning("auth service unreachable: %s", type(exc).__name__)
            raise Unavailable(f"authentication service unavailable ({type(exc).__name__})") from None
        status = response.status_code
        if status == 404:
            raise Unauthenticated(f"unable to authenticate account [{account if account is not None else '?'}]")
        if status == 429:
            retry = response.headers.get("retry-after", "")
            raise TooManyAttempts(
                f"too many failed authentication attempts for account [{account or '?'}]",
                float(retry) if retry.isdigit() else 60.0,
            )
        if account is not None and status == 204:
            return Principal(account)
        if account is None and status == 200:
            name = _account_name(response)
            if name:
                return Principal(name)
        log.warning("auth service answered HTTP %d unexpectedly", status)
        raise Unavailable(f"authentication service answered HTTP {status}")


def _account_name(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
    except ValueError:
        return None
    name = body.get("accountName") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else None


_STATES = {"active": Standing.ACTIVE, "disabled": Standing.DISABLED, "deleted": Standing.GONE}


def _state(response: httpx.Response) -> Standing | None:
    try:
        body: Any = response.json()
    except ValueError:
        return None
    state = body.get("state") if isinstance(body, dict) else None
    return _STATES.get(state) if isinstance(state, str) else None
