"""HTTP plumbing shared by the fetch clients: sessions, retries, limits, errors.

:func:`request` sends one request and retries it on HTTP 429 and 5xx and on dropped
connections, waiting ``Retry-After`` when the server says how long (seconds or an HTTP
date; NaN, negative or huge values are clamped to ``0..``:attr:`RetryPolicy.max_wait`) and
an exponential backoff otherwise, for at most :attr:`RetryPolicy.attempts` tries. HTTP
401/403 raise :class:`AuthError` at once (no retry: the credentials will not get better),
other 4xx :class:`FetchError`.

Every answer is bounded: a per-read timeout (:attr:`RetryPolicy.timeout`); total
deadlines, enforced by watchdogs that shut the socket (so a server trickling one byte every
few seconds is stopped, and not retried): :attr:`RetryPolicy.answer_deadline` for
connecting and receiving the headers (:class:`HeadWatchdog`) and for bodies read whole,
:attr:`RetryPolicy.deadline` for a file download (:class:`Watchdog`); and a size cap for
bodies read into memory (:attr:`RetryPolicy.max_body`; JSON pages, error texts). A URL is checked before it is used (:func:`check_url`: http(s) only, no control
characters, no ``..`` segment), and every exception ``requests``/urllib3 raise (their
messages hold the URL) becomes a :class:`FetchError` whose message went through
:func:`~firesmoke.fetch.config.redact` and which does not chain the original.

:class:`EarthdataSession` is a :class:`requests.Session` that owns the ``Authorization``
header: the bearer token goes only to Earthdata/DAAC hosts over https
(:func:`~firesmoke.fetch.config.earthdata_host`), the netrc login/password only to the
Earthdata Login host over https (the OAuth redirect dance of the NASA DAACs), on the first
request and on every redirect alike; anything else (requests' own netrc lookup included)
is removed.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from firesmoke._version import __version__
from firesmoke.errors import AuthError, ChecksumError, FetchError, FiresmokeError  # noqa: F401 (re-exported)
from firesmoke.fetch.config import EarthdataCredentials, credentials_allowed, earthdata_host, redact

__all__ = [
    "AuthError",
    "ChecksumError",
    "EarthdataSession",
    "FetchError",
    "RetryPolicy",
    "Watchdog",
    "check_url",
    "new_session",
    "read_bounded",
    "request",
    "shown",
]

log = logging.getLogger(__name__)

USER_AGENT = f"firesmoke/{__version__} (+https://github.com/firesmoke)"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Redirects followed per request (requests' default is 30; a loop fails after this many).
MAX_REDIRECTS = 10


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
        ``(connect, read)`` timeout of each request, seconds (the read timeout is per
        socket read: the longest silence tolerated).
    deadline
        Longest time one file download may take in all, seconds (each try).
    answer_deadline
        Longest time one answer read whole (a search page, a FIRMS CSV, an error text) may
        take, seconds: a server trickling bytes is cut there.
    max_body
        Largest body read into memory (JSON pages, answers checked before saving), bytes.
    max_download
        Largest file downloaded when neither the metadata nor the server announce a size,
        bytes (an endless stream stops here and fails).
    """

    attempts: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: tuple[float, float] = (10.0, 60.0)
    deadline: float = 6 * 3600.0
    answer_deadline: float = 600.0
    max_body: int = 64 << 20
    max_download: int = 64 << 30

    @property
    def answer_seconds(self) -> float:
        """Deadline for an answer read whole: the shorter of the two deadlines."""
        return min(self.deadline, self.answer_deadline)

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0).

        A ``Retry-After`` is honoured within ``0..max_wait`` (NaN or unparsable: ignored).
        """
        if retry_after:
            secs = _parse_retry_after(retry_after)
            if secs is not None and not math.isnan(secs):
                return min(max(secs, 0.0), self.max_wait)
        base = self.backoff * (2.0**attempt)
        return min(base * (1.0 + 0.1 * random.random()), self.max_wait)


def _parse_retry_after(value: str) -> float | None:
    value = str(value).strip()[:100]
    try:
        return float(value)
    except (ValueError, OverflowError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def shown(url: str, limit: int = 300) -> str:
    """``url`` fit for a message: secrets masked, control characters escaped, shortened."""
    text = redact(url)
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_url(url: Any, schemes: tuple[str, ...] = ("https", "http")) -> str:
    """``url`` if it is a usable download URL, else :class:`FetchError` saying why.

    Refused: not a string, a scheme outside ``schemes`` (``file://``, ``ftp://``...), no
    host, control characters (NUL, CR, LF...) and ``.``/``..`` path segments (also
    %-encoded), which a server would resolve to another file than the one named.
    """
    if not isinstance(url, str) or not url:
        raise FetchError(f"not a URL: {type(url).__name__} {shown(str(url), 80)}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise FetchError(f"{shown(url)}: URL holds control characters (NUL, CR, LF...); refused")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a bad port raises here, before any connection
    except ValueError as exc:
        raise FetchError(f"{shown(url)}: malformed URL ({redact(exc)})") from None
    if parts.scheme.lower() not in schemes:
        raise FetchError(f"{shown(url)}: scheme {parts.scheme or 'none'!r} not allowed "
                         f"(only {', '.join(schemes)})")
    if not host:
        raise FetchError(f"{shown(url)}: URL without a host")
    segments = unquote(parts.path).split("/")
    if any(seg in (".", "..") for seg in segments[1:]):
        raise FetchError(f"{shown(url)}: URL path has a '.' or '..' segment; refused")
    return url


class Watchdog:
    """Shut the socket of a streamed response when ``seconds`` have passed (total deadline).

    Use as a context manager around the reading of ``resp``; :attr:`fired` tells whether
    the deadline cut it.
    """

    def __init__(self, resp: requests.Response, seconds: float) -> None:
        self.resp = resp
        self.seconds = seconds
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = None
        try:
            conn = getattr(self.resp.raw, "connection", None) or getattr(self.resp.raw, "_connection", None)
            sock = getattr(conn, "sock", None)
            if sock is None:
                fp = getattr(self.resp.raw, "_fp", None)
                sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
        except Exception:  # pragma: no cover - urllib3 internals moved
            sock = None
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:  # pragma: no cover
                self.resp.close()
        except OSError:
            pass

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


# ----------------------------------------------------------------------------- header deadline
#: thread id -> the connection that thread's request is using (set when it is checked out)
_ACTIVE: dict[int, Any] = {}


class _TrackedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _ACTIVE[threading.get_ident()] = conn
        return conn


class _TrackedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _ACTIVE[threading.get_ident()] = conn
        return conn


class TrackedAdapter(HTTPAdapter):
    """An adapter whose connections can be shut from another thread (the header deadline)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


def mount_tracked(session: requests.Session) -> requests.Session:
    """Mount :class:`TrackedAdapter` for http and https on ``session``; return it."""
    session.mount("http://", TrackedAdapter())
    session.mount("https://", TrackedAdapter())
    return session


class HeadWatchdog:
    """Shut the connection this thread is using when ``seconds`` pass before it returns.

    Wraps ``session.request(..., stream=True)``: connecting, sending and reading the status
    line and headers (a server sending its headers a byte at a time passes every per-read
    timeout). Works for sessions with :func:`mount_tracked` adapters; :attr:`fired` tells
    whether it cut the request.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._ident = threading.get_ident()
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(_ACTIVE.get(self._ident), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> HeadWatchdog:
        _ACTIVE.pop(self._ident, None)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _ACTIVE.pop(self._ident, None)


def read_bounded(resp: requests.Response, url: str, limit: int, deadline: float) -> bytes:
    """The whole body of a streamed ``resp``: at most ``limit`` bytes within ``deadline`` seconds.

    Raises :class:`FetchError` (the connection closed) when the body is longer, takes
    longer, or the connection fails.
    """
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        resp.close()
        raise FetchError(f"{shown(url)}: answer of {int(length)} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    n = 0
    with Watchdog(resp, deadline) as dog:
        try:
            for block in resp.iter_content(1 << 16):
                n += len(block)
                if n > limit:
                    resp.close()
                    raise FetchError(f"{shown(url)}: answer longer than the limit of {limit} bytes; "
                                     "stopped")
                chunks.append(block)
        except requests.RequestException as exc:
            resp.close()
            if dog.fired:
                raise FetchError(f"{shown(url)}: no complete answer within {deadline:g} s; "
                                 "stopped") from None
            raise FetchError(f"{shown(url)}: connection failed while reading "
                             f"({type(exc).__name__})") from None
    if dog.fired:
        raise FetchError(f"{shown(url)}: no complete answer within {deadline:g} s; stopped")
    return b"".join(chunks)


class EarthdataSession(requests.Session):
    """A session carrying Earthdata credentials only where they belong.

    With a token, ``Authorization: Bearer`` goes with requests to Earthdata/DAAC hosts over
    https (:func:`~firesmoke.fetch.config.earthdata_host`), never elsewhere (e.g. a signed
    S3 URL a DAAC redirects to, or a plain-http link in a CMR record). With a
    login/password (netrc), HTTP basic auth is added only to https requests to the
    Earthdata Login host; the DAAC's cookies then authorise the redirected download.
    """

    def __init__(self, credentials: EarthdataCredentials | None = None) -> None:
        super().__init__()
        self.credentials = credentials or EarthdataCredentials()
        self.headers["User-Agent"] = USER_AGENT
        self.max_redirects = MAX_REDIRECTS
        mount_tracked(self)

    def _is_login_host(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = parts.netloc.rsplit("@", 1)[-1]
            return host == self.credentials.host or parts.hostname == self.credentials.host
        except ValueError:
            return False

    def _authorise(self, prepared: requests.PreparedRequest) -> None:
        """Set (or remove) ``Authorization`` on ``prepared`` by the rules above."""
        url = prepared.url or ""
        prepared.headers.pop("Authorization", None)
        creds = self.credentials
        if creds.login and self._is_login_host(url) and credentials_allowed(url):
            prepared.prepare_auth((creds.login, creds.password or ""))
        elif creds.token and earthdata_host(url, creds.host):
            prepared.headers["Authorization"] = f"Bearer {creds.token}"

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        self._authorise(prepared)
        return prepared

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        self._authorise(prepared_request)


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
    allow_redirects: bool = True,
) -> requests.Response:
    """Send a request, retrying 429/5xx and connection errors; raise on final failure.

    Returns the response of the first try that succeeds (2xx or a status in ``ok_status``).
    Without ``stream`` the body is read here within the policy's ``max_body`` and
    ``deadline``; the caller closes streamed responses (and bounds their reading).
    Every failure is a :class:`FetchError` (or :class:`AuthError`) with secrets masked.
    """
    policy = policy or RetryPolicy()
    check_url(url)
    last: str = ""
    for attempt in range(policy.attempts):
        retry_after = None
        head = HeadWatchdog(policy.answer_seconds)
        try:
            with head:
                resp = session.request(method, url, params=params, headers=dict(headers or {}),
                                       stream=True, timeout=policy.timeout, allow_redirects=allow_redirects)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if head.fired:
                raise FetchError(f"{shown(url)}: no answer (status and headers) within "
                                 f"{policy.answer_seconds:g} s; stopped") from None
            last = f"{type(exc).__name__}"
        except requests.TooManyRedirects:
            raise FetchError(f"{shown(url)}: more than {MAX_REDIRECTS} redirects (a loop?)") from None
        except requests.exceptions.InvalidHeader:
            raise FetchError(f"{shown(url)}: invalid request header (a credential with control "
                             "characters?); not sent") from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidURL) as exc:
            raise FetchError(f"{shown(url)}: redirected to or given an unusable URL "
                             f"({type(exc).__name__}: {shown(str(exc), 200)})") from None
        except (requests.RequestException, ValueError, UnicodeError) as exc:
            raise FetchError(f"{shown(url)}: request failed ({type(exc).__name__}: "
                             f"{shown(str(exc), 200)})") from None
        else:
            if head.fired:  # cut while the headers came: what arrived is not an answer
                resp.close()
                raise FetchError(f"{shown(url)}: no answer (status and headers) within "
                                 f"{policy.answer_seconds:g} s; stopped")
            if resp.ok or resp.status_code in ok_status:
                if not stream:
                    body = read_bounded(resp, url, policy.max_body, policy.answer_seconds)
                    resp._content = body
                    resp._content_consumed = True
                return resp
            status = resp.status_code
            retry_after = resp.headers.get("Retry-After")
            body = _short_body(resp)
            resp.close()
            if status in (401, 403):
                raise AuthError(
                    f"{shown(url)}: HTTP {status} {redact(resp.reason)}: credentials refused or missing "
                    f"(Earthdata: EARTHDATA_TOKEN or ~/.netrc machine urs.earthdata.nasa.gov; "
                    f"FIRMS: MAP_KEY){body}"
                )
            if status not in RETRY_STATUS:
                raise FetchError(f"{shown(url)}: HTTP {status} {redact(resp.reason)}{body}")
            last = f"HTTP {status}"
        if attempt + 1 < policy.attempts:
            wait = policy.wait(attempt, retry_after)
            log.info("%s: %s; retry %d/%d in %.1f s", shown(url), last, attempt + 1, policy.attempts - 1, wait)
            sleep(wait)
    raise FetchError(f"{shown(url)}: giving up after {policy.attempts} attempts ({last})")


def _short_body(resp: requests.Response) -> str:
    """The first few hundred characters of an error answer (read with a bound)."""
    try:
        with Watchdog(resp, 10.0):
            raw = resp.raw.read(2000, decode_content=True) or b""
    except Exception:  # a dropped or undecodable body: the status says enough
        return ""
    text = raw.decode("utf-8", "replace")[:300].strip()
    text = "".join(c if c.isprintable() else " " for c in text)
    return f" ({redact(text)})" if text else ""
