"""Field rules of a live form, one set for per-field feedback and for the final submit. Pure.

A field is a ``FieldSpec``; its definition as the builder stores it (JSON):

    {"key": "age", "type": "number", "required": true, "rules": {"min": 18, "integer": true}}
    {"key": "colour", "type": "single_choice", "options": ["red", "green"]}

Values are JSON values, one shape per type:

    text, long_text, email -> "a string"          number   -> 42 or 4.2 (never a bool, finite)
    single_choice          -> "red" (an option)   checkbox -> true / false
    multiple_choice        -> ["red", "green"]    date     -> "2024-02-29" (a real date)
                              (distinct options)

``check_value`` answers with stable error codes (``CODES``), ``[]`` when the value is valid:

    check_value(FieldSpec("age", "number", rules={"min": 18}), 17)   -> ["min"]
    check_values([age], {"age": 17, "nick": "x"})                    -> {"age": ["min"],
                                                                         "nick": ["unknown_field"]}

An empty value (None, "", whitespace only, [], an unticked checkbox) is "required" on a required
field and valid, with no other check, on an optional one. ``check_definition`` is the builder's
side: what is wrong with a field's type, rules and options, as sentences for people.

User-written patterns run in the ``regex`` engine with a timeout, so a catastrophic pattern costs
at most ``PATTERN_TIMEOUT`` seconds per check instead of a worker (ReDoS).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import regex

FIELD_TYPES = (
    "text",
    "long_text",
    "number",
    "email",
    "single_choice",
    "multiple_choice",
    "checkbox",
    "date",
)
RULES: Mapping[str, frozenset[str]] = {
    "text": frozenset({"min_length", "max_length", "pattern"}),
    "long_text": frozenset({"min_length", "max_length"}),
    "number": frozenset({"min", "max", "integer"}),
    "email": frozenset({"max_length"}),
    "single_choice": frozenset(),
    "multiple_choice": frozenset({"min_selected", "max_selected"}),
    "checkbox": frozenset(),
    "date": frozenset({"min", "max"}),
}
CODES = (
    "required",
    "type",
    "min",
    "max",
    "integer",
    "min_length",
    "max_length",
    "pattern",
    "email",
    "choice",
    "min_selected",
    "max_selected",
    "date",
    "unknown_field",
)
TEXT_TYPES = frozenset({"text", "long_text", "email"})
CHOICE_TYPES = frozenset({"single_choice", "multiple_choice"})

MAX_TEXT = 10_000  # code points; any longer text is refused whatever its rules
MAX_EMAIL = 254  # the longest address SMTP can carry (RFC 5321 path limit)
MAX_PATTERN = 200
MAX_OPTIONS = 100
MAX_OPTION = 200
PATTERN_TIMEOUT = 0.05  # seconds per match: far above any sane pattern, cheap for a worker

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fromisoformat alone also takes 20240229


@dataclass(frozen=True, slots=True)
class FieldSpec:
    key: str
    type: str
    required: bool = False
    rules: Mapping[str, Any] = field(default_factory=dict)  # see RULES
    options: tuple[str, ...] = ()  # choice types only


# --- values ----------------------------------------------------------------------------------


def is_answered(field: FieldSpec, value: Any) -> bool:
    """Given and non-empty; says nothing of whether the value is valid."""
    if value is None or (value is False and field.type == "checkbox"):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return not (isinstance(value, list | tuple) and not value)


def check_value(field: FieldSpec, value: Any) -> list[str]:
    """The field's error codes for ``value``, in ``CODES`` order; ``[]`` when it is valid."""
    try:
        check = _CHECKS[field.type]
    except KeyError:
        raise ValueError(f"unknown field type {field.type!r}") from None
    if not is_answered(field, value):
        return ["required"] if field.required else []
    return check(field.rules, field.options, value)


def check_values(fields: Sequence[FieldSpec], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every field's codes (``[]`` when fine), then ``["unknown_field"]`` for each stray key."""
    result = {f.key: check_value(f, values.get(f.key)) for f in fields}
    result.update({key: ["unknown_field"] for key in values if key not in result})
    return result


def progress(fields: Sequence[FieldSpec], values: Mapping[str, Any]) -> int:
    """0..100, rounded down: the share of required fields answered validly or, with no required
    field, of all fields; 100 for a form with no fields."""
    counted = [f for f in fields if f.required] or list(fields)
    if not counted:
        return 100
    done = sum(1 for f in counted if _answered_validly(f, values.get(f.key)))
    return 100 * done // len(counted)


def _answered_validly(field: FieldSpec, value: Any) -> bool:
    return is_answered(field, value) and not check_value(field, value)


def pattern_matches(pattern: str, value: str, *, timeout: float = PATTERN_TIMEOUT) -> bool:
    """Whether ``pattern`` matches all of ``value``; a match that runs out of time does not, nor
    does a pattern that does not compile (the builder refuses those: ``check_definition``)."""
    try:
        return regex.fullmatch(pattern, value, timeout=timeout) is not None
    except (TimeoutError, regex.error, ValueError, OverflowError, RecursionError):
        return False


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _length_codes(rules: Mapping[str, Any], value: str) -> list[str]:
    codes = []
    if len(value) < rules.get("min_length", 0):
        codes.append("min_length")
    if "max_length" in rules and len(value) > rules["max_length"]:
        codes.append("max_length")
    return codes


def _check_text(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["type"]
    if len(value) > MAX_TEXT:
        return ["max_length"]  # before the pattern: no regex over an oversized value
    codes = _length_codes(rules, value)
    if "pattern" in rules and not pattern_matches(rules["pattern"], value):
        codes.append("pattern")
    return codes


def _check_email(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["type"]
    if len(value) > MAX_TEXT:
        return ["max_length"]
    codes = _length_codes(rules, value)
    if not is_email(value):
        codes.append("email")
    return codes


def is_email(value: str) -> bool:
    """Pragmatic: one @, something before it, a dotted domain after it, no spaces, <= 254."""
    if len(value) > MAX_EMAIL or value.count("@") != 1 or any(c.isspace() for c in value):
        return False
    local, domain = value.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels)


def _check_number(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not _is_number(value):
        return ["type"]
    codes = []
    if "min" in rules and value < rules["min"]:
        codes.append("min")
    if "max" in rules and value > rules["max"]:
        codes.append("max")
    if rules.get("integer") and isinstance(value, float) and not value.is_integer():
        codes.append("integer")
    return codes


def _check_single(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["type"]
    return [] if value in options else ["choice"]


def _check_multiple(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return ["type"]
    codes = []
    if len(set(value)) != len(value) or not set(value) <= set(options):
        codes.append("choice")
    if len(value) < rules.get("min_selected", 0):
        codes.append("min_selected")
    if "max_selected" in rules and len(value) > rules["max_selected"]:
        codes.append("max_selected")
    return codes


def _check_checkbox(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    return [] if isinstance(value, bool) else ["type"]


def _check_date(rules: Mapping[str, Any], options: Sequence[str], value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["type"]
    day = _parse_date(value)
    if day is None:
        return ["date"]
    codes = []
    if "min" in rules and day < date.fromisoformat(rules["min"]):
        codes.append("min")
    if "max" in rules and day > date.fromisoformat(rules["max"]):
        codes.append("max")
    return codes


_CHECKS = {
    "text": _check_text,
    "long_text": _check_text,
    "number": _check_number,
    "email": _check_email,
    "single_choice": _check_single,
    "multiple_choice": _check_multiple,
    "checkbox": _check_checkbox,
    "date": _check_date,
}


# --- definitions -----------------------------------------------------------------------------


def check_definition(type: str, rules: Mapping[str, Any], options: Sequence[str]) -> list[str]:
    """What is wrong with a field's definition, as sentences for the form's builder; ``[]`` when
    nothing is. A definition that passes is safe to hand to ``check_value``."""
    if type not in FIELD_TYPES:
        return [f"Unknown field type {type!r}; expected one of {', '.join(FIELD_TYPES)}."]
    if not isinstance(rules, Mapping):
        return [
            "Rules must be an object of rule names and values.",
            *_option_problems(type, options),
        ]
    problems = [
        f"Unknown rule {name!r} for a {type} field." for name in rules if name not in RULES[type]
    ]
    valid = {}
    for name, value in rules.items():
        if name in RULES[type]:
            problem = _rule_problem(type, name, value)
            if problem:
                problems.append(problem)
            else:
                valid[name] = value
    option_problems = _option_problems(type, options)
    problems += _order_problems(type, valid) + option_problems
    if type in CHOICE_TYPES and not option_problems and valid.get("min_selected", 0) > len(options):
        problems.append("'min_selected' is more than the number of options.")
    return problems


def _rule_problem(type: str, name: str, value: Any) -> str | None:
    if name in ("min_length", "max_length", "min_selected", "max_selected"):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else f"{name!r} must be a whole number, 0 or more."
    if name == "integer":
        return None if isinstance(value, bool) else "'integer' must be true or false."
    if name == "pattern":
        return _pattern_problem(value)
    if type == "date":
        return None if _parse_date(value) else f"{name!r} must be a date written YYYY-MM-DD."
    return None if _is_number(value) else f"{name!r} must be a finite number."


def _pattern_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "'pattern' must be a string."
    if len(value) > MAX_PATTERN:
        return f"'pattern' must be at most {MAX_PATTERN} characters long."
    try:
        regex.compile(value)
    except (regex.error, ValueError, OverflowError, RecursionError) as error:
        return f"'pattern' is not a valid regular expression: {error}."
    return None


def _order_problems(type: str, rules: Mapping[str, Any]) -> list[str]:
    problems = []
    for low, high in (
        ("min_length", "max_length"),
        ("min", "max"),
        ("min_selected", "max_selected"),
    ):
        if low in rules and high in rules:
            if type == "date":
                in_order = _parse_date(rules[low]) <= _parse_date(rules[high])
            else:
                in_order = rules[low] <= rules[high]
            if not in_order:
                problems.append(f"{low!r} must not be greater than {high!r}.")
    return problems


def _option_problems(type: str, options: Any) -> list[str]:
    if type not in CHOICE_TYPES:
        return [] if not options else [f"A {type} field takes no options."]
    if isinstance(options, str) or not isinstance(options, Sequence):
        return ["Options must be a list of strings."]
    if not 1 <= len(options) <= MAX_OPTIONS:
        return [f"A {type} field needs between 1 and {MAX_OPTIONS} options."]
    problems = []
    if not all(isinstance(o, str) and o.strip() and len(o) <= MAX_OPTION for o in options):
        problems.append(f"Each option must be non-empty text of at most {MAX_OPTION} characters.")
    elif len(set(options)) != len(options):
        problems.append("Options must be distinct.")
    return problems
