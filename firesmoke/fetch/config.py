"""Where firesmoke fetches from, and with which credentials.

Base URLs
---------
Every service URL has a default (the public NASA / Element 84 / Microsoft service), an
environment variable that overrides it (to point at a mirror, a proxy or a test server)
and a function argument that overrides both:

=========================  =====================================================  ==========
environment variable       default                                                service
=========================  =====================================================  ==========
``FIRESMOKE_CMR_URL``      ``https://cmr.earthdata.nasa.gov``                     NASA CMR search
``FIRESMOKE_EDL_HOST``     ``urs.earthdata.nasa.gov``                             Earthdata Login host
``FIRESMOKE_FIRMS_URL``    ``https://firms.modaps.eosdis.nasa.gov``               FIRMS area API
``FIRESMOKE_STAC_URL``     ``https://earth-search.aws.element84.com/v1``          Earth Search STAC
``FIRESMOKE_PC_STAC_URL``  ``https://planetarycomputer.microsoft.com/api/stac/v1`` Planetary Computer STAC
``FIRESMOKE_PC_SAS_URL``   ``https://planetarycomputer.microsoft.com/api/sas/v1``  Planetary Computer tokens
=========================  =====================================================  ==========

Credentials
-----------
Earthdata (CMR downloads): ``EARTHDATA_TOKEN`` (a user token, sent as
``Authorization: Bearer``) or a ``~/.netrc`` entry ``machine urs.earthdata.nasa.gov login
USER password PASS`` (the ``NETRC`` variable names another netrc file); the login and
password are sent only to the Earthdata Login host, during its OAuth redirects.
FIRMS: ``MAP_KEY`` (or ``FIRMS_MAP_KEY``). Planetary Computer: ``PC_SDK_SUBSCRIPTION_KEY``
(optional, raises the token rate limits). Secrets are never logged: every URL and message
that could hold one goes through :func:`redact`, and a logging filter on urllib3 masks
them in its debug lines too.
"""

from __future__ import annotations

import logging
import netrc
import os
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_URLS",
    "EarthdataCredentials",
    "earthdata_credentials",
    "firms_map_key",
    "redact",
    "register_secret",
    "service_url",
]

log = logging.getLogger(__name__)

#: service -> (environment variable, default)
DEFAULT_URLS: dict[str, tuple[str, str]] = {
    "cmr": ("FIRESMOKE_CMR_URL", "https://cmr.earthdata.nasa.gov"),
    "edl": ("FIRESMOKE_EDL_HOST", "urs.earthdata.nasa.gov"),
    "firms": ("FIRESMOKE_FIRMS_URL", "https://firms.modaps.eosdis.nasa.gov"),
    "stac": ("FIRESMOKE_STAC_URL", "https://earth-search.aws.element84.com/v1"),
    "pc_stac": ("FIRESMOKE_PC_STAC_URL", "https://planetarycomputer.microsoft.com/api/stac/v1"),
    "pc_sas": ("FIRESMOKE_PC_SAS_URL", "https://planetarycomputer.microsoft.com/api/sas/v1"),
}


def service_url(service: str, override: str | None = None) -> str:
    """Base URL of ``service``: the argument, else its environment variable, else the default."""
    env, default = DEFAULT_URLS[service]
    url = override or os.environ.get(env) or default
    return url.rstrip("/")


# ----------------------------------------------------------------------------- secrets
_SECRETS: set[str] = set()
_LOCK = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` (and the urllib3 log filter) mask it."""
    if value and len(value) >= 4:
        with _LOCK:
            _SECRETS.add(value)
        _install_filter()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for s in sorted(_SECRETS, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "***")
    return text


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            msg = record.getMessage()
            clean = redact(msg)
            if clean != msg:
                record.msg, record.args = clean, None
        return True


_FILTER = _RedactFilter()


def _install_filter() -> None:
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests", "pystac_client"):
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


# ----------------------------------------------------------------------------- Earthdata
@dataclass(frozen=True)
class EarthdataCredentials:
    """Earthdata Login credentials: a bearer token or a login/password pair (never printed)."""

    token: str | None = None
    login: str | None = None
    password: str | None = None
    host: str = "urs.earthdata.nasa.gov"

    def __repr__(self) -> str:
        kind = "token" if self.token else ("netrc" if self.login else "none")
        return f"EarthdataCredentials({kind}, host={self.host!r})"

    @property
    def present(self) -> bool:
        return bool(self.token or (self.login and self.password))


def earthdata_credentials(token: str | None = None, host: str | None = None) -> EarthdataCredentials:
    """Earthdata credentials from ``token``, ``EARTHDATA_TOKEN`` or the netrc file.

    The netrc file is ``$NETRC`` when set, else ``~/.netrc``; its ``machine`` entry for the
    Earthdata Login host (``FIRESMOKE_EDL_HOST``, default ``urs.earthdata.nasa.gov``) is used.
    Returns credentials with nothing set when none are found (public files still download).
    """
    host = host or service_url("edl")
    token = token or os.environ.get("EARTHDATA_TOKEN") or None
    if token:
        register_secret(token)
        return EarthdataCredentials(token=token, host=host)
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if path.is_file():
        try:
            entry = netrc.netrc(str(path)).authenticators(host)
        except (netrc.NetrcParseError, OSError) as exc:
            log.warning("cannot read %s (%s); no Earthdata credentials", path, type(exc).__name__)
            entry = None
        if entry and entry[0] and entry[2]:
            register_secret(entry[2])
            return EarthdataCredentials(login=entry[0], password=entry[2], host=host)
    return EarthdataCredentials(host=host)


def firms_map_key(map_key: str | None = None) -> str | None:
    """The FIRMS ``MAP_KEY``: the argument, else ``MAP_KEY`` / ``FIRMS_MAP_KEY`` from the environment."""
    key = map_key or os.environ.get("MAP_KEY") or os.environ.get("FIRMS_MAP_KEY") or None
    register_secret(key)
    return key
