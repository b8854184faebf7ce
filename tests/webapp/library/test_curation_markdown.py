"""`render_markdown`: responses shown as Markdown with everything a response could smuggle in escaped."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template

from webapp.library.templatetags.markdown import MAX_RENDERED_CHARACTERS, render_markdown


@pytest.mark.parametrize(
    ("source", "must_contain"),
    [
        ("<script>alert('x')</script>", "&lt;script&gt;alert"),
        ('<img src=x onerror="alert(1)">', "&lt;img src=x onerror="),
        ("<div style='position:fixed'>cover</div>", "&lt;div style="),
        ("<a href='javascript:alert(1)'>raw link</a>", "&lt;a href="),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
        ("[click](JaVaScRiPt:alert(1))", "[click](JaVaScRiPt:alert(1))"),
        ("[click](&#106;avascript:alert(1))", "[click](javascript:alert(1))"),
        ("[data](data:text/html;base64,PHNjcmlwdD4=)", "[data](data:text/html"),
        ("<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"),
        ("![tracker](https://example.com/pixel.png)", 'href="https://example.com/pixel.png"'),
    ],
)
def test_raw_html_script_links_and_images_come_out_as_text(source, must_contain):
    html = str(render_markdown(source))
    assert must_contain in html
    assert not re.search(r"<(script|img|div|iframe|style)\b", html)
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in re.findall(r'href="([^"]*)"', html))
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)


def test_markdown_and_code_blocks_render_with_their_content_escaped():
    source = "Use **bold** and `x < y`:\n\n```python\nprint('<b>hi</b>')\n```\n\n- one\n- two\n\n[docs](https://example.com/a?b=1&c=2)"
    html = str(render_markdown(source))
    assert "<strong>bold</strong>" in html and "<code>x &lt; y</code>" in html
    assert "<pre><code class=\"language-python\">print('&lt;b&gt;hi&lt;/b&gt;')" in html
    assert "<li>one</li>" in html
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">docs</a>' in html


def test_the_filter_is_usable_in_any_template_and_says_when_it_cut_a_long_text():
    rendered = Template("{% load markdown %}{{ text|render_markdown }}").render(
        Context({"text": "a" * (MAX_RENDERED_CHARACTERS + 10) + "<script>"})
    )
    assert f"first {MAX_RENDERED_CHARACTERS:,} of {MAX_RENDERED_CHARACTERS + 10 + 8:,} characters shown" in rendered
    assert "<script>" not in rendered
    assert str(render_markdown(None)) == "" and str(render_markdown(["<b>"])) == "<p>['&lt;b&gt;']</p>\n"
