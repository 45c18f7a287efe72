"""A fake Geelark phone for the real adb binary: a tiny adbd speaking the ADB protocol.

It answers the handshake (``CNXN``, or ``AUTH`` forever to look unauthorized), shell services
in the shell v2 protocol (so adb reports exit codes): ``getprop NAME``, ``glogin PASSWORD``,
``echo``, and the file sync service of ``adb push`` (``STAT``, ``SEND``/``DATA``/``DONE``,
``QUIT``; pushed files land in ``files``). Like a Geelark phone as public projects report it,
shell commands other than ``glogin`` print ``error: you should run glogin to login first``
(exit 0) until ``glogin`` ran with the right password. Protocol reference: AOSP
``packages/modules/adb/protocol.txt``, ``shell_protocol.h`` and ``SYNC.TXT``.

Faults a test can switch on at any time: ``hang`` (read, never answer), ``props`` changed under
way (another phone's ``ro.gl.serialno``), ``drop_connections()``; ``accepting`` (a callable)
closes each new connection at once while it says no, as a stopped phone's port does.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import struct
import threading
from collections.abc import Callable, Mapping

A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN = 1
HEADER = struct.Struct("<6I")

SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3

GLOGIN_REQUIRED = "error: you should run glogin to login first\n"
BANNER = (
    b"device::ro.product.name=geelark;ro.product.model=fake;ro.product.device=fake;"
    b"features=shell_v2,cmd"
)


def message(command: int, arg0: int, arg1: int, payload: bytes = b"") -> bytes:
    """One ADB message: the 24-byte header and the payload."""
    header = HEADER.pack(
        command, arg0, arg1, len(payload), sum(payload) & 0xFFFFFFFF, command ^ 0xFFFFFFFF
    )
    return header + payload


def shell_packet(kind: int, data: bytes) -> bytes:
    """One shell v2 packet: id, little-endian length, data."""
    return struct.pack("<BI", kind, len(data)) + data


class FakeAdbd:
    """Listens on ``host`` and plays one Geelark phone for every adb server that connects.

    ``password`` is the glogin password, or a callable giving the current one (a phone draws a
    new one on every start).
    """

    def __init__(
        self,
        *,
        props: Mapping[str, str],
        password: str | Callable[[], str],
        authorized: bool = True,
        port: int = 0,
        host: str = "127.0.0.1",
        accepting: Callable[[], bool] | None = None,
    ) -> None:
        self.props = dict(props)
        self._password = password
        self.authorized = authorized
        self.accepting = accepting
        self.hang = False
        self.logged_in = False
        self.commands: list[str] = []
        self.files: dict[str, bytes] = {}
        """Files pushed with ``adb push``, by path on the phone."""
        self.directories = {"/sdcard", "/sdcard/Download", "/sdcard/DCIM", "/data/local/tmp"}
        self._host = host
        self._listener = socket.create_server((host, port))
        self._port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="fake-adbd", daemon=True)

    @property
    def port(self) -> int:
        """The TCP port adb connects to."""
        return self._port

    @property
    def serial(self) -> str:
        """The adb serial of this device."""
        return f"{self._host}:{self.port}"

    @property
    def password(self) -> str:
        """The glogin password right now."""
        return self._password() if callable(self._password) else self._password

    @password.setter
    def password(self, value: str) -> None:
        self._password = value

    def start(self) -> FakeAdbd:
        """Start accepting connections."""
        self._thread.start()
        return self

    def drop_connections(self) -> None:
        """Cut every open connection, as a phone that lost its network would."""
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def close(self) -> None:
        """Stop listening and cut every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        self.drop_connections()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            if self.accepting is not None and not self.accepting():
                connection.close()  # as a phone that is off or has ADB off: nothing answers
                continue
            with self._lock:
                self._connections.append(connection)
            threading.Thread(
                target=self._serve, args=(connection,), name="fake-adbd-conn", daemon=True
            ).start()

    def _serve(self, connection: socket.socket) -> None:
        streams: dict[int, list[bytes]] = {}  # our stream id -> messages still to send
        syncs: dict[int, _SyncStream] = {}  # our stream id -> a file sync in progress
        try:
            while True:
                command, arg0, arg1, payload = self._read(connection)
                if self.hang:
                    continue  # a wedged phone: it reads everything and answers nothing
                for reply in self._answer(command, arg0, arg1, payload, streams, syncs):
                    connection.sendall(reply)
        except (OSError, ConnectionError):
            pass
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            connection.close()

    def _answer(  # noqa: PLR0911, PLR0917 (one answer per ADB message type reads best)
        self,
        command: int,
        arg0: int,
        arg1: int,
        payload: bytes,
        streams: dict[int, list[bytes]],
        syncs: dict[int, _SyncStream],
    ) -> list[bytes]:
        """The messages answering one message from the adb server."""
        if command == A_CNXN:
            if self.authorized:
                return [message(A_CNXN, A_VERSION, MAX_PAYLOAD, BANNER)]
            return [message(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))]
        if command == A_AUTH:
            # A signature we cannot check: ask again. A public key (arg0 == 3) waits for a user
            # who never taps "Allow", which is what leaves the device "unauthorized".
            return [message(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))] if arg0 == 2 else []
        if command == A_OPEN and payload.rstrip(b"\0") == b"sync:":
            ours = len(streams) + 1
            streams[ours] = []
            syncs[ours] = _SyncStream(self)
            return [message(A_OKAY, ours, arg0)]
        if command == A_WRTE and arg1 in syncs:
            sync = syncs[arg1]
            reply = sync.feed(payload)
            sent = [message(A_OKAY, arg1, arg0)]
            if reply:
                sent.append(message(A_WRTE, arg1, arg0, reply))
            if sync.quit:  # the client waits for the device to close the stream
                del syncs[arg1]
                sent.append(message(A_CLSE, arg1, arg0))
            return sent
        if command == A_CLSE and syncs.pop(arg1, None) is not None:
            return [message(A_CLSE, arg1, arg0)]
        if command == A_OPEN:
            replies = self._service(payload.rstrip(b"\0").decode())
            if replies is None:
                return [message(A_CLSE, 0, arg0)]
            ours = len(streams) + 1
            queue = [message(A_WRTE, ours, arg0, data) for data in replies]
            streams[ours] = [*queue[1:], message(A_CLSE, ours, arg0)]
            return [message(A_OKAY, ours, arg0), queue[0]]
        if command == A_OKAY and streams.get(arg1):
            return [streams[arg1].pop(0)]  # the previous write was acknowledged: send the next
        if command == A_WRTE:
            return [message(A_OKAY, arg1, arg0)]
        return []

    def _read(self, connection: socket.socket) -> tuple[int, int, int, bytes]:
        header = self._read_exactly(connection, HEADER.size)
        command, arg0, arg1, length, _, _ = HEADER.unpack(header)
        return command, arg0, arg1, self._read_exactly(connection, length)

    @staticmethod
    def _read_exactly(connection: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                raise ConnectionError("adb closed the connection")
            data += chunk
        return data

    def _service(self, service: str) -> list[bytes] | None:
        """The shell v2 packets answering ``service``; None for a service this fake lacks."""
        prefix, _, command = service.partition(":")
        if not prefix.startswith("shell"):
            return None
        self.commands.append(command)
        stdout, stderr, code = self._run(shlex.split(command))
        packets = []
        if stdout:
            packets.append(shell_packet(SHELL_STDOUT, stdout.encode()))
        if stderr:
            packets.append(shell_packet(SHELL_STDERR, stderr.encode()))
        packets.append(shell_packet(SHELL_EXIT, bytes([code])))
        return packets

    def _run(self, argv: list[str]) -> tuple[str, str, int]:
        """Run a shell command: (stdout, stderr, exit code)."""
        if argv[:1] == ["glogin"]:
            if argv[1:] == [self.password]:
                self.logged_in = True
                return "login success\n", "", 0
            return "", "glogin: login failed, wrong password\n", 1
        if not self.logged_in:
            return GLOGIN_REQUIRED, "", 0
        if argv[:1] == ["getprop"] and len(argv) == 2:
            return self.props.get(argv[1], "") + "\n", "", 0
        if argv[:1] == ["echo"]:
            return " ".join(argv[1:]) + "\n", "", 0
        return "", f"/system/bin/sh: {argv[0] if argv else ''}: not found\n", 127


class _SyncStream:
    """One ``sync:`` stream: requests are an id and a little-endian length, then data."""

    def __init__(self, device: FakeAdbd) -> None:
        self._device = device
        self._buffer = b""
        self._path = ""
        self._data = b""
        self.quit = False
        """The client sent QUIT: the stream is to be closed."""

    def feed(self, data: bytes) -> bytes:
        """Take bytes the client wrote; return the bytes to answer (may be none yet)."""
        self._buffer += data
        reply = b""
        while len(self._buffer) >= 8:
            request, length = self._buffer[:4], struct.unpack("<I", self._buffer[4:8])[0]
            if request in (b"DONE", b"QUIT"):
                self._buffer = self._buffer[8:]
                if request == b"DONE":
                    reply += self._done()
                else:
                    self.quit = True
                continue
            if len(self._buffer) < 8 + length:
                break
            body, self._buffer = self._buffer[8 : 8 + length], self._buffer[8 + length :]
            if request in (b"STAT", b"LST1"):
                reply += self._stat(body.decode())
            elif request == b"SEND":
                self._path, self._data = body.decode().rsplit(",", 1)[0], b""
            elif request == b"DATA":
                self._data += body
            else:
                message_text = f"fake adbd: unsupported sync request {request!r}".encode()
                reply += b"FAIL" + struct.pack("<I", len(message_text)) + message_text
        return reply

    def _stat(self, path: str) -> bytes:
        device = self._device
        if path.rstrip("/") in device.directories:
            mode, size = 0o040755, 4096
        elif path in device.files:
            mode, size = 0o100644, len(device.files[path])
        else:
            mode, size = 0, 0
        return b"STAT" + struct.pack("<III", mode, size, 0)

    def _done(self) -> bytes:
        self._device.files[self._path] = self._data
        return b"OKAY" + struct.pack("<I", 0)
