"""One API process for concurrency tests: the Chalice app behind a single-threaded local server,
configured from the environment like a Lambda container (one request at a time per process).

Why processes and not threads: Chalice keeps `app.current_request` in one attribute of the app
object, so two requests served by threads of one process can read each other's request (the
Chalice test client and `chalice local`'s threaded server alike). Lambda never does that: each
container serves one request at a time, which is what these processes reproduce.

    python -m tests.integration.cards.api_worker   (prints the bound port, then serves)
"""
from __future__ import annotations

from http.server import HTTPServer


class _Server(HTTPServer):
    request_queue_size = 128  # the test opens many connections at once; the default backlog is 5


def main() -> None:
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from app import app

    server = LocalDevServer(app, Config(), "127.0.0.1", 0, server_cls=_Server)
    print(server.server.server_address[1], flush=True)
    server.server.serve_forever()


if __name__ == "__main__":
    main()
