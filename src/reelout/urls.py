"""The public base URL of this server, honouring Forwarded / X-Forwarded-* only when configured."""

from __future__ import annotations

from starlette.requests import Request

from reelout.config import Settings


def base_url(request: Request, settings: Settings) -> str:
    """Scheme, host and mount prefix that clients should use to reach us, no trailing slash."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    root_path = request.scope.get("root_path", "").rstrip("/")
    scheme, host = request.url.scheme, request.headers.get("host", request.url.netloc)
    if settings.behind_proxy:
        scheme, host, prefix = _proxied(request, scheme, host)
        root_path = prefix + root_path
    return f"{scheme}://{strip_default_port(scheme, host)}{root_path}"


def _proxied(request: Request, scheme: str, host: str) -> tuple[str, str, str]:
    headers = request.headers
    prefix = headers.get("x-forwarded-prefix", "").rstrip("/")
    if forwarded := headers.get("forwarded"):
        fields = parse_forwarded(forwarded)
        return fields.get("proto", scheme), fields.get("host", host), prefix
    scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
    host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    return scheme, host, prefix


def configured_base_url(settings: Settings) -> str:
    """The base URL for links made outside a request (webhooks): REELOUT_PUBLIC_URL, else the
    address `serve` listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


def client_address(request: Request, settings: Settings) -> str:
    """The caller's address: the one our proxy saw (the last `Forwarded: for=` or
    `X-Forwarded-For` entry, which the proxy itself appended) with REELOUT_BEHIND_PROXY, else the
    connection's peer. A client cannot choose it either way."""
    if settings.behind_proxy:
        headers = request.headers
        if forwarded := headers.get("forwarded"):
            seen = parse_forwarded(forwarded.rsplit(",", 1)[-1]).get("for", "")
            if seen:
                return _without_port(seen)
        if chain := headers.get("x-forwarded-for"):
            return chain.rsplit(",", 1)[-1].strip()
    return request.client.host if request.client else ""


def _without_port(node: str) -> str:
    """RFC 7239 node: `192.0.2.1:4711` or `[2001:db8::1]:4711` without the port."""
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    return node.split(":", 1)[0] if node.count(":") == 1 else node


def parse_forwarded(header: str) -> dict[str, str]:
    """The first element of an RFC 7239 `Forwarded` header, as lower-cased keys."""
    first = header.split(",", 1)[0]
    out: dict[str, str] = {}
    for pair in first.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def strip_default_port(proto: str, host: str) -> str:
    """`host` without the port its scheme implies (`x.example:443` over https → `x.example`)."""
    default = {"http": ":80", "https": ":443"}.get(proto)
    if default and host.endswith(default):
        return host[: -len(default)]
    return host
