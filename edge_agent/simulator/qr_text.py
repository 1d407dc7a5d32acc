"""Draw a QR code in the terminal with block characters (what the terminal's screen would show)."""

from __future__ import annotations

import io

__all__ = ["qr_as_text"]


def qr_as_text(text: str) -> str:
    try:
        import qrcode  # the cloud's own dependency; optional for the simulator
    except ImportError:  # pragma: no cover
        return f"[install qrcode to draw the QR]\n{text}"
    code = qrcode.QRCode(border=1)
    code.add_data(text)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()
