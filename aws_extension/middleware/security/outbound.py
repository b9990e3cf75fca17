"""Requests the server makes on a user's behalf (model imports), guarded against SSRF.

An import URL is chosen by the caller, so without a guard it could make the middleware read
its cloud metadata (169.254.169.254), the local stack's own API on 127.0.0.1, or anything on
the private network behind it. Every hop is therefore checked before it is made:

- only `http` and `https`;
- the host is resolved and every address it resolves to must be public: loopback, private,
  link-local, shared (CGNAT), multicast, reserved and unspecified addresses are refused, in
  IPv4 and IPv6, including IPv4 addresses carried inside IPv6 ones (IPv4-mapped, 6to4,
  Teredo, NAT64), so `::ffff:127.0.0.1` is loopback too;
- the connection goes to the very address that was checked (the socket is opened to the IP
  and only the `Host` header and TLS name carry the host name), so a DNS answer that
  changes between the check and the connection cannot redirect it;
- redirects are followed by hand, at most `max_redirects`, each target checked like the
  first;
- connect, every read and the whole download have time limits; proxies from the
  environment are not used (they would bypass the pinning).

Operators with a model mirror on their own network name it in `trusted_hosts` (or, for the
local stack, allow private addresses altogether with `allow_private`).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

from aws_extension import __version__
from aws_extension.middleware.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: `(host, port)` -> the addresses the host resolves to, as strings.
Resolver = Callable[[str, int], Sequence[str]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Characters left as they are in a path and query: RFC 3986's reserved ones and `%`.
_PATH_SAFE = "/%:@!$&'()*+,;=?~"
USER_AGENT = f"sd-webui-sagemaker/{__version__}"


class RefusedUrl(Invalid):
    """A URL the server will not fetch: not http(s), no host, or a non-public address."""


class DownloadFailed(Exception):
    """The fetch was allowed but did not deliver: an HTTP error status, too many redirects,
    a host that does not resolve, the time limit. The message is meant for the user."""


@dataclass(frozen=True)
class OutboundPolicy:
    #: Allow every address, private ones included (the local stack's --allow-private-import).
    allow_private: bool = False
    #: Host names (lower case) fetched even though they resolve to private addresses.
    trusted_hosts: frozenset[str] = field(default_factory=frozenset)
    connect_timeout: float = 10.0
    #: Longest wait for any single read (headers or a chunk of the body).
    read_timeout: float = 60.0
    #: Longest whole download; a server trickling bytes cannot hold a worker forever.
    total_timeout: float = 6 * 3600.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "trusted_hosts", frozenset(h.lower() for h in self.trusted_hosts))
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ValueError("outbound time limits must be positive")


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo), without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DownloadFailed(f"The host {host!r} cannot be resolved ({error}).") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _carried(ip: IPAddress) -> list[IPAddress]:
    """The addresses a connection to `ip` may end up at. IPv4-mapped and NAT64 addresses
    are translated to their IPv4 address, which alone decides; other IPv6 addresses count
    together with the IPv4 addresses they carry (6to4, Teredo)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    found: list[IPAddress] = [ip]
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def address_refusal(address: str) -> str | None:
    """Why the server must not connect to `address` ("loopback", "private"...), or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "malformed"
    for candidate in _carried(ip):
        # Most specific first: 127.0.0.1 is also "private" in Python's tables.
        checks = (
            ("loopback", candidate.is_loopback),
            ("unspecified", candidate.is_unspecified),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("private", candidate.is_private),
            ("reserved", candidate.is_reserved),
            ("non-public", not candidate.is_global),
        )
        for kind, applies in checks:
            if applies:
                return kind
    return None


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect (`address`) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


class Fetcher:
    """Checks and opens import URLs under an `OutboundPolicy`.

    `resolver` is injectable so tests can point names at local servers without DNS.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        resolver: Resolver = system_resolver,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolver
        self._tls = tls or ssl.create_default_context()

    def check(self, url: str) -> Target:
        """The hop `url` describes, if the policy allows it; raises RefusedUrl or
        DownloadFailed (a host that does not resolve)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise RefusedUrl("The URL is malformed.") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            shown = f"{scheme}:" if scheme else "a URL without a scheme"
            raise RefusedUrl(f"Only http and https URLs can be imported, not {shown}.")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise RefusedUrl("The URL has no host name.")
        port = port or _DEFAULT_PORTS[scheme]
        try:
            addresses = [str(ipaddress.ip_address(host))]
            literal = True
        except ValueError:
            addresses = list(self._resolve(host, port))
            literal = False
        if not addresses:
            raise DownloadFailed(f"The host {host!r} has no address.")
        if not (self.policy.allow_private or host.lower() in self.policy.trusted_hosts):
            for address in addresses:
                kind = address_refusal(address)
                if kind is not None:
                    via = "" if literal else f" ({host} resolves to {address})"
                    raise RefusedUrl(
                        f"The server does not download from {kind} addresses{via}; only "
                        "public hosts can be imported from."
                    )
        # Spaces and non-ASCII characters as pasted by users, percent-encoded as browsers do.
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_PATH_SAFE)
        return Target(scheme, host, port, path, addresses[0])

    def open(self, url: str) -> Download:
        """GET `url`, following redirects (each hop checked), up to a 200 response."""
        deadline = time.monotonic() + self.policy.total_timeout
        for _ in range(self.policy.max_redirects + 1):
            target = self.check(url)
            connection = self._connect(target)
            try:
                connection.request(
                    "GET",
                    target.path,
                    headers={
                        "User-Agent": USER_AGENT,
                        "Accept": "*/*",
                        # Stored bytes must be the file itself, not a compressed form of it.
                        "Accept-Encoding": "identity",
                    },
                )
                response = connection.getresponse()
            except BaseException:
                connection.close()
                raise
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                connection.close()
                if not location:
                    raise DownloadFailed(f"{target.host} redirected without saying where to.")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                connection.close()
                raise DownloadFailed(
                    f"{target.host} answered {response.status} {response.reason}"
                    " instead of the file."
                )
            return Download(connection, response, deadline)
        raise DownloadFailed(f"More than {self.policy.max_redirects} redirects.")

    def _connect(self, target: Target) -> http.client.HTTPConnection:
        if target.scheme == "https":
            return _PinnedHTTPSConnection(target, self.policy, self._tls)
        return _PinnedHTTPConnection(target, self.policy)


def _open_socket(target: Target, policy: OutboundPolicy) -> socket.socket:
    sock = socket.create_connection((target.address, target.port), policy.connect_timeout)
    sock.settimeout(policy.read_timeout)
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the checked address; `Host` still names the host."""

    def __init__(self, target: Target, policy: OutboundPolicy) -> None:
        super().__init__(target.host, target.port, timeout=policy.connect_timeout)
        self._target = target
        self._policy = policy

    def connect(self) -> None:
        self.sock = _open_socket(self._target, self._policy)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is still verified for the host name."""

    def __init__(self, target: Target, policy: OutboundPolicy, tls: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=policy.connect_timeout, context=tls)
        self._target = target
        self._policy = policy
        self._tls = tls

    def connect(self) -> None:
        sock = _open_socket(self._target, self._policy)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self._target.host)
        except BaseException:
            sock.close()
            raise


class Download:
    """The body of a 200 response: `read` it in chunks, `close` it after use.

    `abort` may be called from another thread to make a blocked read fail at once (the
    server shutting down).
    """

    def __init__(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        deadline: float,
    ) -> None:
        self._connection = connection
        self._response = response
        self._deadline = deadline
        self._received = 0
        length = response.getheader("Content-Length")
        #: The size the server announced, if it did (and sensibly).
        self.length = int(length) if length and length.isdigit() else None

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, as soon as some arrive (so progress can be reported); b""
        at the end. A body shorter than announced raises DownloadFailed."""
        if time.monotonic() > self._deadline:
            raise DownloadFailed("The download took longer than the server allows.")
        try:
            data = self._response.read1(size)
        except http.client.IncompleteRead:
            data = b""
        self._received += len(data)
        if not data and self.length is not None and self._received < self.length:
            raise DownloadFailed("The server closed the connection before the end of the file.")
        return data

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def abort(self) -> None:
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)
