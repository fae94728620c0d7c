"""A small template engine: `{{ name }}` variables (HTML-escaped) and
`{% if [not] name %}…{% else %}…{% endif %}` blocks. The template is
parsed whole into a tree first, so every syntax error is found whatever
the context; then the tree is rendered."""

import html
import re

__all__ = ["render", "TemplateSyntaxError"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class TemplateSyntaxError(ValueError):
    """A malformed template."""


class _If:
    def __init__(self, name, negate):
        self.name = name
        self.negate = negate
        self.then = []
        self.otherwise = None
        # where the next node goes: `then` until an `else` is read
        self.current = self.then


def _is_name(word):
    return _NAME.match(word) is not None


def _parse(template):
    root = []
    stack = []
    text = []

    def place(node):
        if text:
            (stack[-1].current if stack else root).append("".join(text))
            text.clear()
        if node is not None:
            (stack[-1].current if stack else root).append(node)

    i = 0
    n = len(template)
    while i < n:
        if template.startswith("\\{{", i) or template.startswith("\\{%", i):
            text.append(template[i + 1 : i + 3])
            i += 3
        elif template.startswith("{{", i):
            end = template.find("}}", i + 2)
            if end < 0:
                raise TemplateSyntaxError(f"the `{{{{` at offset {i} is never closed by `}}}}`")
            name = template[i + 2 : end].strip()
            if not _is_name(name):
                raise TemplateSyntaxError(f"`{template[i:end + 2]}` at offset {i} does not hold one name")
            place(("var", name))
            i = end + 2
        elif template.startswith("{%", i):
            end = template.find("%}", i + 2)
            if end < 0:
                raise TemplateSyntaxError(f"the `{{%` at offset {i} is never closed by `%}}`")
            words = template[i + 2 : end].split()
            tag = template[i : end + 2]
            if len(words) == 2 and words[0] == "if" and _is_name(words[1]):
                node = _If(words[1], False)
                place(node)
                stack.append(node)
            elif len(words) == 3 and words[:2] == ["if", "not"] and _is_name(words[2]):
                node = _If(words[2], True)
                place(node)
                stack.append(node)
            elif words == ["else"]:
                if not stack:
                    raise TemplateSyntaxError(f"`{tag}` at offset {i} has no open `if`")
                if stack[-1].otherwise is not None:
                    raise TemplateSyntaxError(f"a second `else` at offset {i} in one `if`")
                place(None)
                stack[-1].otherwise = []
                stack[-1].current = stack[-1].otherwise
            elif words == ["endif"]:
                if not stack:
                    raise TemplateSyntaxError(f"`{tag}` at offset {i} has no open `if`")
                place(None)
                stack.pop()
            else:
                raise TemplateSyntaxError(f"`{tag}` at offset {i} is not a known block tag")
            i = end + 2
        else:
            text.append(template[i])
            i += 1
    if stack:
        raise TemplateSyntaxError(f"`if {stack[-1].name}` is never closed by `endif`")
    place(None)
    return root


def _render(nodes, context, out):
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _If):
            value = bool(context.get(node.name))
            if node.negate:
                value = not value
            branch = node.then if value else node.otherwise
            if branch:
                _render(branch, context, out)
        else:
            name = node[1]
            if name not in context:
                raise KeyError(name)
            value = context[name]
            out.append("" if value is None else html.escape(str(value)))


def render(template, context):
    """The text of `template` with its tags replaced from `context`."""
    out = []
    _render(_parse(template), context, out)
    return "".join(out)
