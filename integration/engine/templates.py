"""Message templates: Jinja in its sandbox, rendering plain text.

Reasons, warnings and coaching tasks are shown to reps and managers inside the
CRM, never as HTML, so autoescaping is off (``O'Brien`` stays ``O'Brien``). The
sandbox still refuses attribute tricks and calls on unsafe objects. Undefined
names are errors (``StrictUndefined``) so ``rules check`` catches a typo such as
``{{ opportunity.amout }}`` instead of rendering an empty string to a rep.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from integration.engine.conditions import suggest
from integration.engine.variables import RECORD_FIELDS, SCALARS

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


#: Names a message template may use besides the records and scalars.
TEMPLATE_EXTRAS = ("segment", "fit")
_NO_ATTRIBUTE = re.compile(r"'[^']*' has no attribute '([^']*)'|'([^']*)' is undefined")


def unknown_template_names(source: str) -> list[str]:
    """Variables and fields a template names that no opportunity has, in plain words.

    Jinja itself would only say "'dict object' has no attribute 'nmae'" when the
    template is rendered; this reads the template and names the field instead.
    """
    tree = ENV.parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    roots = {*RECORD_FIELDS, *SCALARS, *TEMPLATE_EXTRAS, *bound, *ENV.globals}
    problems = []
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in roots:
            problems.append(
                f"template error: unknown variable '{name.name}'{suggest(name.name, sorted(roots))}"
            )
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name in RECORD_FIELDS:
            root, declared = attr.node.name, RECORD_FIELDS[attr.node.name]
            if attr.attr not in declared and not attr.attr.startswith("_"):
                hint = suggest(f"{root}.{attr.attr}", [f"{root}.{f}" for f in declared])
                problems.append(f"template error: unknown field '{root}.{attr.attr}'{hint}")
    return list(dict.fromkeys(problems))


def render_problem(template: Template, variables: dict[str, Any]) -> str:
    """Render with sample variables; return the error in words, or ``""``."""
    named = unknown_template_names(template.source)
    if named:
        return "; ".join(named)
    try:
        template.render(variables)
    except TemplateError as exc:
        message = exc.message or str(exc)
        match = _NO_ATTRIBUTE.search(message)
        if match:
            return f"template error: '{match.group(1) or match.group(2)}' is not a known name"
        return f"template error: {message}"
    except Exception as exc:  # the sandbox raises SecurityError and friends
        return f"template error: {exc}"
    return ""
