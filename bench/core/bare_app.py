"""The yardstick of the cold-import bench: the smallest Chalice + PynamoDB app that does anything.

One route and one PynamoDB model, as a fresh `chalice new-project` plus a table would have. Its
import time is what any app on this stack pays; app.py's import time is divided by it.
"""
from chalice import Chalice
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

app = Chalice(app_name="bare")


class ThingModel(Model):
    class Meta:
        table_name = "things"
        region = "ap-east-1"

    thing_id = UnicodeAttribute(hash_key=True)


@app.route("/things/{thing_id}")
def get_thing(thing_id: str) -> dict:
    return ThingModel.get(thing_id).attribute_values
