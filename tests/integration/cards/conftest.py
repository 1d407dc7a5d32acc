from tests.integration.cards.api_workers import api_urls  # noqa: F401  (fixture)
from tests.support.card_world import cs  # noqa: F401  (fixture)
