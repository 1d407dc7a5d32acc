"""The lean HTTP/1.1 client of the cloud calls: keep-alive reuse only after a complete exchange, an
interrupted exchange never reused (a late answer cannot be read as the next call's), a server's
"Connection: close" and an idle connection the server dropped both lead to a fresh connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.cloud import PATH_TERMINALS, CloudClient, CloudUnavailable
from edge_agent.http1 import Http1Pool, HttpError
from edge_agent.simulator.stub_cloud import StubCloud

from edge_agent_support import AGENT_ID, SECRET, TERMINALS, config_for, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


class OneShotServer:
    """Answers each request with ``answer`` and then, if ``close_after``, closes the connection."""

    def __init__(self, answer: bytes, close_after: bool) -> None:
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                self.requests.append(await reader.readexactly(length))
                writer.write(self.answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


def _ok(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n" + extra + b"\r\n{\"ok\":true}"


def test_a_connection_close_answer_is_not_reused() -> None:
    async def scenario() -> None:
        server = OneShotServer(_ok(b"Connection: close\r\n"), close_after=True)
        pool = Http1Pool(await server.start(), connect_timeout_s=1.0)
        try:
            for n in range(3):
                reply = await pool.post("/x", [("content-type", "application/json")], b'{"n":%d}' % n)
                assert (reply.status, reply.body) == (200, b'{"ok":true}')
            assert server.connections == 3 and pool.connections_opened == 3
            assert server.requests == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        finally:
            await pool.aclose()
            await server.stop()

    run(scenario)


def test_an_idle_connection_dropped_by_the_server_is_replaced(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = OneShotServer(_ok(), close_after=True)  # closes without saying so
        client = CloudClient(config_for(await server.start(), tmp_path, cloud_attempts=2), rng=lambda: 0.0)
        try:
            for _ in range(3):
                assert (await client.post(PATH_TERMINALS, {})).body == {"ok": True}
            assert server.connections == 3 and len(server.requests) == 3
        finally:
            await client.aclose()
            await server.stop()

    run(scenario)


def test_an_interrupted_exchange_is_never_reused(tmp_path: Path) -> None:
    async def scenario() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        client = CloudClient(config_for(cloud.url, tmp_path, cloud_attempts=1))
        try:
            assert (await client.post(PATH_TERMINALS, {})).success
            cloud.hang_s = 0.3
            with pytest.raises(CloudUnavailable):
                await client.post("/edge/v1/cards/params", {"terminal_id": "T0001"}, deadline_s=0.05)
            cloud.hang_s = 0.0
            reply = await client.post(PATH_TERMINALS, {})  # its own answer, not the late one
            assert reply.success and len(reply.body["terminals"]) == 3
            assert cloud.connections == 2
        finally:
            await client.aclose()
            await cloud.stop()

    run(scenario)


def test_an_answer_that_is_not_http_is_an_error() -> None:
    async def scenario() -> None:
        server = OneShotServer(b"SSH-2.0-OpenSSH\r\n\r\n", close_after=True)
        pool = Http1Pool(await server.start(), connect_timeout_s=1.0)
        try:
            with pytest.raises(HttpError):
                await pool.post("/x", [], b"{}")
        finally:
            await pool.aclose()
            await server.stop()

    run(scenario)


def test_a_cloud_url_with_a_path_prefix_is_kept() -> None:
    async def scenario() -> None:
        seen: list[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head.split(b"\r\n")[0])
            writer.write(_ok(b"Connection: close\r\n"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Pool(f"http://127.0.0.1:{port}/prod/", connect_timeout_s=1.0)
        try:
            await pool.post("/edge/v1/terminals", [], b"{}")
            assert seen == [b"POST /prod/edge/v1/terminals HTTP/1.1"]
        finally:
            await pool.aclose()
            server.close()
            await server.wait_closed()

    run(scenario)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (no files shipped, nothing fetched)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_with_a_verified_certificate_and_refused_without(tmp_path: Path) -> None:
    import ssl

    cert_path, key_path = _self_signed(tmp_path)

    async def scenario() -> None:
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert_path, key_path)
        answered: list[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                answered.append(head.split(b"\r\n")[0])
                writer.write(_ok())
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        trusting = Http1Pool(url, connect_timeout_s=2.0, ssl_context=ssl.create_default_context(cafile=str(cert_path)))
        default = Http1Pool(url, connect_timeout_s=2.0)  # the system's CAs do not know this certificate
        try:
            reply = await trusting.post("/edge/v1/terminals", [], b"{}")
            assert (reply.status, reply.body) == (200, b'{"ok":true}')
            with pytest.raises(HttpError):
                await default.post("/edge/v1/terminals", [], b"{}")
            assert answered == [b"POST /edge/v1/terminals HTTP/1.1"]  # the unverified one sent nothing
        finally:
            await trusting.aclose()
            await default.aclose()
            server.close()
            await server.wait_closed()

    run(scenario)


# -- what an answer may be (httptools parses it) --------------------------------------------------

async def _two_posts(answer: bytes, close_after: bool = False) -> tuple[list[object], OneShotServer]:
    """Two POSTs through one pool to a server that gives ``answer`` to each: what each returned (or
    raised), and the server (its connections: 1 when the first one was reused)."""
    server = OneShotServer(answer, close_after=close_after)
    pool = Http1Pool(await server.start(), connect_timeout_s=1.0)
    outcomes: list[object] = []
    try:
        for _ in range(2):
            try:
                outcomes.append(await pool.post("/x", [("x-test", "1")], b"{}"))
            except HttpError as exc:
                outcomes.append(exc)
    finally:
        await pool.aclose()
        await server.stop()
    return outcomes, server


def test_a_chunked_answer_is_assembled_and_the_connection_reused() -> None:
    async def scenario() -> None:
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ok\r\n7\r\n\":true}\r\n0\r\n\r\n"
        outcomes, server = await _two_posts(answer)
        assert [(o.status, o.body) for o in outcomes] == [(200, b'{"ok":true}')] * 2  # type: ignore[attr-defined]
        assert server.connections == 1

    run(scenario)


def test_an_interim_1xx_answer_is_skipped() -> None:
    async def scenario() -> None:
        outcomes, server = await _two_posts(b"HTTP/1.1 100 Continue\r\n\r\n" + _ok())
        assert [(o.status, o.body) for o in outcomes] == [(200, b'{"ok":true}')] * 2  # type: ignore[attr-defined]
        assert server.connections == 1

    run(scenario)


def test_a_body_without_framing_ends_with_the_connection() -> None:
    async def scenario() -> None:
        outcomes, server = await _two_posts(b"HTTP/1.1 200 OK\r\n\r\n{\"ok\":true}", close_after=True)
        assert [(o.status, o.body) for o in outcomes] == [(200, b'{"ok":true}')] * 2  # type: ignore[attr-defined]
        assert server.connections == 2  # never reused: its end was the answer's end

    run(scenario)


def test_an_answer_cut_short_is_an_error() -> None:
    async def scenario() -> None:
        cut = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"ok\":true}"
        outcomes, server = await _two_posts(cut, close_after=True)
        assert [str(o) for o in outcomes] == ["connection closed before the answer"] * 2
        assert server.connections == 2

    run(scenario)


def test_an_answer_too_large_is_an_error() -> None:
    async def scenario() -> None:
        size = (4 << 20) + 1
        huge = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
        outcomes, server = await _two_posts(huge)
        assert [str(o) for o in outcomes] == ["answer too large"] * 2
        assert server.connections == 2  # the interrupted exchange was not reused

    run(scenario)


def test_bytes_after_the_answer_mean_the_connection_is_not_reused() -> None:
    async def scenario() -> None:
        twice = _ok() + b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
        outcomes, server = await _two_posts(twice)
        assert [(o.status, o.body) for o in outcomes] == [(200, b'{"ok":true}')] * 2  # type: ignore[attr-defined]
        assert server.connections == 2

    run(scenario)


def test_an_http_1_0_answer_closes_the_connection() -> None:
    async def scenario() -> None:
        outcomes, server = await _two_posts(_ok().replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        assert [o.status for o in outcomes] == [200, 200]  # type: ignore[attr-defined]
        assert server.connections == 2

    run(scenario)


def test_a_header_that_would_split_the_request_is_refused_and_nothing_is_sent() -> None:
    async def scenario() -> None:
        server = OneShotServer(_ok(), close_after=False)
        pool = Http1Pool(await server.start(), connect_timeout_s=1.0)
        try:
            for headers in ([("x-test", "1\r\nx-evil: 1")], [("x-te\nst", "1")], [("x:test", "1")], [("", "1")]):
                with pytest.raises(ValueError, match="cannot be sent as it is"):
                    await pool.post("/x", headers, b"{}")
            with pytest.raises(ValueError, match="cannot be sent as it is"):
                await pool.post("/x HTTP/1.1\r\nx-evil: 1\r\n\r\nPOST /y", [], b"{}")
            assert server.requests == []
            assert (await pool.post("/x", [("x-test", "1")], b"{}")).status == 200  # the pool still works
        finally:
            await pool.aclose()
            await server.stop()

    run(scenario)
