"""One conditional UpdateItem whose refused condition is an answer, not an error."""
from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model


def update_if(item: Model, actions: Sequence[Action], condition: Condition) -> bool:
    """Apply ``actions`` to ``item`` when DynamoDB finds ``condition`` true (checked in the same
    write): True when written, False when the condition was refused; any other failure is raised."""
    try:
        item.update(actions=list(actions), condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
