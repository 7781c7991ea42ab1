"""Renders a page in headless Chromium and reports what a reader would see.

`--dump-dom` prints the DOM after the page's load event, so the page's own check (see
`reporting.html`) has recorded on each `<img>` its decoded width and on `<body>` how many
images loaded. A missing or corrupt PNG decodes to width 0.
"""

from __future__ import annotations

import dataclasses
import html.parser
import os
import shutil
import subprocess

INSTALL_HINT = (
    "Chromium is needed to render the HTML reports: run scripts/install_chromium.sh "
    "(Debian: apt-get install -y --no-install-recommends chromium), or `make test`, which runs it."
)


@dataclasses.dataclass
class RenderedPage:
    images: list[dict[str, str]]  # attributes of each <img>
    tables: int
    headings: list[str]
    body: dict[str, str]  # attributes of <body>
    text: str


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = RenderedPage([], 0, [], {}, "")
        self._heading: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.page.images.append(attributes)
        elif tag == "table":
            self.page.tables += 1
        elif tag == "body":
            self.page.body = attributes
        elif tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.page.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = "".join(self._text)


def chromium() -> str:
    """The Chromium binary; fails (not skips) with how to install it."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(INSTALL_HINT)


def render(page_path: str, timeout_s: float = 60) -> RenderedPage:
    """The page's DOM after load, as headless Chromium built it from `page_path`."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{page_path}"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0 or "<body" not in result.stdout:
        raise AssertionError(
            f"chromium could not render {page_path} (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    parser = _Parser()
    parser.feed(result.stdout)
    parser.close()
    return parser.page


def png_width(path: str) -> int:
    """The width in a PNG file's header (IHDR)."""
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big")


def assert_renders(page_path: str, figure_files: list[str], min_tables: int, headings: list[str]) -> RenderedPage:
    """Every figure is on the page and decoded at its file's width; the tables and section headings are there."""
    page = render(page_path)
    sources = [image.get("src", "") for image in page.images]
    assert sorted(sources) == sorted(figure_files), f"images on the page {sources} != figures written {figure_files}"
    assert page.body.get("data-images-loaded") == str(len(figure_files)) == page.body.get("data-images-total"), (
        page.body
    )
    directory = os.path.dirname(page_path)
    for image in page.images:
        expected = png_width(os.path.join(directory, image["src"]))
        assert image.get("data-natural-width") == str(expected), (
            f"{image['src']} decoded at {image}, file is {expected} wide"
        )
    assert page.tables >= min_tables, f"{page.tables} tables, expected at least {min_tables}"
    missing = [h for h in headings if h not in page.headings]
    assert not missing, f"headings {missing} not among {page.headings}"
    return page
