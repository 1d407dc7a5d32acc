"""The yardstick of the throughput bench: an asyncio server that does only the framing.

It decodes frames with the same :class:`FrameDecoder` and answers LOGIN and CARD_PAY with a fixed,
protocol-valid body at once: no session checks, no store, no cloud. The agent's round trip
against this one's, in the same run, is what the agent adds. It runs on the same event loop as the
agent (``--loop``, default ``auto``: uvloop when installed), so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import asyncio

from edge_agent import event_loop

from edge_agent.protocol import NEED_DATA, Command, Frame, FrameDecoder, encode_frame, response_of

LOGIN_OK = {"ok": True, "server_time": 0, "merchant_name": "bare", "params_ver": 0, "blacklist_ver": 0}


class BareFraming(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.decoder = FrameDecoder()

    def data_received(self, data: bytes) -> None:
        self.decoder.receive_data(data)
        while (frame := self.decoder.next_event()) is not NEED_DATA:
            if not isinstance(frame, Frame):
                continue
            if frame.cmd == Command.LOGIN:
                body = LOGIN_OK
            else:
                body = {"txn": frame.body.get("txn", 0), "ok": True, "code": "OK", "msg": "", "voice": "",
                        "balance_fen": 0, "offline": False}
            self.transport.write(encode_frame(Frame(frame.seq, response_of(frame.cmd), body)))  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BareFraming, "127.0.0.1", port, backlog=1024)
    print(f"bare framing server on {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=event_loop.CHOICES, default="auto")
    args = parser.parse_args()
    event_loop.run(serve(args.port), args.loop)
