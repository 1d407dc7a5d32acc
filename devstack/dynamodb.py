"""The local DynamoDB (and KMS): moto's server, with requests serialised.

moto is not atomic under concurrent requests (a failed transaction's rollback can overwrite
another client's write), so one lock admits one request at a time: conditional writes and
transactions then behave atomically, which is what our correctness relies on. After each request
`reset_model_data()` drops moto's dashboard bookkeeping, which otherwise keeps a copy of every
table each TransactWriteItems touched (memory grows without bound).

    python -m devstack.dynamodb --port 8001
"""
from __future__ import annotations

import argparse
import threading
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class SerialisedApp:
    """WSGI middleware: one request at a time, bodies fully produced inside the lock."""

    def __init__(self, app: WSGIApp) -> None:
        from moto.core.model_instances import reset_model_data

        self._app = app
        self._lock = threading.Lock()
        self._reset = reset_model_data
        self.requests_served = 0

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            try:
                body = list(self._app(environ, start_response))
            finally:
                self._reset()
                self.requests_served += 1
        return body


def build_app() -> SerialisedApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return SerialisedApp(DomainDispatcherApplication(create_backend_app))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass  # one line per DynamoDB call drowns everything else


class LocalDynamoDB:
    """The emulator in a background thread of this process (tests) or as the main thing (make run)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = build_app()
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-dynamodb", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalDynamoDB":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="moto DynamoDB + KMS, serialised")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    server = LocalDynamoDB(args.host, args.port)
    print(f"local DynamoDB/KMS on {server.endpoint}", flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
