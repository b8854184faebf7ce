"""The docstrings of a config dataclass's fields, read from its source: what each setting means.

A config's fields carry their explanation as the string right below them (paper defaults, ours,
units). Forms show it as help text and pages as the defaults table's "what it does", so the
explanation is written once, beside the field it explains. Django-free: pages read it through
`webapp.core.forms.help_text_from_config_docs`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap


@functools.cache
def config_field_docs(config_class: type) -> dict[str, str]:
    """Each field of `config_class` (and of the classes it inherits from) mapped to its docstring.

    A docstring is the string literal right after the field's annotated assignment; its whitespace
    is collapsed to single spaces. Fields without one are left out. A subclass's docstring wins
    over its base's for the same field.
    """
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # a class without source (built in, made at run time)
            continue
        class_node = ast.parse(source).body[0]
        if isinstance(class_node, ast.ClassDef):
            docs.update(_field_docstrings(class_node))
    return docs


def _field_docstrings(class_node: ast.ClassDef) -> dict[str, str]:
    docs: dict[str, str] = {}
    body = class_node.body
    for current, following in zip(body, body[1:], strict=False):
        if (
            isinstance(current, ast.AnnAssign)
            and isinstance(current.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[current.target.id] = " ".join(following.value.value.split())
    return docs
