"""The Commons spider against the local MediaWiki stand-in: items, continuation, recursion, politeness."""
from __future__ import annotations

import csv
import json

import pytest
from scrapy.crawler import Crawler

from infra.errors import UserError
from scraping.commons import CommonsSpider, category_title, main, thumbnail_width
from scraping.identity import user_agent
from scraping.items import ITEM_FIELDS
from scraping.polite import retry_after_seconds
from tests.scraping.conftest import CONTACT, FAST, REPO, run_stage

ALL_LISTED = {"a.png", "b.jpg", "c.svg", "d-corrupt.png", "e-big.png", "f-same-as-a.png", "g.pdf", "h.png",
              "i-flaky.png", "j.png"}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_lists_every_file_of_the_tree_once_with_provenance(wiki, tmp_path):
    out = tmp_path / "items.csv"
    result = run_stage("-m", "scraping.commons", "--category", "Test_logos", "--api-url", wiki.api_url,
                       "--depth", "2", "--size", "100", "--page-size", "3", "--contact", CONTACT, "-o", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    rows = read_csv(out)
    assert list(rows[0]) == list(ITEM_FIELDS)
    assert sorted(row["title"] for row in rows) == sorted(f"File:{name}" for name in ALL_LISTED)
    first = next(row for row in rows if row["title"] == "File:a.png")
    expected_sha1 = wiki.files["a.png"].sha1
    assert first == {
        "title": "File:a.png", "page_url": f"{wiki.base}/wiki/File:a.png", "url": wiki.original_url("a.png"),
        "thumb_url": wiki.thumb_url("a.png", 120), "width": "4", "height": "4", "mime": "image/png",
        "sha1": expected_sha1, "licence": "CC BY-SA 4.0", "artist": "Artist 1000",
    }
    assert f"{len(rows)} files listed" in result.stdout

    api = wiki.requests_to("/w/api.php")
    file_pages = [entry["query"] for entry in api if entry["query"].get("generator") == "categorymembers"]
    main_offsets = [query.get("gcmcontinue", "start") for query in file_pages if query["gcmtitle"] == "Category:Test logos"]
    assert len(main_offsets) == 4  # pages at 0, 3 (answered 429 first, then again) and 6
    subcat_lists = sorted(entry["query"]["cmtitle"] for entry in api if entry["query"].get("list") == "categorymembers")
    # The parent twice (maxlag, then the answer), "sub" once; "deep" is at the depth limit, the cycle is cut.
    assert subcat_lists == ["Category:Test logos", "Category:Test logos", "Category:Test logos/sub"]
    assert all(query["iiurlwidth"] == "120" and query["maxlag"] == "5" for query in file_pages)


def test_politeness_in_effect_on_the_wire(wiki, tmp_path):
    out = tmp_path / "items.jsonl"
    result = run_stage("-m", "scraping.commons", "--category", "Category:Test logos", "--api-url", wiki.api_url,
                       "--page-size", "3", "--depth", "1", "--contact", CONTACT, "-o", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 9  # jsonl: the tree down to "sub"
    assert json.loads(out.read_text().splitlines()[0])["licence"] == "CC BY-SA 4.0"
    api = wiki.requests_to("/w/api.php")
    assert {entry["user_agent"] for entry in api} == {user_agent(CONTACT)}
    assert wiki.max_in_flight["api"] == 1
    retried_429 = [entry["time"] for entry in api if entry["query"].get("gcmcontinue", "").endswith("|3")]
    retried_maxlag = [entry["time"] for entry in api if entry["query"].get("cmtitle") == "Category:Test logos"]
    for times in (retried_429, retried_maxlag):
        assert len(times) == 2 and times[1] - times[0] >= 0.95  # Retry-After: 1 was waited out


def test_settings_a_crawl_runs_with():
    crawler = Crawler(CommonsSpider)
    spider = CommonsSpider.from_crawler(crawler, category="Logos", contact=CONTACT)
    settings = crawler.settings
    assert settings["USER_AGENT"] == user_agent(CONTACT) and CONTACT in settings["USER_AGENT"]
    assert settings.getbool("ROBOTSTXT_OBEY") is True
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is True
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert 429 not in settings.getlist("RETRY_HTTP_CODES")  # left to RetryAfterMiddleware, which waits
    assert "scraping.polite.RetryAfterMiddleware" in settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert spider.category == "Category:Logos" and spider.thumb_width == 120


def test_runspider_works_too(wiki, tmp_path):
    out = tmp_path / "items.csv"
    result = run_stage("-m", "scrapy", "runspider", "scraping/commons.py", "-a", "category=Test logos/deep",
                       "-a", f"api_url={wiki.api_url}", "-a", f"contact={CONTACT}", "-O", str(out), *FAST,
                       cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert [row["title"] for row in read_csv(out)] == ["File:j.png"]


def test_wikimedia_needs_a_contact_and_bad_flags_get_one_line(tmp_path):
    result = run_stage("-m", "scraping.commons", "--category", "Unidentified logos", "-o", str(tmp_path / "i.csv"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scraping.commons: error: commons.wikimedia.org requires a contact in the User-Agent; "
        "pass --contact EMAIL_OR_URL (or set $LOGOGAN_CONTACT)"]
    with pytest.raises(UserError, match=r"items file .*i\.xml must end in one of \.csv, \.jsonl, \.jl"):
        main(["--category", "X", "-o", str(tmp_path / "i.xml"), "--api-url", "http://127.0.0.1:9/w/api.php"])


def test_unknown_category_writes_an_empty_items_file_and_keeps_nothing_partial(wiki, tmp_path):
    out = tmp_path / "items.csv"
    result = run_stage("-m", "scraping.commons", "--category", "Nothing here", "--api-url", wiki.api_url,
                       "-o", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    assert out.read_text().strip() == ",".join(ITEM_FIELDS)
    assert [path.name for path in tmp_path.iterdir()] == ["items.csv"]


@pytest.mark.parametrize("size, width", [(1, 20), (20, 20), (56, 60), (121, 250), (5000, 1920)])
def test_thumbnail_width_is_the_standard_one_at_or_above(size, width):
    assert thumbnail_width(size) == width


def test_category_names_and_retry_after_values():
    assert category_title("Unidentified_logos") == category_title("Category:Unidentified logos") == \
        "Category:Unidentified logos"
    assert retry_after_seconds(b"7", default=5, maximum=120) == 7
    assert retry_after_seconds(None, default=5, maximum=120) == 5
    assert retry_after_seconds("600", default=5, maximum=120) == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", default=5, maximum=120) == 0
