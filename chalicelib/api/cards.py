"""Edge and operator API for IC-card accounts: card payments, offline batches, blacklist, PARAMS,
and the canteen counter's operations (holders, cards, recharge, reversal, rules, exceptions).

Edge endpoints are signed edge requests (edge_common.authenticate). A card payment is answered 200
with the result code of protocol.md in the body (`ok` false for a refusal), because a refusal is a
normal answer that the terminal shows; malformed requests are 400 and change nothing.

Operator endpoints (/cards/v1/...) use an interim token until the console's login replaces it:
headers `X-ScanPay-Merchant: <merchant_id>` and `Authorization: Bearer <token>`, where the token's
SHA-256 is stored with the merchant's canteen rules (CanteenRulesStore.set_operator_token). A
wrong or missing token is 401 and changes nothing.

That token is set (or rotated) by the platform operator or the merchant's own dealer with the
console's statement token (api/statements.py: `operator.<mac>` or `dealer.<id>.<mac>`), at
PUT /cards/v1/merchants/{merchant_id}/operator-token; the merchant's own operator cannot set it.
"""
from __future__ import annotations

import logging
import re

from chalice import Blueprint, Response

from chalicelib import container
from chalicelib.api.edge_common import authenticate, authenticate_deferred, claimed_on_error, field, ok, terminal_of
from chalicelib.api.operator_auth import json_object, operator_merchant
from chalicelib.api.errors import domain_errors_to_http
from chalicelib.api.notify import PLATFORM_CONTENT_TYPES
from chalicelib.api.statements import Forbidden, caller_of
from chalicelib.channels.base import HttpReply, NotificationRejected
from chalicelib.domain.canteen_notice import check_template
from chalicelib.domain.canteen_rules import terminal_params
from chalicelib.domain.card_statement import date_range
from chalicelib.domain.errors import DomainError, InvalidRequest, NotFound
from chalicelib.services.card_admin import card_view
from chalicelib.services.card_container import CardServices, card_services
from chalicelib.services.card_recharge_alipay import AlipayRecharge
from chalicelib.services.card_statement import page_to_csv, page_to_dict
from chalicelib.store.card_exceptions import OfflineRecord

cards = Blueprint(__name__)
log = logging.getLogger(__name__)


def _services() -> CardServices:
    return card_services(container.current())


def _json(body: dict | list, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


# --- edge ------------------------------------------------------------------------------------

@cards.route("/edge/v1/cards/pay", methods=["POST"])
@domain_errors_to_http
def card_pay() -> Response:
    # The nonce is claimed inside the payment's transaction when it books (one DynamoDB call fewer);
    # every other answer claims it on its own, so a replayed request is still refused 401.
    agent, body, nonce = authenticate_deferred(cards)
    with claimed_on_error(nonce):
        terminal = terminal_of(agent, body)
        txn, card_no = field(body, "txn", int), field(body, "card", str)
        amount_fen = field(body, "amount_fen", int)
        field(body, "ts", int)  # the terminal's clock: rules use the cloud's, but a bad field is a bad request
        answer = _services().payments.pay(terminal, txn, card_no, amount_fen, nonce)
    return _json({**answer, "txn": txn})


@cards.route("/edge/v1/cards/offline", methods=["POST"])
@domain_errors_to_http
def card_offline() -> Response:
    agent, body = authenticate(cards)
    terminal = terminal_of(agent, body)
    raw = field(body, "records", list)
    records = [_offline_record(terminal.terminal_id, r) for r in raw]
    return ok(_services().offline.upload(terminal, records))


def _offline_record(terminal_id: str, raw: object) -> OfflineRecord:
    if not isinstance(raw, dict):
        raise InvalidRequest("a record is an object")
    offline_id = field(raw, "offline_id", str, required=False) or ""
    return OfflineRecord(terminal_id, field(raw, "txn", int), field(raw, "card", str), field(raw, "amount_fen", int),
                         field(raw, "ts", int), offline_id)


@cards.route("/edge/v1/cards/blacklist", methods=["POST"])
@domain_errors_to_http
def card_blacklist() -> Response:
    agent, body = authenticate(cards)
    after = field(body, "after_version", int, required=False) or 0
    if after < 0:
        raise InvalidRequest("after_version is a version number")
    return ok(_services().blacklist.since(agent.merchant_id, after).to_dict())


@cards.route("/edge/v1/cards/blacklist/ack", methods=["POST"])
@domain_errors_to_http
def card_blacklist_ack() -> Response:
    agent, body = authenticate(cards)
    terminal = terminal_of(agent, body)
    version = field(body, "version", int)
    services = _services()
    if not 0 <= version <= services.blacklist.latest(agent.merchant_id):
        raise InvalidRequest("no such blacklist version")
    services.blacklist.ack(agent.merchant_id, terminal.terminal_id, version, container.current().clock.now())
    return ok({"version": version})


@cards.route("/edge/v1/cards/params", methods=["POST"])
@domain_errors_to_http
def card_params() -> Response:
    agent, body = authenticate(cards)
    terminal = terminal_of(agent, body)
    return ok(terminal_params(_services().rules.rules(terminal.merchant_id), terminal.terminal_id))


# --- operator --------------------------------------------------------------------------------

def _operator() -> tuple[str, dict]:
    """The operator's merchant and the JSON body, or Unauthorized."""
    return operator_merchant(cards.current_request.headers), json_object(cards.current_request.raw_body)


OPERATOR_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{24,128}$")  # enough entropy to be a bearer secret


@cards.route("/cards/v1/merchants/{merchant_id}/operator-token", methods=["PUT"])
@domain_errors_to_http
def set_operator_token(merchant_id: str) -> Response:
    """{"token": "<24..128 URL-safe characters>"}: the counter's operator token from now on (the old
    one stops working). Platform operator or the merchant's dealer only; the token is not echoed.
    Setting the same token again is a harmless repeat."""
    caller = caller_of(cards.current_request.headers.get("authorization"),
                       container.current().settings.statements_token_secret)
    merchant = container.current().directory.merchant(merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    if caller.role == "dealer" and merchant.dealer_id != caller.dealer_id:
        raise Forbidden("not one of your merchants")
    token = field(json_object(cards.current_request.raw_body), "token", str)
    if not OPERATOR_TOKEN.match(token):
        raise InvalidRequest("token is 24..128 characters of A-Z a-z 0-9 . _ ~ -")
    _services().rules.set_operator_token(merchant_id, token, container.current().clock.now())
    log.info("operator token of %s set by %s %s", merchant_id, caller.role, caller.dealer_id)
    return _json({"merchant_id": merchant_id, "operator_token_set": True})


def _str_fields(body: dict, names: tuple[str, ...]) -> dict[str, str]:
    return {n: field(body, n, str) for n in names if n in body}


@cards.route("/cards/v1/holders", methods=["POST"])
@domain_errors_to_http
def create_holder() -> Response:
    merchant_id, body = _operator()
    fields = _str_fields(body, ("number", "class_code", "phone"))
    holder = _services().admin.create_holder(merchant_id, field(body, "name", str), **fields)
    return _json(holder.to_dict(), 201)


@cards.route("/cards/v1/holders", methods=["GET"])
@domain_errors_to_http
def list_holders() -> Response:
    merchant_id, _ = _operator()
    return _json({"holders": [h.to_dict() for h in _services().holders.of_merchant(merchant_id)]})


@cards.route("/cards/v1/holders/{holder_id}", methods=["GET", "PUT", "DELETE"])
@domain_errors_to_http
def holder(holder_id: str) -> Response:
    merchant_id, body = _operator()
    admin = _services().admin
    method = cards.current_request.method
    if method == "DELETE":
        admin.delete_holder(merchant_id, holder_id)
        return _json({"deleted": holder_id})
    if method == "PUT":
        return _json(admin.update_holder(merchant_id, holder_id, _str_fields(
            body, ("name", "number", "class_code", "phone"))).to_dict())
    return _json(admin.holder(merchant_id, holder_id).to_dict())


@cards.route("/cards/v1/holders/{holder_id}/card", methods=["POST"])
@domain_errors_to_http
def issue_card(holder_id: str) -> Response:
    merchant_id, body = _operator()
    return _json(_services().admin.issue_card(merchant_id, holder_id, field(body, "card_no", str)), 201)


@cards.route("/cards/v1/cards/{card_no}", methods=["GET"])
@domain_errors_to_http
def get_card(card_no: str) -> Response:
    merchant_id, _ = _operator()
    return _json(card_view(_services().admin.card(merchant_id, card_no)))


@cards.route("/cards/v1/cards/{card_no}/{action}", methods=["POST"])
@domain_errors_to_http
def card_action(card_no: str, action: str) -> Response:
    merchant_id, body = _operator()
    admin = _services().admin
    if action == "lost":
        return _json(admin.report_lost(merchant_id, card_no))
    if action == "found":
        return _json(admin.report_found(merchant_id, card_no))
    if action == "cancel":
        return _json(admin.cancel(merchant_id, card_no))
    if action == "replace":
        return _json(admin.replace(merchant_id, card_no, field(body, "new_card_no", str)))
    if action == "recharge":
        return _json(admin.recharge(merchant_id, card_no, body.get("amount_fen"), field(body, "request_id", str)))
    raise InvalidRequest("action is lost, found, cancel, replace or recharge")


@cards.route("/cards/v1/statements/cards/{card_no}", methods=["GET"])
@domain_errors_to_http
def card_statement(card_no: str) -> Response:
    """?from=YYYY-MM-DD[&to=YYYY-MM-DD][&limit=1..500][&cursor=...][&format=csv]: the card's account
    (which follows its holder across replaced cards) over Beijing dates. JSON pages carry
    `next_cursor`; CSV is the whole range in one file."""
    merchant_id, _ = _operator()
    account_id, who = _services().statements.account_of_card(merchant_id, card_no)
    return _statement(merchant_id, account_id, who, f"card-{card_no}")


@cards.route("/cards/v1/statements/holders/{holder_id}", methods=["GET"])
@domain_errors_to_http
def holder_statement(holder_id: str) -> Response:
    merchant_id, _ = _operator()
    account_id, who = _services().statements.account_of_holder(merchant_id, holder_id)
    return _statement(merchant_id, account_id, who, f"holder-{holder_id}")


def _statement(merchant_id: str, account_id: str, who: dict, name: str) -> Response:
    query = cards.current_request.query_params or {}
    first, last = date_range(query.get("from"), query.get("to"))
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("format is json or csv")
    limit_text = query.get("limit", "100")
    if fmt == "json" and not limit_text.isdigit():
        raise InvalidRequest("limit is a number")
    limit = None if fmt == "csv" else int(limit_text)
    page = _services().statements.page(merchant_id, account_id, first, last, limit, query.get("cursor"))
    if fmt == "json":
        return _json(page_to_dict(page, who))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{first:%Y%m%d}-{last:%Y%m%d}.csv")
    return Response(body=page_to_csv(page), status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{safe}"',
        "Cache-Control": "no-store"})


@cards.route("/cards/v1/reversals", methods=["POST"])
@domain_errors_to_http
def reverse_payment() -> Response:
    merchant_id, body = _operator()
    return _json(_services().admin.reverse(merchant_id, field(body, "terminal_id", str), field(body, "txn", int)))


@cards.route("/cards/v1/rules", methods=["GET", "PUT"])
@domain_errors_to_http
def canteen_rules() -> Response:
    merchant_id, body = _operator()
    store = _services().rules
    if cards.current_request.method == "PUT":
        expected = field(body, "expected_version", int, required=False)
        store.put_rules(merchant_id, field(body, "rules", dict), expected, container.current().clock.now())
    item = store.rules(merchant_id)
    return _json({"version": item.version, "rules": store.raw_rules(merchant_id)})


@cards.route("/cards/v1/blacklist/status", methods=["GET"])
@domain_errors_to_http
def blacklist_status() -> Response:
    """Which terminals hold which blacklist version, so the console can show who is behind."""
    merchant_id, _ = _operator()
    blacklist = _services().blacklist
    latest = blacklist.latest(merchant_id)
    acks = blacklist.acks(merchant_id)
    return _json({"latest": latest, "terminals": {t: {"version": v, "behind": v < latest} for t, v in acks.items()}})


@cards.route("/cards/v1/exceptions", methods=["GET"])
@domain_errors_to_http
def list_exceptions() -> Response:
    merchant_id, _ = _operator()
    return _json({"exceptions": [e.to_dict() for e in _services().exceptions.of_merchant(merchant_id)]})


@cards.route("/cards/v1/exceptions/{terminal_id}/{txn}", methods=["POST"])
@domain_errors_to_http
def resolve_exception(terminal_id: str, txn: str) -> Response:
    merchant_id, body = _operator()
    if not txn.isdigit():
        raise InvalidRequest("txn is a number")
    action = field(body, "action", str)
    services = _services()
    if action == "book":
        return _json(services.offline.book_exception(merchant_id, terminal_id, int(txn)))
    if action == "dismiss":
        services.exceptions.dismiss(merchant_id, terminal_id, int(txn))
        return _json({"status": "dismissed"})
    raise InvalidRequest("action is book or dismiss")


# --- online recharge (the card holder's WeChat page) and its payment notification ------------

@cards.route("/cards/v1/recharges/{recharge_id}", methods=["GET"])
@domain_errors_to_http
def get_recharge(recharge_id: str) -> Response:
    """An online recharge as the counter sees it: PAID (and on which card), or REFUNDING / REFUNDED
    when it was paid for an account closed meanwhile, with the refund's state."""
    merchant_id, _ = _operator()
    return _json(_services().online.recharge(merchant_id, recharge_id).to_dict())


@cards.route("/cards/v1/notice-template", methods=["PUT"])
@domain_errors_to_http
def notice_template() -> Response:
    """The merchant's 充值成功通知: {"template_id", "fields": {key: text with {amount} {time} ...}, "url"}."""
    merchant_id, body = _operator()
    template = check_template(body)
    _services().rules.put_template(merchant_id, template, container.current().clock.now())
    return _json(template)


@cards.route("/cards/v1/wechat/{merchant_id}/bind", methods=["POST"])
@domain_errors_to_http
def wechat_bind(merchant_id: str) -> Response:
    """After 服务号 OAuth: the page sends the code with the card number and the holder's number."""
    body = json_object(cards.current_request.raw_body)
    return _json(_services().online.bind(merchant_id, field(body, "code", str), field(body, "card_no", str),
                                         field(body, "number", str)))


@cards.route("/cards/v1/wechat/{merchant_id}/recharge", methods=["POST"])
@domain_errors_to_http
def wechat_recharge(merchant_id: str) -> Response:
    """Starts a JSAPI payment: the answer's `jsapi` goes to WeixinJSBridge on the holder's page."""
    body = json_object(cards.current_request.raw_body)
    return _json(_services().online.start(merchant_id, field(body, "openid", str), body.get("amount_fen")), 201)


@cards.route("/cards/v1/alipay/{merchant_id}/recharge", methods=["POST"])
@domain_errors_to_http
def alipay_recharge(merchant_id: str) -> Response:
    """{"card_no", "number", "amount_fen"}: answers the Alipay QR (`qr`) the holder scans with Alipay."""
    body = json_object(cards.current_request.raw_body)
    current = container.current()
    alipay = AlipayRecharge(_services().online, current.channels, current.clock, current.settings.public_base_url)
    return _json(alipay.start(merchant_id, field(body, "card_no", str), field(body, "number", str),
                              body.get("amount_fen")), 201)


@cards.route("/cards/notify/{merchant_id}", methods=["POST"], content_types=PLATFORM_CONTENT_TYPES)
def card_recharge_notify(merchant_id: str) -> Response:
    """WeChat Pay's notification of a recharge: verified by the merchant's channel over the raw body
    first, then booked once; answered exactly as the platform expects."""
    return _recharge_notify(merchant_id, "wechat")


@cards.route("/cards/notify/{merchant_id}/alipay", methods=["POST"], content_types=PLATFORM_CONTENT_TYPES)
def card_recharge_notify_alipay(merchant_id: str) -> Response:
    """Alipay's notification (a urlencoded form) of a recharge started at /cards/v1/alipay/.../recharge."""
    return _recharge_notify(merchant_id, "alipay")


def _recharge_notify(merchant_id: str, wallet: str) -> Response:
    request = cards.current_request
    found = container.current().channels.for_merchant(merchant_id, wallet)
    if found is None:
        return Response(body="no channel", status_code=404, headers={"Content-Type": "text/plain"})
    channel, _ = found
    try:
        notice = channel.parse_notification(dict(request.headers), request.raw_body or b"")
        _services().online.apply(merchant_id, notice, wallet)
    except NotificationRejected as error:
        return _reply(channel.nack(str(error)))
    except DomainError as error:
        log.warning("recharge notification for %s refused: %s", merchant_id, error.message)
        return _reply(channel.nack(error.code))
    return _reply(channel.ack())


def _reply(reply: HttpReply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers=dict(reply.headers))


