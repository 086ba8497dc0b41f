"""Message templates: Jinja in its sandbox, rendering plain text.

Reasons, warnings and coaching tasks are shown to reps and managers inside the
CRM, never as HTML, so autoescaping is off (``O'Brien`` stays ``O'Brien``). The
sandbox still refuses attribute tricks and calls on unsafe objects. Undefined
names are errors (``StrictUndefined``) so ``rules check`` catches a typo such as
``{{ opportunity.amout }}`` instead of rendering an empty string to a rep.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

#: A CRM text field holds a line, not an essay.
MAX_RENDERED = 1000
#: Limits that keep one template from taking the service down: the longest string or
#: list ``*`` may build, the largest exponent of ``**``, the longest ``range``.
MAX_REPEAT = 10_000
MAX_EXPONENT = 64
MAX_POWER_BITS = 4096
MAX_RANGE = 1000


def money(value: Any, currency: str = "") -> str:
    """``250000.0`` -> ``250,000`` (with the currency code when given)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:,.0f}"
    return f"{currency} {text}".strip() if currency else text


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*``, ``**`` and ``range`` bounded (a rule file is admin input,
    and ``{{ 'a' * 1000000000 }}`` or nested ranges would exhaust memory or time)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if repeats and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT} items")
        if operator == "**" and isinstance(right, int | float):
            bits = left.bit_length() if isinstance(left, int) else 64
            if abs(right) > MAX_EXPONENT or bits * abs(right) > MAX_POWER_BITS:
                raise SecurityError("'**' result too large")
        return super().call_binop(context, operator, left, right)


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most ``MAX_RANGE`` items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE} items")
    return numbers


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False
    )
    env.filters["money"] = money
    env.globals["range"] = bounded_range
    return env


ENV = _environment()


class Template:
    """A compiled message template with where it was written."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = ENV.from_string(source)

    def render(self, variables: dict[str, Any]) -> str:
        text = self._template.render(**variables).strip()
        return text[:MAX_RENDERED]


def compile_template(source: str) -> tuple[Template | None, str]:
    """The template, or ``None`` and the syntax error in words."""
    try:
        return Template(source), ""
    except TemplateSyntaxError as exc:
        return None, f"template syntax error: {exc.message}"


def render_problem(template: Template, variables: dict[str, Any]) -> str:
    """Render with sample variables; return the error in words, or ``""``."""
    try:
        template.render(variables)
    except TemplateError as exc:
        return f"template error: {exc.message or exc}"
    except Exception as exc:  # the sandbox raises SecurityError and friends
        return f"template error: {exc}"
    return ""
