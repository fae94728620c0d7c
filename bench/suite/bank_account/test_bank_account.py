"""Tests of the bank account task (spec.md). The module under test is `solution`."""

import pytest

from solution import BankAccount, InsufficientFunds


def test_a_new_account_has_its_owner_and_opening_balance():
    account = BankAccount("Ada", 500)
    assert account.owner == "Ada"
    assert account.balance == 500
    assert BankAccount("Bob").balance == 0


def test_opening_is_not_a_movement():
    assert BankAccount("Ada", 500).history() == []


@pytest.mark.parametrize("owner", ["", None, 42])
def test_an_owner_that_is_not_a_non_empty_str_is_refused(owner):
    with pytest.raises(ValueError):
        BankAccount(owner)


@pytest.mark.parametrize("balance", [-1, -500, 1.5, "10"])
def test_an_opening_balance_that_is_not_a_non_negative_int_is_refused(balance):
    with pytest.raises(ValueError):
        BankAccount("Ada", balance)


def test_owner_and_balance_are_read_only():
    account = BankAccount("Ada", 100)
    with pytest.raises(AttributeError):
        account.balance = 10**9
    with pytest.raises(AttributeError):
        account.owner = "Mallory"
    assert account.balance == 100
    assert account.owner == "Ada"


def test_deposit_adds_and_returns_the_new_balance():
    account = BankAccount("Ada", 100)
    assert account.deposit(50) == 150
    assert account.deposit(1) == 151
    assert account.balance == 151


def test_withdraw_takes_and_returns_the_new_balance():
    account = BankAccount("Ada", 100)
    assert account.withdraw(30) == 70
    assert account.balance == 70


def test_the_whole_balance_can_be_withdrawn():
    account = BankAccount("Ada", 100)
    assert account.withdraw(100) == 0
    assert account.balance == 0


def test_withdrawing_more_than_the_balance_raises_and_changes_nothing():
    account = BankAccount("Ada", 100)
    with pytest.raises(InsufficientFunds):
        account.withdraw(101)
    assert account.balance == 100
    assert account.history() == []


def test_an_empty_account_cannot_be_withdrawn_from():
    with pytest.raises(InsufficientFunds):
        BankAccount("Ada").withdraw(1)


def test_insufficient_funds_is_an_exception_but_not_a_value_error():
    assert issubclass(InsufficientFunds, Exception)
    assert not issubclass(InsufficientFunds, ValueError)


@pytest.mark.parametrize("amount", [0, -1, -100])
@pytest.mark.parametrize("operation", ["deposit", "withdraw"])
def test_amounts_of_zero_or_less_are_a_value_error(operation, amount):
    account = BankAccount("Ada", 100)
    with pytest.raises(ValueError):
        getattr(account, operation)(amount)
    assert account.balance == 100
    assert account.history() == []


@pytest.mark.parametrize("amount", [10.5, 10.0, "10", None, True])
@pytest.mark.parametrize("operation", ["deposit", "withdraw"])
def test_amounts_that_are_not_int_are_a_type_error(operation, amount):
    account = BankAccount("Ada", 100)
    with pytest.raises(TypeError):
        getattr(account, operation)(amount)
    assert account.balance == 100


def test_the_amount_is_checked_before_the_balance():
    account = BankAccount("Ada", 0)
    with pytest.raises(ValueError):
        account.withdraw(-5)
    with pytest.raises(TypeError):
        account.withdraw(5.0)


def test_transfer_moves_money_between_accounts():
    ada = BankAccount("Ada", 100)
    bob = BankAccount("Bob", 10)
    assert ada.transfer(40, bob) == 60
    assert ada.balance == 60
    assert bob.balance == 50


def test_the_whole_balance_can_be_transferred():
    ada = BankAccount("Ada", 100)
    bob = BankAccount("Bob")
    assert ada.transfer(100, bob) == 0
    assert bob.balance == 100


def test_a_transfer_of_too_much_changes_neither_account():
    ada = BankAccount("Ada", 100)
    bob = BankAccount("Bob", 10)
    with pytest.raises(InsufficientFunds):
        ada.transfer(150, bob)
    assert (ada.balance, bob.balance) == (100, 10)
    assert ada.history() == [] and bob.history() == []


def test_a_transfer_to_the_same_account_is_refused():
    ada = BankAccount("Ada", 100)
    with pytest.raises(ValueError):
        ada.transfer(10, ada)
    assert ada.balance == 100
    assert ada.history() == []


@pytest.mark.parametrize("to", [None, "Bob", 7])
def test_a_transfer_to_something_else_than_an_account_is_a_type_error(to):
    ada = BankAccount("Ada", 100)
    with pytest.raises(TypeError):
        ada.transfer(10, to)
    assert ada.balance == 100


@pytest.mark.parametrize("amount, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError)])
def test_a_transfer_checks_its_amount(amount, error):
    ada = BankAccount("Ada", 100)
    bob = BankAccount("Bob")
    with pytest.raises(error):
        ada.transfer(amount, bob)
    assert (ada.balance, bob.balance) == (100, 0)


def test_history_lists_every_movement_oldest_first():
    ada = BankAccount("Ada", 100)
    bob = BankAccount("Bob")
    ada.deposit(50)
    ada.withdraw(20)
    ada.transfer(30, bob)
    bob.transfer(5, ada)
    assert ada.history() == [
        ("deposit", 50, 150),
        ("withdrawal", 20, 130),
        ("transfer out", 30, 100),
        ("transfer in", 5, 105),
    ]
    assert bob.history() == [("transfer in", 30, 30), ("transfer out", 5, 25)]


def test_failed_operations_record_nothing():
    ada = BankAccount("Ada", 10)
    ada.deposit(5)
    for attempt in (lambda: ada.withdraw(100), lambda: ada.deposit(0), lambda: ada.deposit("x")):
        with pytest.raises((InsufficientFunds, ValueError, TypeError)):
            attempt()
    assert ada.history() == [("deposit", 5, 15)]


def test_history_is_a_copy():
    ada = BankAccount("Ada")
    ada.deposit(1)
    ada.history().append(("deposit", 10**6, 10**6))
    assert ada.history() == [("deposit", 1, 1)]
    assert ada.balance == 1


def test_large_amounts_stay_exact():
    ada = BankAccount("Ada", 10**30)
    ada.deposit(1)
    assert ada.balance == 10**30 + 1
    ada.withdraw(10**30)
    assert ada.balance == 1


def test_accounts_are_independent():
    ada = BankAccount("Ada")
    ada.deposit(10)
    assert BankAccount("Bob").history() == []
