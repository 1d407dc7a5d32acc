"""Webhooks the payment platforms post to: /notify/{kind}/{merchant_id}.

Each platform's own content type is accepted (Chalice answers 415 to anything not listed): WeChat
v2 posts XML, v3 JSON, Alipay a form. The raw body goes to the channel untouched, because the
signature is over those exact bytes.
"""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import container

notify = Blueprint(__name__)

PLATFORM_CONTENT_TYPES = [
    "text/xml",
    "application/xml",
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
]


@notify.route("/notify/{kind}/{merchant_id}", methods=["POST"], content_types=PLATFORM_CONTENT_TYPES)
def payment_notification(kind: str, merchant_id: str) -> Response:
    request = notify.current_request
    reply = container.current().notifications.handle(kind, merchant_id, dict(request.headers), request.raw_body or b"")
    return Response(body=reply.body, status_code=reply.status, headers=dict(reply.headers))
