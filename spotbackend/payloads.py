"""Caps on free-form agent data that is stored as sent (switch report, cleanup details and errors):
one report must not fill the database. Lone surrogates never get here (spotbackend/parsers.py)."""
import json

from django.conf import settings

TEXT_MAX_CHARS = 4000


def json_capped(value, *, max_bytes: int | None = None):
    """`value` itself when its JSON is at most STORED_PAYLOAD_MAX_BYTES, else a small stand-in that says
    so and keeps the beginning of the JSON text."""
    max_bytes = settings.STORED_PAYLOAD_MAX_BYTES if max_bytes is None else max_bytes
    text = json.dumps(value, ensure_ascii=False, default=str)
    size = len(text.encode("utf-8"))
    if size <= max_bytes:
        return value
    return {"truncated": True, "original_bytes": size, "preview": text[: max(max_bytes // 4, 64)]}


def text_capped(text: str | None, *, max_chars: int = TEXT_MAX_CHARS) -> str:
    text = text or ""
    return text if len(text) <= max_chars else text[:max_chars] + f"... [{len(text) - max_chars} more characters]"
