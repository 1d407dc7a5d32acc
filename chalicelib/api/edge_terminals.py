"""Edge API for the terminal link: terminal keys for LOGIN, heartbeats and online status."""
from __future__ import annotations

from chalice import Blueprint

edge_terminals = Blueprint(__name__)
