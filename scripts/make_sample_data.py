#!/usr/bin/env python3
"""Generate tuneprep's bundled sample corpus under ``sample_data/`` (stdlib only, deterministic).

Every word is produced by this script from hand-written templates and small grammars about a
fictional outdoor-gear retailer, "Northwind Trail Supply" (help center, blog, staff docs,
support chats and tickets). Nothing is copied from elsewhere. Fixed seeds, gzip ``mtime=0``
and no set/hash-order dependence make two runs byte-identical. ``sample_data/`` is wiped and
rewritten on every run; ``--out DIR`` writes elsewhere. ``build()`` returns the files in memory.

Planted items (the tests in tests/test_sample_data.py check every one)
-----------------------------------------------------------------------
web/  39 pages: 33 distinct help-center/blog articles plus the plants below. Boilerplate on
    every page: <header> with <nav> menu and search form, breadcrumbs, <aside> related
    articles, <footer> with copyright and links, <div class="cookie-banner">...Accept all
    cookies...</div>, <script> (analytics, JSON-LD) and <style> blocks. Main text sits in
    <main><article> (150-600 words per page).
    - help-gift-cards.html.gz            gzip-compressed page (mtime=0)
    - howto-fit-hiking-boots.htm         the one ".htm" page
    - exact duplicates (identical <article>, different boilerplate):
        help-returns-legacy.html == help-returns.html
        blog-trip-lantern-lake-print.html == blog-trip-lantern-lake.html
    - near duplicates (date plus one or two sentences edited, ~5-10% of words):
        help-shipping-2023.html ~ help-shipping.html
        blog-tips-winter-camping-updated.html ~ blog-tips-winter-camping.html
        care-fjordline-rain-shell-v2.html ~ care-fjordline-rain-shell.html
    - store-locator.html                 boilerplate only, one-sentence <main> (min-length filter)
    - blog-trip-owl-creek.html           invalid UTF-8 (stray 0xff 0xfe mid-paragraph): quarantine
docs/ 27 files (.md guides and release notes, .txt procedures and how-tos, 100-800 words), with
    messy whitespace (tabs, trailing spaces, runs of blank lines, one CRLF file), non-breaking
    spaces in spec lists, curly quotes (support-style-guide.txt and others).
    - guide-ridgeline-45-copy.md         exact copy of guide-ridgeline-45.md
    - returns-desk-procedure-v2.txt      near duplicate of returns-desk-procedure.txt
    - howto-rewax-leather-boots.txt      mojibake ("donâ€™t")
    - empty.txt (0 bytes), tiny.txt (3 words), bad_bytes.txt (latin-1 "caf\\xe9": invalid UTF-8)
support_chats.jsonl  107 lines: 100 distinct conversations c0001-c0100 (6 intents, 2-6 turns, some
    with a system message first) plus these plants (1-based line numbers):
    - line 43: exact copy of c0007's line; line 94: exact copy of c0063's line
    - line 54: c0101, near duplicate of c0015; line 107: c0102, near duplicate of c0072
    - line 26: truncated JSON (c0103); line 35: blank; line 75: {"conversation_id": "c9999", "label": "refund"}
tickets.csv  308 rows (ticket_id,subject,text,label), 6 labels, product_info rare (15 rows);
    quoted commas and 6 texts with embedded newlines. Plants:
    - exact duplicate texts: T-1049 = T-1011, T-1162 = T-1124, T-1275 = T-1237
    - near duplicates: T-1072 ~ T-1047, T-1180 ~ T-1155, T-1293 ~ T-1268
    - empty text: T-1081, T-1208
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import difflib
import gzip
import html
import io
import json
import random
import re
import shutil
from pathlib import Path

SEED = 1729
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "sample_data"
SITE = "https://www.northwind-trail.example"

# --------------------------------------------------------------------------------------------
# Plant registry (file names / ids); the tests import these.
# --------------------------------------------------------------------------------------------
WEB_GZ = "help-gift-cards.html.gz"
WEB_HTM = "howto-fit-hiking-boots.htm"
WEB_EXACT_DUPS = {
    "help-returns-legacy.html": "help-returns.html",
    "blog-trip-lantern-lake-print.html": "blog-trip-lantern-lake.html",
}
WEB_NEAR_DUPS = {
    "help-shipping-2023.html": "help-shipping.html",
    "blog-tips-winter-camping-updated.html": "blog-tips-winter-camping.html",
    "care-fjordline-rain-shell-v2.html": "care-fjordline-rain-shell.html",
}
WEB_BOILERPLATE_ONLY = "store-locator.html"
WEB_BAD_UTF8 = "blog-trip-owl-creek.html"

DOCS_EXACT_DUPS = {"guide-ridgeline-45-copy.md": "guide-ridgeline-45.md"}
DOCS_NEAR_DUPS = {"returns-desk-procedure-v2.txt": "returns-desk-procedure.txt"}
DOCS_EMPTY = "empty.txt"
DOCS_TINY = "tiny.txt"
DOCS_BAD_BYTES = "bad_bytes.txt"
DOCS_MOJIBAKE = "howto-rewax-leather-boots.txt"
DOCS_CRLF = "release-notes-4.2.md"

CHAT_BASE = 100
CHAT_EXACT_DUPS = {"c0007": "c0040", "c0063": "c0088"}  # copied line -> inserted after this id
CHAT_NEAR_DUPS = {"c0101": "c0015", "c0102": "c0072"}  # near copy -> source
CHAT_NEAR_AFTER = {"c0101": "c0050", "c0102": "c0100"}
CHAT_MALFORMED_AFTER = "c0025"
CHAT_BLANK_AFTER = "c0033"
CHAT_NO_MESSAGES_AFTER = "c0070"
CHAT_NO_MESSAGES_LINE = '{"conversation_id": "c9999", "label": "refund"}'
CHAT_INTENT_COUNTS = {
    "order_status": 20,
    "refund": 18,
    "shipping": 17,
    "product_question": 17,
    "account": 15,
    "warranty": 13,
}

TICKET_LABEL_COUNTS = {
    "shipping": 72,
    "returns": 62,
    "billing": 58,
    "technical": 48,
    "account": 45,
    "product_info": 15,
}
TICKET_N_EXACT = 3
TICKET_N_NEAR = 3
TICKET_N_EMPTY = 2
TICKET_N_MULTILINE = 6

# --------------------------------------------------------------------------------------------
# Shared vocabulary
# --------------------------------------------------------------------------------------------
PRODUCTS = [
    {
        "name": "Ridgeline 45 backpack",
        "slug": "ridgeline-45",
        "cat": "backpack",
        "price": "$189.00",
        "weight": "1.4 kg",
        "use": "weekend trips and lightweight multi-day hikes",
        "specs": [
            "Volume: 45 L",
            "Weight: 1.4 kg",
            "Frame: removable aluminum stay",
            "Fabric: 210D recycled nylon ripstop",
            "Torso range: 16 to 21 in",
            "Hip belt pockets: 2, zippered",
        ],
    },
    {
        "name": "Cedar Hollow 2 tent",
        "slug": "cedar-hollow-2",
        "cat": "tent",
        "price": "$349.00",
        "weight": "1.9 kg",
        "use": "three-season backpacking for two people",
        "specs": [
            "Capacity: 2 people",
            "Packed weight: 1.9 kg",
            "Floor area: 2.7 m²",
            "Peak height: 104 cm",
            "Poles: DAC aluminum, color-coded",
            "Doors and vestibules: 2",
        ],
    },
    {
        "name": "Summit Ember down jacket",
        "slug": "summit-ember",
        "cat": "jacket",
        "price": "$259.99",
        "weight": "360 g",
        "use": "cold mornings in camp and winter day hikes",
        "specs": [
            "Fill: 800-fill-power responsibly sourced down",
            "Weight: 360 g (size M)",
            "Shell: 20D recycled nylon",
            "Pockets: 2 hand, 1 chest, 1 internal stash",
            "Packs into: its own chest pocket",
            "Fit: regular, hip length",
        ],
    },
    {
        "name": "Tarn Trek hiking boots",
        "slug": "tarn-trek",
        "cat": "boots",
        "price": "$164.00",
        "weight": "1.2 kg",
        "use": "rocky trails and long days with a loaded pack",
        "specs": [
            "Weight: 1.2 kg per pair (US 9)",
            "Upper: full-grain leather and abrasion-resistant mesh",
            "Membrane: waterproof and breathable",
            "Outsole: lugged rubber, 5 mm lugs",
            "Widths: regular and wide",
            "Drop: 12 mm",
        ],
    },
    {
        "name": "Glowworm 300 headlamp",
        "slug": "glowworm-300",
        "cat": "headlamp",
        "price": "$39.95",
        "weight": "78 g",
        "use": "night hiking, camp chores and early alpine starts",
        "specs": [
            "Output: 300 lumens (max)",
            "Weight: 78 g with battery",
            "Battery: rechargeable, USB-C",
            "Run time: 4 h on high, 60 h on low",
            "Modes: spot, flood, red, lock",
            "Water resistance: IPX4",
        ],
    },
    {
        "name": "Brookside squeeze filter",
        "slug": "brookside-filter",
        "cat": "water filter",
        "price": "$44.99",
        "weight": "85 g",
        "use": "treating water from streams and lakes on the trail",
        "specs": [
            "Weight: 85 g",
            "Filter type: 0.1 micron hollow fiber",
            "Flow rate: about 1.5 L per minute",
            "Lifetime: up to 1,500 L",
            "Includes: 1 L soft flask and backflush syringe",
            "Threads: standard 28 mm bottle",
        ],
    },
    {
        "name": "Larchwood 20 sleeping bag",
        "slug": "larchwood-20",
        "cat": "sleeping bag",
        "price": "$229.00",
        "weight": "1.1 kg",
        "use": "spring and autumn nights in the mountains",
        "specs": [
            "Comfort rating: 28 °F",
            "Lower limit: 20 °F",
            "Weight: 1.1 kg (regular)",
            "Fill: 650-fill-power down",
            "Shape: mummy with draft collar",
            "Zipper: full length, left side",
        ],
    },
    {
        "name": "Pika canister stove",
        "slug": "pika-stove",
        "cat": "stove",
        "price": "$64.50",
        "weight": "92 g",
        "use": "quick meals and hot drinks in camp",
        "specs": [
            "Weight: 92 g",
            "Output: 2.6 kW",
            "Boil time: about 3.5 min per liter",
            "Ignition: built-in piezo",
            "Fuel: threaded isobutane canisters",
            "Pot supports: 3 folding arms",
        ],
    },
]
EXTRA_PRODUCTS = [
    ("Heron 22 daypack", "daypack", "$79.95"),
    ("Bracken Dome 4 tent", "tent", "$479.00"),
    ("Fjordline rain shell", "rain jacket", "$174.50"),
    ("Switchback trail runners", "trail shoes", "$129.99"),
    ("Kestrel carbon trekking poles", "trekking poles", "$119.00"),
    ("Mossback insulated sleeping pad", "sleeping pad", "$139.95"),
    ("Driftwood camp chair", "camp chair", "$59.00"),
    ("Alder 750 insulated bottle", "bottle", "$32.00"),
    ("Thornbush merino base layer", "base layer", "$89.00"),
    ("Marten fleece hoodie", "fleece", "$99.95"),
]
ALL_PRODUCTS = [(p["name"], p["cat"], p["price"]) for p in PRODUCTS] + EXTRA_PRODUCTS
WEIGHTS = {
    **{p["name"]: p["weight"] for p in PRODUCTS},
    "Heron 22 daypack": "640 g",
    "Bracken Dome 4 tent": "3.6 kg",
    "Fjordline rain shell": "310 g",
    "Switchback trail runners": "590 g per pair",
    "Kestrel carbon trekking poles": "420 g per pair",
    "Mossback insulated sleeping pad": "540 g",
    "Driftwood camp chair": "980 g",
    "Alder 750 insulated bottle": "390 g",
    "Thornbush merino base layer": "210 g",
    "Marten fleece hoodie": "450 g",
}
# Product pools for chat branches where not every product makes sense.
ZIPPED = [
    "Ridgeline 45 backpack",
    "Heron 22 daypack",
    "Cedar Hollow 2 tent",
    "Bracken Dome 4 tent",
    "Summit Ember down jacket",
    "Fjordline rain shell",
    "Larchwood 20 sleeping bag",
    "Marten fleece hoodie",
]
FABRIC = ZIPPED + ["Driftwood camp chair", "Thornbush merino base layer"]
COATED = [
    "Fjordline rain shell",
    "Cedar Hollow 2 tent",
    "Bracken Dome 4 tent",
    "Tarn Trek hiking boots",
    "Ridgeline 45 backpack",
    "Summit Ember down jacket",
]
SIZED = [
    "Summit Ember down jacket",
    "Fjordline rain shell",
    "Tarn Trek hiking boots",
    "Switchback trail runners",
    "Thornbush merino base layer",
    "Marten fleece hoodie",
]
WARM = [
    "Larchwood 20 sleeping bag",
    "Summit Ember down jacket",
    "Mossback insulated sleeping pad",
    "Marten fleece hoodie",
]
PAIRS = [
    ("Mossback insulated sleeping pad", "Larchwood 20 sleeping bag"),
    ("Brookside squeeze filter", "Alder 750 insulated bottle"),
    ("Kestrel carbon trekking poles", "Cedar Hollow 2 tent"),
    ("Glowworm 300 headlamp", "Ridgeline 45 backpack"),
    ("Heron 22 daypack", "Brookside squeeze filter"),
    ("Pika canister stove", "Alder 750 insulated bottle"),
    ("Summit Ember down jacket", "Fjordline rain shell"),
]

STAFF = [
    "Maya Okafor",
    "Tomasz Brandt",
    "Priya Raman",
    "Elliot Vance",
    "Ines Carvalho",
    "Jonah Whitlock",
    "Sofia Lindqvist",
    "Marcus Bell",
]
STORES = ["our Riverside store", "the Harbor Point store", "the Elm Street flagship", "our Cedar Mills outlet"]
STORE_NAMES = ["Riverside", "Harbor Point", "Elm Street", "Cedar Mills"]
FIRST = [
    "Avery",
    "Jordan",
    "Priya",
    "Mateo",
    "Hannah",
    "Kofi",
    "Lena",
    "Diego",
    "Sana",
    "Oliver",
    "Grace",
    "Tariq",
    "Mei",
    "Lucas",
    "Nora",
    "Ravi",
    "Chloe",
    "Ibrahim",
    "Elena",
    "Sam",
    "Yuki",
    "Felix",
    "Amara",
    "Jonas",
    "Rosa",
    "Caleb",
    "Ingrid",
    "Theo",
    "Leila",
    "Marcus",
    "Dana",
    "Wes",
]
LAST = [
    "Okafor",
    "Brandt",
    "Lindqvist",
    "Moreno",
    "Castillo",
    "Nakamura",
    "Whitlock",
    "Haddad",
    "Keller",
    "Osei",
    "Novak",
    "Fitzgerald",
    "Petrov",
    "Delgado",
    "Sato",
    "Murray",
    "Achebe",
    "Larsen",
    "Quinn",
    "Romero",
    "Tran",
    "Walsh",
    "Yilmaz",
    "Abbott",
    "Bishop",
    "Chen",
    "Duarte",
    "Ferris",
    "Greer",
    "Holm",
]
CITIES = ["Denver", "Boise", "Tucson", "Burlington", "Duluth", "Spokane", "Asheville", "Madison", "Bend", "Missoula"]
COUNTRIES = ["Canada", "the United Kingdom", "Germany", "Australia", "New Zealand", "Ireland", "the Netherlands"]
COLORS = ["slate blue", "moss green", "rust", "charcoal", "glacier blue", "ember orange", "sand", "graphite"]
OTHER_BRANDS = ["Summitcraft", "Polaris Peak", "Tallgrass Outfitters", "Bluefin Alpine"]
SIZES = ["small", "medium", "large", "US 9", "US 10.5", "women's 8", "XL"]

GRAMMAR: dict[str, list[str]] = {
    "season": ["spring", "early summer", "late summer", "autumn", "late autumn", "winter", "the shoulder season"],
    "weather": [
        "a steady drizzle",
        "gusty crosswinds",
        "a sudden cold snap",
        "thick valley fog",
        "dry afternoon heat",
        "sleet that slowly turned to snow",
        "a warm, humid stillness",
        "a hard overnight frost",
    ],
    "terrain": [
        "loose scree",
        "a muddy forest track",
        "exposed granite slabs",
        "root-covered singletrack",
        "wet boardwalk",
        "a steep run of switchbacks",
        "a sandy coastal path",
        "snow-patched meadows",
    ],
    "store": STORES,
    "often": [
        "every few trips",
        "once a season",
        "after every muddy outing",
        "at the end of each season",
        "whenever it starts to look dull",
    ],
    "time_hint": [
        "before every trip",
        "at the end of each season",
        "after any long trip",
        "when you unpack at home",
        "before you put it away for the winter",
    ],
    "snack": [
        "trail mix",
        "oat bars",
        "a thermos of lentil soup",
        "cheese and crackers",
        "dried apricots",
        "peanut butter wraps",
        "a bag of salted pretzels",
    ],
    "wildlife": [
        "a pair of herons",
        "two mule deer",
        "a very bold marmot",
        "a family of grouse",
        "an osprey circling the water",
        "more banana slugs than I could count",
    ],
    "friend": [
        "a hiking partner from work",
        "my sister",
        "two friends from the climbing gym",
        "a colleague from the warehouse team",
        "my neighbor and her dog",
        "my brother-in-law",
    ],
    "distance": ["11 miles", "14 miles", "a little over 20 miles", "roughly 9 miles", "16 miles"],
    "elevation": ["2,900 feet", "about 3,400 feet", "1,800 feet", "nearly 4,000 feet"],
    "feeling": [
        "tired but happy",
        "soaked to the knees",
        "ready for a hot meal",
        "grinning",
        "quietly proud of ourselves",
    ],
}

# --------------------------------------------------------------------------------------------
# Help center: policies
# --------------------------------------------------------------------------------------------
POLICIES = [
    {
        "slug": "help-returns",
        "title": "Returns and exchanges",
        "intro": [
            "If something is not right, you can send it back without fuss.",
            "This article explains how returns and exchanges work for online and in-store purchases.",
        ],
        "headings": ["What you can return", "How refunds work"],
        "facts": [
            "You can return most items within 60 days of delivery for a full refund.",
            "Items must be clean and unused, with the original tags still attached.",
            "Footwear can be returned after indoor wear, but not after use on the trail.",
            "Start a return from the Orders page, print the prepaid label and drop the parcel at any carrier location.",
            "A return shipping fee of $6.95 is deducted from the refund unless the item arrived faulty.",
            "Refunds go back to the original payment method within 5 to 10 business days of inspection.",
            "Exchanges for a different size are free and ship as soon as the carrier scans the original.",
            "Personalized items and opened fuel canisters cannot be returned.",
        ],
        "items": [
            "The order number or gift receipt",
            "The item, clean and with tags attached",
            "The original box for footwear",
            "A printed return label or the QR code on your phone",
            "Any free gift that came with the order",
        ],
    },
    {
        "slug": "help-shipping",
        "title": "Shipping times and costs",
        "intro": [
            "We pack every order in our warehouse in Oregon and ship it with trusted carriers.",
            "Here is what delivery costs and how long it usually takes.",
        ],
        "headings": ["Delivery options", "Tracking your parcel"],
        "facts": [
            "Standard shipping takes 3 to 5 business days within the continental United States.",
            "Orders over $75 ship free with standard delivery.",
            "Expedited shipping arrives in 2 business days and costs $14.95.",
            "Orders placed before 1 pm Pacific on a business day leave the warehouse the same day.",
            "You will receive a tracking link by e-mail as soon as the label is created.",
            "Fuel canisters and some batteries can only ship by ground.",
            "We ship to PO boxes, but oversized items such as tents need a street address.",
            "During the holiday rush, allow one or two extra days for delivery.",
        ],
        "items": [
            "Standard: 3 to 5 business days, $7.95 or free over $75",
            "Expedited: 2 business days, $14.95",
            "Overnight: next business day, $29.95",
            "Store pickup: free, usually ready in two hours",
        ],
    },
    {
        "slug": "help-warranty",
        "title": "Our Trail-Ready warranty",
        "intro": [
            "We design our gear to last, and we stand behind it when it does not.",
            "The Trail-Ready warranty covers every Northwind-branded product.",
        ],
        "headings": ["What the warranty covers", "Making a claim"],
        "facts": [
            "Every Northwind-branded product is covered by our Trail-Ready warranty for its useful life.",
            "The warranty covers defects in materials and workmanship, not normal wear and tear.",
            "Damage from accidents, pets, campfires or improper care is not covered, but we can often repair it for a fair price.",
            "To start a claim, send us your order number, a short description and two or three clear photos.",
            "Most claims are reviewed within five business days.",
            "If we cannot repair the item, we will replace it with the same or a comparable model.",
            "Products from other brands carry their maker's warranty, and we will help you contact them.",
            "Please clean the item before sending it in, because dirty gear is returned unprocessed.",
        ],
        "items": [
            "Seam tape that peels or leaks",
            "Zippers that split under normal use",
            "Buckles and hardware that break",
            "Delaminating waterproof coatings",
            "Stitching that unravels",
        ],
    },
    {
        "slug": "help-price-match",
        "title": "Price match promise",
        "intro": [
            "We want you to feel good about the price you paid.",
            "If you see the same item for less, let us know.",
        ],
        "headings": ["How price matching works", "What is excluded"],
        "facts": [
            "If you find an identical item for less at an authorized retailer within 14 days of purchase, we refund the difference.",
            "The item must be the same model, color and size, and in stock at the competitor.",
            "Price matching does not apply to auction sites, marketplace sellers or member-only prices.",
            "Send a link or a photo of the advertised price to our support team with your order number.",
            "If our own price drops within 14 days, we adjust it automatically when you ask.",
            "Price matches are limited to one per item and five per customer each year.",
            "Shipping costs are included when comparing totals.",
        ],
        "items": [
            "A link to the competitor's product page",
            "Your Northwind order number",
            "The date you saw the lower price",
            "Confirmation that the item is in stock",
        ],
    },
    {
        "slug": "help-gift-cards",
        "title": "Gift cards",
        "intro": [
            "Not sure which sleeping bag your friend wants? A gift card lets them choose.",
            "Here is everything you need to know about buying and using Northwind gift cards.",
        ],
        "headings": ["Buying a gift card", "Using and checking your balance"],
        "facts": [
            "Northwind gift cards are available in amounts from $10 to $500.",
            "Digital gift cards arrive by e-mail within a few minutes, while physical cards ship free.",
            "Gift cards never expire and carry no fees.",
            "You can check your balance online or at any store register.",
            "Lost cards can be replaced if you have the original receipt or order confirmation.",
            "Gift cards cannot be redeemed for cash except where the law requires it.",
            "You can combine up to three gift cards on one order.",
        ],
        "items": [
            "Choose a design and an amount",
            "Add a personal message",
            "Schedule delivery for a birthday or holiday",
            "Send it by e-mail or post",
        ],
    },
    {
        "slug": "help-trail-points",
        "title": "Trail Points membership",
        "intro": [
            "Trail Points is our free membership program, and it takes a minute to join.",
            "Members collect points on every purchase and get a few perks along the way.",
        ],
        "headings": ["Earning points", "Using your rewards"],
        "facts": [
            "Members earn one point for every dollar spent, and 200 points become a $10 reward.",
            "Rewards appear in your account on the first day of the following month.",
            "Points expire after 18 months without any account activity.",
            "Members get early access to seasonal sales and free shipping on orders over $50.",
            "You can link an in-store purchase to your account within 30 days by showing the receipt.",
            "Points from returned items are removed once the refund is processed.",
            "Members also get a birthday reward worth $5 each year.",
        ],
        "items": [
            "1 point per dollar on all purchases",
            "Double points during member weekends",
            "Free shipping over $50",
            "Early access to sales",
            "A yearly birthday reward",
        ],
    },
    {
        "slug": "help-repairs",
        "title": "Repair workshop",
        "intro": [
            "A good repair keeps gear out of the landfill and on the trail.",
            "Our workshop fixes Northwind gear and many items from other brands.",
        ],
        "headings": ["What we repair", "Costs and turnaround"],
        "facts": [
            "Our repair workshop fixes zippers, seams, buckles, tent poles and sleeping pad leaks.",
            "Simple repairs such as a replaced zipper slider usually take about a week.",
            "We send a quote before starting any paid repair.",
            "Drop items off at any store or mail them to the workshop with the printable repair form.",
            "Repairs covered by the warranty are free, including return shipping.",
            "Most paid repairs cost between $15 and $60.",
            "If a repair is not possible, we will tell you why and return the item free of charge.",
        ],
        "items": [
            "Zipper sliders and pulls",
            "Torn seams and small holes",
            "Broken buckles and straps",
            "Cracked tent pole sections",
            "Leaking sleeping pads",
        ],
    },
    {
        "slug": "help-store-pickup",
        "title": "Buy online, pick up in store",
        "intro": [
            "Skip the delivery wait and collect your order from a Northwind store.",
            "Pickup is free and most orders are ready the same day.",
        ],
        "headings": ["How pickup works", "Collecting your order"],
        "facts": [
            "Choose Pick Up In Store at checkout to collect your order from any Northwind store.",
            "We will e-mail you when the order is ready, usually within two hours during opening times.",
            "Bring the confirmation e-mail and a photo ID.",
            "Orders are held for seven days before being returned to stock and refunded.",
            "Someone else can collect the order if you add their name at checkout.",
            "Fuel canisters bought online can only be collected in store, never shipped by air.",
        ],
        "items": [
            "Riverside: open daily 10 to 7",
            "Harbor Point: open daily 9 to 6",
            "Elm Street flagship: open daily 10 to 8",
            "Cedar Mills outlet: open Wednesday to Sunday",
        ],
    },
    {
        "slug": "help-international",
        "title": "International orders",
        "intro": [
            "We ship to a growing list of countries outside the United States.",
            "International orders follow a few extra rules because of customs and carrier limits.",
        ],
        "headings": ["Where we ship", "Duties, taxes and returns"],
        "facts": [
            "We currently ship to Canada, the United Kingdom, the European Union, Australia and New Zealand.",
            "Duties and taxes are calculated at checkout so there are no surprises on delivery.",
            "International orders usually arrive within 7 to 14 business days.",
            "Some items, including fuel, knives and lithium batteries, cannot be shipped abroad.",
            "International returns are accepted, but the customer pays the return postage.",
            "Prices are shown in US dollars, and your bank sets the exchange rate.",
        ],
        "items": ["Canada", "United Kingdom", "European Union member states", "Australia", "New Zealand"],
    },
    {
        "slug": "help-account",
        "title": "Managing your account",
        "intro": [
            "Your Northwind account keeps your orders, addresses and Trail Points in one place.",
            "This article covers sign-in problems, profile changes and privacy requests.",
        ],
        "headings": ["Signing in", "Profile and privacy"],
        "facts": [
            "You can reset your password from the sign-in page by choosing Forgot password.",
            "The reset link is valid for 30 minutes, and you can simply request a new one if it expires.",
            "To change the e-mail address on your account, sign in and open Profile settings.",
            "Turning on two-step verification adds an extra layer of protection to your account.",
            "If you want your account closed and your data deleted, send a request from the Privacy page.",
            "We will never ask for your password by phone, chat or e-mail.",
            "Accounts lock for 30 minutes after five failed sign-in attempts.",
        ],
        "items": [
            "Update your name and phone number",
            "Save up to five delivery addresses",
            "Choose which e-mails you receive",
            "Download a copy of your data",
        ],
    },
    {
        "slug": "help-cancellations",
        "title": "Changing or cancelling an order",
        "intro": [
            "Plans change, and sometimes an order needs to change with them.",
            "How much we can change depends on how far the order has moved through the warehouse.",
        ],
        "headings": ["Cancelling an order", "Changing an order"],
        "facts": [
            "You can cancel an order within 30 minutes of placing it from the Orders page.",
            "After that, the order may already be in the packing queue, but our team will try to stop it if you contact us quickly.",
            "If an order has shipped, you can refuse delivery or return it using the standard returns process.",
            "Changes to size or color are handled by cancelling the item and placing a new order.",
            "Address changes are possible until the shipping label is printed.",
            "Cancelled orders are refunded in full, including shipping.",
            "Pending authorizations on your card drop off within three to five business days.",
        ],
        "items": [
            "Within 30 minutes: cancel it yourself",
            "Before packing: contact support",
            "After shipping: refuse delivery or return it",
            "Store pickup orders: cancel any time before collection",
        ],
    },
]
POLICY_GENERIC = [
    "These terms apply to orders placed on our website, in the Northwind app and at every store.",
    "We review this policy every season and post any changes on this page.",
    "Keep your order number handy; it starts with NW- and appears in your confirmation e-mail.",
    "Our support team answers messages within one business day, Monday to Saturday.",
    "Trail Points members get a few extra benefits, which are noted where they apply.",
    "Exceptions are possible in unusual circumstances, so it is always worth asking.",
    "You can check the progress of any request from the Orders page of your account.",
    "Gift purchases follow the same rules, and the recipient can start the process with a gift receipt.",
    "Items bought during clearance events may carry different conditions, which are shown at checkout.",
    "We never ask for your full card number by e-mail, phone or chat.",
    "If you bought something in one of our stores, the staff there can help you in person.",
    "We try to keep the process simple, and most requests are settled with a single message.",
    "All times in this article refer to Pacific time unless noted otherwise.",
    "Where local consumer law gives you more rights, those rights always apply.",
    "Business customers and schools should contact our group sales team for tailored terms.",
    "Our store teams follow exactly the same policy as the online shop.",
]
POLICY_CLOSING = [
    "Still stuck? Send us a message and include your order number so we can help faster.",
    "You can reach the support team by chat, by e-mail at help@northwind-trail.example or by phone at 1-800-555-0147.",
    "Our store staff are also happy to answer questions in person.",
    "We read every piece of feedback about these articles and use it to improve them.",
    "If your question is not covered here, the search bar at the top of the page searches the whole help center.",
    "Thanks for shopping with a small, independent outdoor company.",
    "The chat button at the bottom of this page connects you with a real person during opening hours.",
]
CLOSING_HEADINGS = ["Still need help?", "Contact us", "Questions?", "Need a hand?", "Getting in touch"]

# --------------------------------------------------------------------------------------------
# Help center: care guides and how-tos
# --------------------------------------------------------------------------------------------
CARE_INTRO = [
    "Your {product} is built to handle {terrain}, but a little care {often} keeps it working for years.",
    "A well-maintained {product} will outlast several cheaper replacements.",
    "Most owners find that a proper clean {often} is plenty for normal use.",
    "Careful storage matters just as much as cleaning, especially after {season} trips.",
    "Keep the care label; it lists the exact temperature limits for your {cat}.",
    "Technical fabrics lose performance slowly, so problems are easy to miss until a wet day exposes them.",
]
CARE_CLEAN = [
    "Start by emptying every pocket and shaking out grit, sand and crumbs.",
    "Use lukewarm water and a mild, fragrance-free soap, because harsh detergents strip factory coatings.",
    "A soft brush works well for dried mud, while a stiff one can scuff the fabric.",
    "If you notice a musty smell, a soak in diluted gear wash usually solves it.",
    "Avoid solvents, bleach and fabric softener, all of which shorten the life of technical materials.",
    "Spot-clean small stains with a damp cloth before they have a chance to set.",
    "Rinse off salt water or sweat as soon as possible, because both break down fibers over time.",
    "For stubborn dirt, let the {cat} soak for twenty minutes and then rinse it twice.",
    "Close all zippers and hook-and-loop tabs before washing so they do not snag.",
    "Run an extra rinse cycle so no soap residue is left behind.",
    "Wash it on its own rather than with jeans or towels, which shed lint and add friction.",
]
CARE_DRY = [
    "Let it air dry away from direct sunlight, radiators and campfires.",
    "Never put the {cat} in a tumble dryer on high heat, because seams and laminates can separate.",
    "Store it loosely in a cool, dry cupboard rather than compressed in a stuff sack.",
    "Hang it on a wide hanger or lay it flat so it keeps its shape.",
    "Dry everything completely before storage to prevent mildew.",
    "If the care label allows it, a low dryer setting helps restore the water-repellent finish.",
    "Do not iron the fabric directly; use a low setting and a cloth barrier if the label allows heat.",
    "A breathable cotton storage sack is better than a plastic bin for long-term storage.",
]
CARE_CHECK = [
    "Check zippers, buckles and stitching {time_hint} so you can catch wear early.",
    "Water that beads up and rolls off is a sign the finish is still doing its job.",
    "When water starts soaking into the outer fabric, it is time to refresh the water-repellent treatment.",
    "Lubricate sticky zippers with a little zipper wax rather than oil.",
    "Inspect the {cat} after any trip across {terrain}, since abrasion damage is easy to miss.",
    "Small tears can be patched with the repair tape that ships in the box.",
    "Our repair team at {store} can replace worn parts if something does fail.",
    "If you are unsure about a step, our help center team is happy to walk you through it.",
    "Give it a final check before packing, so you are not surprised at the trailhead.",
]
CARE_STEPS = [
    "Empty the pockets and brush off loose dirt.",
    "Close every zipper and strap.",
    "Wash by hand or on a gentle cycle with technical wash.",
    "Rinse twice in cool water.",
    "Press out water gently; never wring it.",
    "Dry flat or on a wide hanger out of the sun.",
    "Refresh the water-repellent finish if water no longer beads.",
    "Store loosely in a dry, dark place.",
]
CARE_GUIDES = [
    ("care-fjordline-rain-shell", "Fjordline rain shell", "rain jacket"),
    ("care-summit-ember-down-jacket", "Summit Ember down jacket", "down jacket"),
    ("care-tarn-trek-boots", "Tarn Trek hiking boots", "pair of boots"),
    ("care-cedar-hollow-tent", "Cedar Hollow 2 tent", "tent"),
    ("care-larchwood-sleeping-bag", "Larchwood 20 sleeping bag", "sleeping bag"),
    ("care-mossback-sleeping-pad", "Mossback insulated sleeping pad", "sleeping pad"),
]
CARE_TITLES = [
    "How to care for your {product}",
    "Caring for the {product}",
    "{product} care guide",
    "Cleaning and storing the {product}",
    "Keep your {cat} in shape: the {product}",
    "Looking after your {product}",
]

HOWTO_CHOOSE = [
    "Choosing the right {cat} depends on where you go, how long you stay out and how much weight you are willing to carry.",
    "Before you buy, think about the trips you actually take rather than the ones you dream about.",
    "If you hike mostly in {season}, prioritize ventilation over raw warmth.",
    "Weight matters, but comfort on day three matters more.",
    "Ask a staff member at {store} to help you compare two or three options side by side.",
    "Read any rating as a guide, not a promise, since everyone's body and habits are different.",
    "Many customers pair the {product} with a lighter backup for day trips.",
    "Spend your budget first on the items that touch your body for the longest: boots, pack and sleep system.",
    "Try things on late in the day, when your feet and hands are at their largest.",
    "A simple, well-made design almost always beats a complicated one with extra features.",
]
HOWTO_SETUP = [
    "Practice with the {product} at home before your first night outside.",
    "Lay out every part on the floor and check it against the list in the box.",
    "Most people get the fit right on the second or third try, so do not rush it.",
    "Bring the socks and layers you actually hike in when you try things on.",
    "Test it on a short local walk before committing to a long trip.",
    "If something feels wrong, adjust it early rather than hoping it improves.",
    "Write down what worked after each trip so your next packing list is shorter.",
    "Make one change at a time so you can tell which adjustment actually helped.",
    "Take a photo of the setup once it is right, so you can copy it in the dark later.",
    "Check the fit again after a few outings, once the materials have settled.",
]
HOWTO_TRAIL = [
    "Check the weather forecast for the area and plan for conditions a little worse than predicted.",
    "Hydrate before you feel thirsty, especially on {terrain}.",
    "Keep the heaviest items in the middle of the pack, close to your spine.",
    "In windy conditions, guy out every line even if it seems like overkill.",
    "Leave a few minutes at the end of the day to dry damp gear before dark.",
    "You will sleep warmer if you eat a small snack like {snack} before bed.",
    "Stop and fix hot spots the moment you feel them, not at the next break.",
    "Loosen straps on long descents and tighten them again for the climbs.",
    "Pack rain gear near the top, where you can reach it without unpacking everything.",
    "Turn back if the weather or the route stops matching your plan.",
]
HOWTO_STEPS = [
    "Unpack the {cat} and check every part.",
    "Read the quick-start card included in the box.",
    "Adjust the fit in good light at home.",
    "Take it on a short test walk.",
    "Make small adjustments after the first hour.",
    "Note anything that rubs or pinches.",
    "Clean and dry it fully after the trip.",
    "Register the {product} to activate the warranty.",
    "Pack a small repair kit and spare parts.",
]
HOWTOS = [
    {
        "slug": "howto-choose-sleeping-bag",
        "title": "How to choose a sleeping bag",
        "product": "Larchwood 20 sleeping bag",
        "cat": "sleeping bag",
        "special": [
            "Look at the comfort rating rather than the lower limit when you compare bags.",
            "Down packs smaller and lasts longer, while synthetic fill keeps more warmth when damp.",
            "A mummy shape saves weight, but restless sleepers often prefer a roomier cut.",
            "Your sleeping pad matters as much as the bag, because the ground steals heat quickly.",
        ],
    },
    {
        "slug": "howto-fit-hiking-boots",
        "title": "How to fit hiking boots",
        "product": "Tarn Trek hiking boots",
        "cat": "pair of boots",
        "special": [
            "A good rule of thumb is to leave a thumb's width of space in front of your longest toe.",
            "Your heel should stay put when you walk up a ramp; if it lifts, try a different lacing pattern.",
            "Break new boots in with short walks around town before a long hike.",
            "Wide feet are common, and several of our boots come in a wide version.",
        ],
    },
    {
        "slug": "howto-pitch-cedar-hollow",
        "title": "Setting up the Cedar Hollow 2 tent",
        "product": "Cedar Hollow 2 tent",
        "cat": "tent",
        "special": [
            "Stake out the corners of the floor first, then clip the inner tent to the poles.",
            "The poles are color-coded, so match each pole end to the grommet with the same color.",
            "On uneven ground, pitch with the head end slightly uphill.",
            "Tension the fly evenly from opposite corners so the fabric does not touch the inner tent.",
        ],
    },
    {
        "slug": "howto-pack-a-backpack",
        "title": "How to pack a backpack",
        "product": "Ridgeline 45 backpack",
        "cat": "backpack",
        "special": [
            "Put your sleeping bag at the bottom, since you will not need it until camp.",
            "Tighten the straps from the bottom up: hip belt first, then shoulder straps, then load lifters.",
            "Use the compression straps to keep the load close to your back.",
            "Snacks, map and sunscreen belong in the hip belt pockets, where you can reach them on the move.",
        ],
    },
    {
        "slug": "howto-choose-trekking-poles",
        "title": "Choosing and using trekking poles",
        "product": "Kestrel carbon trekking poles",
        "cat": "set of poles",
        "special": [
            "Set the poles so your elbows bend at about ninety degrees on flat ground.",
            "Shorten them a little for climbs and lengthen them for long descents.",
            "Carbon shafts are lighter, while aluminum bends rather than snaps under a sudden load.",
            "Use the wrist straps by bringing your hand up through the loop from below.",
        ],
    },
]

# --------------------------------------------------------------------------------------------
# Blog: trip reports and tips
# --------------------------------------------------------------------------------------------
TRIP_INTRO = [
    "Last {season}, {friend} and I spent {duration} on the trails around {place}.",
    "I had wanted to walk the loop at {place} for years, and this {season} we finally went.",
    "Some trips are planned for months; this one came together over a single phone call.",
    "{place} is only a few hours from the warehouse, yet most of our team had never been.",
    "We picked {place} because the forecast looked kind, which turned out to be optimistic.",
    "The plan was simple: {duration}, one pack each and no schedule beyond getting back on time.",
    "This is a short write-up of our trip to {place}, with notes on the route and the gear.",
    "We left the trailhead just after sunrise with {snack} and far too much coffee.",
]
TRIP_ROUTE = [
    "The first stretch crossed {terrain}, and it took longer than the map suggested.",
    "By midday we were dealing with {weather}, and the views came and went.",
    "We covered {distance} on the second day and climbed {elevation} along the way.",
    "The trail is well marked for most of its length, though a few junctions are confusing.",
    "A ranger we met near the bridge warned us that the lower path floods after heavy rain.",
    "Our pace dropped after lunch, so we cut the planned loop short.",
    "The mileage looked modest on paper, but the terrain made it a full day.",
    "We saw {wildlife} and stopped far too often to take photos.",
    "My knees complained on the steep sections, and the trekking poles earned their place.",
    "The descent was slower than the climb, mostly because of {terrain}.",
    "Halfway up, the forest opened onto a ridge with views in every direction.",
    "We stopped for lunch beside a waterfall and ate {snack} with cold fingers.",
    "A fallen tree blocked the trail near the lake, so we scrambled around it on loose ground.",
    "Water sources were reliable, and we filtered everything with the Brookside filter.",
    "We passed only two other groups all day, both heading the other way.",
]
TRIP_CAMP = [
    "Camp that night sat beside a small tarn, sheltered from the wind by a wall of spruce.",
    "By the time we set up camp, {weather} had given way to a clear, cold night.",
    "We cooked dinner on the Pika stove and ate it watching the light fade.",
    "I tested the {product} for the whole trip and came home impressed.",
    "The tent stayed dry through the night, which is more than I can say for my boots.",
    "We were in our sleeping bags by eight and slept for almost ten hours.",
    "Breakfast was oatmeal with {snack}, eaten standing up to stay warm.",
    "The best moment came on the final morning, when the cloud finally lifted over {place}.",
]
TRIP_END = [
    "We reached the car {feeling}, already talking about the next trip.",
    "Nothing went exactly to plan, which is half the reason we keep going back.",
    "Next time I would pack lighter and start an hour earlier.",
    "There is a small cafe in the village at the end of the trail that serves excellent soup.",
    "It was not the easiest trip we have done, but it was one of the best.",
    "I would happily walk the whole loop again, ideally in better weather.",
]
TRIP_PRACTICAL = [
    "Parking at the trailhead fills up quickly on weekends, so arrive early.",
    "Check with the ranger station for trail closures before you set off.",
    "Phone signal disappears after the first mile, so download maps in advance.",
    "Camping is allowed only at the marked sites, and permits are required from May to September.",
    "Dogs are welcome on a leash, but the upper ridge is hard going for small ones.",
    "The spring snowmelt can make the stream crossings knee-deep until early June.",
    "Bring a warm layer even in summer, because evenings at the lake turn cold fast.",
    "Pack out everything you carry in; there are no trash cans past the trailhead.",
    "The nearest gas station is twenty minutes from the trailhead, so fill up on the way.",
    "Mosquitoes peak in July, so a head net is worth the space in your pack.",
]
TRIP_GEAR = [
    "worked exactly as promised",
    "never let me down",
    "earned a permanent place in my pack",
    "held up well on rough ground",
    "was the item I was most grateful for",
    "weighed less than I expected",
    "impressed even my skeptical friend",
    "I would not leave it behind again",
]
TRIPS = [
    ("blog-trip-lantern-lake", "Lantern Lake", "two nights", "Two nights at Lantern Lake"),
    ("blog-trip-hollowmere-ridge", "Hollowmere Ridge", "a long weekend", "Trip report: Hollowmere Ridge in the rain"),
    ("blog-trip-copper-basin", "Copper Basin", "three days", "Three days in Copper Basin"),
    ("blog-trip-wren-valley", "Wren Valley", "a single long day", "A long day in Wren Valley"),
    ("blog-trip-saltmarsh-coast", "the Saltmarsh Coast Path", "four days", "Four days on the Saltmarsh Coast Path"),
    ("blog-trip-blackpine-loop", "the Blackpine Loop", "two days", "The Blackpine Loop, clockwise"),
    ("blog-trip-owl-creek", "Owl Creek", "a weekend", "An Owl Creek weekend with the repair team"),
]
TIPS = [
    {
        "slug": "blog-tips-winter-camping",
        "activity": "winter camping",
        "title": "Five tips for your first winter camping trip",
        "intro": [
            "Winter camping sounds harder than it is, as long as you prepare well.",
            "Cold nights reward good habits and punish small mistakes.",
        ],
        "tips": [
            (
                "Bring two sleeping pads",
                [
                    "The frozen ground pulls heat from your body all night.",
                    "A foam pad under an insulated pad is the simplest fix.",
                ],
            ),
            (
                "Keep your water from freezing",
                [
                    "Store bottles upside down so ice forms at the bottom first.",
                    "Take a bottle of hot water into your sleeping bag at night.",
                ],
            ),
            (
                "Eat a warm dinner and a late snack",
                [
                    "Your body burns fuel to stay warm while you sleep.",
                    "Fats and proteins last longer than sugary snacks.",
                ],
            ),
            (
                "Change into dry layers at camp",
                [
                    "Damp base layers will chill you as soon as you stop moving.",
                    "Keep one set of clothes only for sleeping.",
                ],
            ),
            (
                "Keep batteries close to your body",
                ["Cold drains batteries quickly.", "Store your phone and headlamp in an inside pocket."],
            ),
            (
                "Plan for short days",
                ["Darkness comes early in winter.", "Reach camp with at least an hour of daylight to spare."],
            ),
        ],
    },
    {
        "slug": "blog-tips-trail-running-rain",
        "activity": "trail running in the rain",
        "title": "Trail running in the rain: six habits that help",
        "intro": [
            "Rain turns familiar trails into something new, and that can be a lot of fun.",
            "A few simple habits keep wet runs safe and enjoyable.",
        ],
        "tips": [
            (
                "Shorten your stride",
                [
                    "Short, quick steps keep your feet under your body on slick ground.",
                    "Save the long strides for dry pavement.",
                ],
            ),
            (
                "Choose shoes with deep lugs",
                [
                    "Mud fills shallow tread in minutes.",
                    "Our Switchback trail runners have 5 mm lugs for exactly this reason.",
                ],
            ),
            (
                "Wear a light shell, not a heavy one",
                [
                    "You will heat up quickly once you start running.",
                    "A thin, breathable shell blocks wind without trapping sweat.",
                ],
            ),
            (
                "Protect your phone",
                [
                    "A zip bag weighs nothing and saves expensive repairs.",
                    "Keep it in a chest pocket where it stays warm.",
                ],
            ),
            (
                "Watch for roots and boardwalks",
                ["Wet wood and roots are slicker than rock.", "Step over roots rather than on them whenever you can."],
            ),
            (
                "Warm up after you finish",
                [
                    "Change out of wet clothes as soon as you stop.",
                    "A warm drink in the car makes the drive home much nicer.",
                ],
            ),
        ],
    },
    {
        "slug": "blog-tips-hiking-with-kids",
        "activity": "hiking with kids",
        "title": "Hiking with kids: what we have learned",
        "intro": [
            "Hiking with children is less about the summit and more about the snacks.",
            "Our staff parents shared what has worked for their families.",
        ],
        "tips": [
            (
                "Let them lead",
                [
                    "Children walk farther when they set the pace.",
                    "Give them the map and let them spot the next trail marker.",
                ],
            ),
            (
                "Pack more snacks than seems reasonable",
                ["A snack stop every half hour keeps spirits high.", "Let each child choose one treat for the trail."],
            ),
            (
                "Pick a trail with a reward",
                [
                    "A lake, a waterfall or a bridge gives everyone a goal.",
                    "Loop trails feel shorter than out-and-back routes.",
                ],
            ),
            (
                "Dress them in layers",
                ["Kids heat up and cool down faster than adults.", "A spare pair of socks solves many problems."],
            ),
            (
                "Turn it into a game",
                ["Scavenger hunts make a long climb fly by.", "Counting bridges or birds works surprisingly well."],
            ),
            (
                "End before they are tired",
                ["Finish on a high note so they want to come back.", "It is fine to turn around early."],
            ),
        ],
    },
    {
        "slug": "blog-tips-first-backpacking-trip",
        "activity": "your first backpacking trip",
        "title": "Planning your first backpacking trip",
        "intro": [
            "Your first night on the trail is a big step, and it does not need to be a long one.",
            "Start small, keep it simple and learn from every trip.",
        ],
        "tips": [
            (
                "Choose a short route",
                [
                    "Three to six miles to camp is plenty for a first trip.",
                    "You will spend more time setting up than you expect.",
                ],
            ),
            (
                "Rent before you buy",
                [
                    "Renting a tent and pack lets you learn what you like.",
                    "Our stores rent complete kits for a weekend.",
                ],
            ),
            (
                "Weigh your pack",
                [
                    "Aim for no more than a fifth of your body weight.",
                    "Leave behind anything you did not use on a day hike.",
                ],
            ),
            (
                "Practice at home",
                [
                    "Pitch the tent in the yard and sleep in it if you can.",
                    "Light the stove once before you rely on it for dinner.",
                ],
            ),
            (
                "Tell someone your plan",
                ["Leave your route and return time with a friend.", "Agree on when they should call for help."],
            ),
            (
                "Learn to filter water",
                [
                    "Streams may look clean, but they can still make you ill.",
                    "A squeeze filter is light and easy to use.",
                ],
            ),
        ],
    },
]

# --------------------------------------------------------------------------------------------
# Docs: procedures, how-tos, release notes
# --------------------------------------------------------------------------------------------
PROCEDURES = [
    {
        "file": "returns-desk-procedure.txt",
        "title": "RETURNS DESK PROCEDURE",
        "steps": [
            "Greet the customer and ask for the order number or the card used for payment.",
            "Look up the order in the point-of-sale system and confirm the purchase date.",
            "Items within 60 days that are clean and unused receive a full refund to the original payment method.",
            "Footwear worn only indoors can be accepted; check the soles for trail dirt.",
            "Used items with a suspected defect go through the warranty process instead of a return.",
            "Scan the item, choose the return reason from the list and print two copies of the return slip.",
            "Place returned items in the gray bin behind the counter, never back on the sales floor.",
            "Fuel canisters and opened food cannot be accepted for safety reasons.",
            "If a customer has no receipt, offer store credit at the lowest price in the last 90 days.",
            "Ask a shift lead to approve any return over $300.",
            "Thank the customer and mention that the refund may take up to ten business days to appear.",
        ],
    },
    {
        "file": "warehouse-packing-standards.txt",
        "title": "WAREHOUSE PACKING STANDARDS",
        "steps": [
            "Pick items in the order shown on the pick list to keep walking distance short.",
            "Check each item's SKU and size against the packing slip before it goes in the box.",
            "Use the smallest box that fits the order with at least an inch of padding on every side.",
            "Tents and poles travel in the long tube boxes, never folded.",
            "Fuel canisters ship only in the orange hazmat cartons, and only by ground.",
            "Fill empty space with paper, not plastic air pillows.",
            "Seal the box with two strips of tape in an H pattern.",
            "Print the label last, after the scale confirms the weight.",
            "Orders with a gift note get the note printed on card stock and no prices on the slip.",
            "Report any damaged stock to the inventory lead before the end of the shift.",
        ],
    },
    {
        "file": "support-style-guide.txt",
        "title": "SUPPORT TEAM STYLE GUIDE",
        "steps": [
            "Open with a short greeting and use the customer's first name once.",
            "Answer the question in the first two sentences and put the detail after.",
            "Repeat order numbers, prices and dates exactly as they appear in the system.",
            "Never promise a delivery date the carrier hasn't confirmed.",
            'Avoid jargon like "RMA" or "SKU" unless the customer uses it first.',
            "If we made a mistake, say so plainly and explain the fix.",
            "Don't ask for full card numbers or passwords under any circumstances.",
            'Write "I\'ve refunded" rather than "a refund has been processed"; active voice sounds human.',
            "Close by asking whether there is anything else we can help with.",
            "Keep replies under 120 words when possible.",
            "Escalate threats, legal questions and media requests to a team lead.",
        ],
    },
    {
        "file": "store-opening-checklist.txt",
        "title": "STORE OPENING CHECKLIST",
        "steps": [
            "Disarm the alarm and switch on the sales floor lights.",
            "Count the register float and record it in the cash log.",
            "Check the overnight e-mail for pickup orders and stage them behind the counter.",
            "Walk the floor and straighten displays, starting with the front tables.",
            "Test the card terminals with a one-cent transaction.",
            "Refill the rental counter with clean inspection tags.",
            "Review the day's events calendar, including any clinics or group hikes.",
            "Unlock the front doors on time and turn the sign to Open.",
        ],
    },
    {
        "file": "rental-inspection-procedure.txt",
        "title": "RENTAL GEAR INSPECTION",
        "steps": [
            "Unpack the returned gear on the inspection table and check it against the rental agreement.",
            "Pitch every tent fully, check poles for cracks and zippers for missing teeth.",
            "Sniff-test sleeping bags; anything damp or musty goes straight to the wash.",
            "Inflate pads for ten minutes and watch for any loss of pressure.",
            "Record any damage with photos in the rental log.",
            "Charge damage fees only after a shift lead reviews the photos.",
            "Attach a green tag to clean, inspected gear and a red tag to anything needing repair.",
            "Release the customer's deposit once the gear passes inspection.",
        ],
    },
]
STAFF_GENERIC = [
    "This procedure applies to every Northwind location, including seasonal pop-up stores.",
    "If a situation is not covered here, ask the shift lead before improvising.",
    "New team members should shadow an experienced colleague for their first three shifts.",
    "Update the shared log before you hand over to the next shift.",
    "Safety always comes before speed, even on the busiest days.",
    "Suggestions for improving this document go to the operations channel.",
    "Managers review this document every quarter and note changes at the top.",
    "Customers notice consistency, so follow the steps in order even when it feels slow.",
    "When in doubt, choose the option that keeps the customer's trust.",
    "Record exceptions in the notes field so the next person understands what happened.",
]
DOC_HOWTOS = [
    {
        "file": "howto-patch-sleeping-pad.txt",
        "title": "How to patch a sleeping pad",
        "steps": [
            "Inflate the pad fully and close the valve.",
            "Submerge it section by section in a bathtub and look for a stream of bubbles.",
            "Mark the leak with a dot of marker and let the pad dry completely.",
            "Clean the area with a little rubbing alcohol.",
            "Cut a round patch about an inch wider than the hole.",
            "Apply a thin layer of seam adhesive to the patch and press it down firmly.",
            "Leave it flat under a heavy book for at least twelve hours.",
            "Inflate it overnight to check the repair before your next trip.",
        ],
    },
    {
        "file": "howto-rewax-leather-boots.txt",
        "title": "How to re-wax leather boots",
        "steps": [
            "Remove the laces and insoles so you can reach every seam.",
            "Brush off dried mud; don’t use a wire brush on smooth leather.",
            "Wipe the boots with a damp cloth and let them dry at room temperature.",
            "Warm the wax slightly in your hands so it spreads evenly.",
            "Work the wax into the leather with your fingers, paying extra attention to the seams.",
            "Let the wax soak in overnight; it’s normal for the leather to darken a little.",
            "Buff off any excess with a soft cloth the next morning.",
            "Don’t put the boots near a fire or heater to speed things up.",
        ],
    },
    {
        "file": "howto-replace-tent-pole-section.txt",
        "title": "How to replace a tent pole section",
        "steps": [
            "Find the cracked section and note its length and diameter.",
            "Pull the shock cord gently out of the end cap and clamp it with a clothes peg.",
            "Slide the broken section off the cord.",
            "Thread the replacement section onto the cord in the same direction as the original.",
            "Re-seat the end cap and release the peg so the cord pulls the sections together.",
            "Assemble the pole and check that every joint seats fully.",
            "Carry a pole repair sleeve on trips as a temporary fix.",
        ],
    },
    {
        "file": "howto-pack-bear-canister.txt",
        "title": "How to pack a bear canister",
        "steps": [
            "Repackage food into flat zip bags to save space.",
            "Put the food you will eat last at the bottom of the canister.",
            "Add toothpaste, sunscreen and anything else with a scent.",
            "Pack the first day's lunch outside the canister only if you will eat it before camp.",
            "Close the lid firmly and check that the locking tabs have engaged.",
            "At camp, place the canister at least 200 feet from your tent, on flat ground.",
            "Keep it away from cliffs and streams, where an animal could roll it away.",
        ],
    },
    {
        "file": "howto-reseal-tent-seams.txt",
        "title": "How to reseal tent seams",
        "steps": [
            "Pitch the tent in a dry, shaded place so the fabric is taut.",
            "Peel away any seam tape that is already lifting.",
            "Clean the seams with a cloth and a little rubbing alcohol.",
            "Apply a thin line of seam sealer along each seam on the inside of the fly.",
            "Spread the sealer with a small brush so it soaks into the stitching holes.",
            "Let it cure for at least twelve hours before packing the tent away.",
            "Test the seams with a garden hose before your next trip.",
        ],
    },
]
HOWTO_DOC_GENERIC = [
    "This job takes about an hour, most of which is waiting for things to dry.",
    "You will find the supplies in most outdoor stores, including all Northwind locations.",
    "Work in a well-ventilated room and keep adhesives away from children and pets.",
    "If you would rather not do it yourself, our repair workshop can take care of it.",
    "Read all the steps once before you start.",
    "A small repair now can save a ruined trip later.",
    "Take your time; a neat repair lasts far longer than a rushed one.",
    "Keep a note of the date so you know when the next treatment is due.",
]
RELEASE_NEW = [
    "Added {feature}.",
    "New: {feature}.",
    "You can now use {feature}.",
]
RELEASE_FEATURES = [
    "a trail conditions feed for saved routes",
    "dark mode for the order history screen",
    "wallet payments at checkout",
    "barcode scanning in stores to check stock",
    "a packing-list builder that syncs across devices",
    "offline maps for the 40 most popular trails",
    "push notifications when a back-ordered item ships",
    "size recommendations based on past purchases",
    "a rental booking calendar",
    "Trail Points history with filters by month",
    "a repair request form with photo upload",
    "store pickup reminders the evening before",
    "gift card balance checks without signing in",
    "a wish list that can be shared by link",
]
RELEASE_IMPROVED = [
    "The {screen} now loads about {pct} percent faster.",
    "Improved the layout of the {screen} on small screens.",
    "Search now understands common misspellings such as sleping bag and hedlamp.",
    "The {screen} remembers your last filter between sessions.",
    "Reduced the app's download size by {pct} percent.",
    "Clearer error messages when a payment is declined.",
    "Better contrast for buttons on the {screen}.",
]
RELEASE_SCREENS = [
    "home screen",
    "product page",
    "cart",
    "order history screen",
    "store locator",
    "account page",
    "checkout screen",
    "trail map",
]
RELEASE_UI = [
    "the cart badge",
    "the store locator map",
    "the Trail Points balance",
    "the size selector",
    "the checkout button",
    "order tracking links",
    "saved addresses",
    "the promo code field",
    "product photos",
    "the rental calendar",
]
RELEASE_BUG = [
    "showed the wrong count",
    "did not update",
    "appeared twice",
    "could freeze the app",
    "was cut off",
    "reset to the default value",
    "opened the wrong page",
    "was hidden behind the keyboard",
]
RELEASE_CTX = [
    "after removing an item",
    "on tablets in landscape mode",
    "when the device language was set to French",
    "after signing out and back in",
    "on slow connections",
    "for orders with more than ten items",
    "when dark mode was on",
    "after the app resumed from the background",
]

# --------------------------------------------------------------------------------------------
# Support chats
# --------------------------------------------------------------------------------------------
SYSTEM_PROMPTS = [
    "You are a helpful support agent for Northwind Trail Supply, an outdoor gear retailer. Be friendly, concise and accurate.",
    "You are Northwind Trail Supply's customer support assistant. Answer politely and never invent order details.",
    "You help customers of Northwind Trail Supply with orders, returns, shipping, accounts and products. Keep replies short.",
    "Support assistant for Northwind Trail Supply. Use a warm tone and confirm key details back to the customer.",
]
U_GREET = ["Hi,", "Hello,", "Hey,", "Hi there,", "Hi team,", "Good morning,", "Good afternoon,", "", "", ""]
U_SIGN = ["", "", "", "", "Thanks!", "Thanks in advance.", "Cheers, {first}", "- {first}", "Thank you."]
CLOSE_USER = [
    "Perfect, thanks for your help!",
    "Great, that's all I needed.",
    "Thanks so much.",
    "OK, I'll keep an eye on it. Thanks!",
    "Appreciate it, have a good day.",
    "That works for me, thank you.",
    "Brilliant, thanks.",
    "Got it. Thanks for sorting that out.",
]
CLOSE_ASSIST = [
    "You're welcome, {first}! Enjoy your next trip.",
    "Happy to help. Have a great day on the trail!",
    "Anytime! Let us know if anything else comes up.",
    "Glad I could help. Take care!",
    "You're very welcome. Reach out here if you need anything else.",
    "My pleasure, {first}. Happy hiking!",
]

# Each intent: "ack" (assistant openers), "open" (first exchange branches: user parts, assistant parts;
# every part is a list of alternatives) and "follow" (user alternatives, assistant alternatives).
INTENTS: dict[str, dict] = {
    "order_status": {
        "ack": [
            "Thanks for getting in touch, {first}.",
            "Happy to check that for you.",
            "Thanks for your patience.",
            "Let me take a look.",
            "Sorry for the wait, {first}.",
            "Hi {first}, thanks for the message.",
        ],
        "open": [
            (
                [
                    [
                        "where is my order {order}?",
                        "could you check on order {order} for me?",
                        "my order {order} still hasn't arrived.",
                    ],
                    ["It was supposed to arrive by {date}.", "I ordered it on {date}.", "", ""],
                ],
                [
                    [
                        "Order {order} left our warehouse on {date} and is now with the carrier.",
                        "I can see {order} shipped on {date} and is in transit.",
                    ],
                    [
                        "The current estimate is {date2}.",
                        "It should reach you by {date2}.",
                        "You can track it with number {tracking}.",
                    ],
                ],
            ),
            (
                [
                    [
                        "the tracking for {order} hasn't updated in {days} days.",
                        "tracking number {tracking} has said in transit for {days} days now.",
                    ],
                    ["Is it lost?", "Should I be worried?", ""],
                ],
                [
                    [
                        "The parcel was held at a regional sorting hub because of weather, which is why the tracking paused.",
                        "Carriers sometimes skip scans between hubs, so a pause of a few days is common.",
                    ],
                    [
                        "It was scanned again this morning and should arrive by {date2}.",
                        "If there's no update by {date2}, we'll send a replacement right away.",
                    ],
                ],
            ),
            (
                [
                    [
                        "I only received part of order {order}.",
                        "my package arrived but the {product} wasn't in it. Order {order}.",
                    ],
                    ["", "The packing slip lists it though.", "Everything else was there."],
                ],
                [
                    [
                        "Your order shipped in two boxes, and the {product} is in the second one.",
                        "It looks like the {product} came from our second warehouse, so it's traveling separately.",
                    ],
                    ["That box has tracking number {tracking} and is due on {date2}.", "It should arrive by {date2}."],
                ],
            ),
            (
                [
                    [
                        "I ordered the {product} on {date} and it still says processing. Order {order}.",
                        "why hasn't order {order} shipped yet? I placed it on {date}.",
                    ],
                    ["", "I need it for a trip.", "The website said it was in stock."],
                ],
                [
                    [
                        "The {product} was on back order, and new stock arrived yesterday.",
                        "There was a payment verification hold on {order}, which has now cleared.",
                    ],
                    [
                        "It will ship within 24 hours and you'll get tracking at {email}.",
                        "It's being packed today and should arrive by {date2}.",
                    ],
                ],
            ),
            (
                [
                    [
                        "tracking says order {order} was delivered on {date}, but there's nothing here.",
                        "the carrier marked {order} as delivered but I never got it.",
                    ],
                    ["I checked with my neighbors too.", "Nothing at the front desk of my building either.", ""],
                ],
                [
                    [
                        "I'm sorry about that. Carriers sometimes mark parcels delivered a day early, so please check again tomorrow.",
                        "I'm sorry to hear that. The carrier's photo shows the parcel at a side door, so it may be worth a quick look there.",
                    ],
                    [
                        "If it doesn't turn up by {date2}, we'll ship a replacement at no cost.",
                        "I've also opened a trace with the carrier under reference {rma}.",
                    ],
                ],
            ),
        ],
        "follow": [
            (
                [
                    "Can I change the delivery address? I won't be home that day.",
                    "Is it possible to send it to my office instead?",
                ],
                [
                    "Once a parcel is with the carrier we can't edit the address, but you can redirect it for free from the tracking page.",
                    "I've asked the carrier to redirect it to the new address, and you'll get a confirmation e-mail within a few hours.",
                ],
            ),
            (
                ["Is there any way to speed it up?", "Can you upgrade it to express?"],
                [
                    "Unfortunately we can't change the service once it has left, but I've added a note for the carrier.",
                    "I can't speed it up now, but I've refunded the {fee} shipping fee since it missed the promised date.",
                ],
            ),
            (
                ["What happens if it doesn't show up by then?", "And if it never arrives?"],
                [
                    "If it hasn't arrived by {date2}, we'll ship a replacement at no cost or refund you in full, whichever you prefer."
                ],
            ),
            (
                [
                    "Could you send the tracking link to {email2} instead?",
                    "Can the updates go to {email2}? I don't check the other inbox.",
                ],
                [
                    "Done! The tracking link is on its way to {email2}.",
                    "Sure, I've added {email2} to the order, so updates will go there from now on.",
                ],
            ),
            (
                ["Will I need to sign for it?", "Does someone need to be home?"],
                [
                    "No signature is needed for this order; the driver will leave it in a safe place.",
                    "Orders under $500 don't need a signature, so the driver can leave it at the door.",
                ],
            ),
            (
                [
                    "Can I pick it up from {store_name} instead?",
                    "Is it faster to collect it from the {store_name} store?",
                ],
                [
                    "Since it has already shipped we can't reroute it, but I can reserve another one at {store_name} for you to collect today.",
                    "The parcel is already moving, but the {store_name} store has one in stock that I can hold for you until tomorrow.",
                ],
            ),
        ],
    },
    "refund": {
        "ack": [
            "Thanks for reaching out, {first}.",
            "Let me check that for you.",
            "Sorry for the confusion, {first}.",
            "Happy to help with that.",
            "Thanks for the details.",
        ],
        "open": [
            (
                [
                    [
                        "I returned the {product} on {date} and haven't got my refund yet.",
                        "my return for order {order} reached your warehouse {days} days ago but there's no refund.",
                    ],
                    ["", "I paid by credit card.", "My e-mail is {email}."],
                ],
                [
                    [
                        "Your return was received on {date} and a refund of {price} was issued on {date2}.",
                        "I can see the refund of {price} for {order} was processed this morning.",
                    ],
                    [
                        "Banks usually take 5 to 10 business days to show it.",
                        "You'll get a confirmation at {email} shortly.",
                    ],
                ],
            ),
            (
                [
                    [
                        "I was refunded {price2} but I paid {price} for the {product}.",
                        "my refund for {order} is less than what I paid.",
                    ],
                    ["", "Can you explain the difference?", "Is that a mistake?"],
                ],
                [
                    [
                        "The difference is the {fee} return shipping fee, which we deduct unless an item arrives faulty.",
                        "The original shipping charge of {fee} isn't refundable for change-of-mind returns.",
                    ],
                    ["", "Let me know if the item had a defect and I can review it."],
                ],
            ),
            (
                [
                    [
                        "can I return the {product} if I've used it once?",
                        "I'd like a refund for the {product}. I wore it on one hike and it isn't for me.",
                    ],
                    ["", "It still looks new.", "I bought it on {date}."],
                ],
                [
                    [
                        "Items used outdoors can't normally be returned for a refund.",
                        "Our returns policy covers unused items with tags attached, so used gear isn't eligible for a refund.",
                    ],
                    [
                        "As a one-time exception I can offer {price} in store credit.",
                        "If there's a fault, though, it would be covered under our warranty.",
                    ],
                ],
            ),
            (
                [
                    [
                        "I cancelled order {order} within an hour but I was still charged {price}.",
                        "why was I charged {price} for an order I cancelled?",
                    ],
                    ["", "The order number is {order}.", "This was on {date}."],
                ],
                [
                    [
                        "The cancellation went through, so that {price} is only a pending authorization.",
                        "Order {order} was cancelled before it shipped, so the charge will be reversed.",
                    ],
                    [
                        "It should disappear from your statement within 5 business days.",
                        "Your bank will release it in 3 to 5 business days.",
                    ],
                ],
            ),
            (
                [
                    [
                        "the {product} I bought on {date} is now on sale for {price2}. Can I get the difference back?",
                        "I paid {price} for the {product} and a week later it dropped to {price2}.",
                    ],
                    ["", "That's a big difference.", "Order {order}."],
                ],
                [
                    [
                        "Our price adjustment window is 14 days, and your purchase is within it.",
                        "Good news: purchases within 14 days qualify for a price adjustment.",
                    ],
                    [
                        "I've refunded the difference to your original payment method.",
                        "The difference will appear on your card within a few days.",
                    ],
                ],
            ),
        ],
        "follow": [
            (
                ["It's been more than ten days. Can you check again?", "Could you chase it up? It's been a while."],
                [
                    "I've escalated it to our payments team under reference {rma}; they'll contact you at {email} within 48 hours."
                ],
            ),
            (
                ["Can I get store credit instead? It would be faster.", "Would store credit be quicker?"],
                ["Yes, store credit is issued instantly. I've added {price} to your account as a gift card balance."],
            ),
            (
                [
                    "Why was the shipping fee deducted? The zipper was broken when it arrived.",
                    "The item was faulty though, so why did I pay the return fee?",
                ],
                ["Thanks for explaining. Since it arrived faulty, I've refunded the {fee} fee as well."],
            ),
            (
                ["Will I get the original shipping cost back too?", "What about the shipping I paid?"],
                [
                    "Original shipping is refunded only when the item was damaged or we sent the wrong one, so it isn't included this time. Sorry about that."
                ],
            ),
            (
                ["Can I exchange it for a different size instead?", "Actually, could I swap it for a size up?"],
                [
                    "Of course. I've set up an exchange for a size up, and it will ship as soon as the carrier scans your return."
                ],
            ),
        ],
    },
    "shipping": {
        "ack": [
            "Good question!",
            "Thanks for asking, {first}.",
            "Happy to help.",
            "Sure thing.",
            "Thanks for checking with us.",
        ],
        "open": [
            (
                [
                    ["how much is shipping to {city}?", "what does delivery to {city} cost?"],
                    ["My cart is about {price}.", ""],
                ],
                [
                    [
                        "Standard shipping is free on orders over $75, otherwise it's $7.95.",
                        "For {city}, standard delivery is $7.95, and it's free once your order passes $75.",
                    ],
                    [
                        "It usually takes 3 to 5 business days.",
                        "Expedited shipping is $14.95 and takes 2 business days.",
                    ],
                ],
            ),
            (
                [
                    ["do you ship to {country}?", "can I order from {country}?"],
                    ["", "I'm moving there next month.", "I'd like the {product}."],
                ],
                [
                    ["Yes, we ship to {country}.", "We do ship to {country}!"],
                    [
                        "Duties and taxes are calculated at checkout, and delivery takes 7 to 14 business days.",
                        "Fuel canisters and lithium batteries can't be sent abroad, but most other items can.",
                    ],
                ],
            ),
            (
                [
                    [
                        "I need the {product} by {date2}. Which shipping option should I pick?",
                        "will the {product} get here by {date2} if I order today?",
                    ],
                    ["", "It's for a trip.", "It's a birthday present."],
                ],
                [
                    [
                        "If you order before 1 pm Pacific today, expedited shipping will get it to you by {date2}.",
                        "Standard shipping should just make it, but expedited at $14.95 is the safer choice.",
                    ],
                    ["", "You'll see the delivery estimate at checkout before you pay."],
                ],
            ),
            (
                [
                    ["why can't I choose express delivery for my cart?", "checkout won't let me pick 2-day shipping."],
                    ["", "I really need it quickly.", "Is something wrong with the site?"],
                ],
                [
                    [
                        "Your cart includes a fuel canister, and those can only travel by ground.",
                        "One item in your cart ships by ground only because of its lithium battery.",
                    ],
                    [
                        "If you remove it, express delivery will be available for the rest.",
                        "You could split it into two orders to get the other items faster.",
                    ],
                ],
            ),
            (
                [
                    [
                        "my order was over $75 but I was still charged {fee} for shipping.",
                        "why did I pay shipping on order {order}? I thought it was free over $75.",
                    ],
                    ["", "Order total was {price}."],
                ],
                [
                    [
                        "The free shipping threshold is calculated after discounts, and your total came in just under $75 after the coupon.",
                        "You're right, that charge was a mistake on our side.",
                    ],
                    ["I've refunded the {fee} as a courtesy.", "I've refunded the {fee} shipping charge to your card."],
                ],
            ),
            (
                [
                    ["can you ship a tent to a PO box?", "is it OK to use a PO box address for order {order}?"],
                    ["", "I live in a rural area."],
                ],
                [
                    [
                        "Most items can go to a PO box, but oversized items like tents need a street address.",
                        "Yes for small items, but the {product} is oversized and needs a street address.",
                    ],
                    ["You could also choose free pickup at {store_name}.", ""],
                ],
                {"pool": ["Cedar Hollow 2 tent", "Bracken Dome 4 tent"]},
            ),
        ],
        "follow": [
            (
                ["Do you offer same-day pickup?", "Could I just collect it from a store?"],
                [
                    "Yes, choose Pick Up In Store at checkout and most orders are ready at {store_name} within two hours."
                ],
            ),
            (
                ["Is the packaging recyclable?", "Do you use plastic in the boxes?"],
                ["Our boxes and paper fill are fully recyclable, and we stopped using plastic air pillows in 2023."],
            ),
            (
                [
                    "Can I combine two orders to save on shipping?",
                    "I placed a second order. Can you ship them together?",
                ],
                [
                    "The first order hasn't been packed yet, so I've combined {order} with your new one and refunded the second shipping fee."
                ],
            ),
            (
                ["Do I need to be home to sign?", "Will the driver need a signature?"],
                ["Only orders over $500 need a signature, so you don't need to be home."],
            ),
            (
                ["How do I get tracking?", "Will I get a tracking number?"],
                ["You'll receive a tracking link at {email} as soon as the label is created."],
            ),
        ],
    },
    "account": {
        "ack": [
            "Thanks for reaching out, {first}.",
            "I can help with that.",
            "Sorry about the trouble.",
            "Let me sort that out for you.",
            "Thanks for letting us know.",
        ],
        "open": [
            (
                [
                    ["I'm not getting the password reset e-mail.", "the reset link never shows up in my inbox."],
                    ["My account e-mail is {email}.", "I've tried three times.", ""],
                ],
                [
                    [
                        "I've sent a fresh reset link to {email}; it's valid for 30 minutes.",
                        "Our system shows the reset messages were delivered to {email}, so they may be in your spam folder.",
                    ],
                    ["", "If it still doesn't arrive, I can reset it manually once I verify a recent order number."],
                ],
            ),
            (
                [
                    [
                        "how do I change the e-mail on my account to {email2}?",
                        "I'd like to update my account e-mail from {email} to {email2}.",
                    ],
                    ["", "The old address is closing down."],
                ],
                [
                    ["You can change it under Profile settings after signing in.", "I've updated it for you."],
                    [
                        "We'll send a confirmation to {email2}.",
                        "You'll need to confirm the change from the message we sent to {email2}.",
                    ],
                ],
            ),
            (
                [
                    ["please delete my account and all my data.", "I want to close my Northwind account."],
                    ["", "The e-mail is {email}.", "I don't shop online much anymore."],
                ],
                [
                    [
                        "I'm sorry to see you go. I've submitted a deletion request for the account linked to {email}.",
                        "I can help with that. Deletion requests are completed within 30 days.",
                    ],
                    [
                        "Order records we must keep for tax purposes will be retained, but everything else will be removed.",
                        "Any unused Trail Points will be lost, so you may want to use them first.",
                    ],
                ],
            ),
            (
                [
                    [
                        "my Trail Points from order {order} never showed up.",
                        "I should have about {points} Trail Points but my balance says zero.",
                    ],
                    ["", "I've been a member for years.", "The purchase was on {date}."],
                ],
                [
                    [
                        "Points from {order} post once the return window closes, which is 60 days after delivery.",
                        "I've found the missing purchase and added {points} points to your account.",
                    ],
                    ["", "Your balance should update within an hour."],
                ],
            ),
            (
                [
                    [
                        "my account got locked after too many login attempts.",
                        "it says my account is locked and I can't sign in.",
                    ],
                    ["", "I need to place an order today."],
                ],
                [
                    ["Accounts unlock automatically after 30 minutes.", "I've unlocked your account."],
                    [
                        "To be safe, please reset your password using the Forgot password link.",
                        "Turning on two-step verification will help keep it secure.",
                    ],
                ],
            ),
            (
                [
                    ["how do I turn on two-step verification?", "can I add two-factor login to my account?"],
                    ["", "I'd like the account to be more secure."],
                ],
                [
                    [
                        "Go to Profile settings, choose Security, and follow the prompts to link an authenticator app or your phone number."
                    ],
                    ["It takes about two minutes.", ""],
                ],
            ),
        ],
        "follow": [
            (
                ["Can I merge two accounts?", "I have an old account too. Can they be combined?"],
                ["Yes, send me both e-mail addresses and I'll merge the order history and points into one account."],
            ),
            (
                ["Will I lose my order history?", "What happens to my past orders?"],
                ["No, your order history stays with your account."],
            ),
            (
                ["Can I stop the marketing e-mails but keep the account?", "How do I unsubscribe from promotions?"],
                ["Sure. I've turned off marketing e-mails for {email}; you'll still receive order updates."],
            ),
            (
                ["Is my card saved on my account?", "Do you store my card details?"],
                [
                    "We store only the last four digits and the expiry date; the full card number is held by our payment provider."
                ],
            ),
            (
                ["How do I check my points balance?", "Where can I see my Trail Points?"],
                ["It's shown at the top of the Trail Points page in your account and in the app."],
            ),
        ],
    },
    "product_question": {
        "ack": [
            "Good question!",
            "Thanks for asking, {first}.",
            "Happy to help you choose.",
            "Great question.",
            "Thanks for your interest in the {product}.",
        ],
        "open": [
            (
                [
                    [
                        "what size {product} should I get? I'm usually a {size} in other brands.",
                        "does the {product} run small?",
                    ],
                    ["", "I'm between sizes.", "I'd like to layer underneath."],
                ],
                [
                    [
                        "The {product} fits true to size, so a {size} should work well.",
                        "Most customers find it runs about half a size small, so consider going up.",
                    ],
                    ["Our size chart lists exact measurements.", "If it doesn't fit, exchanges are free."],
                ],
                {"pool": SIZED},
            ),
            (
                [
                    [
                        "is the {product} fully waterproof or just water-resistant?",
                        "will the {product} hold up in heavy rain?",
                    ],
                    ["", "I'm heading somewhere wet.", "I hike in {season} a lot."],
                ],
                [
                    [
                        "The {product} is water-resistant, with a durable finish that sheds light rain.",
                        "It has taped seams and a waterproof membrane rated to 20,000 mm.",
                    ],
                    [
                        "For all-day downpours, pair it with a rain cover.",
                        "Re-treat it once a season to keep the water beading.",
                    ],
                ],
                {"pool": COATED},
            ),
            (
                [
                    ["how much does the {product} weigh?", "what's the packed size of the {product}?"],
                    ["", "I'm trying to cut weight.", "Trying to decide between it and the {product2}."],
                ],
                [
                    [
                        "The {product} weighs {weight}.",
                        "It weighs {weight} and packs down to roughly the size of a water bottle.",
                    ],
                    ["", "Full specifications are listed under the Details tab on the product page."],
                ],
            ),
            (
                [
                    ["will the {product} work with the {product2}?", "is the {product} compatible with my {product2}?"],
                    ["", "I bought the {product2} last year."],
                ],
                [
                    [
                        "Yes, they're designed to work together.",
                        "They'll work together, though you'll need a small adapter that costs $9.95.",
                    ],
                    ["Many customers buy them as a pair.", ""],
                ],
                {"pairs": PAIRS},
            ),
            (
                [
                    ["when will the {product} be back in stock in {color}?", "is the {product} available in {color}?"],
                    ["", "It's sold out on the website.", "That's the color I really want."],
                ],
                [
                    [
                        "The {color} version is expected back on {date2}.",
                        "We're restocking {color} in the next shipment, due around {date2}.",
                    ],
                    [
                        "You can tap Notify me on the product page to get an e-mail when it arrives.",
                        "I can reserve one for you at {store_name} if you'd like.",
                    ],
                ],
            ),
            (
                [
                    [
                        "is the {product} warm enough for camping in {season}?",
                        "what's the lowest temperature the {product} is good for?",
                    ],
                    ["", "I tend to sleep cold.", "I'm planning a trip in the mountains."],
                ],
                [
                    [
                        "It's comfortable down to about {temp} degrees Fahrenheit for most people.",
                        "Its comfort rating is {temp} degrees Fahrenheit, with a lower limit a few degrees colder.",
                    ],
                    ["If you sleep cold, add an insulated pad.", "For colder nights, a liner adds several degrees."],
                ],
                {"pool": WARM},
            ),
        ],
        "follow": [
            (
                ["Does it come with a warranty?", "What if it breaks?"],
                ["Yes, it's covered by our Trail-Ready warranty against defects for its useful life."],
            ),
            (
                ["Can I try it in a store?", "Is there one on display somewhere?"],
                [
                    "The {store_name} store has it on display, and you can check stock on the product page before you go."
                ],
            ),
            (
                ["Is it made from recycled materials?", "How sustainable is it?"],
                ["The shell fabric is made from 100% recycled nylon, and the finish is PFC-free."],
            ),
            (
                ["Do Trail Points members get a discount on it?", "Any member deals on this one?"],
                ["Members earn double points on it through {date2}."],
            ),
            (
                ["What's the price right now?", "How much is it at the moment?"],
                ["It's {price} at the moment, and shipping is free because that's over $75."],
            ),
        ],
    },
    "warranty": {
        "ack": [
            "Sorry to hear that, {first}.",
            "Thanks for letting us know.",
            "That's frustrating, I'm sorry.",
            "Thanks for reaching out, {first}.",
            "Let's get that fixed.",
        ],
        "open": [
            (
                [
                    [
                        "the zipper on my {product} broke after {months} months.",
                        "the main zipper on my {product} split open on a trip.",
                    ],
                    ["I bought it on {date}.", "Order number was {order}.", ""],
                ],
                [
                    [
                        "Zippers are covered under our Trail-Ready warranty.",
                        "That's definitely something our warranty covers.",
                    ],
                    [
                        "Please reply with two or three photos and your order number, and we'll send a prepaid label.",
                        "I've created claim {rma}; a prepaid label is on its way to {email}.",
                    ],
                ],
                {"pool": ZIPPED},
            ),
            (
                [
                    ["my {product} started leaking at the seams.", "the coating inside my {product} is peeling off."],
                    ["", "It's only a year old.", "I've always dried it properly."],
                ],
                [
                    [
                        "Seam tape and coating failures are covered as manufacturing defects.",
                        "That sounds like a defect, and we'll take care of it.",
                    ],
                    [
                        "We'll repair it or replace it with the same model.",
                        "Our workshop usually turns these around within two weeks.",
                    ],
                ],
                {"pool": COATED},
            ),
            (
                [
                    [
                        "my dog chewed through the strap on my {product}. Is that covered?",
                        "I melted a hole in my {product} near the campfire. Can you fix it?",
                    ],
                    ["", "I know it's my fault."],
                ],
                [
                    [
                        "Accidental damage isn't covered by the warranty, but our repair workshop can fix it.",
                        "Unfortunately that kind of damage falls outside the warranty.",
                    ],
                    [
                        "A repair like that usually costs between $15 and $40, and we'll send a quote first.",
                        "You can drop it off at {store_name} for a free quote.",
                    ],
                ],
                {"pool": FABRIC},
            ),
            (
                [
                    [
                        "I sent in my {product} for a warranty claim, reference {rma}. Any update?",
                        "what's the status of warranty claim {rma}?",
                    ],
                    ["", "It's been a couple of weeks.", "I have a trip coming up on {date2}."],
                ],
                [
                    ["Your claim {rma} was approved on {date}.", "The workshop finished the repair on {date}."],
                    [
                        "It ships back to you today and should arrive by {date2}.",
                        "It's on its way back to you with tracking number {tracking}.",
                    ],
                ],
            ),
            (
                [
                    [
                        "does your warranty cover the {otherbrand} stove I bought from you?",
                        "I bought a {otherbrand} jacket here and it's falling apart.",
                    ],
                    ["", "It's less than a year old."],
                ],
                [
                    [
                        "Products from other brands are covered by their maker's warranty.",
                        "{otherbrand} handles warranty claims directly, but we're happy to help.",
                    ],
                    [
                        "I've sent the contact details for {otherbrand} support to {email}.",
                        "If you bought it within 60 days, we can also take it back as a return.",
                    ],
                ],
            ),
            (
                [
                    ["how long is the warranty on the {product}?", "is the {product} covered for life?"],
                    ["", "Thinking about buying one."],
                ],
                [
                    [
                        "Northwind-branded products are covered for their useful life against defects in materials and workmanship.",
                        "Our Trail-Ready warranty has no fixed end date; it covers defects for the product's useful life.",
                    ],
                    [
                        "Normal wear and tear isn't included.",
                        "Keep your order number handy in case you ever need to make a claim.",
                    ],
                ],
            ),
        ],
        "follow": [
            (
                ["Do I need the original receipt?", "I lost the receipt. Is that a problem?"],
                ["No, your order number is enough, since we can look up the purchase."],
            ),
            (
                ["How long will the repair take?", "When can I expect it back?"],
                ["Most repairs take 10 to 14 days from the day we receive the item."],
            ),
            (
                ["Can I get a replacement instead of a repair?", "Would you replace it rather than fix it?"],
                ["If the repair isn't possible, we'll replace it with the same or a comparable model."],
            ),
            (
                ["Who pays for shipping?", "Do I pay to send it in?"],
                ["We cover shipping both ways for approved warranty claims."],
            ),
            (
                ["Can I drop it at a store instead?", "Is there a store that takes claims?"],
                ["Yes, any Northwind store can accept it and send it to the workshop for you."],
            ),
        ],
    },
}

# --------------------------------------------------------------------------------------------
# Tickets
# --------------------------------------------------------------------------------------------
T_OPEN = ["", "", "", "", "Hello.", "Hi there.", "Hi.", "Good morning."]
T_SIGN = ["", "", "", "Thanks.", "Thank you!", "Please advise.", "Thanks, {first}", "Appreciate the help."]
# "problem": (subject, text) pairs; "subject": generic subjects used for some tickets.
TICKETS: dict[str, dict[str, list]] = {
    "billing": {
        "subject": ["Billing question", "Question about my bill", "Billing issue"],
        "problem": [
            ("Charged twice on {order}", "I was charged twice for order {order}."),
            ("Overcharged", "My card was billed {price} but the order total was {price2}."),
            ("Discount code not working", "The discount code {code} didn't apply at checkout."),
            (
                "Unrecognized charge",
                "There's a charge of {price} from Northwind on my statement that I don't recognize.",
            ),
            ("Trail Points reward not applied", "My Trail Points reward wasn't taken off my last purchase."),
            ("Sales tax on gift card", "I was charged sales tax on a gift card purchase."),
            ("Split payment looks wrong", "I paid with a gift card and a credit card, and the split looks wrong."),
            (
                "Price dropped after purchase",
                "The price dropped to {price2} two days after I bought the {product} at {price}.",
            ),
            ("Wrong billing address on invoice", "My invoice for order {order} shows the wrong billing address."),
            ("Charged for shipping", "I was charged a {fee} shipping fee even though my order was over $75."),
            ("Student discount missing", "My student discount wasn't applied to order {order}."),
            ("Hold still on my card", "The hold of {price} is still on my card after I cancelled order {order}."),
            ("Invoice request for {order}", "I need an itemized invoice for order {order} for my company."),
            ("Gift card balance wrong", "The gift card balance shows {price2}, but it should be higher."),
            ("Billed for rental", "I was billed for a rental I returned early."),
        ],
        "detail": [
            "The order was placed on {date}.",
            "I paid with a Visa ending in {last4}.",
            "My bank says the charge is no longer pending.",
            "I have a screenshot of the checkout page if that helps.",
            "This is the second time it has happened this year.",
            "The receipt was sent to {email}.",
            "I checked the FAQ but couldn't find an answer.",
            "The amount is {price}, posted on {date}.",
            "I was using the app, not the website.",
            "My partner and I share the account, but neither of us made it.",
        ],
        "request": [
            "Can you refund the extra charge?",
            "Please correct it and send me an updated receipt.",
            "Could someone look into this?",
            "I'd like the difference refunded.",
            "Please let me know what happened.",
            "Can you fix it on your side?",
            "How long will it take to fix?",
            "Please reverse it as soon as possible.",
        ],
    },
    "shipping": {
        "subject": ["Where is my order", "Shipping question", "Delivery problem"],
        "problem": [
            ("Package stuck in transit", "My package has been stuck in transit since {date}."),
            ("Delivered but not received", "Tracking says order {order} was delivered, but nothing arrived."),
            ("Expedited shipping was slow", "I paid for expedited shipping and the parcel took a week."),
            ("Damaged box", "The box for order {order} arrived crushed and one pole section is bent."),
            ("Change delivery address", "I need to change the delivery address for order {order}."),
            ("PO box delivery", "Can you ship to a PO box in {city}?"),
            ("Parcel left with neighbor", "The carrier left my parcel with a neighbor I don't know."),
            ("Order still processing", "Order {order} still says processing after {days} days."),
            ("Missing second box", "Only one of the two boxes in order {order} has arrived."),
            ("Tracking number not working", "My tracking number {tracking} doesn't work on the carrier's site."),
            ("Saturday delivery?", "Do you deliver on Saturdays to {city}?"),
            ("Delivery date changed", "The delivery estimate at checkout said {date}, and now it says {date2}."),
            ("Marked undeliverable", "The driver marked the parcel as undeliverable, but I was home all day."),
            ("Upgrade to express", "I'd like to upgrade order {order} to express shipping."),
            ("Will it arrive in time?", "Will my order arrive before {date2}? I leave for a trip that morning."),
            ("Sent to old address", "My parcel was sent to my old address in {city}."),
            ("Parcel returning to warehouse", "The tracking page shows my order going back to your warehouse."),
            (
                "No shipping confirmation",
                "I ordered the {product} on {date} and haven't received a shipping confirmation.",
            ),
        ],
        "detail": [
            "I'm leaving for a trip on {date2}.",
            "The order contains the {product}.",
            "I've already contacted the carrier and they told me to ask you.",
            "My building has a mail room that accepts packages.",
            "The address on the order is correct.",
            "It's a gift, so timing matters.",
            "I ordered on {date}.",
            "The order number is {order}.",
            "Nobody knocked or left a note.",
            "I paid {fee} for faster shipping.",
        ],
        "request": [
            "Can you check with the carrier?",
            "Could you send a replacement?",
            "What are my options?",
            "Please sort this out before my trip.",
            "Can I get the shipping fee refunded?",
            "Please let me know what you can do.",
            "Can you confirm the new delivery date?",
            "What should I do now?",
        ],
    },
    "returns": {
        "subject": ["Return question", "Refund question"],
        "problem": [
            ("Return request", "I'd like to return the {product}; it's too small."),
            ("Refund not received", "My refund for order {order} hasn't shown up yet."),
            ("Return label expired", "The return label link in my e-mail has expired."),
            ("Exchange for a bigger size", "I want to exchange the {product} for a size up."),
            ("Partial refund", "I returned two items but was refunded for only one."),
            ("Wrong color received", "The {product} I received is a different color from the one I ordered."),
            ("Return to store?", "Can I return the {product} to a store even though I bought it online?"),
            ("Wrong item sent", "I received the wrong item in order {order}."),
            ("Item arrived torn", "The {product} arrived with a tear in the fabric."),
            ("Late return", "I missed the 60-day return window by {days} days."),
            ("Returning a gift", "I'd like to return a gift, but I don't have the order number."),
            ("Not as pictured", "The {product} doesn't fit my pack the way the photos suggested."),
            (
                "Return marked as damaged",
                "Your warehouse says my return arrived damaged, but it was fine when I sent it.",
            ),
            ("Return status", "I returned the {product} on {date} and the tracking shows it was delivered."),
            ("Refund to cancelled card", "The refund went to an old card that has since been cancelled."),
            ("Return fee on faulty item", "I was charged a return fee even though the {product} was faulty."),
        ],
        "detail": [
            "It's unused and the tags are still on.",
            "I only tried it on indoors.",
            "I dropped the parcel off on {date}.",
            "The return reference is {rma}.",
            "I still have the original box.",
            "I ordered it on {date}.",
            "The price was {price}.",
            "I've attached photos of the problem.",
            "My e-mail is {email}.",
            "This was my first order with you.",
        ],
        "request": [
            "How do I start the return?",
            "Can you send a new label?",
            "Please process the exchange.",
            "When will I get my money back?",
            "Can you make an exception?",
            "Should I send it back or keep it?",
            "Please let me know the next steps.",
            "Can you check on the refund?",
        ],
    },
    "account": {
        "subject": ["Account help", "Login problem"],
        "problem": [
            ("Can't log in", "I can't log in even after resetting my password."),
            ("Change account e-mail", "Please change the e-mail on my account to {email}."),
            ("Verification code", "I never received the verification code by text."),
            ("Delete my account", "I'd like my account and personal data deleted."),
            ("Trail Points missing", "My Trail Points balance disappeared overnight."),
            ("Merge accounts", "I have two accounts and want to merge them."),
            ("Address changed without permission", "Someone changed my shipping address without my permission."),
            ("Unsubscribe not working", "I keep getting marketing e-mails after unsubscribing."),
            ("Order history empty", "My order history is empty even though I've ordered before."),
            ("Account locked", "The app says my account is locked."),
            ("Wrong sign-up e-mail", "I signed up with {email} by mistake and can't change it."),
            ("Birthday reward", "My birthday reward never arrived."),
            ("No confirmation e-mails", "I'm not receiving order confirmation e-mails anymore."),
        ],
        "detail": [
            "My account e-mail is {email}.",
            "I last signed in on {date}.",
            "I'm using the latest version of the app.",
            "I've cleared my cookies and tried another browser.",
            "My last order was {order}.",
            "I've been a member since {year}.",
            "My phone number hasn't changed.",
            "The other account uses {email2}.",
        ],
        "request": [
            "Can you help me get back in?",
            "Please confirm when it's done.",
            "What should I do next?",
            "Can you restore my points?",
            "Please look into it urgently.",
            "Can you check what's going on?",
        ],
    },
    "technical": {
        "subject": ["Website bug", "App problem", "Technical issue"],
        "problem": [
            ("App crash", "The app crashes every time I open the cart."),
            ("Checkout stuck", "The checkout page keeps spinning after I click Pay."),
            ("Size chart not loading", "The size chart doesn't load on my phone."),
            ("502 error on tracking", "I get a 502 error when I try to track order {order}."),
            ("Wrong store hours", "The store locator shows the wrong opening hours for the {store_name} store."),
            ("Blank product photos", "Product photos are blank in the app."),
            ("Add to cart broken", "The Add to cart button does nothing in Safari."),
            ("Promo field missing", "The promo code field disappears when I switch to the mobile site."),
            ("Logged out constantly", "The app logs me out every few minutes."),
            ("Duplicate notifications", "Push notifications for my order arrive twice."),
            ("Map download stalls", "The trail map download stalls at 80 percent."),
            ("Search not working", "The website search returns no results for sleeping bag."),
            ("Chat covers button", "The live chat window covers the checkout button on my laptop."),
            ("Slow images", "Images on the product pages take forever to load."),
            ("Cart out of sync", "The app shows my cart as empty, but the website shows three items."),
        ],
        "detail": [
            "I'm on an iPhone running the latest iOS.",
            "It happens on both Wi-Fi and mobile data.",
            "I've reinstalled the app twice.",
            "It started after the update on {date}.",
            "I'm using Chrome on Windows.",
            "I can send a screenshot.",
            "My app version is {version}.",
            "My partner's phone has the same problem.",
        ],
        "request": [
            "Is there a workaround?",
            "Please fix this soon.",
            "Can you place the order for me?",
            "Let me know if you need logs.",
            "Is this a known issue?",
            "How can I finish my order in the meantime?",
        ],
    },
    "product_info": {
        "subject": ["Product question"],
        "problem": [
            ("Compatibility question", "Is the {product} compatible with the {product2}?"),
            ("Product weight", "What does the {product} weigh without the stuff sack?"),
            ("Wide fit?", "Does the {product} come in a wide fit?"),
            ("Down sourcing", "Is the down in the {product} responsibly sourced?"),
            ("Temperature rating", "What's the temperature rating of the {product}?"),
            ("Kids sizing", "Is the {product} suitable for a child of about ten?"),
            ("Washing instructions", "Can the {product} be machine washed?"),
            ("Spare parts", "Are replacement parts available for the {product}?"),
            ("Battery life", "How long does the battery in the {product} last on low?"),
        ],
        "detail": [
            "I'm planning a trip to {place} in {season}.",
            "I'm deciding between it and the {product2}.",
            "I have fairly wide feet.",
            "I want to keep my base weight under 15 pounds.",
            "I'm buying it as a gift.",
            "The product page doesn't say.",
        ],
        "request": [
            "Thanks for any advice.",
            "Could you send me the spec sheet?",
            "Which would you recommend?",
            "Is it in stock?",
            "Any help is appreciated.",
        ],
    },
}
PLACES = ["Lantern Lake", "Hollowmere Ridge", "Copper Basin", "Wren Valley", "Owl Creek", "the Blackpine Loop"]
PRODUCT_OVERVIEW = [
    "The {product} is designed for {use}.",
    "It balances weight, durability and comfort, which makes it a dependable choice for {season} trips.",
    "We tested early prototypes on {terrain} for two full seasons before finalizing the design.",
    "The main fabric uses recycled fibers and a PFC-free water-repellent finish.",
    "At {price}, it sits in the middle of our {cat} range.",
    "Reviewers often mention how quickly it becomes a favorite piece of kit.",
    "It ships with a storage sack, a small repair kit and a printed quick-start card.",
    "Colors change by season; the current range includes {color} and {color2}.",
    "Every unit is inspected by hand in our Oregon warehouse before it ships.",
    "Feedback from our store staff shaped many of the small details, from the zipper pulls to the labels.",
    "This guide covers setup, everyday use, care and the warranty.",
    "Please read it once before your first trip and keep it with your other gear manuals.",
]
CARE_SPECIAL = {
    "care-fjordline-rain-shell": [
        "Wash the shell when it starts to feel clammy inside, since body oils block the membrane's pores.",
        "Tumble dry it on low for twenty minutes to revive the water-repellent finish.",
        "Check the taped seams at the shoulders, where pack straps rub the most.",
        "Open the pit zips before washing so water can reach the lining.",
    ],
    "care-summit-ember-down-jacket": [
        "Use a down-specific wash, because ordinary soap strips the natural oils from the feathers.",
        "Dry it on low heat with two or three clean tennis balls to break up clumps of down.",
        "Expect drying to take several hours, and do not stop until no clumps remain.",
        "Never store it compressed, since crushed down slowly loses its loft.",
    ],
    "care-tarn-trek-boots": [
        "Remove the insoles and laces so each part can dry properly.",
        "Stuff wet boots with newspaper and replace it every few hours.",
        "Treat the leather with wax once or twice a season to keep it supple.",
        "Rinse mud out of the lugs with a hose so the grip stays sharp.",
    ],
    "care-cedar-hollow-tent": [
        "Never machine wash the tent; a sponge and cool water in the bathtub are enough.",
        "Pitch it in the yard or hang it in a garage to dry after every trip.",
        "Wipe the zipper tracks clean, because grit is the main cause of zipper failure.",
        "Store the poles loosely assembled, or at least not under tension, to protect the shock cord.",
    ],
    "care-larchwood-sleeping-bag": [
        "Use a liner to keep body oils off the fabric, and wash the bag itself only once or twice a year.",
        "Support the wet bag from underneath when lifting it out of the tub, because the baffles can tear under the weight of water.",
        "Store it in the large cotton sack, not the small compression sack.",
        "Air it out inside-out in the morning sun during longer trips.",
    ],
    "care-mossback-sleeping-pad": [
        "Wipe the pad with warm water and a little dish soap after each trip.",
        "Inflate it with a pump sack rather than your breath, because moisture from your lungs can grow mold inside.",
        "Store it unrolled with the valve open, under a bed or behind a sofa.",
        "Carry the patch kit on every trip, since small punctures are easy to fix on the spot.",
    ],
}
RELEASE_INTRO = [
    "This update focuses on {focus}.",
    "Thanks to everyone who sent feedback through the in-app form; many of these changes came from you.",
    "This is a smaller release with a handful of fixes ahead of the {season} season.",
    "The update rolls out gradually over the next week, so it may take a few days to reach your device.",
    "If you run into a problem, tap Help in the account menu and include your app version.",
]
RELEASE_FOCUS = [
    "speed and stability",
    "the checkout flow",
    "store features",
    "trip planning tools",
    "accessibility",
    "the rental program",
]
BAD_BYTES_TEXT = (
    "Riverside store news\n\n"
    "The Riverside store now has a small caf\u00e9 corner next to the rental counter. It opens at the same time as "
    "the shop and serves coffee, tea and soup made by a bakery two doors down. Staff from the repair workshop say "
    "the caf\u00e9 has already become the best place to wait while a zipper is replaced. Seating is limited to "
    "eight people, so please give up your table on busy Saturdays. Reusable cups are available at the counter for "
    "a small deposit, and Trail Points members get a free refill on weekday mornings. We would love to hear what "
    "you think, so leave a note in the box by the door or tell any member of the team.\n"
)

# ============================================================================================
# Engine
# ============================================================================================
_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"[a-z0-9]+")
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
BASE_DATE = dt.date(2024, 1, 8)


def cap(s: str) -> str:
    s = s.strip()
    return s[:1].upper() + s[1:]


def tidy(s: str) -> str:
    """Collapse spaces and capitalize sentence starts (used for chat and ticket text)."""
    s = re.sub(r"[ \t]+", " ", s).strip()
    s = re.sub(r"([.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)
    return cap(s)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def shingles(text: str, n: int = 3) -> set[str]:
    w = words(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def changed_fraction(a: str, b: str) -> float:
    """Share of words that differ between two texts (1 - difflib ratio over word lists)."""
    return 1.0 - difflib.SequenceMatcher(a=words(a), b=words(b), autojunk=False).ratio()


def long_date(d: dt.date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"


def short_date(d: dt.date, style: int) -> str:
    if style == 0:
        return f"{MONTHS[d.month - 1]} {d.day}"
    if style == 1:
        return long_date(d)
    if style == 2:
        return d.isoformat()
    return f"{d.month}/{d.day}"


class Gen:
    """A seeded random source plus a tiny recursive template filler."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def fill(self, template: str, frame: dict | None = None) -> str:
        frame = frame or {}

        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key in frame:
                val = frame[key]
            elif key in GRAMMAR:
                val = GRAMMAR[key]
            else:
                raise KeyError(f"unknown slot {key!r} in {template!r}")
            if isinstance(val, list | tuple):
                val = self.rng.choice(val)
            return self.fill(str(val), frame)

        return _SLOT.sub(sub, template)

    def pick(self, pool: list[str], k: int, frame: dict | None = None) -> list[str]:
        """k distinct templates from pool, in random order, filled and capitalized."""
        return [cap(self.fill(t, frame)) for t in self.rng.sample(pool, k)]

    def date(self, lo: int = 0, hi: int = 300) -> dt.date:
        return BASE_DATE + dt.timedelta(days=self.rng.randint(lo, hi))


class Novelty:
    """Rejects texts too similar (word 3-gram Jaccard) to anything accepted before."""

    def __init__(self, limit: float):
        self.limit = limit
        self.seen: list[set[str]] = []

    def accept(self, text: str) -> bool:
        sh = shingles(text)
        if any(jaccard(sh, s) >= self.limit for s in self.seen):
            return False
        self.seen.append(sh)
        return True


# --------------------------------------------------------------------------------------------
# Articles (a list of blocks: ("h1"|"meta"|"h2", str), ("p"|"ul"|"ol", [str, ...]))
# --------------------------------------------------------------------------------------------
def article_text(blocks: list) -> str:
    parts = []
    for _kind, val in blocks:
        parts.extend(val if isinstance(val, list) else [val])
    return "\n".join(parts)


def policy_article(g: Gen, topic: dict, date: dt.date) -> list:
    rng = g.rng
    generic = rng.sample(POLICY_GENERIC, 3)
    closing = rng.sample(POLICY_CLOSING, 2)
    facts = topic["facts"]
    k = (len(facts) + 1) // 2
    n_items = min(len(topic["items"]), rng.randint(3, 5))
    keep = sorted(rng.sample(range(len(topic["items"])), n_items))
    return [
        ("h1", topic["title"]),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(2, 5)} min read"),
        ("p", topic["intro"] + [generic[0]]),
        ("h2", topic["headings"][0]),
        ("p", facts[:k]),
        ("ul", [topic["items"][i] for i in keep]),
        ("h2", topic["headings"][1]),
        ("p", facts[k:] + [generic[1]]),
        ("h2", rng.choice(CLOSING_HEADINGS)),
        ("p", [generic[2]] + closing),
    ]


def care_article(g: Gen, slug: str, product: str, cat: str, date: dt.date) -> list:
    rng = g.rng
    frame = {"product": product, "cat": cat}
    special = CARE_SPECIAL[slug]
    steps = sorted(rng.sample(range(len(CARE_STEPS)), 5))
    return [
        ("h1", cap(g.fill(CARE_TITLES[list(CARE_SPECIAL).index(slug)], frame))),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(3, 6)} min read"),
        ("p", g.pick(CARE_INTRO, 2, frame) + [special[0]]),
        ("h2", rng.choice(["Cleaning", "Washing it", "Getting it clean"])),
        ("p", g.pick(CARE_CLEAN, 3, frame) + [special[1]]),
        ("ol", [CARE_STEPS[i] for i in steps]),
        ("h2", rng.choice(["Drying and storage", "Drying it properly", "Storing it between trips"])),
        ("p", [special[2]] + g.pick(CARE_DRY, 2, frame)),
        ("h2", rng.choice(["Checks and repairs", "When to get help", "Small repairs"])),
        ("p", g.pick(CARE_CHECK, 3, frame) + [special[3]]),
    ]


def howto_article(g: Gen, spec: dict, date: dt.date) -> list:
    rng = g.rng
    frame = {"product": spec["product"], "cat": spec["cat"]}
    sp = spec["special"]
    steps = sorted(rng.sample(range(len(HOWTO_STEPS)), 5))
    return [
        ("h1", spec["title"]),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(3, 7)} min read"),
        ("p", g.pick(HOWTO_CHOOSE, 2, frame) + [sp[0]]),
        ("h2", rng.choice(["Before you start", "Choosing well", "The basics"])),
        ("p", [sp[1]] + g.pick(HOWTO_CHOOSE, 1, frame) + g.pick(HOWTO_SETUP, 1, frame)),
        ("ol", [cap(g.fill(HOWTO_STEPS[i], frame)) for i in steps]),
        ("h2", rng.choice(["Getting it right", "Fine-tuning", "Setting it up"])),
        ("p", g.pick(HOWTO_SETUP, 2, frame) + [sp[2]]),
        ("h2", rng.choice(["On the trail", "Out on a trip", "In the field"])),
        ("p", [sp[3]] + g.pick(HOWTO_TRAIL, 2, frame)),
    ]


def trip_article(g: Gen, trip: tuple, author: str, date: dt.date) -> list:
    rng = g.rng
    _slug, place, duration, title = trip
    prod = rng.choice(ALL_PRODUCTS)
    frame = {
        "place": place,
        "duration": duration,
        "season": rng.choice(GRAMMAR["season"]),
        "friend": rng.choice(GRAMMAR["friend"]),
        "product": prod[0],
    }
    route = g.pick(TRIP_ROUTE, 6, frame)
    gear = rng.sample([p for p in ALL_PRODUCTS if p != prod], 3) + [prod]
    reasons = rng.sample(TRIP_GEAR, 4)
    return [
        ("h1", title),
        ("meta", f"By {author} · {long_date(date)} · {rng.randint(4, 8)} min read"),
        ("p", g.pick(TRIP_INTRO, 3, frame)),
        ("h2", rng.choice(["The route", "On the trail", "Getting there and going up"])),
        ("p", route[:3]),
        ("p", route[3:]),
        ("h2", rng.choice(["Camp", "Evenings and mornings", "Where we slept"])),
        ("p", g.pick(TRIP_CAMP, 3, frame)),
        ("h2", "What I packed"),
        ("ul", [f"{name}: {why}" for (name, _c, _p), why in zip(gear, reasons, strict=True)]),
        ("h2", "Know before you go"),
        ("p", g.pick(TRIP_PRACTICAL, 3, frame)),
        ("p", g.pick(TRIP_END, 2, frame)),
    ]


def tips_article(g: Gen, spec: dict, author: str, date: dt.date) -> list:
    rng = g.rng
    prod = rng.choice(ALL_PRODUCTS)
    frame = {"product": prod[0], "cat": prod[1]}
    blocks = [
        ("h1", spec["title"]),
        ("meta", f"By {author} · {long_date(date)} · {rng.randint(4, 7)} min read"),
        ("p", spec["intro"] + g.pick(HOWTO_CHOOSE, 1, frame)),
    ]
    generic = g.pick(HOWTO_TRAIL + HOWTO_SETUP, 5, frame)
    chosen = sorted(rng.sample(range(len(spec["tips"])), 5))
    for n, i in enumerate(chosen):
        head, lines = spec["tips"][i]
        blocks.append(("h2", f"{n + 1}. {head}"))
        blocks.append(("p", list(lines) + [generic[n]]))
    blocks.append(("h2", rng.choice(["Before you go", "One last thing", "Over to you"])))
    blocks.append(("p", g.pick(TRIP_PRACTICAL, 2, frame)))
    return blocks


def near_duplicate(
    g: Gen,
    blocks: list,
    pool: list[str],
    frame: dict,
    meta: str,
    edits: list[tuple[str, str]] = (),
    lo: float = 0.05,
    hi: float = 0.10,
) -> list:
    """Copy an article, change its meta line, apply edits, then swap sentences until lo <= changed <= hi."""
    out = copy.deepcopy(blocks)
    out = [("meta", meta) if kind == "meta" else (kind, val) for kind, val in out]
    for old, new in edits:
        hits = 0
        for _kind, val in out:
            if isinstance(val, list):
                for j, s in enumerate(val):
                    if old in s:
                        val[j] = s.replace(old, new)
                        hits += 1
        assert hits == 1, (old, hits)
    base = article_text(blocks)
    used = set(article_text(out).split("\n"))
    slots = [(i, j) for i, (kind, val) in enumerate(out) if kind == "p" for j in range(len(val))]
    candidates = g.rng.sample(pool, len(pool))
    for i, j in g.rng.sample(slots, len(slots)):
        if changed_fraction(base, article_text(out)) >= lo:
            break
        while candidates:
            new = cap(g.fill(candidates.pop(), frame))
            if new not in used:
                used.add(new)
                out[i][1][j] = new
                break
    frac = changed_fraction(base, article_text(out))
    assert lo <= frac <= hi, frac
    return out


# --------------------------------------------------------------------------------------------
# HTML rendering
# --------------------------------------------------------------------------------------------
CSS = """
:root{--nw-green:#2f5d50;--nw-sand:#f4efe6;--nw-ink:#1d2521}
body{margin:0;font-family:"Source Sans 3",Helvetica,Arial,sans-serif;color:var(--nw-ink)}
.promo-bar{background:#c4622d;color:#fff;text-align:center;font-size:.85rem;padding:.4rem}
.site-header{display:flex;align-items:center;gap:1.5rem;padding:.75rem 2rem;background:var(--nw-green);color:#fff}
.main-nav ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0}
.breadcrumbs{font-size:.85rem;margin:1rem 0}
article{max-width:42rem;line-height:1.6}
aside.related{border-top:1px solid #ddd;margin-top:2rem}
.site-footer{background:var(--nw-sand);padding:2rem;font-size:.9rem}
.cookie-banner{position:fixed;bottom:0;left:0;right:0;padding:1rem;background:#222;color:#eee}
""".strip("\n")
NAV = [
    ("Shop", "/shop"),
    ("Camp & Hike", "/shop/camp-hike"),
    ("Clothing", "/shop/clothing"),
    ("Footwear", "/shop/footwear"),
    ("Rentals", "/rentals"),
    ("Help Center", "/help"),
    ("Blog", "/blog"),
]
PROMOS = [
    "Free shipping on orders over $75 · Easy 60-day returns",
    "Trail Points members earn double points this weekend",
    "New: rent a complete backpacking kit from our Riverside and Harbor Point stores",
]
COOKIE_TEXTS = [
    "We use cookies to improve your experience, remember your cart and measure site traffic.",
    "This site uses cookies for essential features and, with your consent, for analytics and personalized offers.",
]


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
    sect_name, sect_url = ("Help Center", "/help") if section == "help" else ("Blog", "/blog")
    active = ' class="active"'
    nav = "\n".join(
        f'      <li{active if href == sect_url else ""}><a href="{href}">{esc(label)}</a></li>' for label, href in NAV
    )
    rel = "\n".join(f'      <li><a href="/{section}/{s}">{esc(t)}</a></li>' for s, t in related)
    rel_title = "Related articles" if section == "help" else "You might also like"
    ld = ""
    if jsonld:
        ld = f'\n<script type="application/ld+json">{json.dumps(jsonld, ensure_ascii=False)}</script>'
    notice_html = f'\n<div class="notice">{esc(notice)}</div>' if notice else ""
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
    main_inner = body_main + helpful + "\n" + aside if section == "help" else body_main + helpful
    after_main = "" if section == "help" else "\n" + aside.replace("  <aside", "<aside", 1)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} | Northwind Trail Supply</title>
<meta name="description" content="{html.escape(description)}">
<link rel="canonical" href="{SITE}/{section}/{slug}">
<style>
{CSS}
</style>
<script>
window.dataLayer = window.dataLayer || [];
function nwTrack(){{ dataLayer.push(arguments); }}
nwTrack('init', 'NW-WEB-0042');
nwTrack('page_view', {{section: '{section}', variant: {variant}}});
</script>{ld}
</head>
<body class="{section}">
<!-- site header v{3 + variant} -->
<a class="skip-link" href="#main">Skip to content</a>
<div class="promo-bar">{esc(PROMOS[variant % len(PROMOS)])}</div>{notice_html}
<header class="site-header">
  <a class="logo" href="/">Northwind Trail Supply</a>
  <form class="search" action="/search" role="search">
    <input type="search" name="q" placeholder="Search gear, guides and help" aria-label="Search">
    <button type="submit">Search</button>
  </form>
  <nav class="main-nav" aria-label="Main">
    <ul>
{nav}
    </ul>
  </nav>
  <div class="account-links"><a href="/account">Sign in</a> <a href="/cart">Cart (0)</a></div>
</header>
<main id="main">
  <nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/">Home</a> &rsaquo; <a href="{sect_url}">{sect_name}</a> &rsaquo; <span>{esc(title)}</span></nav>
{main_inner}
</main>{after_main}
<footer class="site-footer">
  <div class="footer-cols">
    <div><h3>Customer service</h3><ul><li><a href="/help/contact">Contact us</a></li><li><a href="/help/help-returns">Returns</a></li><li><a href="/help/help-shipping">Shipping</a></li><li><a href="/help/help-warranty">Warranty</a></li></ul></div>
    <div><h3>About us</h3><ul><li><a href="/about">Our story</a></li><li><a href="/careers">Careers</a></li><li><a href="/stores">Stores</a></li><li><a href="/sustainability">Sustainability</a></li></ul></div>
    <div><h3>Stay in touch</h3><form class="newsletter"><label for="nl-email">Get trail tips and early sale access</label> <input id="nl-email" type="email" placeholder="you@example.com"> <button>Sign up</button></form></div>
  </div>
  <p class="legal">&copy; 2024 Northwind Trail Supply Co. All rights reserved. <a href="/privacy">Privacy</a> &middot; <a href="/terms">Terms</a> &middot; <a href="/accessibility">Accessibility</a></p>
</footer>
<div class="cookie-banner" role="dialog" aria-live="polite">
  <p>{esc(COOKIE_TEXTS[variant % len(COOKIE_TEXTS)])} <a href="/privacy#cookies">Learn more</a></p>
  <button class="accept">Accept all cookies</button> <button class="manage">Manage preferences</button>
</div>
<script src="/static/js/site.min.js" defer></script>
<script>
document.querySelector('.cookie-banner .accept').addEventListener('click', function () {{
  document.cookie = 'nw_consent=all; path=/; max-age=31536000';
  this.parentNode.remove();
}});
</script>
</body>
</html>
"""


def render_print_page(slug: str, title: str, article_html: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)} (printer-friendly) | Northwind Trail Supply</title>
<link rel="canonical" href="{SITE}/blog/{slug}">
<style>
body{{font-family:Georgia,serif;margin:2cm}} nav,.no-print{{display:none}}
</style>
</head>
<body class="print">
<header class="print-header"><p>Northwind Trail Supply &middot; {SITE}/blog/{slug}</p></header>
<main>
{article_html}
</main>
<footer><p>&copy; 2024 Northwind Trail Supply Co. Printed from our blog. <a href="/blog">More stories</a></p></footer>
<script>window.addEventListener('load', function () {{ window.print(); }});</script>
</body>
</html>
"""


def store_locator_main() -> str:
    return """  <h1>Find a store</h1>
  <p>Enter your ZIP code to find the Northwind store nearest to you.</p>
  <form class="store-search"><input type="text" name="zip" aria-label="ZIP code"> <button>Find stores</button></form>
  <div id="store-map" data-lat="45.52" data-lng="-122.68" data-zoom="9"></div>"""


# --------------------------------------------------------------------------------------------
# web/
# --------------------------------------------------------------------------------------------
def build_web(report: dict) -> dict[str, bytes]:
    g = Gen(SEED + 1)
    rng = g.rng
    pages: list[dict] = []  # slug, section, blocks, pool, frame
    for topic in POLICIES:
        pages.append(
            {
                "slug": topic["slug"],
                "section": "help",
                "kind": "policy",
                "blocks": policy_article(g, topic, g.date()),
                "pool": POLICY_GENERIC,
                "frame": {},
            }
        )
    for slug, product, cat in CARE_GUIDES:
        pages.append(
            {
                "slug": slug,
                "section": "help",
                "kind": "care",
                "blocks": care_article(g, slug, product, cat, g.date()),
                "pool": CARE_CLEAN + CARE_DRY + CARE_CHECK,
                "frame": {"product": product, "cat": cat},
            }
        )
    for spec in HOWTOS:
        pages.append(
            {
                "slug": spec["slug"],
                "section": "help",
                "kind": "howto",
                "blocks": howto_article(g, spec, g.date()),
                "pool": HOWTO_SETUP,
                "frame": {"product": spec["product"], "cat": spec["cat"]},
            }
        )
    authors = rng.sample(STAFF, len(STAFF))
    for n, trip in enumerate(TRIPS):
        pages.append(
            {
                "slug": trip[0],
                "section": "blog",
                "kind": "trip",
                "blocks": trip_article(g, trip, authors[n % len(authors)], g.date()),
                "pool": TRIP_ROUTE,
                "frame": {"place": trip[1], "duration": trip[2]},
            }
        )
    for n, spec in enumerate(TIPS):
        pages.append(
            {
                "slug": spec["slug"],
                "section": "blog",
                "kind": "tips",
                "blocks": tips_article(g, spec, authors[(n + 3) % len(authors)], g.date()),
                "pool": HOWTO_TRAIL,
                "frame": {"snack": GRAMMAR["snack"]},
            }
        )
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
        ext = ".htm" if p["slug"] + ".htm" == WEB_HTM else ".html"
        files[p["slug"] + ext] = page_html(p, p["blocks"], rng.randint(0, 2))

    # exact duplicates: same <article>, different boilerplate
    legacy_src = by_slug[WEB_EXACT_DUPS["help-returns-legacy.html"][:-5]]
    files["help-returns-legacy.html"] = page_html(
        legacy_src,
        legacy_src["blocks"],
        2,
        slug="returns-policy-old",
        notice="You are viewing an archived copy of this page. Bookmarks to the old address will stop working soon.",
    )
    print_src = by_slug[WEB_EXACT_DUPS["blog-trip-lantern-lake-print.html"][:-5]]
    files["blog-trip-lantern-lake-print.html"] = render_print_page(
        print_src["slug"], print_src["blocks"][0][1], render_article(print_src["blocks"], "post")
    )

    # near duplicates
    near_specs = {
        "help-shipping-2023.html": (
            "Last updated November 2, 2023 · 3 min read",
            [
                (
                    "Orders over $75 ship free with standard delivery.",
                    "Orders over $50 ship free with standard delivery, except to Alaska and Hawaii.",
                ),
                ("costs $14.95", "costs $12.95"),
            ],
        ),
        "blog-tips-winter-camping-updated.html": (
            None,
            [
                (
                    "Cold nights reward good habits and punish small mistakes.",
                    "Cold nights reward good habits, and this updated guide adds notes from our January staff trip.",
                )
            ],
        ),
        "care-fjordline-rain-shell-v2.html": ("Last updated September 30, 2024 · 5 min read", []),
    }
    for name, (meta, edits) in near_specs.items():
        src = by_slug[WEB_NEAR_DUPS[name][:-5]]
        old_meta = next(v for k, v in src["blocks"] if k == "meta")
        if meta is None:  # republished blog post: same author, new date
            meta = old_meta.split(" · ")[0] + " · December 3, 2024 · 6 min read"
        blocks = near_duplicate(g, src["blocks"], src["pool"], src["frame"], meta, edits)
        files[name] = page_html(src, blocks, rng.randint(0, 2), slug=name[:-5])
        report.setdefault("near", {})[f"web/{name}"] = (
            f"web/{WEB_NEAR_DUPS[name]}",
            round(changed_fraction(article_text(src["blocks"]), article_text(blocks)), 3),
            round(jaccard(shingles(article_text(src["blocks"])), shingles(article_text(blocks))), 3),
        )

    # boilerplate-only page
    files[WEB_BOILERPLATE_ONLY] = render_page(
        section="help",
        slug="store-locator",
        title="Find a store",
        body_main=store_locator_main(),
        related=[],
        variant=1,
        description="Find your nearest Northwind Trail Supply store.",
        widgets=False,
    )

    out: dict[str, bytes] = {}
    for name, text in files.items():
        data = text.encode("utf-8")
        if name == WEB_BAD_UTF8:
            cut = data.index(b"</p>", data.index(b"<h2>"))
            cut = data.rindex(b" ", 0, cut)
            data = data[:cut] + b" \xff\xfe" + data[cut:]
        out[f"web/{name}"] = data
    gz_name = WEB_GZ[:-3]
    out[f"web/{WEB_GZ}"] = gzip.compress(out.pop(f"web/{gz_name}"), compresslevel=9, mtime=0)
    report["articles"] = {p["slug"]: article_text(p["blocks"]) for p in pages}
    return out


# --------------------------------------------------------------------------------------------
# docs/
# --------------------------------------------------------------------------------------------
NBSP_UNITS = re.compile(r"(\d) (L|kg|g|cm|mm|in|m²|°F|h|min|kW)\b")


def smarten(text: str) -> str:
    text = re.sub(r'"([^"\n]+)"', "\u201c\\1\u201d", text)
    return re.sub(r"(\w)'(\w)", "\\1\u2019\\2", text)


def messify(
    text: str, rng: random.Random, *, tabs: bool = False, trailing: float = 0.15, blank_runs: float = 0.3
) -> str:
    lines = []
    for line in text.split("\n"):
        if tabs and re.match(r"^(\d+\.|-) ", line):
            line = "\t" + line
        if line and rng.random() < trailing:
            line += rng.choice([" ", "  ", "\t", "   "])
        lines.append(line)
    parts = "\n".join(lines).split("\n\n")
    text = parts[0]
    for part in parts[1:]:
        text += ("\n\n\n\n" if rng.random() < blank_runs else "\n\n") + part
    return text


def product_guide(g: Gen, p: dict) -> str:
    rng = g.rng
    colors = rng.sample(COLORS, 2)
    frame = {
        "product": p["name"],
        "cat": p["cat"],
        "use": p["use"],
        "price": p["price"],
        "color": colors[0],
        "color2": colors[1],
    }
    steps = sorted(rng.sample(range(len(HOWTO_STEPS)), 5))
    warranty = rng.sample(POLICIES[2]["facts"][:6], 2)
    spec_lines = [NBSP_UNITS.sub("\\1\u00a0\\2", s) for s in p["specs"]]
    d = g.date()
    lines = [
        f"# {p['name'][0].upper() + p['name'][1:]}: owner's guide",
        "",
        f"*Product code NW-{p['slug'].upper()} · Guide version {rng.randint(1, 3)}.{rng.randint(0, 9)} · "
        f"Updated {MONTHS[d.month - 1]} {d.year}*",
        "",
        "## Overview",
        "",
        " ".join(g.pick(PRODUCT_OVERVIEW, 4, frame)),
        "",
        "## Specifications",
        "",
        *[f"- {s}" for s in spec_lines],
        "",
        "## Getting started",
        "",
        " ".join(g.pick(HOWTO_SETUP, 3, frame)),
        "",
        *[f"{n + 1}. {cap(g.fill(HOWTO_STEPS[i], frame))}" for n, i in enumerate(steps)],
        "",
        "## Care and storage",
        "",
        " ".join(g.pick(CARE_CLEAN, 2, frame) + g.pick(CARE_DRY, 1, frame)),
        "",
        "## Warranty",
        "",
        " ".join(warranty),
        "",
    ]
    return "\n".join(lines)


def release_notes(g: Gen, version: str) -> str:
    rng = g.rng
    d = g.date(60, 300)
    feats = rng.sample(RELEASE_FEATURES, rng.randint(2, 4))
    new = [cap(g.fill(rng.choice(RELEASE_NEW), {"feature": f})) for f in feats]
    improved = [
        cap(g.fill(t, {"screen": RELEASE_SCREENS, "pct": ["15", "20", "30", "40"]}))
        for t in rng.sample(RELEASE_IMPROVED, rng.randint(2, 3))
    ]
    fixed = []
    for ui in rng.sample(RELEASE_UI, rng.randint(3, 5)):
        fixed.append(f"Fixed an issue where {ui} {rng.choice(RELEASE_BUG)} {rng.choice(RELEASE_CTX)}.")
    intro = g.pick(RELEASE_INTRO, 2, {"focus": RELEASE_FOCUS})
    lines = [
        f"# Northwind Trail app {version}",
        "",
        f"Released {long_date(d)} for iOS and Android.",
        "",
        " ".join(intro),
        "",
        "## New",
        "",
        *[f"- {x}" for x in new],
        "",
        "## Improved",
        "",
        *[f"- {x}" for x in improved],
        "",
        "## Fixed",
        "",
        *[f"- {x}" for x in fixed],
        "",
        cap(g.fill(rng.choice(RELEASE_INTRO[3:]), {})),
        "",
    ]
    return "\n".join(lines)


def procedure_doc(g: Gen, spec: dict, date: dt.date, revision: int) -> str:
    generic = g.rng.sample(STAFF_GENERIC, 5)
    lines = [
        spec["title"],
        f"Document owner: Store Operations | Revision {revision} | Effective {long_date(date)}",
        "",
        "PURPOSE",
        " ".join(generic[:2]),
        "",
        "STEPS",
        *[f"{n + 1}. {s}" for n, s in enumerate(spec["steps"])],
        "",
        "NOTES",
        " ".join(generic[2:]),
        "",
    ]
    return "\n".join(lines)


def doc_howto(g: Gen, spec: dict) -> str:
    generic = g.rng.sample(HOWTO_DOC_GENERIC, 5)
    title = spec["title"]
    lines = [
        title,
        "=" * len(title),
        "",
        " ".join(generic[:3]),
        "",
        "Steps:",
        "",
        *[f"{n + 1}. {s}" for n, s in enumerate(spec["steps"])],
        "",
        "Tips:",
        "",
        *[f"- {s}" for s in generic[3:]],
        "",
    ]
    return "\n".join(lines)


def build_docs(report: dict) -> dict[str, bytes]:
    g = Gen(SEED + 2)
    rng = g.rng
    texts: dict[str, str] = {}
    for p in PRODUCTS:
        texts[f"guide-{p['slug']}.md"] = product_guide(g, p)
    for version in ["4.0.0", "4.1.0", "4.2.0", "4.3.0"]:
        texts[f"release-notes-{version.rsplit('.', 1)[0]}.md"] = release_notes(g, version)
    proc_dates = {}
    for spec in PROCEDURES:
        proc_dates[spec["file"]] = g.date()
        text = procedure_doc(g, spec, proc_dates[spec["file"]], 3)
        if spec["file"] == "support-style-guide.txt":
            text = smarten(text)
        texts[spec["file"]] = text
    for spec in DOC_HOWTOS:
        texts[spec["file"]] = doc_howto(g, spec)

    # near duplicate: a later revision of the returns desk procedure
    src = "returns-desk-procedure.txt"
    v2 = texts[src]
    for old, new in [
        ("Revision 3", "Revision 4"),
        (f"Effective {long_date(proc_dates[src])}", "Effective January 6, 2025"),
        (
            "Ask a shift lead to approve any return over $300.",
            "Ask a shift lead or the store manager to approve any return over $250.",
        ),
        ("in the gray bin behind the counter", "in the blue returns cage in the stockroom"),
    ]:
        assert old in v2
        v2 = v2.replace(old, new)
    texts["returns-desk-procedure-v2.txt"] = v2
    report.setdefault("near", {})["docs/returns-desk-procedure-v2.txt"] = (
        f"docs/{src}",
        round(changed_fraction(texts[src], v2), 3),
        round(jaccard(shingles(texts[src]), shingles(v2)), 3),
    )

    # whitespace mess, curly quotes, mojibake
    for name in sorted(texts):
        if name.endswith(".txt"):
            texts[name] = messify(texts[name], rng, tabs=name.startswith(("returns", "store", "howto-patch")))
        elif rng.random() < 0.5:
            texts[name] = messify(texts[name], rng, trailing=0.08, blank_runs=0.15)
    texts[DOCS_MOJIBAKE] = texts[DOCS_MOJIBAKE].replace("\u2019", "\u2019".encode("utf-8").decode("cp1252"))
    texts["guide-summit-ember.md"] = smarten(texts["guide-summit-ember.md"])
    texts[DOCS_CRLF] = texts[DOCS_CRLF].replace("\n", "\r\n")

    out = {f"docs/{name}": text.encode("utf-8") for name, text in texts.items()}
    out["docs/guide-ridgeline-45-copy.md"] = out["docs/guide-ridgeline-45.md"]
    out[f"docs/{DOCS_EMPTY}"] = b""
    out[f"docs/{DOCS_TINY}"] = b"TODO: write intro\n"
    out[f"docs/{DOCS_BAD_BYTES}"] = BAD_BYTES_TEXT.encode("latin-1")
    return out


# --------------------------------------------------------------------------------------------
# support_chats.jsonl
# --------------------------------------------------------------------------------------------
def person(rng: random.Random) -> tuple[str, str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    n = rng.randint(2, 98)
    email = rng.choice(
        [
            f"{first}.{last}@example.com",
            f"{first[0]}{last}{n}@example.net",
            f"{first}{n}@example.org",
            f"{last}.{first}@mail.example",
        ]
    ).lower()
    return first, last, email


def chat_frame(rng: random.Random, products: dict | None = None) -> dict:
    """Entities for one conversation or ticket; ``products`` may restrict the product ("pool" or "pairs")."""
    first, last, email = person(rng)
    prices = {n: pr for n, _c, pr in ALL_PRODUCTS}
    if products and "pairs" in products:
        name, other_name = rng.choice(products["pairs"])
    else:
        name = rng.choice(products["pool"] if products else [n for n, _c, _p in ALL_PRODUCTS])
        other_name = rng.choice([n for n, _c, _p in ALL_PRODUCTS if n != name])
    price = prices[name]
    d = BASE_DATE + dt.timedelta(days=rng.randint(0, 300))
    d2 = d + dt.timedelta(days=rng.randint(3, 12))
    style = rng.randint(0, 1)
    p2 = float(price[1:]) * rng.choice([0.75, 0.8, 0.85])
    return {
        "first": first,
        "email": email,
        "email2": f"{first}.{last}@work.example".lower(),
        "order": f"#NW-{rng.randint(10000, 99999)}",
        "tracking": f"NW{rng.randint(10**9, 10**10 - 1)}",
        "rma": f"RMA-{rng.randint(20000, 29999)}",
        "product": name,
        "product2": other_name,
        "price": price,
        "price2": f"${p2:.2f}",
        "fee": rng.choice(["$6.95", "$7.95", "$14.95"]),
        "date": short_date(d, style),
        "date2": short_date(d2, style),
        "days": str(rng.randint(3, 12)),
        "city": rng.choice(CITIES),
        "country": rng.choice(COUNTRIES),
        "store_name": rng.choice(STORE_NAMES),
        "points": str(rng.randint(12, 90) * 10),
        "size": rng.choice(SIZES),
        "color": rng.choice(COLORS),
        "weight": WEIGHTS[name],
        "temp": rng.choice(["15", "20", "28", "35"]),
        "otherbrand": rng.choice(OTHER_BRANDS),
        "months": str(rng.randint(3, 20)),
        "season": rng.choice(["winter", "late autumn", "early spring"]),
    }


def make_chat(g: Gen, intent: str, exchanges: int) -> list[dict]:
    rng = g.rng
    spec = INTENTS[intent]
    branch = rng.choice(spec["open"])
    user_parts, asst_parts = branch[:2]
    frame = chat_frame(rng, branch[2] if len(branch) > 2 else None)
    msgs = []
    if rng.random() < 0.35:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    user = tidy(
        g.fill(" ".join([rng.choice(U_GREET)] + [rng.choice(p) for p in user_parts] + [rng.choice(U_SIGN)]), frame)
    )
    if rng.random() < 0.12:  # casual typing
        user = user[0].lower() + user[1:].rstrip(".")
    ack = rng.choice(spec["ack"]) if rng.random() < 0.8 else ""
    asst = tidy(g.fill(" ".join([ack] + [rng.choice(p) for p in asst_parts]), frame))
    msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": asst}]
    follows = rng.sample(spec["follow"], 2)
    for n in range(1, exchanges):
        if n == 2 and rng.random() < 0.6:
            u, a = rng.choice(CLOSE_USER), rng.choice(CLOSE_ASSIST)
        else:
            u, a = rng.choice(follows[n - 1][0]), rng.choice(follows[n - 1][1])
        msgs += [
            {"role": "user", "content": tidy(g.fill(u, frame))},
            {"role": "assistant", "content": tidy(g.fill(a, frame))},
        ]
    return msgs


def chat_text(msgs: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in msgs)


def chat_line(cid: str, label: str, msgs: list[dict]) -> str:
    return json.dumps({"conversation_id": cid, "label": label, "messages": msgs}, ensure_ascii=False)


def near_copy_chat(msgs: list[dict]) -> list[dict]:
    out = copy.deepcopy(msgs)
    users = [m for m in out if m["role"] == "user"]
    first = users[0]["content"]
    greeting = re.match(r"^(Hi there,|Hi team,|Good morning,|Good afternoon,|Hello,|Hey,|Hi,)\s*", first)
    rest = first[greeting.end() :] if greeting else first
    users[0]["content"] = "Hello again, " + rest[0].lower() + rest[1:]
    last = [m for m in out if m["role"] == "assistant"][-1]
    last["content"] = last["content"] + " Have a good weekend!"
    return out


def build_chats(report: dict) -> dict[str, bytes]:
    g = Gen(SEED + 3)
    rng = g.rng
    intents = [name for name, n in CHAT_INTENT_COUNTS.items() for _ in range(n)]
    assert len(intents) == CHAT_BASE
    rng.shuffle(intents)
    guard = Novelty(0.4)
    convs: dict[str, tuple[str, list[dict]]] = {}
    forced_long = set(CHAT_NEAR_DUPS.values())
    for i, intent in enumerate(intents):
        cid = f"c{i + 1:04d}"
        for _attempt in range(200):
            k = 3 if cid in forced_long else rng.choice([1, 1, 2, 2, 2, 3, 3])
            msgs = make_chat(g, intent, k)
            if guard.accept(chat_text(msgs)):
                break
        else:
            raise RuntimeError(f"could not make a novel conversation for {cid}")
        convs[cid] = (intent, msgs)
    lines_after: dict[str, list[str]] = {}
    for src, after in CHAT_EXACT_DUPS.items():
        lines_after.setdefault(after, []).append(chat_line(src, *convs[src]))
    for new, src in CHAT_NEAR_DUPS.items():
        intent, msgs = convs[src]
        near = near_copy_chat(msgs)
        lines_after.setdefault(CHAT_NEAR_AFTER[new], []).append(chat_line(new, intent, near))
        report.setdefault("near", {})[f"support_chats.jsonl:{new}"] = (
            src,
            round(changed_fraction(chat_text(msgs), chat_text(near)), 3),
            round(jaccard(shingles(chat_text(msgs)), shingles(chat_text(near))), 3),
        )
    broken = chat_line("c0103", "shipping", make_chat(g, "shipping", 2))
    lines_after.setdefault(CHAT_MALFORMED_AFTER, []).append(broken[: int(len(broken) * 0.6)])
    lines_after.setdefault(CHAT_BLANK_AFTER, []).append("")
    lines_after.setdefault(CHAT_NO_MESSAGES_AFTER, []).append(CHAT_NO_MESSAGES_LINE)
    lines = []
    for cid, (intent, msgs) in convs.items():
        lines.append(chat_line(cid, intent, msgs))
        lines.extend(lines_after.get(cid, []))
    plants = {}
    for n, line in enumerate(lines, start=1):
        if line == "":
            plants["blank"] = n
        elif line == CHAT_NO_MESSAGES_LINE:
            plants["no_messages"] = n
        elif not line.endswith("}"):
            plants["malformed"] = n
        elif lines.index(line) != n - 1:
            plants.setdefault("exact_dup", []).append(n)
        elif '"c0101"' in line[:40] or '"c0102"' in line[:40]:
            plants.setdefault("near_dup", []).append(n)
    report["chat_lines"] = plants
    report["chat_texts"] = {cid: chat_text(m) for cid, (_i, m) in convs.items()}
    return {"support_chats.jsonl": ("\n".join(lines) + "\n").encode("utf-8")}


# --------------------------------------------------------------------------------------------
# tickets.csv
# --------------------------------------------------------------------------------------------
def ticket_frame(rng: random.Random) -> dict:
    f = chat_frame(rng)
    f.update(
        {
            "code": rng.choice(["TRAIL15", "WELCOME10", "SPRING20", "MEMBER5", "CAMPOUT"]),
            "last4": str(rng.randint(1000, 9999)),
            "version": f"4.{rng.randint(0, 3)}.{rng.randint(0, 4)}",
            "year": str(rng.randint(2016, 2023)),
            "place": rng.choice(PLACES),
            "email": f["email"],
            "date": short_date(BASE_DATE + dt.timedelta(days=rng.randint(0, 300)), 0),
        }
    )
    return f


def make_ticket(g: Gen, label: str, multiline: bool) -> tuple[str, str]:
    rng = g.rng
    spec = TICKETS[label]
    f = ticket_frame(rng)
    subject, problem = rng.choice(spec["problem"])
    if rng.random() < 0.2:
        subject = rng.choice(spec["subject"])
    detail, request = rng.choice(spec["detail"]), rng.choice(spec["request"])
    if multiline:
        body = " ".join([problem, detail, request])
        text = "\n".join([rng.choice(["Hi,", "Hello,", "Hi team,"]), tidy(g.fill(body, f)), "Thanks,", f["first"]])
    else:
        shape = rng.choice(
            [
                [problem],
                [problem, request],
                [problem, detail],
                [problem, detail, request],
                [problem, detail, request],
                [rng.choice(T_OPEN), problem, detail, request],
                [problem, request, rng.choice(T_SIGN)],
                [problem, detail, rng.choice(T_SIGN)],
            ]
        )
        text = tidy(g.fill(" ".join(shape), f))
    return cap(g.fill(subject, f)), text


def build_tickets(report: dict) -> dict[str, bytes]:
    g = Gen(SEED + 4)
    rng = g.rng
    labels = [name for name, n in TICKET_LABEL_COUNTS.items() for _ in range(n)]
    rng.shuffle(labels)
    multiline_at = set(rng.sample(range(len(labels)), TICKET_N_MULTILINE))
    guard = Novelty(0.5)
    rows: list[dict] = []
    for i, label in enumerate(labels):
        for _attempt in range(500):
            subject, text = make_ticket(g, label, i in multiline_at)
            if guard.accept(text):
                break
        else:
            raise RuntimeError(f"could not make a novel ticket for row {i} ({label})")
        rows.append({"subject": subject, "text": text, "label": label, "plant": None})

    def eligible(i: int, min_words: int) -> bool:
        r = rows[i]
        return r["label"] != "product_info" and "\n" not in r["text"] and len(words(r["text"])) >= min_words

    plants: list[tuple[int, dict]] = []  # (insert after base index, row)
    for start in (10, 120, 230)[:TICKET_N_EXACT]:
        i = next(j for j in range(start, len(rows)) if eligible(j, 8))
        rows[i]["plant"] = "exact_src"
        plants.append(
            (
                i + 37,
                {
                    "subject": "Re: " + rows[i]["subject"],
                    "text": rows[i]["text"],
                    "label": rows[i]["label"],
                    "plant": "exact_dup",
                },
            )
        )
    edits = [
        lambda t: re.sub(r"#NW-(\d)(\d{4})", lambda m: f"#NW-{(int(m.group(1)) + 1) % 10}{m.group(2)}", t, count=1),
        lambda t: t + " Any update would be appreciated.",
        lambda t: t.replace(" the ", " my ", 1) if " the " in t else t + " Thanks.",
    ]
    for start, edit in zip((40, 150, 260), edits[:TICKET_N_NEAR], strict=True):
        i = next(
            j
            for j in range(start, len(rows))
            if eligible(j, 22) and rows[j]["plant"] is None and edit(rows[j]["text"]) != rows[j]["text"]
        )
        rows[i]["plant"] = "near_src"
        new = edit(rows[i]["text"])
        plants.append(
            (i + 23, {"subject": rows[i]["subject"], "text": new, "label": rows[i]["label"], "plant": "near_dup"})
        )
    plants.append((77, {"subject": "Charged twice", "text": "", "label": "billing", "plant": "empty"}))
    plants.append((201, {"subject": "App crash", "text": "", "label": "technical", "plant": "empty"}))
    final: list[dict] = []
    for i, r in enumerate(rows):
        final.append(r)
        final.extend(p for after, p in plants if after == i)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ticket_id", "subject", "text", "label"])
    ids = {}
    for n, r in enumerate(final):
        tid = f"T-{1001 + n}"
        ids[id(r)] = tid
        w.writerow([tid, r["subject"], r["text"], r["label"]])
    info: dict[str, list] = {}
    for r in final:
        if r["plant"]:
            info.setdefault(r["plant"], []).append(ids[id(r)])
    near_pairs = []
    srcs = [r for r in final if r["plant"] == "near_src"]
    dups = [r for r in final if r["plant"] == "near_dup"]
    for s in srcs:
        d = next(d for d in dups if d["label"] == s["label"] and changed_fraction(s["text"], d["text"]) < 0.3)
        near_pairs.append((ids[id(d)], ids[id(s)], round(jaccard(shingles(s["text"]), shingles(d["text"])), 3)))
    info["near_pairs"] = near_pairs
    report["tickets"] = info
    return {"tickets.csv": buf.getvalue().encode("utf-8")}


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def build(report: dict | None = None) -> dict[str, bytes]:
    """Every file of the sample corpus, relative path -> bytes."""
    report = {} if report is None else report
    files: dict[str, bytes] = {}
    files.update(build_web(report))
    files.update(build_docs(report))
    files.update(build_chats(report))
    files.update(build_tickets(report))
    return dict(sorted(files.items()))


def write(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for child in sorted(out.iterdir()):
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def summarize(files: dict[str, bytes], report: dict) -> str:
    groups: dict[str, list[int]] = {}
    for rel, data in files.items():
        groups.setdefault(rel.split("/")[0] if "/" in rel else rel, []).append(len(data))
    lines = [f"{k:22s} {len(v):4d} files {sum(v):9,d} bytes" for k, v in groups.items()]
    lines.append(f"{'total':22s} {len(files):4d} files {sum(map(len, files.values())):9,d} bytes")
    for name, (src, frac, jac) in report.get("near", {}).items():
        lines.append(f"near dup {name} ~ {src}: {frac:.1%} words changed, 3-gram Jaccard {jac}")
    lines.append(f"chat plant lines: {report['chat_lines']}")
    lines.append(f"ticket plants: {report['tickets']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (wiped first)")
    args = ap.parse_args()
    report: dict = {}
    files = build(report)
    write(args.out, files)
    print(summarize(files, report))


if __name__ == "__main__":
    main()
