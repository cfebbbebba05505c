"""A template grammar for the augmentation bench: ~20-word English sentences with facts that must survive.

Every sentence carries digits, prices, dates, e-mails and person/product names
(the spans tuneprep protects), and every token comes with its Penn Treebank tag,
so the same corpus also trains the small NLTK tagger nlpaug's SynonymAug needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PEOPLE = ["Rosalind", "Marcus", "Priya", "Tomasz", "Aiko", "Fatima", "Jonas", "Lucia", "Kwame", "Ingrid"]
PRODUCTS = ["Northwind Pro", "Cedar Hollow", "Glowworm 300", "Brookside Filter", "Summit Lite", "Ember Stove"]
MONTHS = ["January", "March", "April", "June", "July", "September", "October", "December"]
DOMAINS = ["northwind.example", "shop.example", "mail.example"]
ADJ = ["small", "large", "broken", "new", "heavy", "cheap", "quiet", "bright", "warm", "strong", "simple", "quick"]
NOUN_SG = ["package", "box", "order", "invoice", "kettle", "tent", "lamp", "filter", "jacket", "ticket", "parcel"]
NOUN_PL = ["packages", "boxes", "orders", "invoices", "kettles", "tents", "lamps", "filters", "jackets", "parcels"]
VERB_PAST = ["ordered", "bought", "returned", "received", "shipped", "repaired", "reported", "cancelled", "checked"]
VERB_BASE = ["replace", "refund", "repair", "ship", "check", "send", "deliver", "inspect", "return", "confirm"]
ADV = ["quickly", "finally", "carefully", "again", "yesterday", "recently", "twice", "politely"]
REASONS = [
    [("because", "IN"), ("the", "DT"), ("old", "JJ"), ("one", "NN"), ("stopped", "VBD"), ("working", "VBG")],
    [("since", "IN"), ("the", "DT"), ("driver", "NN"), ("arrived", "VBD"), ("late", "RB")],
    [("after", "IN"), ("the", "DT"), ("store", "NN"), ("changed", "VBD"), ("its", "PRP$"), ("policy", "NN")],
]

Tagged = list[tuple[str, str]]


@dataclass
class Sentence:
    text: str
    protected: list[str] = field(default_factory=list)  # facts that must come through verbatim
    names: list[str] = field(default_factory=list)
    tagged: Tagged = field(default_factory=list)


def _date(rng: random.Random) -> tuple[str, Tagged]:
    if rng.random() < 0.5:
        m, d, y = rng.choice(MONTHS), rng.randint(1, 28), rng.choice([2023, 2024, 2025])
        return f"{m} {d}, {y}", [(m, "NNP"), (str(d), "CD"), (",", ","), (str(y), "CD")]
    s = f"{rng.choice([2023, 2024])}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return s, [(s, "CD")]


def _price(rng: random.Random) -> tuple[str, Tagged]:
    s = f"${rng.randint(5, 900)}.{rng.randint(0, 99):02d}"
    return s, [("$", "$"), (s[1:], "CD")]


def _product(rng: random.Random) -> tuple[str, Tagged]:
    p = rng.choice(PRODUCTS)
    return p, [(w, "NNP" if not w.isdigit() else "CD") for w in p.split()]


def _email(rng: random.Random, person: str) -> str:
    return f"{person.lower()}.{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"


def sentence(rng: random.Random) -> Sentence:
    """One sentence from one of four templates, each 17-24 words."""
    person = rng.choice(PEOPLE)
    product, product_tags = _product(rng)
    price, price_tags = _price(rng)
    date, date_tags = _date(rng)
    email = _email(rng, person)
    n = rng.randint(2, 48)
    adj, adj2 = rng.sample(ADJ, 2)
    noun, nouns = rng.choice(NOUN_SG), rng.choice(NOUN_PL)
    vpast, vbase, adv = rng.choice(VERB_PAST), rng.choice(VERB_BASE), rng.choice(ADV)
    t = rng.randrange(4)
    parts: Tagged
    if t == 0:
        parts = [
            (person, "NNP"),
            (vpast, "VBD"),
            (str(n), "CD"),
            (adj, "JJ"),
            (nouns, "NNS"),
            ("of", "IN"),
            ("the", "DT"),
        ]
        parts += [*product_tags, ("on", "IN"), *date_tags, ("and", "CC"), ("paid", "VBD"), *price_tags]
        parts += [*rng.choice(REASONS), (".", ".")]
    elif t == 1:
        parts = [("Please", "VB"), (vbase, "VB"), ("the", "DT"), (adj, "JJ"), (noun, "NN"), ("that", "WDT")]
        parts += [(person, "NNP"), (vpast, "VBD"), (adv, "RB"), ("for", "IN"), *price_tags, ("and", "CC")]
        parts += [("write", "VB"), ("to", "TO"), (email, "NN"), ("before", "IN"), *date_tags, (".", ".")]
    elif t == 2:
        parts = [("The", "DT"), (adj, "JJ"), (noun, "NN"), ("from", "IN"), *product_tags, ("costs", "VBZ")]
        parts += [*price_tags, (",", ","), ("but", "CC"), (person, "NNP"), ("says", "VBZ"), ("the", "DT")]
        parts += [(adj2, "JJ"), (nouns, "NNS"), ("arrived", "VBD"), (adv, "RB"), ("on", "IN"), *date_tags, (".", ".")]
    else:
        parts = [("On", "IN"), *date_tags, (person, "NNP"), ("asked", "VBD"), ("us", "PRP"), ("to", "TO")]
        parts += [(vbase, "VB"), (str(n), "CD"), (nouns, "NNS"), ("and", "CC"), ("to", "TO"), ("send", "VB")]
        parts += [("the", "DT"), (adj, "JJ"), ("receipt", "NN"), ("to", "TO"), (email, "NN"), (".", ".")]
    text = " ".join(w for w, _ in parts)
    for a, b in ((" ,", ","), (" .", "."), ("$ ", "$")):
        text = text.replace(a, b)
    protected = {0: [date, price, str(n)], 1: [price, email, date], 2: [price, date], 3: [date, str(n), email]}[t]
    names = [person] + ([product] if t in (0, 2) else [])
    return Sentence(text, protected, names, parts)


def make_corpus(n: int = 5000, seed: int = 0) -> list[Sentence]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


if __name__ == "__main__":
    corpus = make_corpus(2000)
    for s in corpus[:5]:
        print(s.text, "|", s.protected, s.names)
    print(sum(len(s.text.split()) for s in corpus) / len(corpus), "words on average")
