"""Tests of the LRU cache task (spec.md). The module under test is `solution`."""

import random

import pytest

from solution import LRUCache


class CountingKey:
    """A hashable key that counts how often keys are compared for equality."""

    comparisons = 0

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        CountingKey.comparisons += 1
        return isinstance(other, CountingKey) and other.n == self.n

    def __repr__(self):
        return f"CountingKey({self.n})"


class ModelCache:
    """The specification written the slow, obvious way: a list from least
    to most recently used."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []

    def get(self, key):
        for i, (k, v) in enumerate(self.items):
            if k == key:
                self.items.append(self.items.pop(i))
                return v
        return -1

    def put(self, key, value):
        for i, (k, _) in enumerate(self.items):
            if k == key:
                self.items.pop(i)
                self.items.append((key, value))
                return
        if len(self.items) == self.capacity:
            self.items.pop(0)
        self.items.append((key, value))

    def keys(self):
        return [k for k, _ in self.items]


def test_a_new_cache_is_empty():
    cache = LRUCache(3)
    assert len(cache) == 0
    assert cache.keys() == []
    assert cache.capacity == 3


@pytest.mark.parametrize("capacity", [0, -1, -100])
def test_a_capacity_below_one_is_refused(capacity):
    with pytest.raises(ValueError):
        LRUCache(capacity)


def test_the_capacity_is_read_only():
    cache = LRUCache(2)
    with pytest.raises(AttributeError):
        cache.capacity = 5
    assert cache.capacity == 2


def test_a_missing_key_gives_minus_one():
    cache = LRUCache(2)
    assert cache.get("absent") == -1
    cache.put("a", 1)
    assert cache.get("b") == -1


def test_put_then_get():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    assert cache.get("b") == 2
    assert len(cache) == 2


def test_put_of_a_held_key_replaces_its_value_without_growing():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("a", 10)
    assert cache.get("a") == 10
    assert len(cache) == 1


def test_the_least_recently_put_key_is_evicted_when_full():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") == -1
    assert cache.get("b") == 2
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_a_get_makes_the_key_most_recently_used():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") == -1
    assert cache.get("a") == 1
    assert cache.get("c") == 3


def test_a_put_of_a_held_key_makes_it_most_recently_used_and_evicts_nothing():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 11)
    assert len(cache) == 2
    assert cache.keys() == ["b", "a"]
    cache.put("c", 3)
    assert cache.get("b") == -1
    assert cache.get("a") == 11


def test_a_miss_changes_nothing():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("zzz") == -1
    assert cache.keys() == ["a", "b"]
    assert len(cache) == 2


def test_keys_run_from_least_to_most_recently_used():
    cache = LRUCache(4)
    for key in "abcd":
        cache.put(key, key.upper())
    cache.get("b")
    cache.put("a", "A2")
    cache.get("c")
    assert cache.keys() == ["d", "b", "a", "c"]


def test_keys_returns_a_list_and_is_not_a_use():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    keys = cache.keys()
    assert isinstance(keys, list)
    keys.append("mutated")
    assert cache.keys() == ["a", "b"]
    cache.put("c", 3)
    assert cache.keys() == ["b", "c"]


def test_membership_is_not_a_use():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert "a" in cache
    assert "z" not in cache
    cache.put("c", 3)
    assert "a" not in cache
    assert "b" in cache and "c" in cache


def test_a_capacity_of_one_keeps_the_last_key():
    cache = LRUCache(1)
    cache.put(1, "one")
    cache.put(2, "two")
    assert cache.get(1) == -1
    assert cache.get(2) == "two"
    cache.put(2, "deux")
    assert cache.get(2) == "deux"
    assert len(cache) == 1


def test_minus_one_and_none_are_stored_like_any_value():
    cache = LRUCache(3)
    cache.put("n", None)
    cache.put("m", -1)
    assert "n" in cache and "m" in cache
    assert cache.get("n") is None
    assert cache.get("m") == -1
    assert len(cache) == 2


def test_equal_keys_of_any_hashable_type_are_the_same_entry():
    cache = LRUCache(4)
    cache.put((1, "x"), "tuple")
    cache.put(frozenset({1, 2}), "set")
    cache.put(2.5, "float")
    assert cache.get(tuple([1, "x"])) == "tuple"
    assert cache.get(frozenset([2, 1])) == "set"
    assert cache.get(2.5) == "float"
    cache.put((1, "x"), "again")
    assert len(cache) == 3


def test_the_size_never_exceeds_the_capacity():
    cache = LRUCache(5)
    for i in range(50):
        cache.put(i, i * i)
        assert len(cache) == min(i + 1, 5)
    assert cache.keys() == [45, 46, 47, 48, 49]
    assert [cache.get(i) for i in range(45, 50)] == [i * i for i in range(45, 50)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_long_random_sequence_behaves_as_the_specification(seed):
    rng = random.Random(seed)
    capacity = rng.randint(1, 8)
    cache = LRUCache(capacity)
    model = ModelCache(capacity)
    for step in range(2000):
        key = rng.randint(0, 12)
        if rng.random() < 0.5:
            assert cache.get(key) == model.get(key), f"step {step}: get({key})"
        else:
            cache.put(key, step)
            model.put(key, step)
        assert len(cache) == len(model.items), f"step {step}"
    assert cache.keys() == model.keys()


def test_entries_are_found_by_hashing_not_by_scanning():
    n = 300
    keys = [CountingKey(i) for i in range(n)]
    cache = LRUCache(n)
    for key in keys:
        cache.put(key, key.n)
    order = list(keys)
    random.Random(7).shuffle(order)
    CountingKey.comparisons = 0
    operations = 0
    for key in order:
        assert cache.get(key) == key.n
        assert key in cache
        cache.put(key, -key.n)
        operations += 3
    for i in range(n, 2 * n):
        cache.put(CountingKey(i), i)
        operations += 1
    # a hash table compares a key with another only on a collision, and
    # these keys have distinct hashes; a scan compares about n / 2 keys
    # per operation (here about 50,000 in all)
    assert CountingKey.comparisons <= 2 * operations, (
        f"{CountingKey.comparisons} key comparisons for {operations} operations "
        f"on {n} entries: get, put and `in` must not scan the entries"
    )
