"""A password validator with an off-by-one: a password of exactly
min_length characters is refused as too short."""

import string

_UPPER = frozenset(string.ascii_uppercase)
_LOWER = frozenset(string.ascii_lowercase)
_DIGITS = frozenset(string.digits)
_SPECIAL = frozenset(string.punctuation)


class PasswordValidator:
    def __init__(self, min_length=8, max_length=64):
        if min_length < 1:
            raise ValueError(f"min_length must be at least 1, not {min_length}")
        if max_length < min_length:
            raise ValueError(
                f"max_length ({max_length}) must be at least min_length ({min_length})"
            )
        self.min_length = min_length
        self.max_length = max_length

    def validate(self, password):
        if not isinstance(password, str):
            raise TypeError(f"a password is a str, not {type(password).__name__}")
        errors = []
        if len(password) <= self.min_length:
            errors.append(f"must be at least {self.min_length} characters long")
        if len(password) > self.max_length:
            errors.append(f"must be at most {self.max_length} characters long")
        chars = set(password)
        if not chars & _UPPER:
            errors.append("must contain an uppercase letter (A-Z)")
        if not chars & _LOWER:
            errors.append("must contain a lowercase letter (a-z)")
        if not chars & _DIGITS:
            errors.append("must contain a digit (0-9)")
        if not chars & _SPECIAL:
            errors.append("must contain a special character")
        if any(c.isspace() for c in password):
            errors.append("must not contain whitespace")
        if any(password[i] == password[i + 1] == password[i + 2] for i in range(len(password) - 2)):
            errors.append("must not repeat a character more than twice in a row")
        return errors

    def is_valid(self, password):
        return not self.validate(password)
