"""ServerSession: login gate, NAKs, bad-frame limit, pushes and acks, incomplete-frame timeout."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol.errors import LocalProtocolError
from edge_agent.protocol.events import (
    CardPay,
    CloseConnection,
    Heartbeat,
    Login,
    NakReceived,
    PushAck,
    QrCancel,
)
from edge_agent.protocol.frames import (
    MAX_BUFFER,
    NEED_DATA,
    Command,
    Frame,
    FrameDecoder,
    NakCode,
    encode_frame,
)
from edge_agent.protocol.session import ServerSession

from .helpers import decode_all, drain, feed, raw_frame

LOGIN_BODY = {"tid": "T0001", "ts": 1700000000, "nonce": "n1", "mac": "ab12"}
LOGIN_OK = {
    "ok": True,
    "server_time": 1700000001,
    "merchant_name": "演示食堂",
    "params_ver": 1,
    "blacklist_ver": 1,
}
CARD = {"txn": 1, "card": "10000001", "amount_fen": 1250, "ts": 1700000000}
PAY_RESULT = {
    "txn": 9,
    "order_id": "Q1",
    "status": "PAID",
    "amount_fen": 1250,
    "channel": "wechat",
    "msg": "支付成功",
    "voice": "微信收款12.50元",
}


def frame(seq: int, cmd: int, body: dict[str, Any] | None = None) -> bytes:
    return encode_frame(Frame(seq, cmd, {} if body is None else body))


def naks(session: ServerSession) -> list[tuple[int, str]]:
    """The NAKs the session queued, as (SEQ, code)."""
    out = decode_all(session.data_to_send())
    assert all(isinstance(f, Frame) and f.cmd == Command.NAK for f in out)
    return [(f.seq, f.body["code"]) for f in out]  # type: ignore[union-attr]


def logged_in_session(**kwargs: Any) -> ServerSession:
    session = ServerSession(**kwargs)
    session.receive_data(frame(0, Command.LOGIN, LOGIN_BODY))
    login = session.next_event()
    assert isinstance(login, Login)
    session.accept_login(login.tid)
    session.respond(login, LOGIN_OK)
    assert session.next_event() is NEED_DATA
    return session


# -- login ------------------------------------------------------------------------------------


def test_login_comes_out_then_requests_pass_once_accepted() -> None:
    session = ServerSession()
    session.receive_data(frame(3, Command.LOGIN, LOGIN_BODY))
    login = session.next_event()
    assert login == Login(3, "T0001", 1700000000, "n1", "ab12")
    assert not session.logged_in
    session.accept_login("T0001")
    response = session.respond(login, LOGIN_OK)
    assert decode_all(response) == [Frame(3, 0x81, LOGIN_OK)]
    assert session.logged_in and session.tid == "T0001"
    assert feed(session, [frame(4, Command.CARD_PAY, CARD)]) == [
        CardPay(4, 1, "10000001", 1250, 1700000000)
    ]


def test_request_before_login_is_nak_not_logged_in() -> None:
    session = ServerSession()
    assert feed(session, [frame(7, Command.HEARTBEAT, {"ts": 1, "offline_pending": 0})]) == []
    assert naks(session) == [(7, NakCode.NOT_LOGGED_IN)]


def test_not_logged_in_comes_before_field_checks() -> None:
    session = ServerSession()
    feed(session, [frame(7, Command.CARD_PAY, {"txn": True})])
    assert naks(session) == [(7, NakCode.NOT_LOGGED_IN)]


def test_ok_login_response_needs_accept_login_first() -> None:
    session = ServerSession()
    session.receive_data(frame(3, Command.LOGIN, LOGIN_BODY))
    login = session.next_event()
    assert isinstance(login, Login)
    with pytest.raises(LocalProtocolError, match="accept_login"):
        session.respond(login, LOGIN_OK)


def test_rejected_login_answers_and_closes() -> None:
    session = ServerSession()
    session.receive_data(frame(3, Command.LOGIN, LOGIN_BODY) + frame(4, Command.QUERY, {"txn": 1}))
    login = session.next_event()
    assert isinstance(login, Login)
    answer = session.reject_login(login)
    assert decode_all(answer) == [Frame(3, 0x81, {"ok": False, "code": "AUTH_FAILED"})]
    assert session.should_close and not session.logged_in
    assert session.next_event() == CloseConnection("login refused")
    session.receive_data(b"anything")  # ignored: nothing more is read from this peer
    assert session.next_event() == CloseConnection("login refused")
    assert session.data_to_send() == b""


def test_login_bad_field_is_nakked_before_login() -> None:
    session = ServerSession()
    feed(session, [frame(3, Command.LOGIN, dict(LOGIN_BODY, ts="1700000000"))])
    assert naks(session) == [(3, NakCode.BAD_FIELD)]


# -- NAKs for bad input -----------------------------------------------------------------------

BAD_INPUTS = {
    "wrong CRC": (raw_frame(11, 0x02, b"{}", crc=1), NakCode.BAD_CRC),
    "wrong ETX": (raw_frame(11, 0x02, b"{}", etx=0x02), NakCode.BAD_FRAME),
    "VER 2": (raw_frame(11, 0x02, b"{}", ver=2), NakCode.BAD_FRAME),
    "LEN 4097": (raw_frame(11, 0x02, b"", length=4097), NakCode.TOO_LONG),
    "non-JSON body": (raw_frame(11, 0x02, b"ts=1"), NakCode.BAD_JSON),
    "JSON array body": (raw_frame(11, 0x02, b"[]"), NakCode.BAD_JSON),
    "invalid UTF-8": (raw_frame(11, 0x02, b'{"ts":"\xe6\x94"}'), NakCode.BAD_JSON),
    "missing field": (frame(11, Command.HEARTBEAT, {"ts": 1}), NakCode.BAD_FIELD),
    "wrong type": (
        frame(11, Command.HEARTBEAT, {"ts": "1", "offline_pending": 0}),
        NakCode.BAD_FIELD,
    ),
    "bool as int": (
        frame(11, Command.HEARTBEAT, {"ts": 1, "offline_pending": True}),
        NakCode.BAD_FIELD,
    ),
    "float amount": (frame(11, Command.CARD_PAY, dict(CARD, amount_fen=12.5)), NakCode.BAD_FIELD),
    "unknown cmd": (frame(11, 0x33, {}), NakCode.UNKNOWN_CMD),
    "response cmd from terminal": (frame(11, 0x90, {}), NakCode.UNKNOWN_CMD),
}


@pytest.mark.parametrize(("data", "code"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_nakked_with_its_seq_and_the_connection_stays(data: bytes, code: str) -> None:
    session = logged_in_session()
    follow = frame(12, Command.QR_CANCEL, {"txn": 5})
    assert feed(session, [data + follow]) == [QrCancel(12, 5)]
    assert naks(session) == [(11, code)]
    assert not session.should_close


def test_unknown_cmd_is_reported_as_such_even_before_login() -> None:
    session = ServerSession()
    feed(session, [frame(2, 0x55, {})])
    assert naks(session) == [(2, NakCode.UNKNOWN_CMD)]


def test_nak_body_has_code_and_detail() -> None:
    session = logged_in_session()
    feed(session, [frame(11, Command.HEARTBEAT, {"ts": 1})])
    [nak] = decode_all(session.data_to_send())
    assert isinstance(nak, Frame)
    assert nak.body == {"code": "BAD_FIELD", "detail": "missing field 'offline_pending'"}


def test_eight_bad_frames_in_a_row_close_the_connection() -> None:
    session = logged_in_session()
    bad = raw_frame(1, 0x02, b"{}", crc=0)
    assert feed(session, [bad * 7]) == []
    assert not session.should_close and session.bad_frames_in_a_row == 7
    session.receive_data(bad)
    assert session.next_event() == CloseConnection("8 bad frames in a row")
    assert len(naks(session)) == 8  # the 8th is still answered before the close
    assert session.should_close


def test_seven_bad_frames_then_a_good_one_reset_the_count() -> None:
    session = logged_in_session()
    bad = raw_frame(1, 0x02, b"{}", crc=0)
    good = frame(2, Command.QUERY, {"txn": 1})
    events = feed(session, [bad * 7 + good + bad * 7 + good])
    assert [type(e).__name__ for e in events] == ["Query", "Query"]
    assert not session.should_close and session.bad_frames_in_a_row == 0


def test_every_kind_of_nak_counts_towards_the_limit() -> None:
    session = ServerSession()
    kinds = [
        raw_frame(1, 2, b"{}", crc=0),
        raw_frame(1, 2, b"x"),
        frame(1, 0x55),
        frame(1, Command.QUERY, {"txn": 1}),
    ]  # BAD_CRC, BAD_JSON, UNKNOWN_CMD, NOT_LOGGED_IN
    session.receive_data(b"".join(kinds * 2))
    assert drain(session)[-1] == CloseConnection("8 bad frames in a row")


def test_a_stream_of_garbage_gets_the_connection_closed() -> None:
    session = logged_in_session()
    session.receive_data(b"\x02" * 100)
    assert isinstance(session.next_event(), CloseConnection)


# -- NAK received -----------------------------------------------------------------------------


def test_nak_from_terminal_is_an_event_and_never_answered() -> None:
    session = logged_in_session()
    nak = frame(4, Command.NAK, {"code": "BAD_CRC", "detail": "x"})
    assert feed(session, [nak]) == [NakReceived(4, "BAD_CRC", "x")]
    assert session.data_to_send() == b""


def test_malformed_nak_from_terminal_is_not_answered_either() -> None:
    session = logged_in_session()
    assert feed(session, [raw_frame(4, Command.NAK, b"oops")]) == []
    assert session.data_to_send() == b""
    assert feed(session, [frame(5, Command.NAK, {"code": 1})]) == [NakReceived(5, "", "")]


# -- responses --------------------------------------------------------------------------------


def test_respond_echoes_seq_and_sets_the_response_bit() -> None:
    session = logged_in_session()
    [event] = feed(session, [frame(0xBEEF, Command.HEARTBEAT, {"ts": 5, "offline_pending": 2})])
    assert event == Heartbeat(0xBEEF, 5, 2)
    body = {"server_time": 6, "params_ver": 1, "blacklist_ver": 2}
    assert decode_all(session.respond(event, body)) == [Frame(0xBEEF, 0x82, body)]


def test_respond_with_missing_field_is_a_local_error() -> None:
    session = logged_in_session()
    [event] = feed(session, [frame(1, Command.QR_CANCEL, {"txn": 3})])
    with pytest.raises(LocalProtocolError, match="status"):
        session.respond(event, {"txn": 3, "ok": True})


# -- pushes -----------------------------------------------------------------------------------


def test_push_needs_login_a_push_cmd_and_a_valid_body() -> None:
    with pytest.raises(LocalProtocolError, match="logged-in"):
        ServerSession().push(Command.TIME_SET, {"server_time": 1})
    session = logged_in_session()
    with pytest.raises(LocalProtocolError, match="not a push"):
        session.push(Command.HEARTBEAT, {})
    with pytest.raises(LocalProtocolError, match="channel"):
        session.push(Command.PAY_RESULT, dict(PAY_RESULT, channel="cash"))
    assert session.unacked_pushes() == []


def test_push_then_ack_clears_it() -> None:
    session = logged_in_session()
    seq, data = session.push(Command.PAY_RESULT, PAY_RESULT, now=0.0)
    assert decode_all(data) == [Frame(seq, Command.PAY_RESULT, PAY_RESULT)]
    assert [p.seq for p in session.unacked_pushes()] == [seq]
    events = feed(session, [frame(seq, 0xC0, {"txn": 9})])
    assert events == [PushAck(seq, Command.PAY_RESULT, {"txn": 9}, PAY_RESULT)]
    assert session.unacked_pushes() == []
    assert feed(session, [frame(seq, 0xC0, {"txn": 9})]) == []  # a duplicate ack: nothing
    assert session.data_to_send() == b""


def test_ack_must_match_cmd_seq_and_echoed_field() -> None:
    session = logged_in_session()
    seq, _ = session.push(Command.PAY_RESULT, PAY_RESULT)
    assert feed(session, [frame(seq, 0xC3, {})]) == []  # TIME_SET ack for a PAY_RESULT seq
    assert feed(session, [frame(seq + 1, 0xC0, {"txn": 9})]) == []  # no such push
    assert feed(session, [frame(seq, 0xC0, {"txn": 8})]) == []  # stale: another txn
    assert len(session.unacked_pushes()) == 1
    assert session.data_to_send() == b""


def test_ack_with_bad_body_is_bad_field_and_not_an_ack() -> None:
    session = logged_in_session()
    seq, _ = session.push(Command.BLACKLIST, {"ver": 3, "full": False, "add": [], "remove": []})
    assert feed(session, [frame(seq, 0xC1, {"ver": True})]) == []
    assert naks(session) == [(seq, NakCode.BAD_FIELD)]
    assert len(session.unacked_pushes()) == 1


def test_ack_before_login_is_not_logged_in() -> None:
    session = ServerSession()
    feed(session, [frame(0, 0xC3, {})])
    assert naks(session) == [(0, NakCode.NOT_LOGGED_IN)]


def test_push_seq_counts_up_and_wraps_at_65536() -> None:
    session = logged_in_session(initial_push_seq=65534)
    seqs = [session.push(Command.TIME_SET, {"server_time": i})[0] for i in range(4)]
    assert seqs == [65534, 65535, 0, 1]


def test_push_seq_skips_a_seq_still_awaiting_its_ack() -> None:
    # White-box: rather than 65536 pushes, wind the counter back onto a pending SEQ.
    session = logged_in_session(initial_push_seq=7)
    assert session.push(Command.TIME_SET, {"server_time": 0})[0] == 7  # never acked
    session._next_push_seq = 7  # as after 65536 more pushes
    assert session.push(Command.TIME_SET, {"server_time": 1})[0] == 8


def test_unacked_pushes_are_capped() -> None:
    session = logged_in_session(max_unacked_pushes=2)
    session.push(Command.TIME_SET, {"server_time": 1})
    session.push(Command.TIME_SET, {"server_time": 2})
    with pytest.raises(LocalProtocolError, match="unacknowledged"):
        session.push(Command.TIME_SET, {"server_time": 3})


def test_resend_due_every_three_seconds_with_the_same_bytes() -> None:
    session = logged_in_session()
    seq_a, data_a = session.push(Command.TIME_SET, {"server_time": 1}, now=100.0)
    seq_b, data_b = session.push(Command.PARAMS, {"ver": 2}, now=101.0)
    assert session.resend_due(102.9) == []
    assert session.resend_due(103.0) == [data_a]
    assert session.resend_due(104.0) == [data_b]
    feed(session, [frame(seq_a, 0xC3)])
    assert session.resend_due(110.0) == [data_b]
    assert [p.last_sent for p in session.unacked_pushes()] == [110.0]


def test_push_without_now_starts_its_clock_at_the_first_resend_check() -> None:
    session = logged_in_session()
    _, data = session.push(Command.TIME_SET, {"server_time": 1})
    assert session.resend_due(50.0) == []
    assert session.resend_due(52.0) == []
    assert session.resend_due(53.0) == [data]


# -- incomplete frame timeout -----------------------------------------------------------------


def test_incomplete_frame_for_ten_seconds_closes() -> None:
    session = logged_in_session()
    data = frame(1, Command.QUERY, {"txn": 1})
    feed(session, [data[:5]])
    assert not session.incomplete_frame_expired(0.0)
    feed(session, [data[5:8]])  # trickling bytes do not restart the clock
    assert not session.incomplete_frame_expired(9.9)
    assert session.incomplete_frame_expired(10.0)
    assert session.should_close
    assert session.next_event() == CloseConnection("frame incomplete for 10 s")


def test_completed_frame_and_idle_line_reset_the_clock() -> None:
    session = logged_in_session()
    data = frame(1, Command.QUERY, {"txn": 1})
    feed(session, [data[:5]])
    assert not session.incomplete_frame_expired(0.0)
    assert len(feed(session, [data[5:] + data[:3]])) == 1  # done, and a new frame started
    assert not session.incomplete_frame_expired(9.0)
    assert not session.incomplete_frame_expired(18.9)
    assert session.incomplete_frame_expired(19.0)

    idle = logged_in_session()
    assert not idle.incomplete_frame_expired(0.0)
    assert not idle.incomplete_frame_expired(1000.0)


def test_rescanning_a_bad_frame_does_not_restart_the_clock_silently() -> None:
    # A bad frame is reported (that is progress: the clock restarts), but a false start found
    # while rescanning it is not a new frame and must not buy the peer another 10 s.
    session = logged_in_session()
    bad = raw_frame(0x0201, 0x01, b"{}", crc=0)  # SEQ bytes 02 01 start a plausible false frame
    session.receive_data(bad)
    assert drain(session) == []
    assert naks(session) == [(0x0201, NakCode.BAD_CRC)]
    assert session.has_partial_frame
    assert not session.incomplete_frame_expired(0.0)
    assert session.incomplete_frame_expired(10.0)


# -- property ---------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.binary(max_size=80)
        | st.sampled_from(
            [
                frame(1, Command.LOGIN, LOGIN_BODY),
                frame(2, Command.QUERY, {"txn": 1}),
                b"\x02\x01",
                frame(3, 0xC0, {"txn": 9}),
                raw_frame(4, 0x10, b"{}"),
            ]
        ),
        max_size=30,
    )
)
def test_any_bytes_give_only_declared_events_and_valid_naks(chunks: list[bytes]) -> None:
    session = ServerSession()
    logged = False
    for chunk in chunks:
        session.receive_data(chunk)
        while (event := session.next_event()) is not NEED_DATA:
            assert session.buffered_bytes <= MAX_BUFFER
            if isinstance(event, CloseConnection):
                break
            if isinstance(event, Login) and not logged:
                session.accept_login(event.tid)
                logged = True
        out = session.data_to_send()
        decoder = FrameDecoder()
        decoder.receive_data(out)
        for nak in drain(decoder):
            assert isinstance(nak, Frame) and nak.cmd == Command.NAK
            assert nak.body["code"] in set(NakCode)
        if session.should_close:
            break
