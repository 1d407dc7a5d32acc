"""ScanPay Cloud: registers the blueprints and schedules. Everything else lives in chalicelib/."""
from chalicelib.api.card_batch import card_batch
from chalicelib.api.card_voids import card_voids
from chalicelib.api.cards import cards
from chalicelib.api.chalice_app import ScanPayChalice
from chalicelib.api.edge import edge
from chalicelib.api.edge_terminals import edge_terminals
from chalicelib.api.notify import notify
from chalicelib.api.pay_page import pay_page
from chalicelib.api.refunds import refunds
from chalicelib.api.statements import statements
from chalicelib.api.terminal_status import terminal_status
from chalicelib.jobs.cards import card_jobs
from chalicelib.jobs.expiry import expiry_jobs
from chalicelib.jobs.refunds import refund_jobs
from chalicelib.jobs.settlement import settlement_jobs

app = ScanPayChalice(app_name="scanpay")
app.register_blueprint(edge)
app.register_blueprint(edge_terminals)
app.register_blueprint(terminal_status)
app.register_blueprint(cards)
app.register_blueprint(card_voids)
app.register_blueprint(card_batch)
app.register_blueprint(notify)
app.register_blueprint(pay_page)
app.register_blueprint(statements)
app.register_blueprint(refunds)
app.register_blueprint(expiry_jobs)
app.register_blueprint(card_jobs)
app.register_blueprint(settlement_jobs)
app.register_blueprint(refund_jobs)
