"""List every file of a Wikimedia Commons category, with provenance, through the MediaWiki Action API.

    python -m scraping.commons --category "Unidentified logos" --contact you@example.org -o items.csv
    scrapy runspider scraping/commons.py -a category="Unidentified logos" -a contact=you@example.org -O items.csv

The walkthrough scraped the category's HTML pages; the API gives the same files with their original and
thumbnail URLs, size, mime, SHA-1, licence and author in 10 requests per 500 files, and ``continue``
replaces fragile "next page" links. Requests are polite (see scraping/polite.py): one at a time,
AutoThrottle, ``maxlag=5`` with the server's ``Retry-After`` honoured, and a User-Agent with a contact,
which Wikimedia requires and ``--contact`` (or $LOGOGAN_CONTACT) supplies.

robots.txt is obeyed for every request except the Action API's own: Wikimedia's robots.txt disallows
``/w/`` to keep crawlers off rendered wiki pages, while its robot policy sends bots to the Action API under
the API etiquette this spider follows. Obeying it there would list nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

if not __package__:  # loaded by `scrapy runspider scraping/commons.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scrapy
from w3lib.html import remove_tags

from infra import cli
from infra.errors import UserError
from infra.output_paths import check_output_file
from scraping.identity import require_contact_for, resolve_contact
from scraping.items import empty_item
from scraping.polite import PoliteSpider, add_crawl_arguments, parse_setting_overrides, run_spider

COMMONS_API = "https://commons.wikimedia.org/w/api.php"
THUMBNAIL_WIDTHS = (20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920)  # widths Wikimedia's caches keep
MAXLAG_SECONDS = 5


def thumbnail_width(size: int) -> int:
    """The smallest standard thumbnail width at or above ``size`` (the largest one above them all)."""
    return next((width for width in THUMBNAIL_WIDTHS if width >= size), THUMBNAIL_WIDTHS[-1])


def category_title(name: str) -> str:
    """``Unidentified_logos`` or ``Category:Unidentified logos`` -> ``Category:Unidentified logos``."""
    name = name.strip().replace("_", " ")
    if name.lower().startswith("category:"):
        name = name.split(":", 1)[1].strip()
    if not name:
        raise UserError("--category is empty; give a category name such as 'Unidentified logos'")
    return f"Category:{name}"


def file_item(page: dict) -> dict | None:
    """One item from a page of a ``prop=imageinfo`` answer (formatversion=2); None until its info arrives."""
    info = (page.get("imageinfo") or [None])[0]
    if info is None:
        return None
    metadata = info.get("extmetadata") or {}

    def metadata_text(key: str) -> str:
        return remove_tags(str(metadata.get(key, {}).get("value", ""))).strip()

    return empty_item(
        title=page["title"],
        page_url=info.get("descriptionurl", ""),
        url=info.get("url", ""),
        thumb_url=info.get("thumburl", ""),
        width=info.get("width", ""),
        height=info.get("height", ""),
        mime=info.get("mime", ""),
        sha1=info.get("sha1", ""),
        licence=metadata_text("LicenseShortName"),
        artist=metadata_text("Artist"),
    )


class CommonsSpider(PoliteSpider):
    """Files of a category (and its subcategories to ``depth``) as items; arguments arrive as strings."""

    name = "commons"

    def __init__(self, category: str = "", api_url: str = COMMONS_API, depth: str | int = 0,
                 size: str | int = 120, contact: str | None = None, page_size: str | int = 50, **kwargs):
        super().__init__(**kwargs)
        if not category:
            raise UserError("no category given; pass --category NAME (or -a category=NAME)")
        self.category = category_title(category)
        self.api_url = api_url
        self.depth = int(depth)
        self.thumb_width = thumbnail_width(int(size))
        self.page_size = int(page_size)
        self.contact = resolve_contact(contact)
        require_contact_for([api_url], self.contact)
        self.visited_categories: set[str] = set()
        self.seen_titles: set[str] = set()

    async def start(self):
        for request in self.category_requests(self.category, self.depth):
            yield request

    def api_request(self, params: dict, callback, **cb_kwargs) -> scrapy.Request:
        query = {"action": "query", "format": "json", "formatversion": 2, "maxlag": MAXLAG_SECONDS, **params}
        return scrapy.Request(
            f"{self.api_url}?{urlencode(query)}",
            callback=callback,
            cb_kwargs=cb_kwargs,
            meta={"dont_obey_robotstxt": True},
            dont_filter=True,  # continuation requests can repeat a URL after a retry; `continue` ends the loop
        )

    def category_requests(self, title: str, depth: int):
        if title in self.visited_categories:
            return
        self.visited_categories.add(title)
        yield self.files_request(title, {})
        if depth > 0:
            yield self.subcategories_request(title, depth, {})

    def files_request(self, title: str, continuation: dict) -> scrapy.Request:
        params = {
            "generator": "categorymembers",
            "gcmtitle": title,
            "gcmtype": "file",
            "gcmlimit": self.page_size,
            "prop": "imageinfo",
            "iiprop": "url|size|mime|sha1|extmetadata",
            "iiextmetadatafilter": "LicenseShortName|Artist",
            "iiurlwidth": self.thumb_width,
            **continuation,
        }
        return self.api_request(params, self.parse_files, title=title)

    def subcategories_request(self, title: str, depth: int, continuation: dict) -> scrapy.Request:
        params = {"list": "categorymembers", "cmtitle": title, "cmtype": "subcat", "cmlimit": "max", **continuation}
        return self.api_request(params, self.parse_subcategories, title=title, depth=depth)

    def answer(self, response) -> dict:
        try:
            data = json.loads(response.text)
        except json.JSONDecodeError:
            raise scrapy.exceptions.CloseSpider(f"{response.url} did not answer JSON") from None
        if "error" in data:
            error = data["error"]
            raise scrapy.exceptions.CloseSpider(f"API error {error.get('code')}: {error.get('info')}")
        return data

    def parse_files(self, response, title: str):
        data = self.answer(response)
        for page in data.get("query", {}).get("pages", []):
            item = file_item(page)
            if item is not None and item["title"] not in self.seen_titles:
                self.seen_titles.add(item["title"])
                yield item
        if "continue" in data:
            yield self.files_request(title, data["continue"])

    def parse_subcategories(self, response, title: str, depth: int):
        data = self.answer(response)
        for member in data.get("query", {}).get("categorymembers", []):
            yield from self.category_requests(member["title"], depth - 1)
        if "continue" in data:
            yield self.subcategories_request(title, depth, data["continue"])


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.commons",
        description="List every file of a Wikimedia Commons category (title, page URL, original and thumbnail "
        "URLs, size, mime, SHA-1, licence, artist) through the MediaWiki API, politely.",
        epilog="examples:\n"
        '  python -m scraping.commons --category "Unidentified logos" --contact you@example.org -o items.csv\n'
        '  python -m scraping.commons --category "Logos" --depth 1 --size 250 --contact you@example.org -o logos.jsonl\n'
        "  python -m scraping.commons --category Test --api-url http://127.0.0.1:8000/w/api.php -o items.csv\n"
        "then: python -m scraping.download --items items.csv --out logos/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--category", required=True,
                        help="category name, with or without 'Category:'; underscores read as spaces (required)")
    parser.add_argument("-o", "--output", type=Path, default=Path("items.csv"),
                        help="items file to write, .csv or .jsonl; replaced whole when the crawl ends (default: items.csv)")
    parser.add_argument("--depth", type=int, default=0,
                        help="also list subcategories this many levels down; each category once (default: 0)")
    parser.add_argument("--size", type=int, default=120,
                        help="wanted image width in px; thumbnail URLs use the smallest standard width at or above it, "
                        f"one of {', '.join(map(str, THUMBNAIL_WIDTHS))} (default: 120)")
    parser.add_argument("--contact", default=None,
                        help="e-mail or URL put in the User-Agent so the site can reach you; required for Wikimedia "
                        "sites (default: $LOGOGAN_CONTACT)")
    parser.add_argument("--api-url", default=COMMONS_API,
                        help=f"MediaWiki api.php endpoint (default: {COMMONS_API})")
    parser.add_argument("--page-size", type=int, default=50,
                        help="files per API request, 1 to 500 (default: 50)")
    add_crawl_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.depth < 0:
        raise UserError(f"--depth {args.depth} must be 0 or more")
    if args.size < 1:
        raise UserError(f"--size {args.size} must be 1 or more")
    if not 1 <= args.page_size <= 500:
        raise UserError(f"--page-size {args.page_size} must be between 1 and 500")
    if urlsplit(args.api_url).scheme not in ("http", "https"):
        raise UserError(f"--api-url {args.api_url!r} must be an http:// or https:// URL")
    check_output_file(args.output, "--output")
    contact = resolve_contact(args.contact)
    require_contact_for([args.api_url], contact)
    category_title(args.category)
    overrides = parse_setting_overrides(args.settings)
    spider_args = {"category": args.category, "api_url": args.api_url, "depth": args.depth, "size": args.size,
                   "contact": contact, "page_size": args.page_size}
    count = run_spider(CommonsSpider, args.output, spider_args, overrides, args.quiet)
    print(f"Wrote {args.output}: {count} files listed")
    return 0


if __name__ == "__main__":
    cli.run(main)
