"""OpenAI-style templates (``{{ sample.output_text }}``, ``{{ item.reference_answer }}``).

Templates are Jinja2 rendered in its sandbox (no attribute access to Python internals), compiled
once when the definition loads. Jinja2 is imported only if some template actually uses
``{{ }}``; a plain string is a constant.

Lookups under ``item`` are strict: a missing dataset field fails the sample (``grader_error``)
instead of rendering as an empty string that an empty response could then "match". Lookups under
``sample`` are lenient: a response that is not JSON simply renders ``sample.output_json.x`` as
empty, and the grader scores it on its merits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from grading.errors import DefinitionError, SampleError
from grading.samples import ASSISTANT_ROLES, Sample
from grading.spec import Spec

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate
    from jinja2.sandbox import SandboxedEnvironment

_ROOTS = frozenset({"sample", "item"})
_MARKERS = ("{{", "{%", "{#")


class _ItemView:
    """A dataset item (or an object inside it) as templates see it.

    Not a dict on purpose: ``item.items`` or ``item.values`` must mean the dataset fields of
    those names, not dict methods. Its own attributes are private (underscored, which the
    sandbox refuses to templates), and the environment looks every name up as a field first
    (:func:`_environment`): ``item.data`` and ``item.sample`` are the dataset's fields of those
    names, never the view's internals (which hold the whole item, reference answer included).
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return _view(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def as_json(self) -> str:
        """The object as JSON (how ``{{ item }}`` or ``{{ item.<object> }}`` prints)."""
        return json.dumps(self._data, ensure_ascii=False)


class _RootItemView(_ItemView):
    """``item`` itself: the dataset fields, and ``messages`` (the prompt, as OpenAI's item
    carries it) unless the dataset has a field of that name."""

    __slots__ = ("_sample",)

    def __init__(self, sample: Sample) -> None:
        super().__init__(sample.item)
        self._sample = sample

    def __getitem__(self, key: str) -> Any:
        if key == "messages" and key not in self._data:
            return self._sample.prompt_messages
        return _view(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key == "messages" or key in self._data


def _view(value: Any) -> Any:
    return _ItemView(value) if isinstance(value, dict) else value


class _SampleView:
    """``sample`` in templates: ``output_text``, ``output_json``, ``messages``, and (built only
    when a template reads them) ``output_tools``, ``choices`` and ``output_audio``."""

    __slots__ = ("_sample", "_untrusted", "messages", "output_json", "output_text")

    def __init__(self, sample: Sample, untrusted: Callable[[str], str] | None) -> None:
        self._sample = sample
        self._untrusted = untrusted
        if untrusted is None:
            self.output_text: Any = sample.output_text
            self.output_json: Any = sample.output_json
        else:
            # For a judge prompt every piece of the response arrives already enclosed in the
            # prompt's delimiters, whatever filters the template applies afterwards.
            self.output_text = untrusted(sample.output_text)
            self.output_json = _enclose(sample.output_json, untrusted)
        self.messages = (
            sample.messages
            if untrusted is None
            else [
                # the model's own turns are response text too
                {**message, "content": untrusted(message["content"])}
                if message["role"].lower() in ASSISTANT_ROLES
                else message
                for message in sample.messages
            ]
        )

    def _response(self, value: Any) -> Any:
        return value if self._untrusted is None else _enclose(value, self._untrusted)

    @property
    def output_tools(self) -> Any:
        """The response's tool calls (chat-completions shape)."""
        return self._response(self._sample.output_tools)

    @property
    def choices(self) -> Any:
        """One choice whose ``message`` is the response (with its ``tool_calls``)."""
        return self._response(self._sample.choices)

    @property
    def output_audio(self) -> Any:
        """Always empty: rollouts carry no audio."""
        return {}


def _enclose(value: Any, untrusted: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return untrusted(value)
    if isinstance(value, dict):
        return {key: _enclose(inner, untrusted) for key, inner in value.items()}
    if isinstance(value, list):
        return [_enclose(inner, untrusted) for inner in value]
    return value


def _finalize(value: Any) -> Any:
    """How a value prints: JSON for objects and arrays, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, _ItemView):
        return value.as_json()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


@cache
def _environment() -> SandboxedEnvironment:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Undefined(ChainableUndefined):
        """Empty for ``sample.*``; an error for a missing ``item.*`` field."""

        __slots__ = ()

        def _strict(self) -> bool:
            return isinstance(self._undefined_obj, _ItemView)

        @property
        def _undefined_message(self) -> str:
            return f"the dataset item has no field '{self._undefined_name}'"

        def __str__(self) -> str:
            if self._strict():
                self._fail_with_undefined_error()
            return ""

        def __iter__(self) -> Iterator[Any]:
            if self._strict():
                self._fail_with_undefined_error()
            return iter(())

        def __bool__(self) -> bool:
            if self._strict():
                self._fail_with_undefined_error()
            return False

    class _Environment(ImmutableSandboxedEnvironment):
        """Jinja's ``a.b`` tries the attribute before the item, so ``output_json.items`` would be
        the dict method; in a grader's data a key of an object always wins, at any depth."""

        def getattr(self, obj: Any, attribute: str) -> Any:
            if isinstance(obj, _ItemView):
                return self._field(obj, attribute)
            if type(obj) is dict and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            # Jinja's ``a["b"]`` falls back to the attribute when the item is missing: for a
            # dataset item that would be the view's internals.
            if isinstance(obj, _ItemView):
                return self._field(obj, argument)
            return super().getitem(obj, argument)

        def _field(self, view: _ItemView, name: Any) -> Any:
            """A dataset field, or the strict undefined that names it: never an attribute."""
            try:
                return view[name]
            except (KeyError, TypeError):
                return self.undefined(obj=view, name=name)

    # Immutable: a template cannot modify the sample or the item it is shown.
    return _Environment(
        undefined=_Undefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=True,
    )


class Template:
    """One template string of the definition, compiled once."""

    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        self._compiled: JinjaTemplate | None = None
        if any(marker in source for marker in _MARKERS):
            self._compiled = self._compile(source, path)

    @staticmethod
    def _compile(source: str, path: str) -> JinjaTemplate:
        from jinja2 import TemplateSyntaxError, meta

        environment = _environment()
        try:
            tree = environment.parse(source)
        except TemplateSyntaxError as err:
            raise DefinitionError(path, f"template syntax error: {err.message}") from None
        unknown = meta.find_undeclared_variables(tree) - _ROOTS
        if unknown:
            raise DefinitionError(
                path, f"template uses {', '.join(sorted(unknown))}; only sample and item exist"
            )
        return environment.from_string(source)

    @property
    def constant(self) -> bool:
        """Whether the template has no placeholders (it renders to itself)."""
        return self._compiled is None

    def uses_response(self) -> bool:
        """Whether the template refers to ``sample`` (the response) at all."""
        return not self.constant and "sample" in self.source

    def render(self, sample: Sample, untrusted: Callable[[str], str] | None = None) -> str:
        """Render for one sample; a missing item field raises :class:`SampleError`."""
        if self._compiled is None:
            return self.source
        from jinja2 import TemplateError

        try:
            return self._compiled.render(
                sample=_SampleView(sample, untrusted), item=_RootItemView(sample)
            )
        except TemplateError as err:
            # Jinja's message names the missing attribute, never the response text.
            raise SampleError(f"template {self.path}: {err.message}") from None


def optional_template(spec: Spec, key: str) -> Template | None:
    """The template under ``key``, or ``None`` when absent (the grader then reads the response
    itself, without rendering)."""
    if not spec.has(key):
        return None
    template = Template(spec.string(key, empty=True), spec.at(key))
    return None if template.source.strip() in _PLAIN_RESPONSE else template


def render_or_response(template: Template | None, sample: Sample) -> str:
    """``template`` rendered for ``sample``, or the response when there is no template."""
    return sample.output_text if template is None else template.render(sample)


# Templates that are only the response: read it directly (no Jinja2 import, no rendering).
_PLAIN_RESPONSE = frozenset({"{{ sample.output_text }}", "{{sample.output_text}}"})
