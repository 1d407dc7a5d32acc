"""Binds the models to a stage's tables and endpoint, once per cold start (or per test stack)."""
from __future__ import annotations

import threading

import botocore.session
from pynamodb.connection import Connection

from chalicelib.config import Settings
from chalicelib.store.models import ALL_MODELS
from chalicelib.store.transactions import ConflictRetryingConnection

_BASE_NAMES = {model: model.Meta.table_name for model in ALL_MODELS}


def bind_models(settings: Settings) -> None:
    for model, base_name in _BASE_NAMES.items():
        binding = (f"{settings.table_prefix}{base_name}", settings.dynamodb_endpoint, settings.region)
        if (model.Meta.table_name, getattr(model.Meta, "host", None), model.Meta.region) == binding:
            continue  # already bound: keep the cached connection (a new botocore client costs ~0.25 s)
        model.Meta.table_name, model.Meta.host, model.Meta.region = binding
        model._connection = None  # PynamoDB caches the connection with the old settings
        _use_shared_session(model._get_connection().connection)


_session_lock = threading.Lock()
_shared_session: botocore.session.Session | None = None


def _use_shared_session(connection: Connection) -> None:
    """Build the connection's client from one botocore session shared by all models.

    PynamoDB gives every connection a session of its own, and each new session loads the DynamoDB
    service model again: ~130 ms CPU per model on a cold Lambda. From one shared session a client
    costs ~3 ms. botocore client creation is not thread-safe, hence the lock.
    """
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            _shared_session = botocore.session.get_session()
        connection._local.session = _shared_session  # PynamoDB's per-thread session slot
        connection.client  # noqa: B018 - created now, from the shared session, and cached


_transaction_connection: Connection | None = None


def transaction_connection(settings: Settings) -> Connection:
    """One connection (one botocore client) for all transactions: creating a client costs ~10 ms.
    It sends a transaction again when DynamoDB cancelled it only for a conflict (store/transactions.py)."""
    global _transaction_connection
    conn = _transaction_connection
    if conn is None or conn.host != settings.dynamodb_endpoint or conn.region != settings.region:
        conn = _transaction_connection = ConflictRetryingConnection(region=settings.region,
                                                                     host=settings.dynamodb_endpoint)
        _use_shared_session(conn)
    return conn


def dynamodb_clients(settings: Settings) -> list[object]:
    """Every botocore client the store uses (created now if not yet): for counting calls in tests
    and benches with botocore's event hooks."""
    clients = [model._get_connection().connection.client for model in ALL_MODELS]
    clients.append(transaction_connection(settings).client)
    return clients


def create_tables() -> None:
    """Local stack and tests only; on AWS the infra template owns the tables."""
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
