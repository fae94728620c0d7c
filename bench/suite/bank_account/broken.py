"""A bank account that looks right, but refuses to withdraw or transfer
the whole balance (an off-by-one: `>=` where `>` was meant)."""


class InsufficientFunds(Exception):
    """A withdrawal or transfer of more than the balance."""


def _check_amount(amount):
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"an amount is an int of cents, not {type(amount).__name__}")
    if amount <= 0:
        raise ValueError(f"an amount must be greater than 0, not {amount}")


class BankAccount:
    def __init__(self, owner, balance=0):
        if not isinstance(owner, str) or not owner:
            raise ValueError("the owner is a non-empty str")
        if isinstance(balance, bool) or not isinstance(balance, int) or balance < 0:
            raise ValueError(f"the opening balance is an int of at least 0, not {balance!r}")
        self._owner = owner
        self._balance = balance
        self._history = []

    @property
    def owner(self):
        return self._owner

    @property
    def balance(self):
        return self._balance

    def _move(self, kind, amount, delta):
        self._balance += delta
        self._history.append((kind, amount, self._balance))
        return self._balance

    def _check_funds(self, amount):
        if amount >= self._balance:
            raise InsufficientFunds(
                f"{self._owner} has {self._balance} cents, {amount} were asked for"
            )

    def deposit(self, amount):
        _check_amount(amount)
        return self._move("deposit", amount, amount)

    def withdraw(self, amount):
        _check_amount(amount)
        self._check_funds(amount)
        return self._move("withdrawal", amount, -amount)

    def transfer(self, amount, to):
        _check_amount(amount)
        if not isinstance(to, BankAccount):
            raise TypeError(f"a transfer goes to a BankAccount, not {type(to).__name__}")
        if to is self:
            raise ValueError("a transfer to the same account")
        self._check_funds(amount)
        to._move("transfer in", amount, amount)
        return self._move("transfer out", amount, -amount)

    def history(self):
        return list(self._history)
