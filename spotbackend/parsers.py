"""The JSON parser of every API route: bad JSON is a 400 that names the problem, never a 500.

Beyond DRF's JSONParser it refuses documents nested deeper than MAX_JSON_DEPTH (Python's parser would
raise RecursionError, and MariaDB's JSON columns refuse depth > 32) and strings or keys holding a lone
UTF-16 surrogate such as "\\ud800" (valid JSON escapes, but not Unicode: they can be neither encoded
in an error message nor stored in MariaDB)."""
import json
import re

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "payload_too_large"


# A lone surrogate can only arrive as a \\uD800-\\uDFFF escape (raw UTF-8 cannot encode one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def json_problem(data, *, check_strings: bool = True) -> str | None:
    """The first problem of a parsed document (too deep, lone surrogate), naming where; None if fine."""
    if isinstance(data, str):
        return f"Invalid Unicode (lone surrogate) in field '$'." if check_strings and _has_surrogate(data) else None
    if not isinstance(data, (dict, list)):
        return None
    stack = [(data, ())]
    while stack:
        value, parts = stack.pop()
        if len(parts) >= MAX_JSON_DEPTH:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels at '{_path(parts)}'."
        for key, child in (value.items() if isinstance(value, dict) else enumerate(value)):
            if isinstance(child, (dict, list)):
                stack.append((child, (*parts, key)))
            elif check_strings and isinstance(child, str) and _has_surrogate(child):
                return f"Invalid Unicode (lone surrogate) in field '{_path((*parts, key))}'."
            if check_strings and isinstance(key, str) and _has_surrogate(key):
                return f"Invalid Unicode (lone surrogate) in a key under '{_path(parts)}'."
    return None


class SafeJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"Request body larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
            # NaN and Infinity are not JSON (and MariaDB's JSON columns refuse them).
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"Request body is not valid {encoding}: byte {exc.start}.")
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}")
        problem = json_problem(data, check_strings=bool(_SURROGATE_ESCAPE.search(text)))
        if problem:
            raise exceptions.ParseError(problem)
        return data
