"""HTTP plumbing shared by the fetch clients: sessions, retries, errors.

:func:`request` sends one request and retries it on HTTP 429 and 5xx and on dropped
connections, waiting ``Retry-After`` when the server says how long (seconds or an HTTP
date, capped by :attr:`RetryPolicy.max_wait`) and an exponential backoff otherwise, for at
most :attr:`RetryPolicy.attempts` tries. HTTP 401/403 raise :class:`AuthError` at once
(no retry: the credentials will not get better), other 4xx :class:`FetchError`.

:class:`EarthdataSession` is a :class:`requests.Session` that sends a bearer token to the
data hosts, or the netrc login/password to the Earthdata Login host only (the OAuth
redirect dance of the NASA DAACs), and keeps the cookies it is given.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from firesmoke._version import __version__
from firesmoke.errors import AuthError, ChecksumError, FetchError, FiresmokeError  # noqa: F401 (re-exported)
from firesmoke.fetch.config import EarthdataCredentials, redact

__all__ = [
    "AuthError",
    "ChecksumError",
    "EarthdataSession",
    "FetchError",
    "RetryPolicy",
    "new_session",
    "request",
]

log = logging.getLogger(__name__)

USER_AGENT = f"firesmoke/{__version__} (+https://github.com/firesmoke)"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes
    ----------
    attempts
        Tries in all (first one included).
    backoff
        First wait in seconds; doubled after each failure (with up to 10 % jitter).
    max_wait
        Longest single wait, seconds (also caps ``Retry-After``).
    timeout
        ``(connect, read)`` timeout of each request, seconds.
    """

    attempts: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: tuple[float, float] = (10.0, 60.0)

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after:
            secs = _parse_retry_after(retry_after)
            if secs is not None:
                return min(max(secs, 0.0), self.max_wait)
        base = self.backoff * (2.0**attempt)
        return min(base * (1.0 + 0.1 * random.random()), self.max_wait)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class EarthdataSession(requests.Session):
    """A session carrying Earthdata credentials the way the NASA DAACs expect.

    With a token, ``Authorization: Bearer`` goes with every request to the first host;
    requests drops it when a redirect leaves for another host (e.g. a signed S3 URL).
    With a login/password (netrc), HTTP basic auth is added only to requests to the
    Earthdata Login host; the DAAC's cookies then authorise the redirected download.
    """

    def __init__(self, credentials: EarthdataCredentials | None = None) -> None:
        super().__init__()
        self.credentials = credentials or EarthdataCredentials()
        self.headers["User-Agent"] = USER_AGENT
        if self.credentials.token:
            self.headers["Authorization"] = f"Bearer {self.credentials.token}"

    def _is_login_host(self, url: str) -> bool:
        host = urlsplit(url).netloc.rsplit("@", 1)[-1]
        return host == self.credentials.host or urlsplit(url).hostname == self.credentials.host

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if self.credentials.login and request.auth is None and self._is_login_host(request.url):
            request.auth = (self.credentials.login, self.credentials.password or "")
        return super().prepare_request(request)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # strips Authorization on host change
        if self.credentials.login and self._is_login_host(prepared_request.url or ""):
            prepared_request.prepare_auth((self.credentials.login, self.credentials.password or ""))


def new_session(credentials: EarthdataCredentials | None = None) -> requests.Session:
    """A session with the firesmoke User-Agent (and Earthdata credentials when given)."""
    return EarthdataSession(credentials)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    ok_status: tuple[int, ...] = (),
) -> requests.Response:
    """Send a request, retrying 429/5xx and connection errors; raise on final failure.

    Returns the response of the first try that succeeds (2xx or a status in ``ok_status``).
    The caller closes streamed responses.
    """
    policy = policy or RetryPolicy()
    last: str = ""
    for attempt in range(policy.attempts):
        try:
            resp = session.request(method, url, params=params, headers=dict(headers or {}),
                                   stream=stream, timeout=policy.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = f"{type(exc).__name__}"
            retry_after = None
        else:
            if resp.ok or resp.status_code in ok_status:
                return resp
            status = resp.status_code
            retry_after = resp.headers.get("Retry-After")
            body = _short_body(resp)
            resp.close()
            if status in (401, 403):
                raise AuthError(
                    f"{redact(url)}: HTTP {status} {resp.reason}: credentials refused or missing "
                    f"(Earthdata: EARTHDATA_TOKEN or ~/.netrc machine urs.earthdata.nasa.gov; "
                    f"FIRMS: MAP_KEY){body}"
                )
            if status not in RETRY_STATUS:
                raise FetchError(f"{redact(url)}: HTTP {status} {resp.reason}{body}")
            last = f"HTTP {status}"
        if attempt + 1 < policy.attempts:
            wait = policy.wait(attempt, retry_after)
            log.info("%s: %s; retry %d/%d in %.1f s", redact(url), last, attempt + 1, policy.attempts - 1, wait)
            sleep(wait)
    raise FetchError(f"{redact(url)}: giving up after {policy.attempts} attempts ({last})")


def _short_body(resp: requests.Response) -> str:
    try:
        text = resp.text[:300].strip()
    except Exception:  # pragma: no cover - undecodable body
        return ""
    return f" ({redact(text)})" if text else ""
