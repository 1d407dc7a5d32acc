"""LOGIN MAC: lowercase hex HMAC-SHA256 of the ASCII string ``tid|ts|nonce`` under the terminal key.

Pure functions: the freshness of ``ts`` (300 s) and the nonce replay window need a clock and a
store, so they belong to the application, which calls :func:`verify_login_mac` as one of its checks.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["login_mac", "login_message", "verify_login_mac"]


def login_message(tid: str, ts: int, nonce: str) -> bytes:
    """The signed bytes ``tid|ts|nonce``; raises ValueError if they are not ASCII."""
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError("ts must be an int")
    # ASCII per protocol.md: refusing anything else avoids two encodings of one login string.
    try:
        return f"{tid}|{ts}|{nonce}".encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("tid and nonce must be ASCII") from exc


def login_mac(key: bytes | str, tid: str, ts: int, nonce: str) -> str:
    """The ``mac`` a terminal with ``key`` puts in its LOGIN (str keys are UTF-8 encoded)."""
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(raw_key, login_message(tid, ts, nonce), hashlib.sha256).hexdigest()


def verify_login_mac(key: bytes | str, tid: str, ts: int, nonce: str, mac: str) -> bool:
    """True when ``mac`` is exactly the lowercase hex MAC of the login; constant-time compare.

    Never raises on peer-supplied values: a non-ASCII tid/nonce/mac is simply a wrong MAC.
    The comparison is exact: protocol.md specifies lowercase hex, so ``"ABCD..."`` fails.
    """
    try:
        expected = login_mac(key, tid, ts, nonce)
    except ValueError:
        return False
    if not isinstance(mac, str) or not mac.isascii():
        return False  # compare_digest refuses non-ASCII str
    return hmac.compare_digest(expected, mac)
