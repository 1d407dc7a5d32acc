"""A TCP forwarder on loopback between an edge agent and the API that can hold answers back or swallow
requests: the network in which a card payment's online attempt times out after it landed (the answer
is held), or without landing (the request is swallowed). Driven by events, never by timing."""
from __future__ import annotations

import socket
import threading

HOLD_LIMIT_S = 60.0  # a held answer goes on after this at the latest, so no thread waits forever


class HoldingLink:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._answers_flow = threading.Event()
        self._answers_flow.set()
        self._swallow = threading.Event()
        threading.Thread(target=self._accept, name="holding-link", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold_answers(self) -> None:
        """Requests reach the API; its answers wait until release_answers()."""
        self._answers_flow.clear()

    def release_answers(self) -> None:
        self._answers_flow.set()

    def swallow_requests(self, on: bool = True) -> None:
        """Request bytes are dropped (that connection stays dead): nothing reaches the API."""
        if on:
            self._swallow.set()
        else:
            self._swallow.clear()

    def close(self) -> None:
        self._answers_flow.set()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        dead = False
        try:
            while data := client.recv(65536):
                if dead or self._swallow.is_set():
                    dead = True  # the rest of a swallowed request must never reach the API later
                    continue
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                self._answers_flow.wait(HOLD_LIMIT_S)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, upstream)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass
