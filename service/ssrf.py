"""`Upstreams`: the addresses the gateway may call, so that a deployment registered through the admin
API cannot turn it into a proxy into the network it runs in (SSRF).

    upstreams = Upstreams.parse("10.0.0.0/8,vllm.internal").trusting(catalogue)
    upstreams.check_url(url)        # sync: no user:password@, a literal address allowed
    await upstreams.check(url)      # the same, and every address a host name resolves to
    upstreams.check_addresses(host, port, addresses)   # the relay's resolver, at connect time

Only public addresses are called, and what the operator allows with
`PUREAI_ALLOW_PRIVATE_UPSTREAMS`: comma-separated networks (`10.0.0.0/8`), addresses
(`192.168.1.20`, `::1`) and host names (`vllm.internal`: whatever it resolves to). Not public:
private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16, fe80::/10),
unspecified (0.0.0.0, ::), shared (100.64/10), reserved, benchmarking, documentation, multicast.
The cloud metadata endpoints (169.254.169.254, fd00:ec2::254, 100.100.100.200) are allowed only by
an entry naming that very address: a network around them is not enough.

Hosts are read as the C library reads them, then checked: `2130706433`, `0x7f000001`,
`017700000001`, `127.1` and `0177.0.0.1` are 127.0.0.1; an IPv6 address that embeds an IPv4 one
(IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible, 6to4, NAT64, Teredo) is checked as both.

Where it applies:
- registering a deployment (service/deployments.py): a URL with `user:password@` is refused, a
  literal address checked, a host name resolved and each of its addresses checked (400 naming the
  field); each new view of the registered deployments checks them again, and leaves out (logged) one
  the setting no longer allows (it changed, or a gateway with another setting registered it);
- at connect time, since DNS can change after registration: the relay's resolver
  (service/relay.py) checks the addresses it is about to connect to, and redirects are not
  followed. On the litellm path (`PUREAI_RELAY=false`, or a provider litellm translates for) the
  executor resolves and checks the host right before each call; the client library then resolves
  again and follows redirects, so a name whose records change between the two look-ups (DNS
  rebinding with a zero TTL), or an allowed upstream that redirects, can still reach a refused
  address there. The relay, which calls every registered deployment by default, has neither gap.

The catalogue file is the operator's own configuration, as explicit as this setting: the host and
port of each of its `api_base`s are trusted as they are (a catalogue of models on `localhost` or
10.x needs no setting), and only credentials in its URLs are refused (models_registry). A
deployment registered at a host and port of the catalogue is allowed too: tenants reach it already.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from models_registry import Catalogue

__all__ = ["SETTING", "Refused", "Upstreams", "ip_of"]

log = logging.getLogger("pureai.ssrf")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "PUREAI_ALLOW_PRIVATE_UPSTREAMS"
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
"""Cloud instance metadata endpoints (AWS, GCP, Azure, OpenStack; AWS over IPv6; Alibaba)."""
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "100.64.0.0/10"))
"""Ranges Python's `is_global` calls global, or may, that no model server lives on."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9_])?)*\Z"
)
_HEX, _OCT, _DEC = re.compile(r"0x[0-9a-f]*\Z"), re.compile(r"0[0-7]*\Z"), re.compile(r"[1-9][0-9]*\Z")


class Refused(ConnectionError):
    """A URL or address the policy does not let the gateway call; `reason` says why."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


def ip_of(host: str) -> IP | None:
    """The address a host names, however it is spelt, or None for a host name. IPv4 as inet_aton
    reads it (1 to 4 parts, each decimal, octal with a leading 0 or hex with 0x; the last fills the
    remaining bytes); IPv6 with or without brackets and zone."""
    text = host.strip().lower().removeprefix("[").removesuffix("]").split("%", 1)[0]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    parts = text.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if _HEX.match(part):
            numbers.append(int(part[2:] or "0", 16))
        elif _OCT.match(part):
            numbers.append(int(part, 8))
        elif _DEC.match(part):
            numbers.append(int(part))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _inside(ip: IP) -> list[IP]:
    """`ip`, and the IPv4 addresses an IPv6 one embeds (where a packet to it may end up)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    out: list[IP] = [ip]
    if ip.ipv4_mapped is not None:
        out = [ip.ipv4_mapped]  # ::ffff:a.b.c.d is that IPv4 address on a dual-stack socket
    elif ip.sixtofour is not None:
        out.append(ip.sixtofour)
    elif ip.teredo is not None:
        out += ip.teredo
    elif ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _kind(ip: IP) -> str | None:
    """What makes `ip` not public, or None when it is."""
    if ip in METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_reserved or any(ip in n for n in _NOT_PUBLIC):
        return "a reserved address"
    return None


def _port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise Refused(parts.netloc, "the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise Refused(parts.netloc, "has no host")
    return parts.hostname.rstrip("."), port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Upstreams:
    """Which upstream addresses may be called (see the module's docstring).

    - `networks`: private networks and addresses the operator allows.
    - `names`: host names the operator allows, whatever they resolve to.
    - `trusted`: (host, port) of the catalogue file's endpoints, called as they are.
    """

    networks: tuple[Network, ...] = ()
    names: frozenset[str] = frozenset()
    trusted: frozenset[tuple[str, int]] = field(default=frozenset(), repr=False)

    @classmethod
    def parse(cls, text: str | None) -> Upstreams:
        """From the setting's value: networks, addresses and host names, comma-separated;
        ValueError naming the entry that is none of them."""
        networks: list[Network] = []
        names: set[str] = set()
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.removeprefix("[").replace("]", ""), strict=False))
                continue
            except ValueError:
                pass
            ip = ip_of(entry)
            if ip is not None:
                networks.append(ipaddress.ip_network(ip))
            elif _HOST_NAME.match(entry.rstrip(".")):
                names.add(entry.rstrip("."))
            else:
                raise ValueError(f"{SETTING}: {raw.strip()!r} is not a network, an address or a host name")
        return cls(tuple(networks), frozenset(names))

    def trusting(self, catalogue: Catalogue) -> Upstreams:
        """This policy, with the endpoints of `catalogue` (the operator's file) trusted."""
        urls = [e.api_base for e in catalogue.models.values()]
        urls += [p.api_base for e in catalogue.models.values() for p in e.providers]
        trusted = {_port(url) for url in urls if url}
        return Upstreams(self.networks, self.names, self.trusted | {(h.lower(), p) for h, p in trusted})

    # -- checks --------------------------------------------------------------------------------
    def refusal(self, ip: IP) -> str | None:
        """Why `ip` may not be called ("127.0.0.1 is a loopback address"), or None."""
        why = self._why(ip)
        return None if why is None else f"{why[0]} is {why[1]}"

    def _why(self, ip: IP) -> tuple[str, str] | None:
        """(the address as shown, what it is) when `ip` may not be called."""
        for address in _inside(ip):
            kind = _kind(address)
            if kind is None:
                continue
            exact = address in METADATA
            if not any(address in n and (not exact or n.num_addresses == 1) for n in self.networks):
                return (str(address) if address == ip else f"{ip} (that is {address})"), kind
        return None

    def allows_name(self, host: str, port: int) -> bool:
        """A host called whatever it resolves to: an allowed name, or a catalogue endpoint."""
        host = host.lower().rstrip(".")
        return host in self.names or (host, port) in self.trusted

    def check_url(self, url: str) -> tuple[str, int]:
        """Refused unless `url` may be called as far as can be told without DNS: no userinfo, and a
        literal address (any spelling) allowed. Its (host, port)."""
        if "@" in urlsplit(url).netloc:
            raise Refused(
                urlsplit(url).netloc.rsplit("@", 1)[-1], "must not hold credentials (user:password@)"
            )
        host, port = _port(url)
        ip = ip_of(host)
        if ip is not None and not self.allows_name(host, port):
            self._refuse(host, self.refusal(ip))
        return host, port

    async def check(self, url: str) -> None:
        """`check_url`, and for a host name every address it resolves to now (a name that does not
        resolve is refused: it cannot be checked)."""
        host, port = self.check_url(url)
        if ip_of(host) is not None or self.allows_name(host, port):
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused(host, f"does not resolve ({exc})") from None
        self.check_addresses(host, port, [str(info[4][0]) for info in infos])

    def check_addresses(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Refused if any address `host` resolved to may not be called (unless the name is allowed)."""
        if self.allows_name(host, port):
            return
        for address in addresses:
            ip = ip_of(address)
            if ip is None:
                raise Refused(host, f"resolved to {address!r}, not an address")
            why = self._why(ip)
            if why is not None:
                self._refuse(host, f"resolves to {why[0]}, {why[1]}")

    def _refuse(self, host: str, reason: str | None) -> None:
        if reason is not None:
            raise Refused(
                host,
                f"{reason}; the gateway calls private, loopback, link-local and metadata addresses "
                f"only when {SETTING} allows them",
            )
