"""Tests of the template engine task (spec.md). The module under test is `solution`."""

import pytest

from solution import TemplateSyntaxError, render


def test_the_examples_from_the_specification():
    assert render("Hello, {{ name }}!", {"name": "Ada"}) == "Hello, Ada!"
    assert render("{% if admin %}Hi, boss{% else %}Hi{% endif %}", {}) == "Hi"
    assert render("<b>{{ x }}</b>", {"x": "<i>"}) == "<b>&lt;i&gt;</b>"


def test_text_without_tags_is_copied_unchanged():
    text = "line one\n  line two\t{ single } braces { { and }} %} and <html> & \\n\n"
    assert render(text, {}) == text


def test_an_empty_template_renders_empty():
    assert render("", {"a": 1}) == ""


@pytest.mark.parametrize("tag", ["{{name}}", "{{ name }}", "{{   name   }}", "{{\tname\n}}"])
def test_whitespace_inside_a_variable_tag_is_free(tag):
    assert render("[" + tag + "]", {"name": "x"}) == "[x]"


def test_several_and_adjacent_variables():
    context = {"a": "1", "b": "2", "user_1": "u", "_x": "y"}
    assert render("{{a}}{{b}}-{{ user_1 }}{{_x}}{{ a }}", context) == "12-uy1"


def test_values_are_converted_with_str():
    assert render("{{ n }} {{ f }} {{ t }} {{ l }}", {"n": 3, "f": 2.5, "t": True, "l": [1, 2]}) == (
        "3 2.5 True [1, 2]"
    )


def test_none_renders_as_empty_text_but_zero_and_false_do_not():
    assert render("[{{ a }}|{{ b }}|{{ c }}]", {"a": None, "b": 0, "c": False}) == "[|0|False]"


def test_values_are_html_escaped():
    assert render("{{ v }}", {"v": "<a href=\"x\">Tom & Jerry's</a>"}) == (
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#x27;s&lt;/a&gt;"
    )


def test_the_template_text_itself_is_not_escaped():
    assert render("<p class=\"a\">&amp; {{ v }}</p>", {"v": "&"}) == "<p class=\"a\">&amp; &amp;</p>"


def test_a_value_is_inserted_once_not_rendered_again():
    assert render("{{ v }}", {"v": "{{ w }}", "w": "no"}) == "{{ w }}"


def test_a_missing_variable_raises_key_error_naming_it():
    with pytest.raises(KeyError) as raised:
        render("Hello, {{ user }}!", {"name": "Ada"})
    assert raised.value.args[0] == "user"


def test_if_renders_its_body_when_the_value_is_true():
    template = "a{% if show %}B{% endif %}c"
    assert render(template, {"show": True}) == "aBc"
    assert render(template, {"show": False}) == "ac"


@pytest.mark.parametrize("value, shown", [(1, True), (0, False), ("x", True), ("", False),
                                          ([0], True), ([], False), ({}, False), (None, False)])
def test_conditions_follow_python_truthiness(value, shown):
    assert render("{% if v %}yes{% else %}no{% endif %}", {"v": value}) == ("yes" if shown else "no")


def test_else_is_taken_when_the_condition_is_false():
    template = "{% if ok %}good{% else %}bad{% endif %}"
    assert render(template, {"ok": 1}) == "good"
    assert render(template, {"ok": 0}) == "bad"


def test_if_not_negates():
    template = "{% if not items %}empty{% else %}{{ items }}{% endif %}"
    assert render(template, {"items": []}) == "empty"
    assert render(template, {"items": "abc"}) == "abc"


def test_a_missing_name_in_a_condition_is_false_without_error():
    assert render("{% if ghost %}boo{% else %}quiet{% endif %}", {}) == "quiet"
    assert render("{% if not ghost %}quiet{% endif %}", {}) == "quiet"


def test_only_the_chosen_branch_is_rendered():
    template = "{% if ok %}{{ present }}{% else %}{{ missing }}{% endif %}"
    assert render(template, {"ok": True, "present": "here"}) == "here"
    with pytest.raises(KeyError):
        render(template, {"ok": False, "present": "here"})


@pytest.mark.parametrize("tag", ["{%if x%}", "{% if x %}", "{%   if \t x  %}", "{%\nif\nx\n%}"])
def test_whitespace_inside_a_block_tag_is_free(tag):
    assert render(tag + "1{%else%}2{%   endif   %}", {"x": True}) == "1"
    assert render(tag + "1{%else%}2{%   endif   %}", {"x": False}) == "2"


def test_blocks_nest_and_else_belongs_to_the_innermost_if():
    template = (
        "{% if a %}A{% if b %}B{% else %}b{% endif %}{% else %}"
        "{% if not c %}!c{% else %}C{% endif %}{% endif %}."
    )
    assert render(template, {"a": 1, "b": 1}) == "AB."
    assert render(template, {"a": 1, "b": 0}) == "Ab."
    assert render(template, {"a": 0, "c": 0}) == "!c."
    assert render(template, {"a": 0, "c": 1}) == "C."


def test_deep_nesting():
    depth = 30
    template = "".join(f"{{% if v{i} %}}{i}," for i in range(depth)) + "end" + "{% endif %}" * depth
    context = {f"v{i}": True for i in range(depth)}
    assert render(template, context) == "".join(f"{i}," for i in range(depth)) + "end"
    context["v10"] = False
    assert render(template, context) == "".join(f"{i}," for i in range(10))


def test_text_and_line_breaks_around_blocks_are_kept():
    template = "<ul>\n{% if a %}\n  <li>{{ a }}</li>\n{% endif %}\n</ul>\n"
    assert render(template, {"a": "x"}) == "<ul>\n\n  <li>x</li>\n\n</ul>\n"
    assert render(template, {"a": ""}) == "<ul>\n\n</ul>\n"


def test_a_backslash_before_a_tag_makes_it_text():
    assert render("\\{{ name }}", {}) == "{{ name }}"
    assert render("\\{% if x %}", {}) == "{% if x %}"
    assert render("a \\{{ b }} {{ c }}", {"c": "C"}) == "a {{ b }} C"


def test_a_backslash_elsewhere_is_kept():
    assert render("C:\\path\\{{ d }}\\n", {"d": "dir"}) == "C:\\path{{ d }}\\n"
    assert render("a\\b \\{ \\} {{ x }}\\", {"x": 1}) == "a\\b \\{ \\} 1\\"


@pytest.mark.parametrize(
    "template",
    [
        "Hello {{ name",
        "{{",
        "{% if x",
        "{{ }}",
        "{{ a b }}",
        "{{ 1x }}",
        "{{ a.b }}",
        "{{ a-b }}",
        "{% for x in y %}{% endfor %}",
        "{% if %}x{% endif %}",
        "{% if a b %}x{% endif %}",
        "{% if 1a %}x{% endif %}",
        "{% endif x %}",
        "{% %}",
        "text {% else %}",
        "{% endif %}",
        "{% if a %}1{% else %}2{% else %}3{% endif %}",
        "{% if a %}never closed",
        "{% if a %}{% if b %}x{% endif %}",
        "{% if a %}x{% endif %}{% endif %}",
    ],
)
def test_malformed_templates_raise_template_syntax_error(template):
    with pytest.raises(TemplateSyntaxError):
        render(template, {"a": True, "b": True, "name": "n", "x": 1, "y": [1]})


def test_syntax_errors_are_found_even_in_a_branch_not_taken():
    with pytest.raises(TemplateSyntaxError):
        render("{% if no %}{{ bad name }}{% endif %}", {"no": False})
    with pytest.raises(TemplateSyntaxError):
        render("{{ ok }}{% if ok %}{% endif", {"ok": True})


def test_a_syntax_error_is_a_value_error():
    assert issubclass(TemplateSyntaxError, ValueError)


def test_the_context_is_not_changed():
    context = {"a": "<x>", "show": True}
    render("{% if show %}{{ a }}{% endif %}", context)
    assert context == {"a": "<x>", "show": True}
