"""Collect image sources from a website you may crawl: ``<img>``, linked images and SVGs, and inline SVGs.

    python -m scraping.gallery --start-url https://example.org/logos/ --depth 1 --contact you@example.org -o items.csv
    scrapy runspider scraping/gallery.py -a start_url=https://example.org/logos/ -a depth=1 -O items.csv

This replaces the walkthrough's Google Images step, which is not offered: scraping Google's results breaks
whenever the page changes and its terms forbid it. Crawl only sites whose owners allow it. The crawl stays
on the start URL's host, follows links ``--depth`` levels from the start page, obeys robots.txt and the
polite settings of scraping/polite.py, and writes the same items format as scraping.commons, so
scraping.download fetches the results. Inline SVGs become ``data:`` URLs.
"""
from __future__ import annotations

import argparse
import base64
import mimetypes
import re
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

if not __package__:  # loaded by `scrapy runspider scraping/gallery.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scrapy

from infra import cli
from infra.errors import UserError
from infra.output_paths import check_output_file
from scraping.identity import require_contact_for, resolve_contact
from scraping.items import empty_item
from scraping.polite import PoliteSpider, add_crawl_arguments, parse_setting_overrides, run_spider

DEFAULT_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "svg", "webp")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def pixels(value: str | None) -> int | None:
    """An HTML width/height attribute as whole pixels, None when absent or relative ("50%", "auto")."""
    match = re.fullmatch(r"\s*(\d+)(?:\.\d+)?(?:px)?\s*", value or "")
    return int(match.group(1)) if match else None


def extension_of(url: str) -> str:
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0]
        return (mimetypes.guess_extension(mime) or "").lstrip(".")
    return PurePosixPath(unquote(urlsplit(url).path)).suffix.lower().lstrip(".")


def inline_svgs(html: str) -> list[str]:
    """Each outermost ``<svg>...</svg>`` exactly as the page writes it.

    Taken from the text, not from the parsed tree: an HTML parser lower-cases attribute names, and SVG's
    ``viewBox`` means nothing as ``viewbox``.
    """
    found, depth, start = [], 0, 0
    for tag in re.finditer(r"<(/?)svg\b[^>]*?(/?)>", html, re.IGNORECASE):
        closing, self_closing = tag.group(1), tag.group(2)
        if closing:
            depth = max(depth - 1, 0)
            if depth == 0:
                found.append(html[start : tag.end()])
        elif self_closing:
            if depth == 0:
                found.append(tag.group())
        else:
            if depth == 0:
                start = tag.start()
            depth += 1
    return found


def inline_svg_url(markup: str) -> str:
    """A ``data:`` URL for an SVG element written inline in HTML (where the namespace may be left out)."""
    if "xmlns=" not in markup.split(">", 1)[0]:
        markup = re.sub(r"^<svg\b", f'<svg xmlns="{SVG_NAMESPACE}"', markup, count=1)
    return "data:image/svg+xml;base64," + base64.b64encode(markup.encode()).decode()


class GallerySpider(PoliteSpider):
    """Image sources on the start URL's host to ``depth`` links away; arguments arrive as strings."""

    name = "gallery"

    def __init__(self, start_url: str = "", depth: str | int = 1, min_size: str | int = 32,
                 extensions: str = ",".join(DEFAULT_EXTENSIONS), contact: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if urlsplit(start_url).scheme not in ("http", "https") or not urlsplit(start_url).hostname:
            raise UserError(f"start URL {start_url!r} must be an http:// or https:// URL")
        self.start_url = start_url
        self.allowed_domains = [urlsplit(start_url).hostname]
        self.depth = int(depth)
        self.min_size = int(min_size)
        self.extensions = {extension.strip().lower().lstrip(".") for extension in extensions.split(",") if extension.strip()}
        if not self.extensions:
            raise UserError("--extensions is empty; give a comma-separated list such as png,svg")
        self.contact = resolve_contact(contact)
        require_contact_for([start_url], self.contact)
        self.seen_images: set[str] = set()

    async def start(self):
        yield scrapy.Request(self.start_url, callback=self.parse)

    def wanted(self, url: str, width: int | None, height: int | None) -> bool:
        """Allowed extension, not seen before, and not known to be smaller than ``min_size`` both ways."""
        if extension_of(url) not in self.extensions or url in self.seen_images:
            return False
        known = [side for side in (width, height) if side is not None]
        return not known or max(known) >= self.min_size

    def image_item(self, response, url: str, title: str, width=None, height=None) -> dict:
        self.seen_images.add(url)
        mime = "image/svg+xml" if url.startswith("data:image/svg") else (mimetypes.guess_type(url)[0] or "")
        return empty_item(title=title, page_url=response.url, url=url, width=width or "", height=height or "",
                          mime=mime)

    def parse(self, response):
        if not isinstance(response, scrapy.http.TextResponse):
            return
        for image in response.css("img[src]"):
            url = response.urljoin(image.attrib["src"])
            width, height = pixels(image.attrib.get("width")), pixels(image.attrib.get("height"))
            if self.wanted(url, width, height):
                title = image.attrib.get("alt") or PurePosixPath(urlsplit(url).path).name
                yield self.image_item(response, url, title, width, height)
        for target in response.css("a::attr(href), object::attr(data), embed::attr(src)").getall():
            url = response.urljoin(target)
            if self.wanted(url, None, None):
                yield self.image_item(response, url, PurePosixPath(unquote(urlsplit(url).path)).name)
        for number, markup in enumerate(inline_svgs(response.text), 1):
            url = inline_svg_url(markup)
            attributes = scrapy.Selector(text=markup).xpath("//svg")[0].attrib
            width, height = pixels(attributes.get("width")), pixels(attributes.get("height"))
            if self.wanted(url, width, height):
                yield self.image_item(response, url, f"inline SVG {number}", width, height)
        if response.meta.get("depth", 0) < self.depth:
            for link in response.css("a::attr(href)").getall():
                if extension_of(response.urljoin(link)) not in self.extensions:
                    yield response.follow(link, callback=self.parse)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.gallery",
        description="Collect <img>, linked image/SVG and inline SVG sources from a site you may crawl, staying on the "
        "start URL's host, into the items format scraping.download reads. Google Images scraping is not offered: "
        "it breaks and its terms forbid it.",
        epilog="examples:\n"
        "  python -m scraping.gallery --start-url https://example.org/brand/ --depth 1 --contact you@example.org -o items.csv\n"
        "  python -m scraping.gallery --start-url http://127.0.0.1:8000/ --depth 2 --min-size 64 --extensions svg,png -o items.jsonl\n"
        "then: python -m scraping.download --items items.csv --out logos/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--start-url", required=True, help="page to start from; the crawl stays on its host (required)")
    parser.add_argument("--depth", type=int, default=1,
                        help="follow links this many levels from the start page; 0 reads the start page only (default: 1)")
    parser.add_argument("-o", "--output", type=Path, default=Path("items.csv"),
                        help="items file to write, .csv or .jsonl; replaced whole when the crawl ends (default: items.csv)")
    parser.add_argument("--min-size", type=int, default=32,
                        help="skip images whose width/height attributes are both below this many px; images without "
                        "them are kept (default: 32)")
    parser.add_argument("--extensions", default=",".join(DEFAULT_EXTENSIONS),
                        help=f"comma-separated image extensions to keep (default: {','.join(DEFAULT_EXTENSIONS)})")
    parser.add_argument("--max-pages", type=int, default=200, help="stop after this many pages (default: 200)")
    parser.add_argument("--contact", default=None,
                        help="e-mail or URL put in the User-Agent so the site can reach you (default: $LOGOGAN_CONTACT)")
    add_crawl_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.depth < 0 or args.min_size < 0 or args.max_pages < 1:
        raise UserError(f"--depth ({args.depth}) and --min-size ({args.min_size}) must be 0 or more, "
                        f"--max-pages ({args.max_pages}) 1 or more")
    check_output_file(args.output, "--output")
    contact = resolve_contact(args.contact)
    spider_args = {"start_url": args.start_url, "depth": args.depth, "min_size": args.min_size,
                   "extensions": args.extensions, "contact": contact}
    GallerySpider(**spider_args)  # checks the arguments before Scrapy starts
    overrides = {"CLOSESPIDER_PAGECOUNT": str(args.max_pages), **parse_setting_overrides(args.settings)}
    count = run_spider(GallerySpider, args.output, spider_args, overrides, args.quiet)
    print(f"Wrote {args.output}: {count} images listed")
    return 0


if __name__ == "__main__":
    cli.run(main)
