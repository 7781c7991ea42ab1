"""A static HTML page: headings, paragraphs, escaped tables and PNG figures beside it.

Every text goes through `html.escape`, so ids, titles and raw bad-row samples cannot break
the page. Figures are written as PNG files next to `index.html` and referenced by relative
path, so the directory can be copied anywhere (an artifact store, a static web server).
The CSS is inline; the only script is a few lines that, once the page has loaded, record
on each `<img>` its decoded width (`data-natural-width`) and on `<body>` how many images
loaded (`data-images-loaded` of `data-images-total`), so a headless browser's DOM dump
shows whether every plot actually displays.

Example:
    >>> page = Page("Run report")
    >>> page.section("Data")
    >>> page.table(["split", "examples"], [["train", "37,102"], ["test", "5,738"]])
    >>> page.paragraph("Bad rows: <none>")
    >>> path = page.write("/tmp/report")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from typing import Any

PAGE_FILE = "index.html"
# Cells like "37,102", "-1.25 pp", "53.99%", "3600 s" are right-aligned.
_NUMERIC = re.compile(r"^[+\-−]?\d[\d,]*(\.\d+)?\s*(%|pp|s|MB|k|M)?$")

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a;
       max-width: 1180px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px;
     border-bottom: 1px solid #d0d7de; padding-bottom: 4px; } h3 { font-size: 15px; margin-top: 20px; }
p.subtitle { color: #57606a; margin-top: 0; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums;
        display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; white-space: nowrap; }
tr.highlight td { background: #dafbe1; font-weight: 600; }
tr.bad td { background: #ffebe9; }
p.good, p.bad, p.note { padding: 6px 10px; border-radius: 4px; }
p.good { background: #dafbe1; } p.bad { background: #ffebe9; } p.note { background: #fff8c5; }
figure { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 12px; }
code { background: #f6f8fa; padding: 0 3px; word-break: break-all; }
"""

_IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images), loaded = 0;
  images.forEach(function (img) {
    var width = img.complete ? img.naturalWidth : 0;
    img.setAttribute("data-natural-width", width);
    if (width > 0) { loaded += 1; }
  });
  document.body.setAttribute("data-images-total", images.length);
  document.body.setAttribute("data-images-loaded", loaded);
});
"""

# Paragraph kinds and their CSS classes: a verdict that passed, one that failed, a caveat.
PARAGRAPH_KINDS = ("plain", "good", "bad", "note")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class Page:
    """Builds one page top to bottom; `write` puts `index.html` and its PNGs in a directory.

    Figures are rendered when added (held as PNG bytes until `write`), so a matplotlib
    figure is closed right away and a long report does not keep dozens open.
    """

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self._body: list[str] = []
        self._sections: list[tuple[str, str]] = []  # (anchor, title) for the contents line
        self._figures: dict[str, bytes] = {}  # file name -> PNG bytes
        if subtitle:
            self._body.append(f'<p class="subtitle">{html.escape(subtitle)}</p>')

    def section(self, title: str) -> None:
        """Starts a section (an `<h2>`, linked from the contents line at the top)."""
        anchor = _slug(title)
        while anchor in {a for a, _ in self._sections}:
            anchor += "-x"
        self._sections.append((anchor, title))
        self._body.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')

    def subsection(self, title: str) -> None:
        self._body.append(f"<h3>{html.escape(title)}</h3>")

    def paragraph(self, text: str, kind: str = "plain") -> None:
        """A paragraph of escaped text; `kind` colours verdicts (`good`, `bad`) and caveats (`note`)."""
        if kind not in PARAGRAPH_KINDS:
            raise ValueError(f"paragraph kind must be one of {PARAGRAPH_KINDS}, got {kind!r}")
        css = "" if kind == "plain" else f' class="{kind}"'
        self._body.append(f"<p{css}>{html.escape(text)}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self._body.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>")

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[Any]],
        row_classes: Sequence[str] | None = None,
        caption: str = "",
    ) -> None:
        """An escaped table; numeric-looking cells are right-aligned.

        `row_classes` gives each row a CSS class (`highlight`, `bad` or ""), e.g. to mark
        the true next item among recommendations.
        """
        for i, row in enumerate(rows):
            if len(row) != len(header):
                raise ValueError(f"table row {i} has {len(row)} cells for {len(header)} columns: {list(row)!r}")
        if row_classes is not None and len(row_classes) != len(rows):
            raise ValueError(f"{len(row_classes)} row classes for {len(rows)} rows")
        lines = ["<table>"]
        if caption:
            lines.append(f"<caption>{html.escape(caption)}</caption>")
        lines.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for i, row in enumerate(rows):
            css = row_classes[i] if row_classes else ""
            cells = "".join(
                f'<td class="num">{html.escape(str(c))}</td>'
                if _NUMERIC.match(str(c))
                else f"<td>{html.escape(str(c))}</td>"
                for c in row
            )
            lines.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
        lines.append("</table>")
        self._body.append("\n".join(lines))

    def figure(self, figure: Any, name: str, caption: str = "") -> None:
        """Adds a matplotlib figure as `<name>.png` beside the page, and closes it."""
        import io

        import matplotlib.pyplot as plt

        if not re.fullmatch(r"[a-z0-9_\-]+", name):
            raise ValueError(f"figure name must be lower-case letters, digits, '_' or '-': {name!r}")
        if f"{name}.png" in self._figures:
            raise ValueError(f"figure {name!r} is already on the page")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        self._figures[f"{name}.png"] = buffer.getvalue()
        alt = html.escape(caption or name)
        self._body.append(
            f'<figure><img src="{name}.png" alt="{alt}">'
            + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "")
            + "</figure>"
        )

    @property
    def figure_files(self) -> list[str]:
        return list(self._figures)

    def render(self) -> str:
        """The page's HTML."""
        contents = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in self._sections)
        return "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{html.escape(self.title)}</title>",
                f"<style>{_CSS}</style>",
                "</head>",
                '<body data-images-loaded="pending">',
                f"<h1>{html.escape(self.title)}</h1>",
                f"<nav>{contents}</nav>" if contents else "",
                *self._body,
                f"<script>{_IMAGE_CHECK}</script>",
                "</body></html>",
                "",
            ]
        )

    def write(self, out_dir: str) -> str:
        """Writes `index.html` and the PNGs into `out_dir` (created if needed); returns the page's path."""
        os.makedirs(out_dir, exist_ok=True)
        for name, png in self._figures.items():
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(png)
        path = os.path.join(out_dir, PAGE_FILE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.render())
        return path
