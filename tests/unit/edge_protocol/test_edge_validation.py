"""Required fields and types of every BODY (validation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.protocol.errors import LocalProtocolError, RemoteProtocolError
from edge_agent.protocol.events import (
    CardPay,
    Heartbeat,
    Login,
    OfflineRecord,
    OfflineUpload,
    QrCancel,
    QrCreate,
    Query,
    ScanPay,
)
from edge_agent.protocol.frames import Command, Frame, NakCode, response_of
from edge_agent.protocol.validation import (
    INT_MAX,
    MAX_OFFLINE_RECORDS,
    body_problem,
    check_outgoing,
    parse_request,
)

RECORD = {"txn": 4, "card": "10000002", "amount_fen": 500, "ts": 1700000000}
VALID: dict[int, tuple[dict[str, Any], object]] = {
    Command.LOGIN: (
        {"tid": "T0001", "ts": 1700000000, "nonce": "abc", "mac": "0a1B"},
        Login(5, "T0001", 1700000000, "abc", "0a1B"),
    ),
    Command.HEARTBEAT: ({"ts": 1, "offline_pending": 0}, Heartbeat(5, 1, 0)),
    Command.CARD_PAY: (
        {"txn": 1, "card": "10000001", "amount_fen": 1250, "ts": 2},
        CardPay(5, 1, "10000001", 1250, 2),
    ),
    Command.QR_CREATE: ({"txn": 2, "amount_fen": 1}, QrCreate(5, 2, 1)),
    Command.QR_CANCEL: ({"txn": 2}, QrCancel(5, 2)),
    Command.SCAN_PAY: (
        {"txn": 3, "amount_fen": 100, "auth_code": "134567890123456789"},
        ScanPay(5, 3, 100, "134567890123456789"),
    ),
    Command.QUERY: ({"txn": 3}, Query(5, 3)),
    Command.OFFLINE_UPLOAD: (
        {"records": [RECORD]},
        OfflineUpload(5, (OfflineRecord(4, "10000002", 500, 1700000000),)),
    ),
}


def rejected(cmd: int, body: dict[str, Any]) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        parse_request(Frame(5, cmd, body))
    return info.value


@pytest.mark.parametrize("cmd", VALID, ids=[Command(c).name for c in VALID])
def test_valid_request_becomes_its_typed_event(cmd: int) -> None:
    body, event = VALID[cmd]
    assert parse_request(Frame(5, cmd, body)) == event


def test_extra_fields_are_ignored() -> None:
    body = {"txn": 2, "future_field": [1, 2]}
    assert parse_request(Frame(5, Command.QR_CANCEL, body)) == QrCancel(5, 2)


def test_offline_upload_with_no_records_is_fine() -> None:
    assert parse_request(Frame(5, Command.OFFLINE_UPLOAD, {"records": []})) == OfflineUpload(5, ())


FIELDS = [(cmd, field) for cmd, (body, _) in VALID.items() for field in body]


@pytest.mark.parametrize(
    ("cmd", "field"), FIELDS, ids=[f"{Command(c).name}.{f}" for c, f in FIELDS]
)
def test_every_missing_field_is_bad_field(cmd: int, field: str) -> None:
    body = dict(VALID[cmd][0])
    del body[field]
    error = rejected(cmd, body)
    assert error.code == NakCode.BAD_FIELD
    assert field in error.detail


@pytest.mark.parametrize(
    ("cmd", "field"), FIELDS, ids=[f"{Command(c).name}.{f}" for c, f in FIELDS]
)
def test_every_field_of_the_wrong_type_is_bad_field(cmd: int, field: str) -> None:
    body = dict(VALID[cmd][0])
    body[field] = None
    assert rejected(cmd, body).code == NakCode.BAD_FIELD
    body[field] = {"nested": 1}
    assert rejected(cmd, body).code == NakCode.BAD_FIELD


INT_FIELDS = [(c, f) for c, f in FIELDS if isinstance(VALID[c][0][f], int)]


@pytest.mark.parametrize("value", [True, False, 12.0, 12.5, "12", 2**63, -(2**63) - 1])
@pytest.mark.parametrize(
    ("cmd", "field"), INT_FIELDS, ids=[f"{Command(c).name}.{f}" for c, f in INT_FIELDS]
)
def test_int_fields_refuse_bool_float_str_and_out_of_range(
    cmd: int, field: str, value: object
) -> None:
    body = dict(VALID[cmd][0])
    body[field] = value
    assert rejected(cmd, body).code == NakCode.BAD_FIELD


def test_int_range_limits_are_inclusive() -> None:
    body = {"txn": INT_MAX, "amount_fen": -(2**63)}
    assert parse_request(Frame(5, Command.QR_CREATE, body)) == QrCreate(5, INT_MAX, -(2**63))


def test_amount_sign_is_not_a_protocol_matter() -> None:
    # ERR009 "amount must be greater than zero" is a business answer, not a NAK.
    assert parse_request(Frame(5, Command.QR_CREATE, {"txn": 1, "amount_fen": 0})).amount_fen == 0


@pytest.mark.parametrize("mac", ["", "xyz", "0x12", "ab cd", 12])
def test_mac_must_be_hex(mac: object) -> None:
    body = dict(VALID[Command.LOGIN][0], mac=mac)
    assert rejected(Command.LOGIN, body).code == NakCode.BAD_FIELD


def test_offline_records_are_checked_one_by_one() -> None:
    bad_record = dict(RECORD, card=10000002)
    error = rejected(Command.OFFLINE_UPLOAD, {"records": [RECORD, bad_record]})
    assert error.code == NakCode.BAD_FIELD
    assert "records[1].card" in error.detail


@pytest.mark.parametrize("records", [{"txn": 1}, "x", [1], [True], [[RECORD]]])
def test_offline_records_must_be_a_list_of_objects(records: object) -> None:
    assert rejected(Command.OFFLINE_UPLOAD, {"records": records}).code == NakCode.BAD_FIELD


def test_offline_upload_at_most_50_records() -> None:
    records = [dict(RECORD, txn=i) for i in range(MAX_OFFLINE_RECORDS)]
    assert len(parse_request(Frame(5, Command.OFFLINE_UPLOAD, {"records": records})).records) == 50
    error = rejected(Command.OFFLINE_UPLOAD, {"records": records + [RECORD]})
    assert error.code == NakCode.BAD_FIELD and "50" in error.detail


@pytest.mark.parametrize("cmd", [0x00, 0x03, 0x15, 0x40, 0x7E, 0x81, 0xC0, 0xFF])
def test_not_a_request_cmd_is_unknown_cmd(cmd: int) -> None:
    assert rejected(cmd, {}).code == NakCode.UNKNOWN_CMD


# -- outgoing bodies: our mistakes are LocalProtocolError ------------------------------------

GOOD_OUT: dict[int, dict[str, Any]] = {
    response_of(Command.LOGIN): {
        "ok": True,
        "server_time": 1,
        "merchant_name": "食堂",
        "params_ver": 1,
        "blacklist_ver": 1,
    },
    response_of(Command.HEARTBEAT): {"server_time": 1, "params_ver": 1, "blacklist_ver": 1},
    response_of(Command.CARD_PAY): {
        "txn": 1,
        "ok": False,
        "code": "ERR007",
        "msg": "余额不足",
        "voice": "余额不足",
        "balance_fen": None,
        "offline": False,
    },
    response_of(Command.QR_CREATE): {
        "txn": 1,
        "ok": True,
        "code": "OK",
        "msg": "",
        "order_id": "o",
        "qr": "https://x/q",
        "expires_in": 120,
    },
    response_of(Command.QR_CANCEL): {"txn": 1, "ok": True, "status": "CLOSED"},
    response_of(Command.SCAN_PAY): {
        "txn": 1,
        "ok": True,
        "status": "PAYING",
        "code": "OK",
        "msg": "",
        "voice": "",
    },
    response_of(Command.QUERY): {"txn": 1, "status": "UNKNOWN", "amount_fen": None},
    response_of(Command.OFFLINE_UPLOAD): {
        "accepted": [1],
        "rejected": [{"txn": 2, "code": "ERR008"}],
    },
    Command.PAY_RESULT: {
        "txn": 1,
        "order_id": "o",
        "status": "PAID",
        "amount_fen": 1,
        "channel": "alipay",
        "msg": "支付成功",
        "voice": "支付宝收款0.01元",
    },
    Command.BLACKLIST: {"ver": 2, "full": True, "add": ["1"], "remove": []},
    Command.PARAMS: {"ver": 3, "mode": "free"},
    Command.TIME_SET: {"server_time": 1},
    response_of(Command.PAY_RESULT): {"txn": 1},
    response_of(Command.TIME_SET): {},
    Command.NAK: {"code": "BAD_FIELD", "detail": "x"},
}


@pytest.mark.parametrize("cmd", GOOD_OUT, ids=[hex(c) for c in GOOD_OUT])
def test_complete_outgoing_bodies_pass(cmd: int) -> None:
    check_outgoing(cmd, GOOD_OUT[cmd])


OUT_FIELDS = [
    (cmd, field)
    for cmd, body in GOOD_OUT.items()
    for field in body
    if not (cmd == Command.PARAMS and field == "mode")
]


@pytest.mark.parametrize(("cmd", "field"), OUT_FIELDS, ids=[f"{c:#x}.{f}" for c, f in OUT_FIELDS])
def test_outgoing_body_missing_a_field_is_a_local_error(cmd: int, field: str) -> None:
    body = dict(GOOD_OUT[cmd])
    del body[field]
    with pytest.raises(LocalProtocolError, match=field):
        check_outgoing(cmd, body)


def test_conditional_response_fields() -> None:
    check_outgoing(response_of(Command.LOGIN), {"ok": False, "code": "AUTH_FAILED"})
    with pytest.raises(LocalProtocolError, match="code"):
        check_outgoing(response_of(Command.LOGIN), {"ok": False})
    failed_qr = {"txn": 1, "ok": False, "code": "ERR011", "msg": "设置错误"}
    check_outgoing(response_of(Command.QR_CREATE), failed_qr)
    with pytest.raises(LocalProtocolError, match="order_id"):
        check_outgoing(response_of(Command.QR_CREATE), dict(failed_qr, ok=True))


@pytest.mark.parametrize(
    ("cmd", "field", "value"),
    [
        (Command.PAY_RESULT, "status", "PAYING"),
        (Command.PAY_RESULT, "channel", "unionpay"),
        (response_of(Command.SCAN_PAY), "status", "CLOSED"),
        (response_of(Command.QUERY), "status", "paid"),
        (Command.NAK, "code", "OOPS"),
        (Command.BLACKLIST, "add", [10000009]),
        (response_of(Command.CARD_PAY), "offline", 0),
    ],
)
def test_outgoing_enumerations_and_types(cmd: int, field: str, value: object) -> None:
    with pytest.raises(LocalProtocolError, match=field):
        check_outgoing(cmd, dict(GOOD_OUT[cmd], **{field: value}))


def test_body_problem_names_unknown_cmd() -> None:
    assert body_problem(0x55, {}) == "unknown CMD 0x55"
    assert body_problem(Command.QUERY, []) == "field 'BODY' must be object, got list"
