"""A calculator: the four operations on int and float, the last result kept."""


def _check(*operands):
    for x in operands:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"an operand is an int or a float, not {type(x).__name__}")


class Calculator:
    def __init__(self):
        self.last = None

    def _keep(self, result):
        self.last = result
        return result

    def add(self, a, b):
        _check(a, b)
        return self._keep(a + b)

    def subtract(self, a, b):
        _check(a, b)
        return self._keep(a - b)

    def multiply(self, a, b):
        _check(a, b)
        return self._keep(a * b)

    def divide(self, a, b):
        _check(a, b)
        if b == 0:
            raise ValueError("division by zero")
        return self._keep(a / b)

    def clear(self):
        self.last = None
