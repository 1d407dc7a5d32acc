"""Edge and operator API for IC-card accounts: card payments, offline batches, blacklist, recharge."""
from __future__ import annotations

from chalice import Blueprint

cards = Blueprint(__name__)
