"""Tests of the calculator task (spec.md). The module under test is `solution`."""

import math

import pytest

from solution import Calculator


@pytest.fixture
def calc():
    return Calculator()


@pytest.mark.parametrize("a, b, total", [(2, 3, 5), (-2, -3, -5), (-2, 3, 1), (0, 0, 0), (10**18, 1, 10**18 + 1)])
def test_add(calc, a, b, total):
    assert calc.add(a, b) == total


@pytest.mark.parametrize("a, b, diff", [(5, 3, 2), (3, 5, -2), (-3, -5, 2), (0, 7, -7)])
def test_subtract(calc, a, b, diff):
    assert calc.subtract(a, b) == diff


@pytest.mark.parametrize("a, b, product", [(4, 3, 12), (-4, 3, -12), (-4, -3, 12), (0, 99, 0)])
def test_multiply(calc, a, b, product):
    assert calc.multiply(a, b) == product


@pytest.mark.parametrize(
    "a, b, quotient",
    [(6, 3, 2.0), (7, 2, 3.5), (-7, 2, -3.5), (7, -2, -3.5), (1, 3, 1 / 3), (0, 5, 0.0), (2.5, 0.5, 5.0)],
)
def test_divide_is_true_division(calc, a, b, quotient):
    result = calc.divide(a, b)
    assert isinstance(result, float)
    assert result == pytest.approx(quotient)


def test_float_operations(calc):
    assert calc.add(0.1, 0.2) == pytest.approx(0.3)
    assert calc.subtract(1.5, 0.25) == 1.25
    assert calc.multiply(1.5, -2) == -3.0
    assert calc.divide(1.0, 8) == 0.125


def test_integer_results_stay_exact_integers(calc):
    assert calc.multiply(10**20, 10**20) == 10**40
    assert isinstance(calc.multiply(10**20, 10**20), int)
    assert calc.add(2**64, 1) == 18446744073709551617
    assert isinstance(calc.subtract(5, 3), int)


@pytest.mark.parametrize("zero", [0, 0.0, -0.0])
def test_division_by_zero_raises_value_error(calc, zero):
    with pytest.raises(ValueError):
        calc.divide(1, zero)


def test_zero_divided_by_zero_raises_value_error(calc):
    with pytest.raises(ValueError):
        calc.divide(0, 0)


@pytest.mark.parametrize("bad", ["2", None, [1], 1j, True, False])
@pytest.mark.parametrize("operation", ["add", "subtract", "multiply", "divide"])
def test_operands_of_other_types_raise_type_error(calc, operation, bad):
    with pytest.raises(TypeError):
        getattr(calc, operation)(bad, 1)
    with pytest.raises(TypeError):
        getattr(calc, operation)(1, bad)


def test_last_is_none_at_first(calc):
    assert calc.last is None


def test_last_follows_each_successful_operation(calc):
    calc.add(1, 2)
    assert calc.last == 3
    calc.multiply(calc.last, 4)
    assert calc.last == 12
    calc.divide(calc.last, 8)
    assert calc.last == 1.5
    calc.subtract(calc.last, 2)
    assert calc.last == -0.5


def test_a_failed_operation_keeps_the_last_result(calc):
    calc.add(2, 2)
    with pytest.raises(ValueError):
        calc.divide(1, 0)
    assert calc.last == 4
    with pytest.raises(TypeError):
        calc.add("1", 2)
    assert calc.last == 4


def test_clear_forgets_the_last_result(calc):
    calc.add(1, 1)
    calc.clear()
    assert calc.last is None


def test_calculators_are_independent():
    first = Calculator()
    second = Calculator()
    first.add(1, 1)
    assert second.last is None


def test_infinities_and_nan_follow_float_arithmetic(calc):
    assert calc.add(math.inf, 1) == math.inf
    assert math.isnan(calc.subtract(math.inf, math.inf))
    assert calc.divide(1, math.inf) == 0.0
