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
that could hold one goes through :func:`redact` (which also masks their %-encoded forms),
and a logging filter on urllib3 masks them in its debug lines too. A token or key holding
whitespace at its ends is stripped; one holding other control characters is refused with a
message that does not quote it.

Which hosts get credentials
---------------------------
The Earthdata bearer token and the netrc login go only to hosts under
:data:`EARTHDATA_DOMAINS` (Earthdata Login, the DAACs) and only over ``https``. Mirrors are
added with ``FIRESMOKE_EARTHDATA_HOSTS`` (comma-separated host names or domains; a leading
dot or none: the domain and its sub-domains). Plain ``http`` is allowed only for loopback
hosts (127.0.0.1, ::1, localhost) and only when ``FIRESMOKE_ALLOW_HTTP_LOOPBACK=1`` (test
servers).
"""

from __future__ import annotations

import ipaddress
import logging
import netrc
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

from firesmoke.errors import AuthError

__all__ = [
    "DEFAULT_URLS",
    "EARTHDATA_DOMAINS",
    "EarthdataCredentials",
    "clean_secret",
    "credentials_allowed",
    "earthdata_credentials",
    "earthdata_host",
    "firms_map_key",
    "is_loopback",
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
    """Remember a secret so that :func:`redact` (and the urllib3 log filter) mask it.

    Its %-encoded forms (as they appear in URLs and in urllib3's logs) are masked too.
    """
    if value and len(value) >= 4:
        forms = {value, quote(value, safe=""), quote(value, safe="/"), quote_plus(value)}
        forms |= {f.lower() for f in forms if "%" in f}
        with _LOCK:
            _SECRETS.update(forms)
        _install_filter()


def redact(text: object) -> str:
    """``text`` (made a string) with every registered secret replaced by ``***``."""
    text = str(text)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def clean_secret(value: str | None, what: str, password: bool = False) -> str | None:
    """A credential from the environment or a file, checked: None when empty.

    Whitespace at the ends (a ``\\r\\n`` left by an editor or ``echo``) is stripped; any
    other control character (and, unless ``password``, a space or a non-ASCII character)
    is refused with an :class:`AuthError` that names ``what`` but never quotes the value.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if password:
        bad = any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)
    else:
        bad = any(ord(c) < 0x21 or ord(c) > 0x7E for c in value)
    if bad:
        kinds = "control characters" if password else "spaces, control or non-ASCII characters"
        raise AuthError(f"{what} holds {kinds}; fix the value (it is not shown here)")
    return value


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
    for name in ("urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.response",
                 "urllib3.poolmanager", "urllib3.util.retry", "requests", "pystac_client",
                 "fsspec", "s3fs", "botocore"):
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


# ----------------------------------------------------------------------------- hosts
#: Domains (and their sub-domains) that may receive Earthdata credentials: Earthdata Login,
#: the Earthdata cloud and EOSDIS DAACs (LAADS, LP DAAC's e4ftl01.cr.usgs.gov, ...).
EARTHDATA_DOMAINS: tuple[str, ...] = (
    "earthdata.nasa.gov",       # urs. (Earthdata Login), cmr., data.*.earthdatacloud...
    "earthdatacloud.nasa.gov",  # data.lpdaac.earthdatacloud.nasa.gov, data.laadsdaac...
    "eosdis.nasa.gov",          # ladsweb.modaps.eosdis.nasa.gov, nrt3.modaps..., firms...
    "cr.usgs.gov",              # e4ftl01.cr.usgs.gov (LP DAAC on-premises)
    "asf.alaska.edu",           # ASF DAAC
    "nsidc.org",                # NSIDC DAAC (n5eil01u.ecs.nsidc.org)
    "daac.ornl.gov",            # ORNL DAAC (legacy host)
    "asdc.larc.nasa.gov",       # ASDC (LaRC)
    "ghrc.nsstc.nasa.gov",      # GHRC
)
EXTRA_HOSTS_ENV = "FIRESMOKE_EARTHDATA_HOSTS"
HTTP_LOOPBACK_ENV = "FIRESMOKE_ALLOW_HTTP_LOOPBACK"


def is_loopback(host: str | None) -> bool:
    """``host`` is 127.0.0.0/8, ::1 or localhost."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _domain_match(host: str, domain: str) -> bool:
    domain = domain.strip().lower().lstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def earthdata_host(url: str, login_host: str | None = None) -> bool:
    """May Earthdata credentials go to ``url``?

    Only to a host under :data:`EARTHDATA_DOMAINS`, ``FIRESMOKE_EARTHDATA_HOSTS`` or the
    Earthdata Login host itself, over https (http only for loopback test servers with
    ``FIRESMOKE_ALLOW_HTTP_LOOPBACK=1``).
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if not host:
        return False
    extra = [d for d in os.environ.get(EXTRA_HOSTS_ENV, "").split(",") if d.strip()]
    domains = [*EARTHDATA_DOMAINS, *extra]
    if login_host:
        domains.append(login_host.split(":")[0])
    if not any(_domain_match(host, d) for d in domains):
        return False
    return credentials_allowed(url)


def credentials_allowed(url: str) -> bool:
    """May any secret travel to ``url``: https, or http to loopback when the test switch is on."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https":
        return True
    return (parts.scheme == "http" and is_loopback(parts.hostname)
            and os.environ.get(HTTP_LOOPBACK_ENV, "") in ("1", "true", "yes"))


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
    if "://" in host:
        host = urlsplit(host).netloc or host
    token = clean_secret(token or os.environ.get("EARTHDATA_TOKEN"), "EARTHDATA_TOKEN")
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
            password = clean_secret(entry[2], f"the password of {host} in {path}", password=True)
            login = clean_secret(entry[0], f"the login of {host} in {path}")
            return EarthdataCredentials(login=login, password=password, host=host)
    return EarthdataCredentials(host=host)


def firms_map_key(map_key: str | None = None) -> str | None:
    """The FIRMS ``MAP_KEY``: the argument, else ``MAP_KEY`` / ``FIRMS_MAP_KEY`` from the environment."""
    raw = map_key or os.environ.get("MAP_KEY") or os.environ.get("FIRMS_MAP_KEY") or None
    if raw:
        register_secret(raw)
        register_secret(raw.strip())
    return clean_secret(raw, "the FIRMS MAP_KEY")
