import pytest

from chalicelib.domain.money import apply_rate, format_yuan, is_valid_amount


@pytest.mark.parametrize(
    ("amount_fen", "rate_ppm", "expected"),
    [
        (10_000, 6_000, 60),  # 100.00 yuan at 0.6 % = 0.60
        (83, 6_000, 0),  # 0.498 fen rounds down
        (84, 6_000, 1),  # 0.504 fen rounds up
        (250, 6_000, 2),  # 1.5 fen: half rounds up
        (249, 6_000, 1),  # 1.494
        (1, 1_000_000, 1),
        (0, 6_000, 0),
        (-250, 6_000, -2),  # a refund's fee mirrors its payment's
    ],
)
def test_apply_rate_rounds_half_up_on_exact_value(amount_fen: int, rate_ppm: int, expected: int) -> None:
    assert apply_rate(amount_fen, rate_ppm) == expected


def test_apply_rate_refuses_floats() -> None:
    with pytest.raises(TypeError):
        apply_rate(100.0, 6_000)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1, 100, 10_000_000])
def test_valid_amounts(value: int) -> None:
    assert is_valid_amount(value)


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "100", None, 10_000_001])
def test_invalid_amounts(value: object) -> None:
    assert not is_valid_amount(value)


def test_format_yuan() -> None:
    assert format_yuan(1250) == "12.50"
    assert format_yuan(5) == "0.05"
    assert format_yuan(-100) == "-1.00"
