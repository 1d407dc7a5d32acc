"""ScanPay Cloud: registers the blueprints and schedules. Everything else lives in chalicelib/."""
from chalice import Chalice

from chalicelib.api.cards import cards
from chalicelib.api.edge import edge
from chalicelib.api.edge_terminals import edge_terminals
from chalicelib.api.notify import notify
from chalicelib.api.pay_page import pay_page
from chalicelib.jobs.expiry import expiry_jobs

app = Chalice(app_name="scanpay")
app.register_blueprint(edge)
app.register_blueprint(edge_terminals)
app.register_blueprint(cards)
app.register_blueprint(notify)
app.register_blueprint(pay_page)
app.register_blueprint(expiry_jobs)
