"""Tests of the queue task (spec.md). The module under test is `solution`."""

import random

import pytest

from solution import Queue


def test_a_new_queue_is_empty():
    queue = Queue()
    assert queue.is_empty() is True
    assert queue.size() == 0
    assert len(queue) == 0
    assert queue.to_list() == []
    assert queue.is_full() is False


def test_items_leave_in_the_order_they_arrived():
    queue = Queue()
    for item in ["a", "b", "c"]:
        assert queue.enqueue(item) is None
    assert [queue.dequeue(), queue.dequeue(), queue.dequeue()] == ["a", "b", "c"]
    assert queue.is_empty()


def test_front_returns_the_oldest_item_without_removing_it():
    queue = Queue()
    queue.enqueue(1)
    queue.enqueue(2)
    assert queue.front() == 1
    assert queue.front() == 1
    assert queue.size() == 2
    assert queue.dequeue() == 1
    assert queue.front() == 2


def test_dequeue_on_an_empty_queue_raises_index_error():
    with pytest.raises(IndexError):
        Queue().dequeue()


def test_front_on_an_empty_queue_raises_index_error():
    with pytest.raises(IndexError):
        Queue().front()


def test_a_queue_emptied_by_dequeues_raises_again():
    queue = Queue()
    queue.enqueue("x")
    queue.dequeue()
    with pytest.raises(IndexError):
        queue.dequeue()
    with pytest.raises(IndexError):
        queue.front()
    assert queue.is_empty()


def test_size_counts_the_items_through_enqueues_and_dequeues():
    queue = Queue()
    for n in range(1, 5):
        queue.enqueue(n)
        assert queue.size() == n
    queue.dequeue()
    assert queue.size() == 3
    assert len(queue) == 3
    queue.enqueue(5)
    assert queue.size() == 4
    queue.dequeue()
    queue.dequeue()
    assert len(queue) == 2


def test_interleaved_operations_keep_the_order():
    queue = Queue()
    queue.enqueue(1)
    queue.enqueue(2)
    assert queue.dequeue() == 1
    queue.enqueue(3)
    queue.enqueue(4)
    assert queue.dequeue() == 2
    assert queue.to_list() == [3, 4]
    queue.enqueue(5)
    assert [queue.dequeue() for _ in range(3)] == [3, 4, 5]


def test_none_and_falsy_values_are_items_like_any_other():
    queue = Queue()
    for item in [None, 0, "", []]:
        queue.enqueue(item)
    assert queue.size() == 4
    assert queue.front() is None
    assert queue.dequeue() is None
    assert queue.dequeue() == 0
    assert queue.dequeue() == ""
    assert queue.dequeue() == []


def test_to_list_runs_from_front_to_back_and_is_a_copy():
    queue = Queue()
    for item in "xyz":
        queue.enqueue(item)
    queue.dequeue()
    listed = queue.to_list()
    assert listed == ["y", "z"]
    listed.clear()
    assert queue.to_list() == ["y", "z"]


def test_a_bounded_queue_refuses_an_item_when_full():
    queue = Queue(capacity=2)
    queue.enqueue("a")
    assert queue.is_full() is False
    queue.enqueue("b")
    assert queue.is_full() is True
    with pytest.raises(OverflowError):
        queue.enqueue("c")
    assert queue.to_list() == ["a", "b"]
    assert queue.size() == 2


def test_a_bounded_queue_takes_items_again_after_a_dequeue():
    queue = Queue(capacity=2)
    queue.enqueue(1)
    queue.enqueue(2)
    assert queue.dequeue() == 1
    assert queue.is_full() is False
    queue.enqueue(3)
    assert queue.is_full() is True
    assert queue.to_list() == [2, 3]
    with pytest.raises(OverflowError):
        queue.enqueue(4)


def test_a_capacity_of_one():
    queue = Queue(capacity=1)
    queue.enqueue("only")
    with pytest.raises(OverflowError):
        queue.enqueue("more")
    assert queue.dequeue() == "only"
    queue.enqueue("next")
    assert queue.front() == "next"


def test_an_unbounded_queue_is_never_full():
    queue = Queue()
    for n in range(1000):
        queue.enqueue(n)
    assert queue.is_full() is False
    assert queue.size() == 1000


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_capacity_below_one_is_refused(capacity):
    with pytest.raises(ValueError):
        Queue(capacity=capacity)


def test_two_queues_do_not_share_items():
    first = Queue()
    first.enqueue(1)
    assert Queue().is_empty()


@pytest.mark.parametrize("seed, capacity", [(1, None), (2, 5), (3, 1)])
def test_a_random_sequence_behaves_as_a_list(seed, capacity):
    rng = random.Random(seed)
    queue = Queue(capacity)
    model = []
    for step in range(3000):
        if rng.random() < 0.45:
            if model:
                assert queue.dequeue() == model.pop(0), f"step {step}"
            else:
                with pytest.raises(IndexError):
                    queue.dequeue()
        elif capacity is not None and len(model) == capacity:
            with pytest.raises(OverflowError):
                queue.enqueue(step)
        else:
            queue.enqueue(step)
            model.append(step)
        assert queue.size() == len(model), f"step {step}"
        assert queue.is_empty() == (not model)
    assert queue.to_list() == model
