from tests.support.card_world import card_tables, cs  # noqa: F401  (fixtures)
