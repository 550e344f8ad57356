"""What every LogoGAN spider shares: polite Scrapy settings, Retry-After handling, and running a crawl.

Polite by default, as Wikimedia's API etiquette and most site owners ask: a User-Agent that says who is
crawling and how to reach them, robots.txt obeyed, one request at a time per site, AutoThrottle slowing
down when the server does, and a server's ``Retry-After`` (on 429/503, or a MediaWiki ``maxlag`` error)
waited out before the request is tried again. Scrapy retries 429/503 immediately and ignores
``Retry-After``, hence :class:`RetryAfterMiddleware`.
"""
from __future__ import annotations

import email.utils
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import scrapy
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Request, Response
from scrapy.utils.asyncio import sleep

from infra.csv_files import csv_text
from infra.errors import UserError
from scraping.identity import user_agent
from scraping.items import ITEM_FIELDS, feed_format

WAIT_STATUSES = (429, 503)
# A crawl that ran out of work, or reached a page/item limit the user set, produced a usable items file.
COMPLETE_REASONS = ("finished", "closespider_pagecount", "closespider_itemcount")

CRAWL_SETTINGS = {
    "ROBOTSTXT_OBEY": True,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 1.0,
    "AUTOTHROTTLE_MAX_DELAY": 60.0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    "COOKIES_ENABLED": False,
    "RETRY_TIMES": 4,
    # 429 and 503 are retried by RetryAfterMiddleware, after waiting as long as the server asked.
    "RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408],
    "RETRY_AFTER_DEFAULT": 5.0,
    "RETRY_AFTER_MAX": 120.0,
    "DOWNLOADER_MIDDLEWARES": {"scraping.polite.RetryAfterMiddleware": 560},
    "FEED_EXPORT_FIELDS": list(ITEM_FIELDS),
    # Titles and credits from the pages crawled are written so that no spreadsheet runs them as formulas.
    "FEED_EXPORTERS": {"csv": "scraping.csv_feed.FormulaSafeCsvItemExporter"},
    "FEED_EXPORT_ENCODING": "utf-8",
    "LOG_LEVEL": "INFO",
    # A batch crawl needs no listening ports.
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
}


def apply_polite_settings(settings, contact: str | None) -> None:
    """Put the polite crawl settings and the User-Agent into a crawler's settings, at spider priority.

    Called from a spider's ``from_crawler``, so the same settings hold for ``python -m`` and for
    ``scrapy runspider``; ``-s NAME=VALUE`` on the command line still overrides them.
    """
    settings.setdict(CRAWL_SETTINGS, priority="spider")
    settings.set("USER_AGENT", user_agent(contact), priority="spider")


def retry_after_seconds(header: bytes | str | None, default: float, maximum: float) -> float:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date; ``default`` if absent."""
    if header is None:
        return default
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    text = text.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return default
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), maximum)


def is_maxlag_error(response: Response) -> bool:
    """MediaWiki answers ``maxlag=N`` with ``{"error": {"code": "maxlag"}}`` while its replicas lag."""
    if b"maxlag" not in response.body[:512]:
        return False
    try:
        return json.loads(response.body).get("error", {}).get("code") == "maxlag"
    except (ValueError, AttributeError):
        return False


def add_crawl_arguments(parser) -> None:
    """The flags every spider command shares: Scrapy setting overrides and quiet logging."""
    parser.add_argument("-s", "--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Scrapy setting, e.g. -s AUTOTHROTTLE_START_DELAY=2; repeatable (default: none)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")


class PoliteSpider(scrapy.Spider):
    """A spider whose crawler runs with the polite settings and the spider's ``contact`` in the User-Agent.

    ``scrapy runspider`` builds the crawler before the spider exists, so the settings are applied here,
    once the spider (and the contact it was given) is known.
    """

    contact: str | None = None

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        apply_polite_settings(crawler.settings, spider.contact)
        return spider


class RetryAfterMiddleware:
    """Retry 429/503 and MediaWiki maxlag answers after the delay the server asked for."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.default = crawler.settings.getfloat("RETRY_AFTER_DEFAULT")
        self.maximum = crawler.settings.getfloat("RETRY_AFTER_MAX")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry"):
            return response
        if response.status in WAIT_STATUSES:
            reason = f"HTTP {response.status}"
        elif is_maxlag_error(response):
            reason = "maxlag"
        else:
            return response
        retry = get_retry_request(request, spider=self.crawler.spider, reason=reason)
        if retry is None:
            return response
        delay = retry_after_seconds(response.headers.get("Retry-After"), self.default, self.maximum)
        self.crawler.spider.logger.info("%s for %s: waiting %.1f s as asked", reason, request.url, delay)
        self.crawler.stats.inc_value("retry_after/waits")
        started = time.monotonic()
        await sleep(delay)
        self.crawler.stats.inc_value("retry_after/seconds", time.monotonic() - started)
        return retry


def parse_setting_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isupper():
            raise UserError(f"--set {pair!r} must look like NAME=VALUE with a Scrapy setting NAME in capitals")
        overrides[name] = value
    return overrides


def run_spider(spider_class, out: Path, spider_args: dict, overrides: dict[str, str], quiet: bool) -> int:
    """Crawl into ``out`` (CSV or JSONL) and return the number of items.

    The feed goes to a temporary file beside ``out`` that replaces it only when the crawl ends, so an
    interrupted crawl leaves the previous items file whole.
    """
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    fmt = feed_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    settings = Settings()
    settings.set("FEEDS", {str(partial): {"format": fmt, "overwrite": True}})
    # Command-line priority, like `scrapy runspider -s`, so that they win over the spider's polite defaults.
    settings.setdict({**overrides, **({"LOG_LEVEL": "WARNING"} if quiet else {})}, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider_class)
    process.crawl(crawler, **spider_args)
    process.start()
    reason = crawler.stats.get_value("finish_reason")
    if reason not in COMPLETE_REASONS:
        partial.unlink(missing_ok=True)
        if reason == "shutdown":
            raise KeyboardInterrupt
        raise UserError(f"crawl stopped early ({reason}); {out} was left as it was")
    if not partial.exists() or partial.stat().st_size == 0:
        partial.write_text(csv_text(ITEM_FIELDS, []) if fmt == "csv" else "")
    os.replace(partial, out)
    return crawler.stats.get_value("item_scraped_count", 0)
