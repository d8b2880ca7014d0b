"""A lean HTTP/1.1 keep-alive client for plain ``http://`` state managers.

Why: a runtime sends about one request per state (its report, plus a share of a poll; contract
§8.3), and on a small machine the client's CPU per request, not the runtime or the server, set
the runtime's CPU per state. httpx's default transport (httpcore) cost about a millisecond per
request (connection-pool bookkeeping); an h11 transport under ``httpx.AsyncClient`` still spent
most of its time building ``httpx.Request``/``Response``/``Headers``/``URL`` objects, in h11's
state machine and in two ``anyio.fail_after`` scopes per request (issue 12). So:

* :class:`Http11Transport` keeps connections alive per origin, one request per connection at a
  time, and frames HTTP/1.1 itself (:class:`_AnswerReader`): the request written in one
  ``send``, the answer read whole (state-manager answers are small JSON documents), with
  ``Content-Length``, chunked and close-delimited bodies, informational (1xx) answers skipped,
  ``Connection: close`` and HTTP/1.0 honoured, and anything malformed an
  ``httpx.RemoteProtocolError`` (the connection is then dropped). Only the framing headers are
  read per answer; the others are split into fields when someone asks for them.
* connections are non-blocking sockets: on asyncio an ``asyncio.Protocol`` (the socket stays
  registered with the event loop, the deadline is one timer handle), on trio trio's socket waits
  under one cancel scope (anyio's elsewhere). One deadline covers writing the request and
  reading the answer; a pool wait and a new connection get their own only when they happen.
* the runtime's hot path calls :meth:`Http11Transport.exchange` through a :class:`LeanSender`:
  fixed headers encoded once, no ``httpx`` object per request, failures raised as the ``httpx``
  exception classes the runtime already handles (``ConnectError``, ``ReadTimeout``...).
* everything else (``httpx.AsyncClient(transport=Http11Transport())``, the benchmarks, users)
  uses the same connections through the ordinary ``httpx.AsyncBaseTransport`` interface.

The runtime uses it only for ``http://`` URIs when no proxy is configured in the environment
(:func:`exo_ref._config.lean_transport_suits`); HTTPS, proxies and everything else go through
httpx's own transport. (The module keeps its name from when it was built on h11.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

import anyio
import httpx

try:
    import sniffio
except ImportError:  # pragma: no cover - anyio >= 4.11 does not need it; trio does
    sniffio = None  # type: ignore[assignment]

__all__ = [
    "PLAIN_PATH",
    "Http11Transport",
    "LeanSender",
    "RawAnswer",
    "header_fields",
    "timeouts_of",
]

_READ_SIZE = 65536
_MAX_HEAD = 64 * 1024  # a response head longer than this is refused (no state manager sends one)

_wait_readable: Callable[[socket.socket], Awaitable[None]] = getattr(
    anyio, "wait_readable", None
) or anyio.wait_socket_readable  # anyio < 4.7
_wait_writable: Callable[[socket.socket], Awaitable[None]] = getattr(
    anyio, "wait_writable", None
) or anyio.wait_socket_writable

#: (status, reason phrase, headers, body): one whole answer. The headers are the head's field
#: lines as received (``b"\r\nname: value..."``, see :func:`header_fields`) or (name, value) pairs.
RawAnswer = tuple[int, bytes, bytes | list[tuple[bytes, bytes]], bytes]

Timeouts = tuple[float | None, float | None, float | None, float | None]
"""(connect, answer, pool, write) in seconds; ``None`` waits forever."""


def timeouts_of(timeout: httpx.Timeout | dict[str, Any]) -> Timeouts:
    """The lean path's timeouts from httpx's: ``answer`` is the read timeout (else the write
    timeout), applied once to writing the request and reading the whole answer."""
    t = timeout.as_dict() if isinstance(timeout, httpx.Timeout) else timeout
    read, write = t.get("read"), t.get("write")
    return (t.get("connect"), read if read is not None else write, t.get("pool"), write)


class _TimedOut(Exception):
    """The request's deadline passed (turned into ``httpx.WriteTimeout`` / ``ReadTimeout``)."""


_CUT_SHORT = "the server closed the connection without a complete answer"
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")  # RFC 9112 section 7.1: hex digits, nothing else


class _AnswerReader:
    """Parses one HTTP/1.1 answer from the bytes received so far (call again as more arrive).

    Framing: ``Content-Length``, chunked, or (neither) until the server closes; informational
    (1xx) heads are skipped; no body after ``HEAD``, 204 or 304. Nothing is consumed until the
    answer is complete: :meth:`parse` then says how many bytes it took. Only the framing
    headers are looked at here; the others are split into fields only if someone reads them
    (:func:`header_fields`).
    """

    __slots__ = ("_body_start", "_framing", "_head", "_head_request", "_keep_alive", "_length",
                 "_parts", "_resume")

    def __init__(self, head_request: bool) -> None:
        self._head_request = head_request
        self._head: tuple[int, bytes, bytes] | None = None
        self._body_start = 0
        self._framing = ""  # "none", "length", "chunked" or "close"
        self._length = 0
        self._keep_alive = False
        self._parts: list[bytes] = []
        self._resume = 0  # chunked: where the next chunk-size line starts

    def parse(self, data: bytes | bytearray, eof: bool) -> tuple[RawAnswer, bool, int] | None:
        """``(answer, reusable, bytes used)`` once ``data`` holds the whole answer, else None.

        ``eof``: the server closed the connection after ``data``.

        Raises:
            httpx.RemoteProtocolError: a malformed answer, or ``eof`` before its end.
        """
        if self._head is None and not self._parse_head(data, eof):
            return None
        start, framing = self._body_start, self._framing
        if framing == "length":
            end = start + self._length
            if len(data) < end:
                if eof:
                    raise httpx.RemoteProtocolError(_CUT_SHORT)
                return None
            body = bytes(data[start:end])
        elif framing == "none":
            end, body = start, b""
        elif framing == "chunked":
            found = self._chunks(data, eof)
            if found is None:
                return None
            end, body = found
        else:  # "close": the body ends where the connection does
            if not eof:
                return None
            end, body = len(data), bytes(data[start:])
        assert self._head is not None
        status, reason, headers = self._head
        # Bytes beyond the answer: do not guess what they are; the connection is not reused.
        reusable = self._keep_alive and not eof and end == len(data)
        return (status, reason, headers, body), reusable, end

    def _parse_head(self, data: bytes | bytearray, eof: bool) -> bool:
        start = 0
        while True:
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                if len(data) - start > _MAX_HEAD:
                    raise httpx.RemoteProtocolError("the answer's head is too long")
                if eof:
                    raise httpx.RemoteProtocolError(_CUT_SHORT)
                return False
            head = bytes(data[start:end])
            start = end + 4
            line_end = head.find(b"\r\n")
            status_line = head if line_end < 0 else head[:line_end]
            version, status, reason = _status_line(status_line)
            if status >= 200:
                break
            if status == 101:
                raise httpx.RemoteProtocolError("unexpected 101 Switching Protocols")
            # informational: the real answer follows
        fields = b"" if line_end < 0 else head[line_end:]  # each field line after a CRLF
        lower = fields.lower()
        keep_alive = version == b"HTTP/1.1"
        length = _field(fields, lower, b"\r\ncontent-length:")
        coding = _field(fields, lower, b"\r\ntransfer-encoding:", listed=True)
        connection = _field(lower, lower, b"\r\nconnection:", listed=True)
        if connection is not None and _says_close(connection):
            keep_alive = False
        if self._head_request or status in (204, 304):
            self._framing = "none"
        elif coding is not None and coding.lower().rsplit(b",", 1)[-1].strip() == b"chunked":
            self._framing = "chunked"
            self._resume = start
            if length is not None:
                keep_alive = False  # both framings: RFC 9112 section 6.1 says close afterwards
        elif coding is not None or length is None:
            self._framing = "close"
            keep_alive = False
        else:
            if not length.isdigit():
                raise httpx.RemoteProtocolError(f"invalid Content-Length {length[:40]!r}")
            self._framing = "length"
            self._length = int(length)
        self._head = (status, reason, fields)
        self._body_start = start
        self._keep_alive = keep_alive
        return True

    def _chunks(self, data: bytes | bytearray, eof: bool) -> tuple[int, bytes] | None:
        """(where the answer ends, the body) once every chunk is in, else None."""
        parts = self._parts
        position = self._resume
        while True:
            line_end = data.find(b"\r\n", position)
            if line_end < 0:
                break
            size_text = bytes(data[position:line_end]).split(b";", 1)[0].strip(b" \t")
            if not _CHUNK_SIZE.match(size_text):  # int() would take "0x3", "1_0" and "+5"
                raise httpx.RemoteProtocolError(f"invalid chunk size {size_text[:40]!r}")
            size = int(size_text, 16)
            start = line_end + 2
            if size == 0:  # the last chunk, then trailer fields up to a blank line
                if data[start : start + 2] == b"\r\n":
                    return start + 2, b"".join(parts)
                found = data.find(b"\r\n\r\n", start)
                if found < 0:
                    break
                return found + 4, b"".join(parts)
            if len(data) < start + size + 2:
                break
            if data[start + size : start + size + 2] != b"\r\n":
                raise httpx.RemoteProtocolError("a chunk is longer than its size")
            parts.append(bytes(data[start : start + size]))
            position = self._resume = start + size + 2
        if eof:
            raise httpx.RemoteProtocolError(_CUT_SHORT)
        return None


def _field(fields: bytes, lower: bytes, name: bytes, *, listed: bool = False) -> bytes | None:
    """The value of header ``name`` (``b"\r\nname:"``, lower case) in ``fields``, or None.

    A ``listed`` field (``Connection``, ``Transfer-Encoding``: comma-separated lists) may stand
    on several lines, which mean their values joined by commas (RFC 9110 section 5.3); any other
    (``Content-Length``) may repeat only its one value.

    Raises:
        httpx.RemoteProtocolError: a field that is not ``listed`` appears with different values
            (a framing header that could be read two ways).
    """
    found = lower.find(name)
    if found < 0:
        return None
    start = found + len(name)
    end = lower.find(b"\r\n", start)
    value = (fields[start:] if end < 0 else fields[start:end]).strip(b" \t")
    if end < 0 or lower.find(name, end) < 0:  # one line: the usual case, on the hot path
        return value
    again = _field(fields[end:], lower[end:], name, listed=listed)  # the later lines
    if listed:
        return value + b", " + (again or b"")
    if again != value:
        raise httpx.RemoteProtocolError(f"conflicting {name[2:-1].decode()} headers")
    return value


def _says_close(connection: bytes) -> bool:
    """Whether a lower-case ``Connection`` value lists ``close`` (the answer's or the request's)."""
    return b"close" in [token.strip(b" \t") for token in connection.split(b",")]


def header_fields(fields: bytes, *, strict: bool = True) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a head's field lines, as :class:`_AnswerReader` keeps them.

    Raises:
        httpx.RemoteProtocolError: (``strict``) a line that is not ``name: value``; otherwise
            such a line is skipped.
    """
    headers = []
    for line in fields.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in b" \t" or name[:1] in b" \t":
            if strict:
                raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
            continue
        headers.append((name, value.strip(b" \t")))
    return headers


def _status_line(line: bytes) -> tuple[bytes, int, bytes]:
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {line[:80]!r}")
    return version, int(code), reason


def _peek_shows_closed(sock: socket.socket) -> bool:
    """Whether an idle socket has anything to read: EOF, an error, or stray bytes."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


#: How a socket connection waits: (a deadline scope for seconds or None, wait readable, wait
#: writable).
_Kit = tuple[
    Callable[[float | None], AbstractContextManager[Any]],
    Callable[[socket.socket], Awaitable[None]],
    Callable[[socket.socket], Awaitable[None]],
]
_ANYIO_KIT: _Kit = (anyio.move_on_after, _wait_readable, _wait_writable)
_trio_kit: _Kit | None = None


def _kit_for_trio() -> _Kit:
    """trio's own primitives: anyio's wrappers around them cost about as much again."""
    global _trio_kit  # built once, on the first trio connection
    if _trio_kit is None:
        import trio  # only when running on trio

        def deadline(seconds: float | None) -> AbstractContextManager[Any]:
            return trio.CancelScope() if seconds is None else trio.move_on_after(seconds)

        _trio_kit = (deadline, trio.lowlevel.wait_readable, trio.lowlevel.wait_writable)
    return _trio_kit


class _SocketConnection:
    """A keep-alive connection on a non-blocking socket, waited on with ``kit`` (anyio's, which
    works on any backend, or trio's own).

    Not safe for concurrent use: the transport hands each connection to one request at a time.
    """

    __slots__ = ("_backend", "_buffer", "_kit", "sock")

    def __init__(self, sock: socket.socket, backend: str, kit: _Kit = _ANYIO_KIT) -> None:
        self.sock = sock
        self._backend = backend
        self._kit = kit
        self._buffer = bytearray()

    def looks_closed(self) -> bool:
        """An idle connection with something to read has been closed (or broken) by the peer;
        one made on another backend cannot be waited on with this one's primitives."""
        return (
            bool(self._buffer) or _backend() != self._backend or _peek_shows_closed(self.sock)
        )

    def close(self) -> None:
        self.sock.close()

    async def round_trip(
        self, data: bytes, seconds: float | None, *, head_request: bool
    ) -> tuple[RawAnswer, bool]:
        """Send ``data`` and read the whole answer, within ``seconds`` (one deadline)."""
        writing = True
        try:
            with self._kit[0](seconds):
                await self._send_all(data)
                writing = False
                return await self._read(_AnswerReader(head_request))
        except BaseException as error:
            self.close()
            if isinstance(error, OSError | anyio.ClosedResourceError | anyio.BrokenResourceError):
                kind = httpx.WriteError if writing else httpx.ReadError
                raise kind(str(error) or type(error).__name__) from error
            raise
        # Only reached when the deadline passed.
        self.close()
        if writing:
            raise httpx.WriteTimeout("the request could not be sent in time")
        raise httpx.ReadTimeout("no answer in time")

    async def _send_all(self, data: bytes) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            await self._kit[2](sock)
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            view = view[sent:]

    async def _read(self, reader: _AnswerReader) -> tuple[RawAnswer, bool]:
        sock, buffer, readable = self.sock, self._buffer, self._kit[1]
        while True:
            await readable(sock)  # right after sending, the answer cannot be there yet
            try:
                chunk = sock.recv(_READ_SIZE)
            except BlockingIOError:
                continue
            if buffer:
                buffer += chunk
                data: bytes | bytearray = buffer
            else:
                data = chunk
            result = reader.parse(data, not chunk)
            if result is not None:
                answer, reusable, _ = result
                buffer.clear()  # anything beyond the answer made it not reusable
                return answer, reusable
            if data is chunk:
                buffer += chunk


class _AsyncioConnection(asyncio.Protocol):
    """A keep-alive connection as an asyncio protocol, on the asyncio backend.

    The socket stays registered with the event loop, which hands every chunk to
    :meth:`data_received`: no registration syscalls per request, and the deadline is a timer
    handle on the loop instead of a cancel scope (about a third of the client's CPU per request
    on asyncio).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self.loop = loop
        self.sock = sock  # for looks_closed's peek: the loop reads it only while it runs
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._reader: _AnswerReader | None = None
        self._waiter: asyncio.Future[tuple[RawAnswer, bool]] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self._buffer += data  # while idle: stray bytes, the connection will not be reused
        elif self._buffer:
            self._buffer += data
            self._advance(self._buffer)
        elif not self._advance(data):
            self._buffer += data

    def eof_received(self) -> None:
        self._eof = True
        if self._waiter is not None:
            self._advance(self._buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if exc is None:
            self._advance(self._buffer)
        else:  # reset, not closed: what came so far may be cut short even if it parses whole
            waiter.set_exception(httpx.ReadError(str(exc) or type(exc).__name__))

    def _advance(self, data: bytes | bytearray) -> bool:
        """Parse what arrived; True when the answer is complete (or failed)."""
        waiter, reader = self._waiter, self._reader
        if waiter is None or reader is None or waiter.done():
            return True
        try:
            result = reader.parse(data, self._eof)
        except httpx.RemoteProtocolError as error:
            waiter.set_exception(error)
            return True
        if result is None:
            return False
        answer, reusable, _ = result
        self._buffer.clear()  # anything beyond the answer made it not reusable
        waiter.set_result((answer, reusable))
        return True

    # -- the connection --------------------------------------------------------------------------

    def looks_closed(self) -> bool:
        transport = self.transport
        if self._eof or self._buffer or transport is None or transport.is_closing():
            return True
        try:
            if asyncio.get_running_loop() is not self.loop:  # made on another event loop
                return True
        except RuntimeError:  # not on asyncio now
            return True
        return _peek_shows_closed(self.sock)

    def close(self) -> None:
        transport = self.transport
        if transport is None:
            self.sock.close()
            return
        try:
            transport.abort()
        except Exception:  # noqa: BLE001 - its event loop has ended (reused by another run)
            self.sock.close()

    async def round_trip(
        self, data: bytes, seconds: float | None, *, head_request: bool
    ) -> tuple[RawAnswer, bool]:
        """Send ``data`` and read the whole answer, within ``seconds`` (one deadline)."""
        transport = self.transport
        assert transport is not None
        loop = self.loop
        waiter: asyncio.Future[tuple[RawAnswer, bool]] = loop.create_future()
        self._waiter = waiter
        self._reader = _AnswerReader(head_request)
        timer = None if seconds is None else loop.call_later(seconds, _time_out, waiter)
        try:
            transport.write(data)
            return await waiter
        except BaseException as error:
            unsent = transport.get_write_buffer_size()
            self.close()
            if isinstance(error, _TimedOut):
                if unsent:
                    raise httpx.WriteTimeout("the request could not be sent in time") from None
                raise httpx.ReadTimeout("no answer in time") from None
            if isinstance(error, OSError):
                raise httpx.WriteError(str(error) or type(error).__name__) from error
            raise
        finally:
            self._waiter = self._reader = None
            if timer is not None:
                timer.cancel()


def _time_out(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(_TimedOut())


_Connection = _SocketConnection | _AsyncioConnection


def _backend() -> str:
    if sniffio is None:  # trio needs sniffio: without it, the backend is asyncio
        return "asyncio"
    try:
        return str(sniffio.current_async_library())
    except sniffio.AsyncLibraryNotFoundError:
        return ""


def _open_socket(family: int, address: Any) -> tuple[socket.socket, bool]:
    """A non-blocking socket connecting to ``address``; whether the connect is still pending."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            return sock, True
    except BaseException:
        sock.close()
        raise
    return sock, False


def _raise_connect_error(sock: socket.socket) -> None:
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to ``host:port`` (each address in turn)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        targets = [(family, address) for family, _, _, _, address in infos]
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        targets = [(family, (str(ip), port))]
    error: OSError = OSError(f"no address for {host!r}")
    for family, address in targets:
        try:
            # An address can fail at once (ENETUNREACH: an IPv6 one on a host without an IPv6
            # route) or once the connect completes (ECONNREFUSED): either way, try the next.
            sock, pending = _open_socket(family, address)
        except OSError as failure:
            error = failure
            continue
        try:
            if pending:
                await _wait_writable(sock)
                _raise_connect_error(sock)
        except OSError as failure:
            sock.close()
            error = failure
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error


async def _open(host: str, port: int) -> _Connection:
    """A new connection of the kind that suits the running backend."""
    sock = await _connect(host, port)
    backend = _backend()
    if backend == "trio":
        return _SocketConnection(sock, backend, _kit_for_trio())
    if backend != "asyncio":
        return _SocketConnection(sock, backend)
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await loop.create_connection(
            lambda: _AsyncioConnection(loop, sock), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return protocol


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over plain TCP with keep-alive reuse, for ``http://`` URLs only.

    Args:
        max_connections: connections open at once, idle ones included, to all origins; more
            concurrent requests wait (pool timeout), and an idle connection to another origin
            is closed to make room for a new one.
        max_keepalive_connections: idle connections kept for reuse, to all origins.
    """

    def __init__(self, *, max_connections: int = 100, max_keepalive_connections: int = 20) -> None:
        self._slots = anyio.Semaphore(max_connections)  # one per request in flight
        self._keep = max_keepalive_connections
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._closed = False
        self.connections_opened = 0  # for tests and diagnostics: reuse keeps this small

    # -- the lean path ----------------------------------------------------------------------------

    async def exchange(
        self,
        origin: tuple[str, int],
        data: bytes,
        timeouts: Timeouts,
        *,
        head_request: bool = False,
        reuse: bool = True,
    ) -> RawAnswer:
        """Send ``data`` (a whole encoded request) to ``origin`` and read the whole answer.

        The lean path without ``httpx`` objects: the runtime's :class:`LeanSender` uses it, and
        so may anyone who encodes requests themselves (the benchmarks' floor does).
        ``timeouts`` is ``(connect, answer, pool, write)`` in seconds (``None``: no limit); one
        deadline, the answer timeout, covers writing and reading; a pool wait and a new
        connection get their own only when they happen. Returns ``(status, reason, headers,
        body)``; the headers are the head's field lines (:func:`header_fields` splits them).
        ``reuse=False``: the request said ``Connection: close``, so the connection is closed
        after the answer whatever the answer says (RFC 9112 section 9.6).

        Raises:
            httpx.PoolTimeout, httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError,
            httpx.WriteTimeout, httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError.
        """
        slots = self._slots
        try:
            slots.acquire_nowait()
        except anyio.WouldBlock:
            with anyio.move_on_after(timeouts[2]) as waited:
                await slots.acquire()
            if waited.cancelled_caught:
                raise httpx.PoolTimeout("no free connection in time") from None
        try:
            connection = self._idle_connection(origin) or await self._new_connection(
                origin, timeouts[0]
            )
            answer, keep_alive = await connection.round_trip(
                data, timeouts[1], head_request=head_request
            )
            self._check_in(origin, connection, keep_alive and reuse)
            return answer
        finally:
            slots.release()

    def _idle_connection(self, origin: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.looks_closed():
                return connection
            connection.close()
        return None

    async def _new_connection(self, origin: tuple[str, int], seconds: float | None) -> _Connection:
        self._make_room()
        connection: _Connection | None = None
        try:
            with anyio.move_on_after(seconds):
                connection = await _open(*origin)
        except OSError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__) from error
        if connection is None:
            raise httpx.ConnectTimeout("could not connect in time")
        self.connections_opened += 1
        return connection

    def _make_room(self) -> None:
        """Close idle connections (other origins': this one has none left) until one more
        keeps ``max_connections``: each request in flight holds a slot and one connection, so
        the idle ones may number at most the free slots."""
        excess = sum(map(len, self._idle.values())) - self._slots.value
        for idle in self._idle.values():
            while idle and excess > 0:
                idle.pop(0).close()  # the longest idle first
                excess -= 1

    def _check_in(self, origin: tuple[str, int], connection: _Connection, keep: bool) -> None:
        idle = self._idle.setdefault(origin, [])
        pooled = len(idle) if len(self._idle) == 1 else sum(map(len, self._idle.values()))
        if keep and not self._closed and pooled < self._keep:
            idle.append(connection)
        else:
            connection.close()

    # -- httpx.AsyncBaseTransport -----------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"this transport serves http:// only, not {url.scheme!r}", request=request
            )
        data = _encode(request, await request.aread())
        timeouts = timeouts_of(request.extensions.get("timeout", {}))
        connection = request.headers.get("connection", "").lower().encode()
        try:
            status, reason, headers, body = await self.exchange(
                (url.host, url.port or 80), data, timeouts,
                head_request=request.method == "HEAD",
                reuse=not _says_close(connection),
            )
            fields = header_fields(headers) if isinstance(headers, bytes) else headers
        except httpx.TransportError as error:
            error.request = request
            raise
        return httpx.Response(
            status,
            headers=fields,
            content=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
            request=request,
        )

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


_FORBIDDEN_IN_HEADERS = (b"\r", b"\n", b"\0")


def _encode(request: httpx.Request, body: bytes) -> bytes:
    """The bytes of ``request`` (its body read whole, so framed by ``Content-Length``)."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding"):
            continue
        if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS) or b":" in name:
            raise httpx.LocalProtocolError(f"invalid header {name[:40]!r}", request=request)
        lines.append(name + b": " + value)
    if body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


#: Paths that httpx would send unchanged (nothing to percent-encode): appended as they are.
PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~-]*\Z")


class LeanSender:
    """The runtime's hot path on :class:`Http11Transport`: requests to one state manager.

    The fixed headers (``host``, the API key, ``content-type``) are encoded once; each request
    adds its request line and ``content-length``. Used by
    :class:`~exo_ref._runtime_client.StateManagerClient`.

    Args:
        transport: the connections.
        prefix: ``http://host:port/v0/namespace/ns`` (every path is appended to it).
        headers: headers (name, value) sent on every request.
        timeout: httpx's timeouts, applied as :meth:`Http11Transport.exchange` does.

    Raises:
        ValueError: a header that cannot be sent as is (not ASCII, or with a line break).
    """

    def __init__(
        self,
        transport: Http11Transport,
        prefix: str,
        headers: list[tuple[str, str]],
        timeout: httpx.Timeout,
    ) -> None:
        url = httpx.URL(prefix)
        if url.scheme != "http":
            raise ValueError(f"the lean path serves http:// only, not {url.scheme!r}")
        self._transport = transport
        self._origin = (url.host, url.port or 80)
        self.origin = f"http://{url.netloc.decode('ascii')}"
        self._prefix = prefix
        self._target = url.raw_path.rstrip(b"/")
        self._timeouts = timeouts_of(timeout)
        fixed = [(b"host", url.netloc)] + [
            (name.encode("ascii"), value.encode("ascii")) for name, value in headers
        ]
        for name, value in fixed:
            if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS) or b":" in name:
                raise ValueError(f"invalid header {name!r}")
        self._fixed = b"".join(name + b": " + value + b"\r\n" for name, value in fixed)

    async def send(self, method: str, path: str, body: bytes | None) -> RawAnswer:
        """``method`` ``prefix + path`` with ``body`` (JSON); the whole answer."""
        if PLAIN_PATH.match(path):
            target = self._target + path.encode("ascii")
        else:
            target = httpx.URL(self._prefix + path).raw_path
        if body is None:
            length = b"content-length: 0\r\n" if method in ("POST", "PUT", "PATCH") else b""
            data = b"%s %s HTTP/1.1\r\n%s%s\r\n" % (
                method.encode("ascii"), target, self._fixed, length
            )
        else:
            data = b"%s %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s" % (
                method.encode("ascii"), target, self._fixed, len(body), body
            )
        return await self._transport.exchange(
            self._origin, data, self._timeouts, head_request=method == "HEAD"
        )
