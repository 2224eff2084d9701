"""Fixtures every fetch test gets: no proxy for the loopback servers, which stand for Earthdata hosts."""

from _fetch_helpers import (  # noqa: F401 (autouse fixtures)
    _no_proxy_for_local_servers,
    _test_servers_may_receive_credentials,
)
