"""Registry of planted items (file names, ids, counts): the generator and tests/test_sample_data.py share these."""

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
