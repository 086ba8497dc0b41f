"""Message templates, directly: plain text, strict names, the sandbox, a length cap."""

from __future__ import annotations

from integration.engine.templates import MAX_RENDERED, Template, compile_template, money
from integration.engine.templates import render_problem as problem


def test_money_groups_thousands_and_names_the_currency():
    assert money(250000.0) == "250,000"
    assert money("1234.4", "EUR") == "EUR 1,234"
    assert money("n/a") == "n/a"


def test_text_is_not_html_escaped_and_is_trimmed():
    rendered = Template("  {{ name }} <{{ amount | money }}>\n").render(
        {"name": "O'Brien & Sons", "amount": 1500}
    )
    assert rendered == "O'Brien & Sons <1,500>"


def test_a_misspelt_name_is_an_error_not_an_empty_string():
    template, error = compile_template("{{ opportunity.amout }}")
    assert error == ""
    assert problem(template, {"opportunity": {"amount": 1}}).startswith("template error: ")


def test_the_sandbox_refuses_attribute_tricks():
    template, _ = compile_template("{{ ''.__class__.__mro__ }}")
    assert problem(template, {}).startswith("template error: ")


def test_a_syntax_error_is_reported_in_words():
    template, error = compile_template("{{ opportunity.name ")
    assert template is None and error.startswith("template syntax error: ")


def test_a_rendered_message_is_cut_to_what_a_crm_text_field_holds():
    assert len(Template("{{ text }}").render({"text": "x" * 5000})) == MAX_RENDERED
