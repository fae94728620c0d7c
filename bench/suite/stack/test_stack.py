"""Tests of the stack task (spec.md). The module under test is `solution`."""

import random

import pytest

from solution import Stack


def test_a_new_stack_is_empty():
    stack = Stack()
    assert stack.is_empty() is True
    assert stack.size() == 0
    assert len(stack) == 0
    assert stack.to_list() == []


def test_push_then_pop_returns_the_items_in_reverse_order():
    stack = Stack()
    for item in [1, 2, 3]:
        assert stack.push(item) is None
    assert [stack.pop(), stack.pop(), stack.pop()] == [3, 2, 1]
    assert stack.is_empty()


def test_peek_returns_the_top_without_removing_it():
    stack = Stack()
    stack.push("a")
    stack.push("b")
    assert stack.peek() == "b"
    assert stack.peek() == "b"
    assert stack.size() == 2
    assert stack.pop() == "b"
    assert stack.peek() == "a"


def test_pop_on_an_empty_stack_raises_index_error():
    with pytest.raises(IndexError):
        Stack().pop()


def test_peek_on_an_empty_stack_raises_index_error():
    with pytest.raises(IndexError):
        Stack().peek()


def test_a_stack_emptied_by_pops_raises_again():
    stack = Stack([1])
    assert stack.pop() == 1
    with pytest.raises(IndexError):
        stack.pop()
    with pytest.raises(IndexError):
        stack.peek()


def test_a_failed_pop_leaves_the_stack_usable():
    stack = Stack()
    with pytest.raises(IndexError):
        stack.pop()
    stack.push(5)
    assert stack.size() == 1
    assert stack.pop() == 5


def test_is_empty_follows_pushes_and_pops():
    stack = Stack()
    stack.push(0)
    assert stack.is_empty() is False
    stack.pop()
    assert stack.is_empty() is True


def test_size_and_len_count_the_items():
    stack = Stack()
    for n in range(1, 6):
        stack.push(n)
        assert stack.size() == n
        assert len(stack) == n
    stack.pop()
    assert stack.size() == len(stack) == 4


def test_none_and_falsy_values_are_items_like_any_other():
    stack = Stack()
    stack.push(None)
    stack.push(0)
    stack.push("")
    assert stack.size() == 3
    assert stack.pop() == ""
    assert stack.pop() == 0
    assert stack.peek() is None
    assert stack.pop() is None
    assert stack.is_empty()


def test_the_constructor_pushes_an_iterable_in_order():
    stack = Stack(iter(["bottom", "middle", "top"]))
    assert stack.peek() == "top"
    assert stack.to_list() == ["bottom", "middle", "top"]
    assert Stack(range(3)).pop() == 2


def test_the_constructor_does_not_keep_the_callers_list():
    items = [1, 2]
    stack = Stack(items)
    stack.push(3)
    items.append(99)
    assert items == [1, 2, 99]
    assert stack.to_list() == [1, 2, 3]


def test_clear_removes_every_item():
    stack = Stack([1, 2, 3])
    stack.clear()
    assert stack.is_empty()
    assert len(stack) == 0
    with pytest.raises(IndexError):
        stack.pop()


def test_to_list_runs_from_bottom_to_top_and_is_a_copy():
    stack = Stack()
    stack.push("x")
    stack.push("y")
    listed = stack.to_list()
    assert listed == ["x", "y"]
    listed.append("z")
    assert stack.to_list() == ["x", "y"]
    assert stack.size() == 2


def test_two_stacks_do_not_share_items():
    first = Stack()
    second = Stack()
    first.push(1)
    assert second.is_empty()
    assert Stack().is_empty()


def test_a_random_sequence_behaves_as_a_list():
    rng = random.Random(11)
    stack = Stack()
    model = []
    for step in range(3000):
        if model and rng.random() < 0.45:
            assert stack.pop() == model.pop(), f"step {step}"
        else:
            stack.push(step)
            model.append(step)
        assert stack.size() == len(model)
        if model:
            assert stack.peek() == model[-1]
    assert stack.to_list() == model
