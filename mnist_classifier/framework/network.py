"""Listening on a host and port for a pipeline's server (``tensorboard``, an app's ``serve``), with a one-line
error for a busy port or an address this machine does not have. No torch."""

from __future__ import annotations

import socket

from .errors import UserError


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` (port 0: any free one, read it with ``getsockname``).

    Binding here, before the server starts, turns its failures into ``UserError``; a server that takes this
    socket cannot lose the port to another program in between. The socket is made with ``IPPROTO_TCP``, as
    asyncio's own are: asyncio sets TCP_NODELAY only on connections of such sockets, and without it every
    answer on a kept-alive connection waits 40 ms for the client's delayed ACK.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as error:
        raise UserError(f"cannot listen on {host}:{port} ({_reason(error)}), choose another --port or --host"
                        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({_reason(error)}), choose another --port or --host"
                        ) from None
    return sock


def _reason(error: Exception) -> str:
    return str(getattr(error, "strerror", None) or error).split(" (while attempting")[0]


def url(sock: socket.socket) -> str:
    """``http://host:port/`` for a listening socket, with the port it really got."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
