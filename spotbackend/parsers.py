"""The JSON parser of every API route: bad JSON is a 400 that names the problem, never a 500.

Beyond DRF's JSONParser it refuses documents nested deeper than MAX_JSON_DEPTH (Python's parser would
raise RecursionError, and MariaDB's JSON columns refuse depth > 32) and strings or keys holding a lone
UTF-16 surrogate such as "\\ud800" (valid JSON escapes, but not Unicode: they can be neither encoded
in an error message nor stored in MariaDB)."""
import json

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def json_problem(data) -> str | None:
    """The first problem of a parsed document (too deep, lone surrogate), naming where; None if fine."""
    stack = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels at '{path or '$'}'."
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                if isinstance(key, str) and _has_surrogate(key):
                    return f"Invalid Unicode (lone surrogate) in a key under '{path or '$'}'."
                child_path = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
                stack.append((child, child_path, depth + 1))
        elif isinstance(value, str) and _has_surrogate(value):
            return f"Invalid Unicode (lone surrogate) in field '{path or '$'}'."
    return None


class SafeJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"Request body larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            # NaN and Infinity are not JSON (and MariaDB's JSON columns refuse them).
            data = json.loads(raw.decode(encoding), parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"Request body is not valid {encoding}: byte {exc.start}.")
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}")
        problem = json_problem(data)
        if problem:
            raise exceptions.ParseError(problem)
        return data
