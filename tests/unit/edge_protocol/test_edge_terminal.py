"""TerminalSession, and the two sessions talking over an in-memory transport that fragments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol.auth import verify_login_mac
from edge_agent.protocol.errors import LocalProtocolError
from edge_agent.protocol.events import CardPay, Login, NakReceived, PushAck
from edge_agent.protocol.frames import NEED_DATA, BadFrame, Command, Frame, NakCode, encode_frame
from edge_agent.protocol.session import ServerSession
from edge_agent.protocol.terminal import Push, Response, TerminalSession

from .helpers import decode_all, feed, raw_frame, split

KEY = "demo-key-T0001"
LOGIN_OK = {
    "ok": True,
    "server_time": 1,
    "merchant_name": "演示食堂",
    "params_ver": 1,
    "blacklist_ver": 1,
}
CARD_OK = {
    "txn": 1,
    "ok": True,
    "code": "OK",
    "msg": "支付成功",
    "voice": "消费12.50元",
    "balance_fen": 8750,
    "offline": False,
}
PAY_RESULT = {
    "txn": 2,
    "order_id": "Q1",
    "status": "PAID",
    "amount_fen": 1250,
    "channel": "alipay",
    "msg": "支付成功",
    "voice": "支付宝收款12.50元",
}


def test_request_is_checked_and_gets_its_own_seq() -> None:
    terminal = TerminalSession(initial_seq=0xFFFF)
    seq, data = terminal.request(Command.QUERY, {"txn": 1})
    assert seq == 0xFFFF and decode_all(data) == [Frame(0xFFFF, Command.QUERY, {"txn": 1})]
    assert terminal.request(Command.QUERY, {"txn": 2})[0] == 0
    with pytest.raises(LocalProtocolError):
        terminal.request(Command.QUERY, {"txn": "1"})
    with pytest.raises(LocalProtocolError):
        terminal.request(Command.PAY_RESULT, {})


def test_retransmit_is_byte_for_byte_and_response_clears_it() -> None:
    terminal = TerminalSession()
    seq, data = terminal.request(
        Command.CARD_PAY, {"txn": 1, "card": "1", "amount_fen": 1, "ts": 1}
    )
    assert terminal.retransmit(seq) == data
    [response] = feed(terminal, [encode_frame(Frame(seq, 0x90, CARD_OK))])
    assert isinstance(response, Response) and response.cmd == Command.CARD_PAY
    assert response.request is not None and response.request.seq == seq
    assert dict(terminal.outstanding) == {}
    [late] = feed(terminal, [encode_frame(Frame(seq, 0x90, CARD_OK))])
    assert isinstance(late, Response) and late.request is None


def test_contract_breaches_from_the_edge_agent_are_bad_frames() -> None:
    terminal = TerminalSession()
    events = feed(
        terminal,
        [
            encode_frame(Frame(1, 0x90, {"txn": 1})),  # response missing fields
            encode_frame(Frame(2, 0x01, {})),  # a request CMD sent to a terminal
            raw_frame(3, 0x40, b"{}", crc=0),
        ],
    )
    assert [(e.seq, e.code) for e in events] == [  # type: ignore[union-attr]
        (1, NakCode.BAD_FIELD),
        (2, NakCode.UNKNOWN_CMD),
        (3, NakCode.BAD_CRC),
    ]
    assert all(isinstance(e, BadFrame) for e in events)
    assert decode_all(terminal.nak(events[2]))[0].body["code"] == "BAD_CRC"  # type: ignore[union-attr]
    assert terminal.nak(BadFrame(4, NakCode.BAD_JSON, "x", Command.NAK)) == b""


def test_default_acks_echo_the_push() -> None:
    terminal = TerminalSession()
    cases = [
        (Command.PAY_RESULT, PAY_RESULT, {"txn": 2}),
        (Command.BLACKLIST, {"ver": 5, "full": True, "add": [], "remove": []}, {"ver": 5}),
        (Command.PARAMS, {"ver": 6}, {"ver": 6}),
        (Command.TIME_SET, {"server_time": 1}, {}),
    ]
    for cmd, body, ack_body in cases:
        [push] = feed(terminal, [encode_frame(Frame(40, cmd, body))])
        assert push == Push(40, cmd, body)
        assert decode_all(terminal.ack(push)) == [Frame(40, cmd | 0x80, ack_body)]


def test_nak_from_the_edge_agent() -> None:
    terminal = TerminalSession()
    nak = encode_frame(Frame(5, Command.NAK, {"code": "NOT_LOGGED_IN", "detail": "LOGIN first"}))
    assert feed(terminal, [nak]) == [NakReceived(5, "NOT_LOGGED_IN", "LOGIN first")]


def conversation(
    server: ServerSession, terminal: TerminalSession, to_server: list[bytes]
) -> tuple[list[Any], bytes]:
    """Server side of the exchange; returns its events and everything it wrote."""
    events, written = [], b""
    for chunk in to_server:
        server.receive_data(chunk)
        while (event := server.next_event()) is not NEED_DATA:
            events.append(event)
            written += server.data_to_send()
            if isinstance(event, Login):
                assert verify_login_mac(KEY, event.tid, event.ts, event.nonce, event.mac)
                server.accept_login(event.tid)
                written += server.respond(event, LOGIN_OK)
            elif isinstance(event, CardPay):
                written += server.respond(event, dict(CARD_OK, txn=event.txn))
        written += server.data_to_send()
    return events, written


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 400), max_size=12), st.lists(st.integers(0, 400), max_size=12))
def test_terminal_and_server_over_a_fragmenting_transport(up: list[int], down: list[int]) -> None:
    server, terminal = ServerSession(), TerminalSession()
    _, login = terminal.login(KEY, "T0001", 1700000000, "n1")
    _, pay = terminal.request(
        Command.CARD_PAY, {"txn": 7, "card": "10000001", "amount_fen": 1250, "ts": 1700000000}
    )
    events, written = conversation(server, terminal, split(login + pay, up))
    assert [type(e) for e in events] == [Login, CardPay]

    seq, push = server.push(Command.PAY_RESULT, PAY_RESULT, now=0.0)
    answers = feed(terminal, split(written + push, down))
    assert [type(a) for a in answers] == [Response, Response, Push]
    assert answers[1].body["txn"] == 7 and dict(terminal.outstanding) == {}

    events, _ = conversation(server, terminal, [terminal.ack(answers[2])])
    assert events == [PushAck(seq, Command.PAY_RESULT, {"txn": 2}, PAY_RESULT)]
    assert server.unacked_pushes() == []
