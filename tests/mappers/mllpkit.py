"""A minimal MLLP sender for the tests: a real TCP socket on loopback, frames in, ACKs out."""

from __future__ import annotations

import socket
import time

START, END = b"\x0b", b"\x1c\x0d"


class Sender:
    """One connection to an MLLP listener."""

    def __init__(self, port: int, timeout_s: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: str | bytes) -> str:
        """Frame ``message``, send it and return the ACK's text."""
        data = message.encode() if isinstance(message, str) else message
        self.sock.sendall(START + data + END)
        return self.ack()

    def ack(self) -> str:
        """The next ACK on the connection (its frame stripped)."""
        while END not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self.pending += chunk
        frame, _, self.pending = self.pending.partition(END)
        assert frame.startswith(START), frame[:20]
        return frame[1:].decode()

    def closed_by_peer(self, deadline_s: float = 10.0) -> bool:
        """Whether the listener closes this connection within ``deadline_s`` (polled, no sleep)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.pending += chunk
        return False

    def close(self) -> None:
        self.sock.close()
