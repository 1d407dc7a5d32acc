from tests.support.card_world import cs  # noqa: F401  (fixture)
