"""The versioned blacklist of a merchant: every change of a card's status that edge agents must
know (lost, found, cancelled, replaced) is one numbered change, written in the same transaction
as the card's status, so the list can never disagree with the cards.

Version 0 is the head item holding `latest`; a change conditions the head on the version it read,
so two concurrent changes cannot take the same number (the loser re-reads and retries).
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.store.card_models import CardBlacklistAckModel, CardBlacklistModel
from chalicelib.store.conditional import update_if

HEAD = 0
MAX_DELTA = 500  # an agent further behind than this gets the whole list


@dataclass(frozen=True)
class BlacklistChange:
    card_no: str
    action: str  # "add" or "remove"


@dataclass(frozen=True)
class BlacklistAnswer:
    version: int
    full: bool
    add: list[str]
    remove: list[str]

    def to_dict(self) -> dict:
        return {"version": self.version, "full": self.full, "add": self.add, "remove": self.remove}


class BlacklistStore:
    def __init__(self, max_delta: int = MAX_DELTA) -> None:
        self._max_delta = max_delta

    def latest(self, merchant_id: str) -> int:
        try:
            return int(CardBlacklistModel.get(merchant_id, HEAD, consistent_read=True).latest or 0)
        except DoesNotExist:
            return 0

    def add_change(self, tx: TransactWrite, merchant_id: str, read_version: int, change: BlacklistChange,
                   now: float) -> int:
        """Add the next change to a transaction; it fails if another change took the number first."""
        version = read_version + 1
        head_condition = (CardBlacklistModel.latest == read_version) if read_version else \
            CardBlacklistModel.latest.does_not_exist()
        tx.update(CardBlacklistModel(merchant_id, HEAD),
                  actions=[CardBlacklistModel.latest.set(version), CardBlacklistModel.at.set(now)],
                  condition=head_condition)
        tx.save(CardBlacklistModel(merchant_id, version, card_no=change.card_no, action=change.action, at=now),
                condition=CardBlacklistModel.version.does_not_exist())
        return version

    def since(self, merchant_id: str, after_version: int) -> BlacklistAnswer:
        """What an agent holding `after_version` must apply; the whole list when it is new or far behind."""
        latest = self.latest(merchant_id)
        if after_version > latest:
            after_version = 0  # the agent holds a version we never issued (data reset): start over
        if after_version == latest:
            return BlacklistAnswer(latest, False, [], [])
        full = after_version == 0 or latest - after_version > self._max_delta
        start = 0 if full else after_version
        state: dict[str, str] = {}  # card -> last action; replayed in version order
        query = CardBlacklistModel.query(merchant_id, CardBlacklistModel.version.between(start + 1, latest),
                                         consistent_read=True)
        for item in query:
            state[item.card_no] = item.action
        add = sorted(card for card, action in state.items() if action == "add")
        remove = [] if full else sorted(card for card, action in state.items() if action == "remove")
        return BlacklistAnswer(latest, full, add, remove)

    # --- acknowledgements -------------------------------------------------------------------

    def ack(self, merchant_id: str, terminal_id: str, version: int, now: float) -> None:
        """Record the version a terminal holds; an older ack arriving late never moves it back."""
        update_if(CardBlacklistAckModel(merchant_id, terminal_id),
                  [CardBlacklistAckModel.version.set(version), CardBlacklistAckModel.acked_at.set(now)],
                  CardBlacklistAckModel.version.does_not_exist() | (CardBlacklistAckModel.version <= version))

    def acks(self, merchant_id: str) -> dict[str, int]:
        return {item.terminal_id: int(item.version) for item in CardBlacklistAckModel.query(merchant_id)}
