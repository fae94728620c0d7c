"""Tests of the string utilities task (spec.md). The module under test is `solution`."""

import pytest

from solution import capitalize_words, is_palindrome, reverse, slugify, truncate, word_count


@pytest.mark.parametrize("s, expected", [("", ""), ("a", "a"), ("abc", "cba"), ("ab cd!", "!dc ba"), ("åß😀", "😀ßå")])
def test_reverse(s, expected):
    assert reverse(s) == expected


@pytest.mark.parametrize(
    "s",
    ["", "a", "abba", "Racecar", "A man, a plan, a canal: Panama", "No 'x' in Nixon", "12321", "!?", "Été"],
)
def test_palindromes(s):
    assert is_palindrome(s) is True


@pytest.mark.parametrize("s", ["ab", "abca", "Palindrome", "123 421", "a1b2"])
def test_not_palindromes(s):
    assert is_palindrome(s) is False


def test_word_count_example_from_the_specification():
    assert word_count("Hi, hi! HI-5") == {"hi": 3, "5": 1}


def test_word_count_splits_on_anything_but_ascii_letters_and_digits():
    assert word_count("it's a dog's life\n\tA LIFE") == {"it": 1, "s": 2, "a": 2, "dog": 1, "life": 2}
    assert word_count("café au lait") == {"caf": 1, "au": 1, "lait": 1}
    assert word_count("x1y2 x1Y2") == {"x1y2": 2}


@pytest.mark.parametrize("s", ["", "   ", "!!! --- ...", "éàü"])
def test_word_count_of_no_words_is_empty(s):
    assert word_count(s) == {}


def test_word_count_returns_a_dict():
    assert type(word_count("a b a")) is dict


@pytest.mark.parametrize(
    "s, expected",
    [
        ("hello  wORLD\tx", "Hello  World\tX"),
        ("", ""),
        ("   ", "   "),
        (" leading and trailing ", " Leading And Trailing "),
        ("line\nbreaks\r\nkept", "Line\nBreaks\r\nKept"),
        ("o'neil mcDONALD", "O'neil Mcdonald"),
        ("123abc x-ray", "123abc X-ray"),
        ("élan ÉCOLE", "Élan École"),
    ],
)
def test_capitalize_words(s, expected):
    assert capitalize_words(s) == expected


@pytest.mark.parametrize(
    "s, width, expected",
    [
        ("Hello, world", 8, "Hello..."),
        ("Hello", 5, "Hello"),
        ("Hello", 10, "Hello"),
        ("Hello!", 5, "He..."),
        ("abcdef", 3, "..."),
        ("", 3, ""),
    ],
)
def test_truncate(s, width, expected):
    assert truncate(s, width) == expected


def test_truncate_gives_exactly_width_characters_when_it_cuts():
    text = "The quick brown fox jumps over the lazy dog"
    for width in range(3, len(text)):
        result = truncate(text, width)
        assert len(result) == width
        assert result.endswith("...")
        assert text.startswith(result[:-3])


def test_truncate_with_another_suffix():
    assert truncate("Hello, world", 7, suffix="…") == "Hello,…"
    assert truncate("Hello, world", 5, suffix="") == "Hello"
    assert truncate("Hello, world", 9, suffix=" [more]") == "He [more]"


@pytest.mark.parametrize("s, width, suffix", [("Hello", 2, "..."), ("", 2, "..."), ("Hi", 0, "…"), ("Hi", -1, "")])
def test_truncate_refuses_a_width_below_the_suffix(s, width, suffix):
    with pytest.raises(ValueError):
        truncate(s, width, suffix=suffix)


@pytest.mark.parametrize(
    "s, expected",
    [
        ("  Hello, World! 2024 ", "hello-world-2024"),
        ("Crème brûlée", "cr-me-br-l-e"),
        ("already-a-slug", "already-a-slug"),
        ("--Many___separators!!here--", "many-separators-here"),
        ("", ""),
        ("!!!", ""),
        ("ÉÀÜ", ""),
        ("CamelCase42", "camelcase42"),
    ],
)
def test_slugify(s, expected):
    assert slugify(s) == expected


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["a"]])
@pytest.mark.parametrize(
    "function",
    [reverse, is_palindrome, word_count, capitalize_words, slugify, lambda s: truncate(s, 10)],
    ids=["reverse", "is_palindrome", "word_count", "capitalize_words", "slugify", "truncate"],
)
def test_an_argument_that_is_not_a_str_is_a_type_error(function, bad):
    with pytest.raises(TypeError):
        function(bad)
