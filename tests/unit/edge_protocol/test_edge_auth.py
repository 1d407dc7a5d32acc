import pytest

from edge_agent.protocol.auth import login_mac, login_message, verify_login_mac

# Cross-checked with: printf 'T0001|1700000000|abc' | openssl dgst -sha256 -hmac demo-key-T0001
KEY, TID, TS, NONCE = "demo-key-T0001", "T0001", 1700000000, "abc"
MAC = "3e620b9f37f3e0dbe392b7e5bad6e83aa893c3d4b958cec3806edb8d68d3b0a0"


def test_known_answer() -> None:
    assert login_message(TID, TS, NONCE) == b"T0001|1700000000|abc"
    assert login_mac(KEY, TID, TS, NONCE) == MAC
    assert login_mac(KEY.encode(), TID, TS, NONCE) == MAC


def test_verify_accepts_the_right_mac_only() -> None:
    assert verify_login_mac(KEY, TID, TS, NONCE, MAC)
    assert not verify_login_mac("demo-key-T0002", TID, TS, NONCE, MAC)
    assert not verify_login_mac(KEY, TID, TS + 1, NONCE, MAC)
    assert not verify_login_mac(KEY, TID, TS, "abd", MAC)
    assert not verify_login_mac(KEY, "T0002", TS, NONCE, MAC)
    assert not verify_login_mac(KEY, TID, TS, NONCE, MAC[:-1])


def test_verify_is_exact_lowercase_hex() -> None:
    assert not verify_login_mac(KEY, TID, TS, NONCE, MAC.upper())


@pytest.mark.parametrize(
    ("tid", "nonce", "mac"),
    [("终端", NONCE, MAC), (TID, "随机", MAC), (TID, NONCE, "é" * 64), (TID, NONCE, "")],
)
def test_verify_never_raises_on_peer_values(tid: str, nonce: str, mac: str) -> None:
    assert verify_login_mac(KEY, tid, TS, nonce, mac) is False


def test_signing_refuses_non_ascii_and_bool_ts() -> None:
    with pytest.raises(ValueError):
        login_mac(KEY, "终端", TS, NONCE)
    with pytest.raises(ValueError):
        login_mac(KEY, TID, True, NONCE)
