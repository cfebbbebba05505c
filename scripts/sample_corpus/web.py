"""web/: articles rendered into full pages (data/page.html) with boilerplate, plus the planted pages."""

from __future__ import annotations

import gzip
import html
import json
from string import Template

from . import plants
from .articles import (
    W,
    article_text,
    care_article,
    howto_article,
    near_duplicate,
    policy_article,
    tips_article,
    trip_article,
)
from .common import GRAMMAR, SEED, SITE, VOCAB, Gen, changed_fraction, jaccard, load_text, shingles


def esc(s: str) -> str:
    return html.escape(s, quote=False)


def render_article(blocks: list, css_class: str) -> str:
    out = [f'<article class="{css_class}">']
    for kind, val in blocks:
        if kind == "h1":
            out.append(f"  <h1>{esc(val)}</h1>")
        elif kind == "meta":
            out.append(f'  <p class="meta">{esc(val)}</p>')
        elif kind == "h2":
            out.append(f"  <h2>{esc(val)}</h2>")
        elif kind == "p":
            out.append(f"  <p>{esc(' '.join(val))}</p>")
        else:
            items = "\n".join(f"    <li>{esc(i)}</li>" for i in val)
            out.append(f"  <{kind}>\n{items}\n  </{kind}>")
    out.append("</article>")
    return "\n".join(out)


def render_page(
    *,
    section: str,
    slug: str,
    title: str,
    body_main: str,
    related: list[tuple[str, str]],
    variant: int,
    description: str,
    jsonld: dict | None = None,
    notice: str | None = None,
    widgets: bool = True,
) -> str:
    """A full page: the article inside header, nav, breadcrumbs, related links, footer, cookie banner, scripts."""
    sect_name, sect_url = ("Help Center", "/help") if section == "help" else ("Blog", "/blog")
    active = ' class="active"'
    nav = "\n".join(
        f'      <li{active if href == sect_url else ""}><a href="{href}">{esc(label)}</a></li>'
        for label, href in W["nav"]
    )
    rel = "\n".join(f'      <li><a href="/{section}/{s}">{esc(t)}</a></li>' for s, t in related)
    rel_title = "Related articles" if section == "help" else "You might also like"
    ld = ""
    if jsonld:
        ld = f'\n<script type="application/ld+json">{json.dumps(jsonld, ensure_ascii=False)}</script>'
    helpful = (
        ('\n  <div class="helpful-widget">Was this article helpful? <button>Yes</button> <button>No</button></div>')
        if section == "help"
        else (
            '\n  <div class="share">Share this post: <a href="#">Facebook</a> <a href="#">Pinterest</a> '
            '<a href="#">E-mail</a></div>'
        )
    )
    helpful = helpful if widgets else ""
    aside = (
        f'  <aside class="related">\n    <h2>{rel_title}</h2>\n    <ul>\n{rel}\n    </ul>\n  </aside>'
        if related
        else ""
    )
    return Template(load_text("page.html")).substitute(
        title=esc(title),
        description=html.escape(description),
        site=SITE,
        section=section,
        slug=slug,
        css=load_text("site.css").strip("\n"),
        variant=variant,
        jsonld=ld,
        header_version=3 + variant,
        promo=esc(W["promos"][variant % len(W["promos"])]),
        notice=f'\n<div class="notice">{esc(notice)}</div>' if notice else "",
        nav=nav,
        section_url=sect_url,
        section_name=sect_name,
        main=body_main + helpful + "\n" + aside if section == "help" else body_main + helpful,
        after_main="" if section == "help" else "\n" + aside.replace("  <aside", "<aside", 1),
        cookie_text=esc(W["cookie_texts"][variant % len(W["cookie_texts"])]),
    )


def render_print_page(slug: str, title: str, article_html: str) -> str:
    return Template(load_text("print_page.html")).substitute(
        title=esc(title), site=SITE, slug=slug, article=article_html
    )


def build_web(report: dict) -> dict[str, bytes]:
    """Every page under web/ (gzip, .htm, duplicates, boilerplate-only and bad-UTF-8 plants included)."""
    g = Gen(SEED + 1)
    rng = g.rng
    pages: list[dict] = []

    def add(slug: str, section: str, blocks: list, pool: list[str], frame: dict) -> None:
        """pool and frame are what near_duplicate may swap in for this article's sentences."""
        pages.append({"slug": slug, "section": section, "blocks": blocks, "pool": pool, "frame": frame})

    for topic in W["policies"]:
        add(topic["slug"], "help", policy_article(g, topic, g.date()), W["policy_generic"], {})
    for guide in W["care_guides"]:
        pool = W["care_clean"] + W["care_dry"] + W["care_check"]
        frame = {"product": guide["product"], "cat": guide["cat"]}
        add(guide["slug"], "help", care_article(g, guide, g.date()), pool, frame)
    for spec in W["howtos"]:
        frame = {"product": spec["product"], "cat": spec["cat"]}
        add(spec["slug"], "help", howto_article(g, spec, g.date()), W["howto_setup"], frame)
    authors = rng.sample(VOCAB["staff"], len(VOCAB["staff"]))
    for n, trip in enumerate(W["trips"]):
        frame = {"place": trip["place"], "duration": trip["duration"]}
        blocks = trip_article(g, trip, authors[n % len(authors)], g.date())
        add(trip["slug"], "blog", blocks, W["trip_route"], frame)
    for n, spec in enumerate(W["tips"]):
        blocks = tips_article(g, spec, authors[(n + 3) % len(authors)], g.date())
        add(spec["slug"], "blog", blocks, W["howto_trail"], {"snack": GRAMMAR["snack"]})
    by_slug = {p["slug"]: p for p in pages}
    titles = {p["slug"]: p["blocks"][0][1] for p in pages}

    def related(slug: str, section: str) -> list[tuple[str, str]]:
        others = [s for s in titles if s != slug and by_slug[s]["section"] == section]
        return [(s, titles[s]) for s in rng.sample(others, rng.randint(3, 4))]

    def page_html(p: dict, blocks: list, variant: int, notice: str | None = None, slug: str | None = None) -> str:
        slug = slug or p["slug"]
        title = blocks[0][1]
        first_p = next(v for k, v in blocks if k == "p")
        jsonld = None
        if p["section"] == "blog":
            meta = next(v for k, v in blocks if k == "meta")
            jsonld = {
                "@context": "https://schema.org",
                "@type": "BlogPosting",
                "headline": title,
                "author": {"@type": "Person", "name": meta.split(" · ")[0][3:]},
            }
        return render_page(
            section=p["section"],
            slug=slug,
            title=title,
            body_main=render_article(blocks, "help-article" if p["section"] == "help" else "post"),
            related=related(p["slug"], p["section"]),
            variant=variant,
            description=first_p[0],
            jsonld=jsonld,
            notice=notice,
        )

    files: dict[str, str | bytes] = {}
    for p in pages:
        ext = ".htm" if p["slug"] + ".htm" == plants.WEB_HTM else ".html"
        files[p["slug"] + ext] = page_html(p, p["blocks"], rng.randint(0, 2))

    # exact duplicates: same <article>, different boilerplate
    legacy_src = by_slug[plants.WEB_EXACT_DUPS["help-returns-legacy.html"][:-5]]
    archived = W["archived_copy"]
    files["help-returns-legacy.html"] = page_html(
        legacy_src, legacy_src["blocks"], 2, slug=archived["slug"], notice=archived["notice"]
    )
    print_src = by_slug[plants.WEB_EXACT_DUPS["blog-trip-lantern-lake-print.html"][:-5]]
    files["blog-trip-lantern-lake-print.html"] = render_print_page(
        print_src["slug"], print_src["blocks"][0][1], render_article(print_src["blocks"], "post")
    )

    # near duplicates: a new meta line ({byline}: the source's "By <author>"), edits, then swapped sentences
    for name, spec in W["near_duplicates"].items():
        src = by_slug[plants.WEB_NEAR_DUPS[name][:-5]]
        old_meta = next(v for k, v in src["blocks"] if k == "meta")
        meta = spec["meta"].format(byline=old_meta.split(" · ")[0])
        blocks = near_duplicate(g, src["blocks"], src["pool"], src["frame"], meta, spec["edits"])
        files[name] = page_html(src, blocks, rng.randint(0, 2), slug=name[:-5])
        report.setdefault("near", {})[f"web/{name}"] = (
            f"web/{plants.WEB_NEAR_DUPS[name]}",
            round(changed_fraction(article_text(src["blocks"]), article_text(blocks)), 3),
            round(jaccard(shingles(article_text(src["blocks"])), shingles(article_text(blocks))), 3),
        )

    # boilerplate-only page
    files[plants.WEB_BOILERPLATE_ONLY] = render_page(
        section="help",
        slug=plants.WEB_BOILERPLATE_ONLY[:-5],
        title=W["store_locator"]["title"],
        body_main=load_text("store_locator.html").rstrip("\n"),
        related=[],
        variant=1,
        description=W["store_locator"]["description"],
        widgets=False,
    )

    out: dict[str, bytes] = {}
    for name, text in files.items():
        data = text.encode("utf-8")
        if name == plants.WEB_BAD_UTF8:
            cut = data.index(b"</p>", data.index(b"<h2>"))
            cut = data.rindex(b" ", 0, cut)
            data = data[:cut] + b" \xff\xfe" + data[cut:]
        out[f"web/{name}"] = data
    gz_name = plants.WEB_GZ[:-3]
    out[f"web/{plants.WEB_GZ}"] = gzip.compress(out.pop(f"web/{gz_name}"), compresslevel=9, mtime=0)
    report["articles"] = {p["slug"]: article_text(p["blocks"]) for p in pages}
    return out
