"""Online recharge: the card holder binds WeChat (服务号 OAuth), pays in WeChat (JSAPI), and the
credit lands exactly once when the payment notification arrives; then the 充值成功通知 is sent.

The credit, the recharge order's CREATED -> PAID and the platform-trade dedupe record are one
transaction, so a repeated or concurrent notification books nothing twice. The template message is
sent after that transaction: a failed send never undoes the recharge; it stays PENDING, is retried
by the card_jobs schedule, and after MAX_NOTICE_ATTEMPTS it is FAILED, visible for a person.

The credit lands on the card now holding the account (the new one after a replacement). When the
account was closed between the start and the notification (the card cancelled), the money is not
kept: the recharge becomes REFUNDING in one transaction (store/card_recharges.py) and the refund is
asked of the channel at once with the out_refund_no derived from the recharge ("RF<recharge_id>").
Like every refund (services/refunds.py), it is booked only when the platform CONFIRMS the money went
back: REFUNDED, with its RECHARGE_REFUND entry, then and not on mere acceptance. Until then the card
job (`refund_uncredited_recharges`) asks the platform about it under the same number each run
(`ask_about_refund`): still processing or unanswered, it stays REFUNDING and is asked again (the
platform has it: never given up on); unknown to the platform (the first call was lost, or Alipay
failed it, whose rule is to send it again under the same number) it is sent again; refused, it is
sent again next run, and a refusal once MAX_REFUND_ATTEMPTS askings have not ended it hands it to a
person (refund FAILED, visible); accepted and then failed for good (WeChat CHANGE / ABNORMAL /
REFUNDCLOSE: the same number only returns the same failed refund, a new one could refund twice) it
goes to a person at once. A person's `refund_uncredited` resumes any of them. Never booked twice
(the REFUNDING -> REFUNDED condition and the ledger entry's own), never dropped (it leaves the
pending index only booked or flagged). The notification is acknowledged either way.
"""
from __future__ import annotations

import logging
from typing import Protocol

from chalicelib.channels.base import ChannelState, PaymentNotice, RefundRequest, TradeStatus
from chalicelib.domain.canteen_notice import CLASSIC_FIELDS, RechargeFacts, template_data
from chalicelib.domain.cards import LIVE_STATUSES, CardState, Wallet
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import Conflict, NotConfigured, NotFound
from chalicelib.domain.ids import new_order_id
from chalicelib.services.card_admin import check_amount
from chalicelib.services.card_jsapi import JsapiPrepay
from chalicelib.services.card_wechat_mp import NoticeFailed
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.card_holders import Holder, HolderStore
from chalicelib.services.cards import settle
from chalicelib.services.ports import Channels
from chalicelib.services.refunds import PlatformAnswer, ask_about_refund, ask_to_refund
from chalicelib.store.card_recharges import CREATED, PAID, REFUNDED, REFUNDING, Recharge, RechargeStore
from chalicelib.store.cards import Booked, CardStore, EntrySpec, Movement, OtherFailed, Repeat

log = logging.getLogger(__name__)
MAX_NOTICE_ATTEMPTS = 8
QUERY_AFTER_S = 5 * 60  # younger recharges are still being paid, or their notification is on its way
QUERY_LOOKBACK_S = 48 * 3600  # the platforms' trades (and their notification retries) are long over by then
MAX_REFUND_ATTEMPTS = 24  # the job runs every 10 minutes: refused for about four hours, a person is asked
REFUND_FAILED = "REFUND_FAILED"  # refund_uncredited's answer for a refund that now waits for a person
ATTEMPTS = 8
REFUND_REASON = "饭卡账户已注销，充值退回"


class _NoAccount:
    """The recharge's account has no live card any more: it was closed."""


class TemplateSender(Protocol):
    def send_template(self, merchant_id: str, openid: str, template_id: str, data: dict, url: str = "") -> int: ...


class Mp(TemplateSender, Protocol):
    def authorize_url(self, merchant_id: str, redirect_uri: str, state: str) -> str: ...

    def openid_from_code(self, merchant_id: str, code: str) -> str: ...


class OnlineRechargeService:
    def __init__(self, cards: CardStore, holders: HolderStore, recharges: RechargeStore, rules: CanteenRulesStore,
                 jsapi: JsapiPrepay, mp: Mp, clock: Clock, public_base_url: str,
                 channels: Channels | None = None) -> None:
        self._channels = channels  # refunds of recharges paid for a closed account
        self._cards = cards
        self._holders = holders
        self._recharges = recharges
        self._rules = rules
        self._jsapi = jsapi
        self._mp = mp
        self._clock = clock
        self._base_url = public_base_url

    # --- binding the holder's WeChat --------------------------------------------------------

    def bind(self, merchant_id: str, code: str, card_no: str, number: str) -> dict:
        """The holder proves who they are with the card number and their employee/student number."""
        holder = self.holder_of_card(merchant_id, card_no, number)
        openid = self._mp.openid_from_code(merchant_id, code)
        self._holders.bind_openid(holder.holder_id, openid)
        return {"holder_id": holder.holder_id, "openid": openid, "card_no": holder.card_no}

    def holder_of_card(self, merchant_id: str, card_no: str, number: str) -> Holder:
        """The holder proven by the card number plus their employee/student number, or NotFound."""
        card = self._cards.get(merchant_id, card_no)
        holder = self._holders.get(card.holder_id) if card else None
        if holder is None or holder.merchant_id != merchant_id or not number or holder.number != number:
            raise NotFound("no card with this number for this holder")
        return holder

    # --- paying -----------------------------------------------------------------------------

    def open_recharge(self, merchant_id: str, holder: Holder, amount: int, wallet: str,
                      openid: str | None) -> Recharge:
        """Stores the CREATED order before any platform call: its id is the platform's out_trade_no."""
        now = self._clock.now()
        recharge = Recharge(f"C{new_order_id(now)[1:]}", merchant_id, holder.account_id, holder.holder_id,
                            holder.card_no, openid, amount, wallet, CREATED, None, None, None, 0, None)
        self._recharges.create(recharge, now)
        return recharge

    def start(self, merchant_id: str, openid: str, amount_fen: object) -> dict:
        amount = check_amount(amount_fen)
        holder = self._holders.by_openid(openid, merchant_id)
        if holder is None or not holder.card_no:
            raise NotFound("bind your card first")
        recharge = self.open_recharge(merchant_id, holder, amount, "wechat", openid)
        params = self._jsapi.prepay(merchant_id, recharge.recharge_id, amount, openid, "饭卡充值",
                                    f"{self._base_url}/cards/notify/{merchant_id}")
        return {"recharge_id": recharge.recharge_id, "amount_fen": amount, "jsapi": params}

    def apply(self, merchant_id: str, notice: PaymentNotice, wallet: str = "wechat") -> str:
        """Book a verified payment notification once: PAID, DUPLICATE or IGNORED (not a payment); for
        a closed account, where its refund stands (REFUNDED, REFUNDING or REFUND_FAILED).
        `wallet` is the platform that sent it: a recharge is only paid through the wallet it was
        started for. Raises NotFound / Conflict for a notification that does not match its recharge."""
        recharge = self._recharges.get(notice.out_trade_no)
        if recharge is None or recharge.merchant_id != merchant_id or recharge.wallet != wallet:
            raise NotFound("no such recharge")
        if notice.amount_fen != recharge.amount_fen:
            raise Conflict("the amount paid is not the recharge's")
        if not notice.paid:
            return "IGNORED"
        if recharge.status != CREATED:
            return "DUPLICATE"

        def attempt(card: CardState | None) -> object:
            if card is None or card.status not in LIVE_STATUSES:
                # Replaced meanwhile: the account is on its new card; cancelled: it is closed.
                card = self._live_card(recharge)
                if card is None:
                    return _NoAccount()
            return self._credit(card, recharge, notice)

        outcome, _ = settle(self._live_card(recharge), attempt, ATTEMPTS)
        if isinstance(outcome, Booked):
            self.send_notice(recharge.recharge_id)
            return "PAID"
        if isinstance(outcome, _NoAccount):
            return self._uncredited(recharge, notice)
        if isinstance(outcome, (Repeat, OtherFailed)):
            return "DUPLICATE"  # another delivery of this notification booked it
        raise Conflict("the card is busy; the platform will notify again" if outcome is None else str(outcome))

    def _live_card(self, recharge: Recharge) -> CardState | None:
        """The card holding the recharge's account now. The holder item names it (read consistently;
        the by_account index may not show a card replaced a moment ago), the index is the fallback."""
        holder = self._holders.get(recharge.holder_id)
        if holder is not None and holder.card_no and holder.account_id == recharge.account_id:
            card = self._cards.get(recharge.merchant_id, holder.card_no)
            if card is not None and card.status in LIVE_STATUSES and card.account_id == recharge.account_id:
                return card
        return self._cards.live_card_of_account(recharge.account_id)

    def _credit(self, card: CardState, recharge: Recharge, notice: PaymentNotice):  # type: ignore[no-untyped-def]
        now = self._clock.now()
        entry = EntrySpec(f"recharge#{recharge.recharge_id}", Wallet.CASH, recharge.amount_fen, "RECHARGE",
                          f"{recharge.wallet}#{notice.trade_no}")
        answer = {"recharge_id": recharge.recharge_id, "balance_fen": card.balance_fen + recharge.amount_fen}
        movement = Movement(recharge.merchant_id, recharge.account_id, now, (entry,),
                            f"trade#{recharge.wallet}#{notice.trade_no}", "card_recharge_trade", answer)
        notify = bool(recharge.openid and self._rules.template(recharge.merchant_id).get("template_id"))
        return self._cards.credit(card, {Wallet.CASH: recharge.amount_fen}, movement,
                                  also=self._recharges.paid_action(recharge, notice.trade_no, notice.paid_at, notify,
                                                                   card.card_no))

    # --- paid for a closed account: refunded through the channel ----------------------------

    def _uncredited(self, recharge: Recharge, notice: PaymentNotice) -> str:
        log.warning("recharge %s paid for closed account %s: refunding", recharge.recharge_id, recharge.account_id)
        if not self._recharges.uncredited(recharge, notice.trade_no, notice.paid_at,
                                          f"trade#{recharge.wallet}#{notice.trade_no}", self._clock.now()):
            return "DUPLICATE"  # another delivery of this notification recorded it
        return self._refund_step(recharge.recharge_id, first=True)

    def refund_uncredited(self, recharge_id: str) -> str:
        """One step of a REFUNDING recharge's refund (the job's, or a person's for a FAILED one): ask the
        platform about it under its out_refund_no (sent again when the platform does not know it), then
        book it, leave it pending or hand it to a person. Returns REFUNDED, REFUNDING (asked again by
        the next run) or REFUND_FAILED (waits for a person); the status for a recharge not refunding."""
        return self._refund_step(recharge_id, first=False)

    def _refund_step(self, recharge_id: str, first: bool) -> str:
        recharge = self._recharges.get(recharge_id)
        if recharge is None or recharge.status != REFUNDING or not recharge.out_refund_no:
            return recharge.status if recharge else "NOT_FOUND"
        found = self._channels.for_merchant(recharge.merchant_id, recharge.wallet) if self._channels else None
        if found is None:
            return self._not_refunded(recharge, "no channel for the refund",
                                      recharge.refund_attempts + 1 >= MAX_REFUND_ATTEMPTS)
        channel, _ = found
        request = RefundRequest(recharge.recharge_id, recharge.out_refund_no, recharge.amount_fen,
                                recharge.amount_fen, REFUND_REASON)
        if first:  # just recorded: the platform hears of it for the first time
            answer = ask_to_refund(channel, request)
        else:
            answer = ask_about_refund(channel, recharge.recharge_id, recharge.out_refund_no,
                                      lambda: ask_to_refund(channel, request))
        return self._settle_refund(recharge, answer)

    def _settle_refund(self, recharge: Recharge, answer: PlatformAnswer) -> str:
        """Book a refund the platform confirmed; otherwise count the asking and keep it visible."""
        result = answer.result
        if answer.state is ChannelState.SUCCESS:
            # False: a concurrent run booked it first; either way it is booked, once.
            self._recharges.refunded(recharge, result.trade_no, self._clock.now())
            return REFUNDED
        error = f"{result.state.value} {result.code} {result.message}".strip()
        if answer.state is ChannelState.FAIL and not answer.refused:
            give_up = True  # accepted, then failed for good: only a person can move this money now
        else:  # refused: asked again next run, a person after the limit; processing or no answer: asked again
            give_up = answer.refused and recharge.refund_attempts + 1 >= MAX_REFUND_ATTEMPTS
        return self._not_refunded(recharge, error, give_up)

    def _not_refunded(self, recharge: Recharge, error: str, give_up: bool) -> str:
        log.warning("recharge %s not refunded yet (attempt %d%s): %s", recharge.recharge_id,
                    recharge.refund_attempts + 1, ", a person is asked" if give_up else "", error)
        if not self._recharges.refund_failed(recharge.recharge_id, error, give_up):
            current = self._recharges.get(recharge.recharge_id)  # a concurrent run booked it meanwhile
            return current.status if current else "NOT_FOUND"
        return REFUND_FAILED if give_up else REFUNDING

    def retry_refunds(self) -> dict:
        """The job: one step of every pending refund. `failed`: handed to a person in this run."""
        counts = {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
        for recharge_id in list(self._recharges.refunds()):
            try:
                outcome = self.refund_uncredited(recharge_id)
            except Exception:  # noqa: BLE001 - one bad recharge must not hold back the others' refunds
                log.exception("refund of uncredited recharge %s failed; next run tries again", recharge_id)
                counts["errors"] += 1
                continue
            if outcome == REFUNDED:
                counts["refunded"] += 1
            elif outcome == REFUND_FAILED:
                counts["failed"] += 1
            elif outcome == REFUNDING:
                counts["pending"] += 1
            # (REFUNDED is also the answer for one an earlier run booked while the index still listed it)
        return counts

    # --- a payment whose notification never came: asked of the platform -------------------

    def run_job(self) -> dict:
        """The card job `refund_uncredited_recharges` (and the local stack's loop of that name):
        unnotified payments asked about first (one paid for a closed account then starts its
        refund), then one step of every pending refund."""
        queried = self.credit_unnotified()
        return {**self.retry_refunds(), "queried": queried}

    def credit_unnotified(self) -> dict:
        """The job: every recharge still CREATED between QUERY_AFTER_S and QUERY_LOOKBACK_S old is
        asked about at its platform. Paid: booked by `apply`, the very path of a notification, with
        the same `trade#<wallet>#<trade_no>` dedupe, so it lands once whichever comes first. Closed
        unpaid: no longer asked about (it stays CREATED: a recharge has no closed status). Anything
        else (not paid yet, not found, no answer): asked again next run while within the lookback."""
        counts = {"paid": 0, "closed": 0, "unpaid": 0, "errors": 0}
        now = self._clock.now()
        for recharge_id in list(self._recharges.unpaid(now - QUERY_LOOKBACK_S, now - QUERY_AFTER_S)):
            try:
                counts[self.query_recharge(recharge_id)] += 1
            except Exception:  # noqa: BLE001 - one bad recharge must not hold back the others
                log.exception("query of unnotified recharge %s failed; next run asks again", recharge_id)
                counts["errors"] += 1
        return counts

    def query_recharge(self, recharge_id: str) -> str:
        """Ask the platform about one CREATED recharge: paid, closed or unpaid (which includes one
        booked meanwhile, read consistently here, and one the platform gave no answer about)."""
        recharge = self._recharges.get(recharge_id)
        if recharge is None or recharge.status != CREATED:
            return "unpaid"  # booked meanwhile (the index lags): nothing to ask
        found = self._channels.for_merchant(recharge.merchant_id, recharge.wallet) if self._channels else None
        if found is None:
            raise NotConfigured(f"no {recharge.wallet} channel to ask about recharge {recharge_id}")
        result = found[0].query(recharge_id)
        if result.state is not ChannelState.SUCCESS:
            return "unpaid"
        if result.trade_status is TradeStatus.PAID:
            if not result.trade_no or result.amount_fen is None:
                raise Conflict(f"the platform's paid trade {recharge_id} lacks its trade number or amount")
            notice = PaymentNotice(recharge_id, result.trade_no, result.amount_fen,
                                   result.paid_at or self._clock.now(), "", True)
            self.apply(recharge.merchant_id, notice, recharge.wallet)  # PAID, DUPLICATE or a refund's state
            return "paid"
        if result.trade_status is TradeStatus.CLOSED:
            self._recharges.closed_unpaid(recharge_id)
            return "closed"
        return "unpaid"

    def recharge(self, merchant_id: str, recharge_id: str) -> Recharge:
        """One recharge of this merchant (the console's view), or NotFound."""
        recharge = self._recharges.get(recharge_id)
        if recharge is None or recharge.merchant_id != merchant_id:
            raise NotFound("no such recharge")
        return recharge

    # --- 充值成功通知 -------------------------------------------------------------------------

    def send_notice(self, recharge_id: str) -> bool:
        """Send (or resend) one recharge's template message. True when it went out."""
        recharge = self._recharges.get(recharge_id)
        if recharge is None or recharge.status != PAID or not recharge.notice or not recharge.openid:
            return False
        template = self._rules.template(recharge.merchant_id)
        card = self._cards.live_card_of_account(recharge.account_id)
        holder = self._holders.get(recharge.holder_id)
        facts = RechargeFacts(recharge.amount_fen, recharge.paid_at or self._clock.now(),
                              card.balance_fen if card else 0, card.card_no if card else recharge.card_no,
                              holder.name if holder else "")
        data = template_data(template.get("fields") or CLASSIC_FIELDS, facts)
        try:
            self._mp.send_template(recharge.merchant_id, recharge.openid, str(template.get("template_id", "")),
                                   data, str(template.get("url", "")))
        except (NoticeFailed, NotConfigured) as error:
            give_up = recharge.notice_attempts + 1 >= MAX_NOTICE_ATTEMPTS
            log.warning("recharge %s notice failed (attempt %d): %s", recharge_id, recharge.notice_attempts + 1, error)
            self._recharges.notice_failed(recharge_id, str(error), give_up)
            return False
        self._recharges.notice_sent(recharge_id, self._clock.now())
        return True

    def retry_notices(self) -> dict:
        sent = failed = 0
        for recharge_id in list(self._recharges.notices()):
            if self.send_notice(recharge_id):
                sent += 1
            else:
                failed += 1
        return {"sent": sent, "failed": failed}

