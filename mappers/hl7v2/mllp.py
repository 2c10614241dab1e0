"""The MLLP listener: HL7 v2 over TCP, each message framed ``\\x0b ... \\x1c\\x0d``, one ACK per message.

MLLP carries no token, so the listener is bound to one registered OAuth client (RELAIS_MLLP_CLIENT)
whose registered scopes decide every message, and optionally to source addresses (RELAIS_MLLP_ALLOW).
hl7apy's MLLPServer reads one message per connection with no size limit; HL7 senders keep their
connection open, so the framing is done here, bounded in size, time and connections.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
import time
from dataclasses import dataclass

import auth
from auth.clients import ClientRegistry
from fhir_server.config import Config, ConfigError, check_mllp

from . import feed
from .problems import Problem

START, END = b"\x0b", b"\x1c\x0d"
_READ = 65536

log = logging.getLogger(__name__)


@dataclass
class _Settings:
    max_bytes: int
    timeout_s: float
    max_connections: int


class Listener:
    """A TCP server thread; ``close()`` stops it and its connections."""

    def __init__(self, store, config: Config):
        check_mllp(config)
        self.store = store
        self.config = config
        self.allow = tuple(ipaddress.ip_network(item, strict=False) for item in config.mllp_allow)
        self.settings = _Settings(config.mllp_max_bytes, config.mllp_timeout_s, config.mllp_max_connections)
        self.slots = threading.BoundedSemaphore(config.mllp_max_connections)
        address = (config.mllp_host or config.host, config.mllp_port)
        try:
            self.server = _Server(address, _Connection, self)
        except OSError as exc:
            raise ConfigError(f"RELAIS_MLLP_PORT={config.mllp_port}: cannot listen on {address[0]}: {exc}") from None
        self.thread = threading.Thread(target=self.server.serve_forever, name="relais-mllp", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def start(self) -> Listener:
        if self.config.auth:
            client = ClientRegistry(self.store).get(self.config.mllp_client)
            if client is None or not client.enabled:
                # not fatal: the client may be registered after the start; until then every message is refused
                log.warning("RELAIS_MLLP_CLIENT=%s is not a registered, enabled client: MLLP messages get AR",
                            self.config.mllp_client)
        self.thread.start()
        log.info("MLLP listener on %s:%s for client %s", *self.address, self.config.mllp_client or "(auth off)")
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def allowed(self, address: str) -> bool:
        if not self.allow:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allow)

    def caller(self) -> auth.Caller | None:
        """The registered client every message acts as, read per message so scope changes apply at once."""
        if not self.config.auth:
            return None
        return auth.caller_for_client(self.store, self.config.mllp_client)

    def source(self, address: str) -> feed.Source:
        return feed.Source("mllp", address, self.config.mllp_client or None)

    def process(self, frame: bytes, address: str) -> bytes:
        """The framed ACK of one frame: whatever fails, the sender gets an ACK (an AE when nothing else)."""
        try:
            answer = feed.receive(self.store, frame, self.caller(), self.source(address), self.config.base_url).answer
        except Exception:  # the client registry could not be read (the store failed)
            log.exception("MLLP message from %s could not be processed", address)
            answer = feed.unprocessed(frame)
        return START + answer.encode("utf-8") + END

    def refuse_oversized(self, head: bytes, address: str) -> bytes:
        """The AR for a frame past RELAIS_MLLP_MAX_BYTES; its start is kept with the reason."""
        problem = Problem(100, f"the message is larger than RELAIS_MLLP_MAX_BYTES ({self.settings.max_bytes} bytes)",
                          "", "AR")
        outcome = feed.refuse_oversized(self.store, head[: 64 * 1024], self.source(address), self.config.base_url,
                                        problem)
        return START + outcome.answer.encode("utf-8") + END


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # every pre-fork worker (gunicorn) binds the same port; the kernel spreads connections among them
    allow_reuse_port = True

    def __init__(self, address, handler, listener: Listener):
        self.listener = listener
        super().__init__(address, handler)


class _Connection(socketserver.BaseRequestHandler):
    """One sender's connection: frames in order, one ACK each, until it closes or falls silent."""

    def handle(self) -> None:
        listener: Listener = self.server.listener  # type: ignore[attr-defined]
        address = self.client_address[0]
        sock: socket.socket = self.request
        if not listener.allowed(address):
            feed.audit_refused(listener.store, listener.source(address), listener.config.base_url, 403,
                               f"MLLP connection from {address} refused: not in RELAIS_MLLP_ALLOW")
            return
        if not listener.slots.acquire(blocking=False):
            log.warning("MLLP connection from %s refused: RELAIS_MLLP_MAX_CONNECTIONS reached", address)
            return
        try:
            self._frames(listener, sock, address)
        except OSError:
            pass  # the peer went away (reset, broken pipe): an unacknowledged message will be sent again
        finally:
            listener.slots.release()

    def _frames(self, listener: Listener, sock: socket.socket, address: str) -> None:
        settings = listener.settings
        buffer = bytearray()
        started: float | None = None  # when the frame being read began: a slow sender gets timeout_s for it
        skipping = False  # the rest of an oversized frame, already answered, is dropped up to its end
        sock.settimeout(settings.timeout_s)
        while True:
            try:
                chunk = sock.recv(_READ)
            except TimeoutError:
                return  # idle or too slow: close; what was not acknowledged will be sent again
            if not chunk:
                return
            buffer += chunk
            while True:
                if skipping:
                    end = buffer.find(END)
                    if end < 0:
                        del buffer[: max(0, len(buffer) - 1)]  # keep a last \x1c: its \r may come next
                        break
                    del buffer[: end + len(END)]
                    skipping = False
                begin = buffer.find(START)
                if begin < 0:
                    buffer.clear()  # bytes outside a frame are not a message (MLLP ignores them)
                    started = None
                    break
                if begin > 0:
                    del buffer[:begin]
                end = buffer.find(END, 1)
                restart = buffer.find(START, 1, end if end >= 0 else len(buffer))
                if restart > 0:
                    del buffer[:restart]  # a frame abandoned half-way: its sender starts it again
                    continue
                if end < 0:
                    if len(buffer) - 1 > settings.max_bytes:
                        sock.sendall(listener.refuse_oversized(bytes(buffer[1:]), address))
                        buffer.clear()
                        skipping, started = True, None
                        break
                    started = started or time.monotonic()
                    if time.monotonic() - started > settings.timeout_s:
                        return
                    break
                frame = bytes(buffer[1:end])
                del buffer[: end + len(END)]
                started = None
                if len(frame) > settings.max_bytes:
                    sock.sendall(listener.refuse_oversized(frame, address))
                    continue
                sock.sendall(listener.process(frame, address))


def start(store, config: Config) -> Listener:
    """Start the listener of ``config`` (RELAIS_MLLP_PORT) on ``store``: it needs no Flask app."""
    return Listener(store, config).start()
