"""Field rules, value checks, progress and definition checks of live forms
(forms_live/validation.py)."""

from __future__ import annotations

import math
import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forms_live import validation
from forms_live.validation import (
    CODES,
    FIELD_TYPES,
    MAX_TEXT,
    RULES,
    FieldSpec,
    check_definition,
    check_value,
    check_values,
    is_answered,
    pattern_matches,
    progress,
)

# --- strategies ------------------------------------------------------------------------------

# Each pattern with an alphabet whose every non-empty string it matches, so a valid value can be
# drawn for any length rule.
PATTERNS = [
    (None, "ab \u00e9\u270d"),
    ("[a-z]+", "abz"),
    (r"\w+", "a\u00e99_"),
    (r"[0-9a-f]*", "0f9"),
]
option_texts = st.text(st.sampled_from("abc \u00e9"), min_size=1, max_size=6).filter(
    lambda text: not text.isspace()
)
option_lists = st.lists(option_texts, min_size=1, max_size=8, unique=True).map(tuple)
small_dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
finite_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def optional_rule(draw, rules, name, strategy):
    if draw(st.booleans()):
        rules[name] = draw(strategy)


@st.composite
def length_rules(draw, at_least=0):
    low = draw(st.integers(0, 12))
    high = draw(st.integers(max(low, at_least, 1), 30))
    rules = {}
    if draw(st.booleans()):
        rules["min_length"] = low
    if draw(st.booleans()):
        rules["max_length"] = high
    return rules


@st.composite
def specs_and_values(draw, key="f"):
    """A field whose definition passes ``check_definition``, and a valid, answered value."""
    kind = draw(st.sampled_from(FIELD_TYPES))
    required = draw(st.booleans())
    spec, value = draw(_DRAWERS[kind](key, required))
    return spec, value


@st.composite
def _text(draw, key, required, kind="text"):
    rules = draw(length_rules())
    pattern, alphabet = draw(st.sampled_from(PATTERNS)) if kind == "text" else PATTERNS[0]
    if pattern is not None:
        rules["pattern"] = pattern
    value = draw(
        st.text(
            st.sampled_from(alphabet),
            min_size=max(1, rules.get("min_length", 0)),
            max_size=rules.get("max_length", 40),
        ).filter(lambda text: not text.isspace())
    )
    return FieldSpec(key, kind, required, rules), value


@st.composite
def _number(draw, key, required):
    rules = {}
    if draw(st.booleans()):
        rules["integer"] = True
        low, high = sorted(draw(st.lists(st.integers(-(10**12), 10**12), min_size=2, max_size=2)))
        value = draw(st.integers(low, high))
    else:
        low, high = sorted(draw(st.lists(finite_floats, min_size=2, max_size=2)))
        values = st.floats(low, high)
        if math.ceil(low) <= math.floor(high):
            values |= st.integers(math.ceil(low), math.floor(high))
        value = draw(values)
    optional_rule(draw, rules, "min", st.just(low))
    optional_rule(draw, rules, "max", st.just(high))
    return FieldSpec(key, "number", required, rules), value


@st.composite
def _email(draw, key, required):
    rules = {}
    optional_rule(draw, rules, "max_length", st.integers(20, 300))
    local = st.text(st.sampled_from("abz09._+-"), min_size=1, max_size=6)
    label = st.text(st.sampled_from("abz09-"), min_size=1, max_size=6)
    value = f"{draw(local)}@{draw(label)}.{draw(label)}"
    return FieldSpec(key, "email", required, rules), value


@st.composite
def _single(draw, key, required):
    options = draw(option_lists)
    return FieldSpec(key, "single_choice", required, options=options), draw(
        st.sampled_from(options)
    )


@st.composite
def _multiple(draw, key, required):
    options = draw(option_lists)
    low = draw(st.integers(0, len(options)))
    high = draw(st.integers(max(low, 1), len(options)))
    rules = {}
    optional_rule(draw, rules, "min_selected", st.just(low))
    optional_rule(draw, rules, "max_selected", st.just(high))
    value = draw(
        st.lists(st.sampled_from(options), unique=True, min_size=max(low, 1), max_size=high)
    )
    return FieldSpec(key, "multiple_choice", required, rules, options), value


def _checkbox(key, required):
    return st.just((FieldSpec(key, "checkbox", required), True))


@st.composite
def _date(draw, key, required):
    low, high = sorted(draw(st.lists(small_dates, min_size=2, max_size=2)))
    rules = {}
    optional_rule(draw, rules, "min", st.just(low.isoformat()))
    optional_rule(draw, rules, "max", st.just(high.isoformat()))
    return FieldSpec(key, "date", required, rules), draw(st.dates(low, high)).isoformat()


_DRAWERS = {
    "text": _text,
    "long_text": lambda key, required: _text(key, required, "long_text"),
    "number": _number,
    "email": _email,
    "single_choice": _single,
    "multiple_choice": _multiple,
    "checkbox": _checkbox,
    "date": _date,
}


@st.composite
def forms(draw, min_size=0):
    """Fields with distinct keys, and a valid value for each."""
    n = draw(st.integers(min_size, 6))
    pairs = [draw(specs_and_values(key=f"f{i}")) for i in range(n)]
    return [spec for spec, _ in pairs], {spec.key: value for spec, value in pairs}


# Anything a client could send: JSON values, and a few things JSON cannot carry.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "  ", "a", "2024-02-29", "x@y.z", "abc", "\u00e9"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
empty_values = st.sampled_from([None, "", " ", "\t\n", "\u3000", []])


@st.composite
def forms_with_any_values(draw):
    fields, valid = draw(forms())
    values = {}
    for spec in fields:
        choice = draw(st.sampled_from(["valid", "junk", "empty", "missing"]))
        if choice == "valid":
            values[spec.key] = valid[spec.key]
        elif choice == "junk":
            values[spec.key] = draw(json_values)
        elif choice == "empty":
            values[spec.key] = draw(empty_values)
    values.update(draw(st.dictionaries(st.sampled_from(["x", "y", "f9"]), json_values, max_size=2)))
    return fields, valid, values


# --- valid values pass ------------------------------------------------------------------------


@given(specs_and_values())
def test_generated_definitions_pass_check_definition(spec_and_value):
    spec, _ = spec_and_value

    assert check_definition(spec.type, spec.rules, spec.options) == []


@given(specs_and_values())
def test_a_valid_value_passes_and_counts_as_answered(spec_and_value):
    spec, value = spec_and_value

    assert check_value(spec, value) == []
    assert is_answered(spec, value)


@given(forms())
def test_check_values_of_valid_values_is_all_empty_and_progress_is_100(form):
    fields, values = form

    assert check_values(fields, values) == {spec.key: [] for spec in fields}
    assert progress(fields, values) == 100


@given(forms(), st.data())
def test_progress_is_100_once_every_required_field_is_valid(form, data):
    fields, valid = form
    values = {
        spec.key: valid[spec.key] if spec.required else data.draw(json_values) for spec in fields
    }

    if any(spec.required for spec in fields):
        assert progress(fields, values) == 100


# --- progress ---------------------------------------------------------------------------------


@given(forms_with_any_values(), st.data())
def test_progress_never_drops_when_a_field_becomes_valid(form, data):
    fields, valid, values = form
    if not fields:
        return
    spec = data.draw(st.sampled_from(fields))

    after = {**values, spec.key: valid[spec.key]}

    assert progress(fields, after) >= progress(fields, values)


@given(forms_with_any_values())
def test_progress_is_the_rounded_down_share_of_counted_fields_answered_validly(form):
    fields, _, values = form
    counted = [spec for spec in fields if spec.required] or fields
    done = [
        spec
        for spec in counted
        if is_answered(spec, values.get(spec.key)) and not check_value(spec, values.get(spec.key))
    ]

    expected = math.floor(100 * len(done) / len(counted)) if counted else 100
    assert progress(fields, values) == expected
    assert 0 <= progress(fields, values) <= 100


def test_progress_counts_required_fields_only_when_there_are_some():
    name = FieldSpec("name", "text", required=True)
    age = FieldSpec("age", "number", required=True)
    nick = FieldSpec("nick", "text")

    assert progress([], {}) == 100
    assert progress([name, age, nick], {"nick": "ada"}) == 0
    assert progress([name, age, nick], {"name": "Ada", "age": "x"}) == 50
    assert progress([name, age, nick], {"name": "Ada", "age": 36}) == 100
    assert progress([nick, FieldSpec("bio", "long_text")], {"nick": "ada"}) == 50
    assert progress([nick], {"nick": "  "}) == 0


def test_progress_of_two_thirds_is_66():
    fields = [FieldSpec(key, "checkbox", required=True) for key in "abc"]

    assert progress(fields, {"a": True, "b": True}) == 66


# --- check_values = check_value per field -----------------------------------------------------


@given(forms_with_any_values())
def test_check_values_is_check_value_for_each_field_and_unknown_field_for_the_rest(form):
    fields, _, values = form
    keys = {spec.key for spec in fields}

    result = check_values(fields, values)

    assert result == {
        **{spec.key: check_value(spec, values.get(spec.key)) for spec in fields},
        **{key: ["unknown_field"] for key in values if key not in keys},
    }


@given(forms_with_any_values())
def test_check_value_returns_known_codes_once_each_in_codes_order(form):
    fields, _, values = form

    for codes in check_values(fields, values).values():
        assert set(codes) <= set(CODES)
        assert codes == sorted(set(codes), key=CODES.index)


# --- empty values -----------------------------------------------------------------------------


@given(specs_and_values(), empty_values)
def test_an_empty_value_is_required_or_else_valid_without_other_checks(spec_and_value, empty):
    spec, _ = spec_and_value

    assert not is_answered(spec, empty)
    assert check_value(spec, empty) == (["required"] if spec.required else [])


def test_an_unticked_checkbox_is_empty_but_false_is_a_wrong_type_elsewhere():
    box = FieldSpec("terms", "checkbox", required=True)

    assert check_value(box, False) == ["required"]
    assert check_value(FieldSpec("terms", "checkbox"), False) == []
    assert is_answered(FieldSpec("name", "text"), False)
    assert check_value(FieldSpec("name", "text", required=True), False) == ["type"]


def test_a_missing_value_is_none():
    fields = [FieldSpec("name", "text", required=True), FieldSpec("nick", "text")]

    assert check_values(fields, {}) == {"name": ["required"], "nick": []}


# --- every code, by example -------------------------------------------------------------------

TEXT = FieldSpec("t", "text", rules={"min_length": 2, "max_length": 5, "pattern": "[a-z]+"})
NUMBER = FieldSpec("n", "number", rules={"min": 1, "max": 10, "integer": True})
EMAIL = FieldSpec("e", "email", rules={"max_length": 20})
SINGLE = FieldSpec("s", "single_choice", options=("red", "green"))
MULTI = FieldSpec(
    "m",
    "multiple_choice",
    rules={"min_selected": 2, "max_selected": 3},
    options=("a", "b", "c", "d"),
)
DATE = FieldSpec("d", "date", rules={"min": "2024-01-01", "max": "2024-12-31"})

EXAMPLES = [
    (FieldSpec("t", "text", required=True), "", ["required"]),
    (FieldSpec("c", "checkbox", required=True), False, ["required"]),
    (TEXT, 5, ["type"]),
    (TEXT, "a", ["min_length"]),
    (TEXT, "abcdef", ["max_length"]),
    (TEXT, "AB", ["pattern"]),
    (TEXT, "A", ["min_length", "pattern"]),
    (TEXT, "abc", []),
    (TEXT, "caf\u00e9", ["pattern"]),
    (FieldSpec("t", "text", rules={"max_length": 4}), "caf\u00e9", []),  # code points, not bytes
    (FieldSpec("l", "long_text", rules={"min_length": 3}), "ab", ["min_length"]),
    (NUMBER, 0, ["min"]),
    (NUMBER, 11, ["max"]),
    (NUMBER, 2.5, ["integer"]),
    (NUMBER, 0.5, ["min", "integer"]),
    (NUMBER, 3.0, []),
    (NUMBER, 10, []),
    (NUMBER, True, ["type"]),
    (NUMBER, "3", ["type"]),
    (NUMBER, math.nan, ["type"]),
    (NUMBER, math.inf, ["type"]),
    (FieldSpec("n", "number"), 10**400, []),
    (FieldSpec("n", "number", rules={"max": 1e308}), 10**400, ["max"]),
    (EMAIL, "ada@example.org", []),
    (EMAIL, "ada.lovelace@example.org", ["max_length"]),
    (EMAIL, "ada", ["email"]),
    (EMAIL, "@example.org", ["email"]),
    (EMAIL, "ada@example", ["email"]),
    (EMAIL, "ada@@example.org", ["email"]),
    (EMAIL, "a@b@example.org", ["email"]),
    (EMAIL, "ada @x.org", ["email"]),
    (EMAIL, "ada@x..org", ["email"]),
    (EMAIL, "ada@x.org.", ["email"]),
    (FieldSpec("e", "email"), "a" * 250 + "@x.org", ["email"]),
    (FieldSpec("e", "email"), "a" * 244 + "@x.org", []),
    (EMAIL, ["ada@x.org"], ["type"]),
    (SINGLE, "red", []),
    (SINGLE, "blue", ["choice"]),
    (SINGLE, "Red", ["choice"]),
    (SINGLE, ["red"], ["type"]),
    (MULTI, ["a", "b"], []),
    (MULTI, ["a"], ["min_selected"]),
    (MULTI, ["a", "b", "c", "d"], ["max_selected"]),
    (MULTI, ["a", "a"], ["choice"]),
    (MULTI, ["a", "z"], ["choice"]),
    (MULTI, ["z"], ["choice", "min_selected"]),
    (MULTI, "a", ["type"]),
    (MULTI, ["a", 1], ["type"]),
    (FieldSpec("c", "checkbox"), True, []),
    (FieldSpec("c", "checkbox"), "true", ["type"]),
    (FieldSpec("c", "checkbox"), 1, ["type"]),
    (DATE, "2024-02-29", []),
    (DATE, "2023-12-31", ["min"]),
    (DATE, "2025-01-01", ["max"]),
    (DATE, "2023-02-29", ["date"]),
    (DATE, "20240229", ["date"]),
    (DATE, "2024-2-29", ["date"]),
    (DATE, "2024-02-29T00:00", ["date"]),
    (DATE, "\u0662\u0660\u0662\u0664-02-29", ["date"]),  # Arabic-Indic digits
    (DATE, 20240229, ["type"]),
]


@pytest.mark.parametrize(("spec", "value", "codes"), EXAMPLES)
def test_check_value_examples(spec, value, codes):
    assert check_value(spec, value) == codes


def test_every_code_is_reachable():
    reached = {code for _, _, codes in EXAMPLES for code in codes}
    reached |= {code for codes in check_values([], {"x": 1}).values() for code in codes}

    assert reached == set(CODES)


@pytest.mark.parametrize("kind", ["text", "long_text", "email"])
def test_text_over_the_hard_cap_is_max_length_whatever_the_rules(kind):
    spec = FieldSpec("t", kind)

    assert check_value(spec, "a" * MAX_TEXT) == (["email"] if kind == "email" else [])
    assert check_value(spec, "a" * (MAX_TEXT + 1)) == ["max_length"]
    assert check_value(FieldSpec("t", kind, rules={"max_length": 10**9}), "a" * 20_000) == [
        "max_length"
    ]


def test_an_oversized_value_never_reaches_the_pattern(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the pattern ran")

    monkeypatch.setattr(validation, "pattern_matches", refuse)
    spec = FieldSpec("t", "text", rules={"pattern": "(a|aa)+"})

    assert check_value(spec, "a" * MAX_TEXT + "!") == ["max_length"]


def test_check_value_refuses_an_unknown_type():
    with pytest.raises(ValueError, match="unknown field type"):
        check_value(FieldSpec("x", "colour"), "red")


# --- patterns and ReDoS -----------------------------------------------------------------------

CATASTROPHIC = "(a|aa)+"  # exponential in `regex`; it defuses the classic (a+)+$ itself


def test_a_catastrophic_pattern_times_out_as_no_match():
    started = time.monotonic()

    assert not pattern_matches(CATASTROPHIC, "a" * 40 + "!", timeout=0.01)
    assert time.monotonic() - started < 2


def test_check_value_with_a_catastrophic_pattern_answers_pattern_within_the_timeout():
    spec = FieldSpec("t", "text", rules={"pattern": CATASTROPHIC})
    started = time.monotonic()

    assert check_value(spec, "a" * 40 + "!") == ["pattern"]
    assert time.monotonic() - started < validation.PATTERN_TIMEOUT + 2


def test_the_classic_nested_quantifier_is_a_quick_no_match():
    spec = FieldSpec("t", "text", rules={"pattern": "(a+)+$"})

    assert check_value(spec, "a" * 30 + "!") == ["pattern"]
    assert check_value(spec, "a" * 30) == []


def test_pattern_must_match_the_whole_value():
    spec = FieldSpec("t", "text", rules={"pattern": "[0-9]{3}"})

    assert check_value(spec, "123") == []
    assert check_value(spec, "1234") == ["pattern"]
    assert check_value(spec, "x123") == ["pattern"]


def test_a_pattern_that_does_not_compile_never_matches():
    assert not pattern_matches("(", "(")
    assert check_value(FieldSpec("t", "text", rules={"pattern": "("}), "(") == ["pattern"]


# --- check_definition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "rules", "options", "fragment"),
    [
        ("colour", {}, (), "Unknown field type 'colour'"),
        ("text", {"min": 1}, (), "Unknown rule 'min' for a text field"),
        ("email", {"pattern": ".*"}, (), "Unknown rule 'pattern'"),
        ("checkbox", {"required": True}, (), "Unknown rule 'required'"),
        ("text", [("min_length", 1)], (), "Rules must be an object"),
        ("text", {"min_length": -1}, (), "'min_length' must be a whole number"),
        ("text", {"max_length": 2.0}, (), "'max_length' must be a whole number"),
        ("long_text", {"max_length": True}, (), "'max_length' must be a whole number"),
        ("multiple_choice", {"max_selected": "2"}, ("a",), "'max_selected' must be a whole"),
        ("number", {"min": "1"}, (), "'min' must be a finite number"),
        ("number", {"max": math.inf}, (), "'max' must be a finite number"),
        ("number", {"min": math.nan}, (), "'min' must be a finite number"),
        ("number", {"max": False}, (), "'max' must be a finite number"),
        ("number", {"integer": 1}, (), "'integer' must be true or false"),
        ("date", {"min": "2023-02-29"}, (), "'min' must be a date"),
        ("date", {"max": "20240101"}, (), "'max' must be a date"),
        ("date", {"max": 2024}, (), "'max' must be a date"),
        ("text", {"pattern": 5}, (), "'pattern' must be a string"),
        ("text", {"pattern": "a" * 201}, (), "'pattern' must be at most 200"),
        ("text", {"pattern": "(a"}, (), "'pattern' is not a valid regular expression"),
        ("text", {"min_length": 5, "max_length": 4}, (), "'min_length' must not be greater"),
        ("number", {"min": 5, "max": 4.5}, (), "'min' must not be greater than 'max'"),
        ("date", {"min": "2024-02-02", "max": "2024-02-01"}, (), "'min' must not be greater"),
        ("multiple_choice", {"min_selected": 2, "max_selected": 1}, ("a", "b"), "'min_selected'"),
        ("multiple_choice", {"min_selected": 3}, ("a", "b"), "more than the number of options"),
        ("single_choice", {}, (), "needs between 1 and 100 options"),
        ("multiple_choice", {}, tuple(str(i) for i in range(101)), "between 1 and 100"),
        ("single_choice", {}, "ab", "Options must be a list of strings"),
        ("single_choice", {}, None, "Options must be a list of strings"),
        ("single_choice", {}, ("a", ""), "Each option must be non-empty"),
        ("single_choice", {}, ("a", "  "), "Each option must be non-empty"),
        ("single_choice", {}, ("a", "b" * 201), "at most 200 characters"),
        ("single_choice", {}, ("a", 1), "Each option must be"),
        ("single_choice", {}, ("a", "b", "a"), "Options must be distinct"),
        ("text", {}, ("a",), "A text field takes no options"),
        ("checkbox", {}, ("yes",), "A checkbox field takes no options"),
    ],
)
def test_check_definition_names_each_problem(kind, rules, options, fragment):
    problems = check_definition(kind, rules, options)

    assert len(problems) == 1, problems
    assert fragment in problems[0]
    assert problems[0].endswith(".")


def test_check_definition_reports_every_problem_at_once():
    problems = check_definition("text", {"min_length": -1, "colour": 1, "pattern": "("}, ("x",))

    assert len(problems) == 4


def test_check_definition_does_not_compare_a_pair_with_a_broken_half():
    assert check_definition("number", {"min": "5", "max": 1}, ()) == [
        "'min' must be a finite number."
    ]


@pytest.mark.parametrize(
    ("kind", "rules", "options"),
    [
        ("text", {"min_length": 0, "max_length": 0}, ()),
        ("text", {"pattern": "a" * 200}, ()),
        ("number", {"min": -1.5, "max": 10**30, "integer": False}, ()),
        ("number", {"min": 3, "max": 3}, ()),
        ("date", {"min": "2024-02-29", "max": "2024-02-29"}, ()),
        ("single_choice", {}, tuple(str(i) for i in range(100))),
        ("multiple_choice", {"min_selected": 2, "max_selected": 2}, ["a", "b"]),
        ("checkbox", {}, []),
        ("email", {}, ()),
    ],
)
def test_check_definition_accepts_edge_definitions(kind, rules, options):
    assert check_definition(kind, rules, options) == []


def test_rules_table_names_a_rule_set_for_every_type():
    assert set(RULES) == set(FIELD_TYPES)
