"""Tests of the password validator task (spec.md). The module under test is `solution`."""

import string

import pytest

from solution import PasswordValidator

TOO_SHORT = "must be at least 8 characters long"
TOO_LONG = "must be at most 64 characters long"
UPPER = "must contain an uppercase letter (A-Z)"
LOWER = "must contain a lowercase letter (a-z)"
DIGIT = "must contain a digit (0-9)"
SPECIAL = "must contain a special character"
SPACE = "must not contain whitespace"
REPEAT = "must not repeat a character more than twice in a row"


@pytest.fixture
def validator():
    return PasswordValidator()


@pytest.mark.parametrize("password", ["Secur3!pass", "Aa1!Aa1!", "xY9_" * 16, "P@ssw0rd"])
def test_a_password_breaking_no_rule_is_valid(validator, password):
    assert validator.validate(password) == []
    assert validator.is_valid(password) is True


def test_the_example_from_the_specification(validator):
    assert validator.validate("short") == [TOO_SHORT, UPPER, DIGIT, SPECIAL]
    assert validator.is_valid("short") is False


def test_exactly_the_minimum_length_is_long_enough(validator):
    assert len("Abcde1!x") == 8
    assert validator.validate("Abcde1!x") == []


def test_one_below_the_minimum_length_is_too_short(validator):
    assert validator.validate("Abcd1!x") == [TOO_SHORT]


def test_exactly_the_maximum_length_is_short_enough(validator):
    password = "Ab1!" * 16
    assert len(password) == 64
    assert validator.validate(password) == []


def test_one_above_the_maximum_length_is_too_long(validator):
    password = "Ab1!" * 16 + "x"
    assert validator.validate(password) == [TOO_LONG]


def test_length_counts_characters_not_bytes(validator):
    # eight characters, more than eight bytes in UTF-8
    assert validator.validate("Ab1!éééx") == [REPEAT]
    assert validator.validate("Ab1!éxéx") == []


@pytest.mark.parametrize(
    "password, missing",
    [
        ("secur3!pass", UPPER),
        ("SECUR3!PASS", LOWER),
        ("Secure!pass", DIGIT),
        ("Secur3xpass", SPECIAL),
    ],
)
def test_each_character_class_is_required(validator, password, missing):
    assert validator.validate(password) == [missing]
    assert validator.is_valid(password) is False


@pytest.mark.parametrize("special", list(string.punctuation))
def test_every_ascii_punctuation_character_is_special(validator, special):
    assert validator.validate("Abcdef12" + special) == []


@pytest.mark.parametrize("other", ["é", "£", "€", "§", "¿", "✓", "😀"])
def test_non_ascii_symbols_are_not_special(validator, other):
    assert validator.validate("Abcdef12" + other) == [SPECIAL]


def test_non_ascii_letters_and_digits_count_for_no_class(validator):
    assert validator.validate("Über!über1") == [UPPER]
    assert validator.validate("ÉCOLé!1234") == [LOWER]
    assert validator.validate("Abcdef!٣٤") == [DIGIT]
    assert validator.validate("Abcdef!x²") == [DIGIT]


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000"])
def test_any_whitespace_is_refused(validator, space):
    assert validator.validate("Abc1!" + space + "defg") == [SPACE]


def test_a_character_twice_in_a_row_is_fine_three_times_is_not(validator):
    assert validator.validate("Aa1!bbcc") == []
    assert validator.validate("Aa1!bbbc") == [REPEAT]
    assert validator.validate("Aa1!!!cd") == [REPEAT]


def test_repetition_is_case_sensitive_and_only_in_a_row(validator):
    assert validator.validate("aAaB1!cd") == []
    assert validator.validate("ab1!abXab") == []


def test_each_broken_rule_is_said_once(validator):
    assert validator.validate("aaaaaaaaaa") == [UPPER, DIGIT, SPECIAL, REPEAT]


def test_every_broken_rule_is_said_in_rule_order(validator):
    assert validator.validate("") == [TOO_SHORT, UPPER, LOWER, DIGIT, SPECIAL]
    assert validator.validate("   ") == [TOO_SHORT, UPPER, LOWER, DIGIT, SPECIAL, SPACE, REPEAT]
    assert validator.validate("1" * 70) == [TOO_LONG, UPPER, LOWER, SPECIAL, REPEAT]


def test_only_special_characters_break_the_other_class_rules(validator):
    assert validator.validate("!@#$%^&*") == [UPPER, LOWER, DIGIT]


def test_custom_length_bounds_appear_in_the_messages():
    validator = PasswordValidator(min_length=12, max_length=16)
    assert validator.validate("Abcdef1!x") == ["must be at least 12 characters long"]
    assert validator.validate("Abcdef1!xyzw") == []
    assert validator.validate("Abcdef1!xyzwabcde") == ["must be at most 16 characters long"]


def test_bounds_may_be_equal():
    validator = PasswordValidator(min_length=4, max_length=4)
    assert validator.validate("Ab1!") == []
    assert validator.validate("Ab1!x") == ["must be at most 4 characters long"]


@pytest.mark.parametrize("lo, hi", [(0, 10), (-3, 10), (10, 9)])
def test_impossible_bounds_are_refused(lo, hi):
    with pytest.raises(ValueError):
        PasswordValidator(min_length=lo, max_length=hi)


@pytest.mark.parametrize("value", [None, 12345678, b"Secur3!pass", ["S", "e"]])
def test_a_password_that_is_not_a_str_is_a_type_error(validator, value):
    with pytest.raises(TypeError):
        validator.validate(value)
    with pytest.raises(TypeError):
        validator.is_valid(value)


def test_validate_returns_a_new_list_each_time(validator):
    first = validator.validate("short")
    first.clear()
    assert validator.validate("short") == [TOO_SHORT, UPPER, DIGIT, SPECIAL]
