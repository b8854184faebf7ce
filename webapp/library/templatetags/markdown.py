"""`{{ text|render_markdown }}`: model responses as Markdown, safely, wherever they are shown in full.

Responses are written by models and people, so they are untrusted: markdown-it renders CommonMark
(code blocks, lists, emphasis, tables) with raw HTML turned off, so `<script>` and every other tag
come out escaped as text; links are kept only for http, https and mailto (a `javascript:` or `data:`
link stays plain text), and images are not rendered at all (they would load from anywhere).
"""

from __future__ import annotations

from functools import cache

from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")
# A cell longer than this is cut before rendering; the page says so and the download has it whole.
MAX_RENDERED_CHARACTERS = 20_000


def _link_is_safe(url: str) -> bool:
    """Absolute http(s) and mailto links only: no script, data, file or relative links."""
    return url.strip().lower().startswith(SAFE_LINK_SCHEMES)


@cache
def _renderer() -> MarkdownIt:
    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    renderer.enable(["table", "strikethrough"]).disable("image")
    renderer.validateLink = _link_is_safe  # type: ignore[method-assign]

    def link_open(self, tokens, index, options, env):  # type: ignore[no-untyped-def]
        tokens[index].attrSet("rel", "nofollow noopener noreferrer")
        return self.renderToken(tokens, index, options, env)

    renderer.add_render_rule("link_open", link_open)
    return renderer


@register.filter(name="render_markdown")
def render_markdown(text: object) -> SafeString:
    """HTML for `text` read as Markdown; anything that is not a string is shown as its text."""
    source = text if isinstance(text, str) else ("" if text is None else str(text))
    suffix = ""
    if len(source) > MAX_RENDERED_CHARACTERS:
        suffix = (
            f"\n\n*(first {MAX_RENDERED_CHARACTERS:,} of {len(source):,} characters shown; the download has them all)*"
        )
        source = source[:MAX_RENDERED_CHARACTERS]
    # markdown-it escapes every character of the source it does not turn into markup, and raw HTML is off.
    return mark_safe(_renderer().render(source + suffix))  # noqa: S308 - the renderer's output is escaped
