import pytest

from chalicelib.domain.bank_code import make_bank_code, parse_bank_code
from chalicelib.domain.errors import InvalidRequest

TOKEN = "202611BBdemocanteen0000000000109"


def test_round_trip_both_wallets() -> None:
    code = make_bank_code("1900000109", "2088000000000109", TOKEN)
    binding = parse_bank_code(code)
    assert binding.as_binding() == {"wechat_sub_mch_id": "1900000109", "alipay_seller_id": "2088000000000109",
                                    "alipay_app_auth_token": TOKEN}


def test_one_wallet_only() -> None:
    assert parse_bank_code(make_bank_code("1900000109")).as_binding() == {"wechat_sub_mch_id": "1900000109"}


@pytest.mark.parametrize("code", [
    "", "BK2-1900000109---00000000", "nonsense",
    make_bank_code("1900000109", "2088000000000109", TOKEN).replace("1900000109", "1900000190"),  # typo
    make_bank_code("", "2088000000000109", ""),  # seller without token
    make_bank_code("", "", ""),  # binds nothing
])
def test_bad_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_bank_code(code)
