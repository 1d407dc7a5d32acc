"""parse_notification against the golden payloads in tests/fixtures/wechat_v2 (see its README)."""
from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chalicelib.channels.base import NotificationRejected, PaymentNotice
from chalicelib.channels.wechat_v2 import ACK_XML, build

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "wechat_v2"
KEY = (FIXTURES / "TEST_ONLY_api_key.txt").read_text(encoding="ascii").strip()
PROFILES = json.loads((FIXTURES / "settings.json").read_text(encoding="utf-8"))
PAID_AT = datetime(2026, 3, 1, 4, 30, 45, tzinfo=timezone.utc).timestamp()  # 12:30:45 in Beijing
PASSWD_TRACES = (b"root:", b"/bin/", b"nologin")


def channel_for(profile: str):  # type: ignore[no-untyped-def]
    return build({**PROFILES[profile], "api_key": KEY}, gateway=None, timeout_s=1)


def payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def notice(mch_id: str = "10000100", out_trade_no: str = "SP20260301000001", paid: bool = True) -> PaymentNotice:
    return PaymentNotice(out_trade_no=out_trade_no, trade_no="4200002345202603011234567890", amount_fen=1250,
                         paid_at=PAID_AT, merchant_ref=mch_id, paid=paid)


@pytest.mark.parametrize("name, profile, expected", [
    ("genuine_md5.xml", "direct", notice()),
    ("genuine_hmac_sha256.xml", "direct", notice()),
    ("genuine_service_provider.xml", "service_provider", notice(mch_id="1900000100")),
    ("payment_failed.xml", "direct", notice(paid=False)),
    ("unknown_order.xml", "direct", notice(out_trade_no="NO-SUCH-ORDER-0001")),  # the service's check, not ours
])
def test_genuine_notifications_are_accepted_with_exact_fields(name, profile, expected):
    assert channel_for(profile).parse_notification({"Content-Type": "text/xml"}, payload(name)) == expected


@pytest.mark.parametrize("name, profile, reason", [
    ("forged_signature.xml", "direct", "signature does not verify"),
    ("tampered_amount.xml", "direct", "signature does not verify"),
    ("wrong_appid.xml", "direct", "appid is not this merchant's"),
    ("wrong_mch_id.xml", "direct", "mch_id is not this merchant's"),
    ("wrong_sub_mch_id.xml", "service_provider", "sub_mch_id is not this merchant's"),
    ("genuine_service_provider.xml", "direct", "appid is not this merchant's"),
    ("genuine_md5.xml", "service_provider", "appid is not this merchant's"),
    ("xxe.xml", "direct", "XML refused: DTDForbidden"),
    ("billion_laughs.xml", "direct", "XML refused: DTDForbidden"),
])
def test_bad_notifications_are_rejected_with_a_reason(name, profile, reason):
    channel = channel_for(profile)

    with pytest.raises(NotificationRejected) as rejected:
        channel.parse_notification({}, payload(name))

    assert rejected.value.reason == reason
    reply = channel.nack(rejected.value.reason)
    assert reply.status == 200 and "FAIL" in reply.body
    for trace in PASSWD_TRACES:  # nothing of /etc/passwd, neither in the reason nor in our answer
        assert trace.decode() not in rejected.value.reason and trace.decode() not in reply.body


@pytest.mark.parametrize("name", ["xxe.xml", "billion_laughs.xml"])
def test_entities_are_refused_even_without_a_doctype_check(name):
    """Defence in depth: defusedxml also refuses the entity declarations themselves."""
    from defusedxml import EntitiesForbidden
    from defusedxml.ElementTree import fromstring

    with pytest.raises(EntitiesForbidden):
        fromstring(payload(name), forbid_dtd=False)


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new)


@pytest.mark.parametrize("body, reason", [
    (b"", "malformed XML"),
    (b"not xml at all", "malformed XML"),
    (b"<root><a>1</a></root>", "root element is not <xml>"),
    (b"<xml><return_code>SUCCESS</return_code></xml>", "signature missing"),
    (b"<xml><sign_type>SHA1</sign_type><sign>X</sign></xml>", "unsupported sign_type"),
    (b"<xml>" + b"<a>" * 3 + b"</a>" * 3 + b"</xml>", "nested or repeated field a"),
    (b"<xml>" + b" " * 70_000 + b"</xml>", "notification too large"),
])
def test_malformed_notifications_are_rejected(body, reason):
    with pytest.raises(NotificationRejected) as rejected:
        channel_for("direct").parse_notification({}, body)

    assert rejected.value.reason == reason


def test_a_second_total_fee_cannot_ride_along_a_genuine_signature():
    """What is verified is what is read: a repeated field is refused, not resolved either way."""
    body = _replace(payload("genuine_md5.xml"), b"</xml>", b"  <total_fee>1</total_fee>\n</xml>")

    with pytest.raises(NotificationRejected) as rejected:
        channel_for("direct").parse_notification({}, body)

    assert rejected.value.reason == "nested or repeated field total_fee"


def test_sign_type_is_part_of_what_is_signed():
    """Relabelling an MD5-signed notification as HMAC-SHA256 (or back) breaks it."""
    md5_as_hmac = _replace(payload("genuine_md5.xml"), b"</xml>", b"<sign_type>HMAC-SHA256</sign_type></xml>")
    hmac_as_md5 = _replace(payload("genuine_hmac_sha256.xml"), b"HMAC-SHA256", b"MD5")

    for body in (md5_as_hmac, hmac_as_md5):
        with pytest.raises(NotificationRejected, match="signature does not verify"):
            channel_for("direct").parse_notification({}, body)


def test_lower_case_signature_is_not_the_signature():
    body = payload("genuine_md5.xml")
    sign = body.split(b"<sign><![CDATA[")[1].split(b"]]>")[0]

    with pytest.raises(NotificationRejected):
        channel_for("direct").parse_notification({}, body.replace(sign, sign.lower()))


def test_ack_and_nack_are_what_wechat_expects():
    channel = channel_for("direct")

    ack, nack = channel.ack(), channel.nack("bad ]]> sign <x>")

    assert (ack.status, ack.body, ack.headers["Content-Type"]) == (
        200, "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>",
        "text/xml")
    assert ack.body == ACK_XML
    from sandbox.wechat_v2 import from_xml, is_ack

    assert from_xml(nack.body.encode()) == {"return_code": "FAIL", "return_msg": "bad ]]> sign <x>"}
    assert is_ack(200, ack.body.encode()) and not is_ack(200, nack.body.encode()) and not is_ack(500, ack.body.encode())


def test_fixture_files_match_their_generator():
    spec = importlib.util.spec_from_file_location("wechat_v2_make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    rendered = module.render_all()

    assert sorted(rendered) == sorted(p.name for p in FIXTURES.glob("*.xml"))
    for name, text in rendered.items():
        assert payload(name).decode("utf-8") == text, f"{name} is stale: run make_fixtures.py"
