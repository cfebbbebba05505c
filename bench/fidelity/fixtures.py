"""Generated task dialogues with slot annotations, for the fact-preservation bench.

Restaurant bookings, taxi rides and appointments, written the way people type: cities and venues with
or without capitals, times in digits or words ("quarter to 12", "two pm", "noon"), party sizes as words
or digits, days, cuisines; the assistant echoes some values back and not others. Every slot value is
recorded where it was written, so the bench can ask whether a variant still says it. None of these
values is known to tuneprep: its rules have to find them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

CITIES = [
    "Santa Clara",
    "San Jose",
    "Livermore",
    "Chicago",
    "Palo Alto",
    "Oakland",
    "Fremont",
    "Sunnyvale",
    "Mountain View",
    "Berkeley",
    "Los Gatos",
    "Half Moon Bay",
]
VENUES = [
    "Villa Romano",
    "The Golden Spoon",
    "Saffron House",
    "Blue Ginger",
    "Casa Lupita",
    "Harbor Grill",
    "Little Saigon Kitchen",
    "Bella Notte",
    "Taqueria El Sol",
    "Cafe Rouge",
]
CUISINES = ["Italian", "Thai", "Mexican", "Indian", "Japanese", "Vietnamese", "Greek", "Korean"]
TIMES = [
    "quarter to 12",
    "two pm",
    "6:30 pm",
    "noon",
    "half past seven",
    "7 pm",
    "8:15",
    "five o'clock",
    "quarter past six",
    "eleven thirty",
]
DAYS = ["tomorrow", "tonight", "Friday", "Saturday night", "next Tuesday", "Sunday morning", "today"]
SIZES = ["two", "4 people", "six", "a party of three", "five of us", "2", "eight"]
SIZE_FACT = {"a party of three": "three", "five of us": "five"}  # the value a slot annotation would hold
PLACES = ["the airport", "Union Station", "the Marriott downtown", "Stanford Hospital", "the ferry building"]
PEOPLE = ["Maria Lopez", "Dev Patel", "Chen Wei", "Olga", "Tom Becker", "Aisha"]
SERVICES = ["a haircut", "a dental cleaning", "an oil change", "a massage", "a tax consultation"]


@dataclass
class Dialogue:
    messages: list[dict] = field(default_factory=list)
    facts: list[list[str]] = field(default_factory=list)  # per turn: the slot values written in it


def _cased(rng: random.Random, value: str) -> str:
    """People type names in lower case about a third of the time."""
    return value.lower() if rng.random() < 0.35 else value


def _restaurant(rng: random.Random) -> Dialogue:
    d = Dialogue()
    city, venue, cuisine = _cased(rng, rng.choice(CITIES)), rng.choice(VENUES), rng.choice(CUISINES)
    time, day, size = rng.choice(TIMES), rng.choice(DAYS), rng.choice(SIZES)
    size_fact = SIZE_FACT.get(size, size)
    cuisine_typed = _cased(rng, cuisine)
    first = rng.choice(
        [
            (f"Find me a good {cuisine_typed} place in {city}.", [cuisine_typed, city]),
            (f"I'm looking for {cuisine_typed} food in {city} please", [cuisine_typed, city]),
            (f"{city} is where I'll be, any {cuisine_typed} restaurants?", [city, cuisine_typed]),
            (f"can you find me one in {city}, something {cuisine_typed}", [city, cuisine_typed]),
        ]
    )
    d.messages.append({"role": "user", "content": first[0]})
    d.facts.append(first[1])
    echo_city = rng.random() < 0.5
    reply = f"How about {venue}{' in ' + city.title() if echo_city else ''}? It has great reviews."
    d.messages.append({"role": "assistant", "content": reply})
    d.facts.append([])
    second = rng.choice(
        [
            (f"Sounds good. Book a table at {venue} for {size} at {time} {day}.", [venue, size_fact, time, day]),
            (f"Yes please, make it for {size}, {day} at {time}.", [size_fact, day, time]),
            (f"Great, reserve {venue} for {size} people {day} around {time}", [venue, size_fact, day, time]),
            (f"Make it at {time} {day}, there will be {size}.", [time, day, size_fact]),
        ]
    )
    d.messages.append({"role": "user", "content": second[0]})
    d.facts.append(second[1])
    confirm = rng.choice(
        [
            f"Done! Your table at {venue} is booked for {time} {day}.",
            "Your reservation is confirmed. Anything else I can help you with?",
            f"All set for {size} at {venue}.",
        ]
    )
    d.messages.append({"role": "assistant", "content": confirm})
    d.facts.append([])
    d.messages.append({"role": "user", "content": rng.choice(["No, that's all. Thanks!", "thank you so much"])})
    d.facts.append([])
    return d


def _taxi(rng: random.Random) -> Dialogue:
    d = Dialogue()
    place, city, time, day = rng.choice(PLACES), _cased(rng, rng.choice(CITIES)), rng.choice(TIMES), rng.choice(DAYS)
    spot = place.removeprefix("the ")  # the value, without its article
    size = rng.choice(["two", "3", "four", "one"])
    first = rng.choice(
        [
            (f"I need a ride from {place} to {city} at {time}.", [spot, city, time]),
            (f"Can you get me a cab to {city} {day}, pick up at {place}?", [city, day, spot]),
            (f"book a taxi for {size} passengers to {city} please", [size, city]),
        ]
    )
    d.messages.append({"role": "user", "content": first[0]})
    d.facts.append(first[1])
    d.messages.append({"role": "assistant", "content": f"Sure. Should the driver wait at {place}?"})
    d.facts.append([])
    second = rng.choice(
        [
            (f"Yes, and it's {size} of us, leaving {day}.", [size, day]),
            (f"No need. The pickup is at {time} sharp.", [time]),
        ]
    )
    d.messages.append({"role": "user", "content": second[0]})
    d.facts.append(second[1])
    d.messages.append({"role": "assistant", "content": "Your ride is booked. The driver will text you on arrival."})
    d.facts.append([])
    return d


def _appointment(rng: random.Random) -> Dialogue:
    d = Dialogue()
    person, service, day, time = rng.choice(PEOPLE), rng.choice(SERVICES), rng.choice(DAYS), rng.choice(TIMES)
    person_typed = _cased(rng, person)
    first = rng.choice(
        [
            (f"Hi, I'd like to schedule {service} with {person_typed} {day}.", [person_typed, day]),
            (f"is {person_typed} free {day} for {service}?", [person_typed, day]),
        ]
    )
    d.messages.append({"role": "user", "content": first[0]})
    d.facts.append(first[1])
    d.messages.append({"role": "assistant", "content": f"{person} has an opening {day}. What time works for you?"})
    d.facts.append([])
    d.messages.append({"role": "user", "content": f"Let's do {time} then."})
    d.facts.append([time])
    d.messages.append({"role": "assistant", "content": f"Booked with {person} at {time}. See you then!"})
    d.facts.append([])
    return d


def make_dialogues(n: int, seed: int = 0) -> list[Dialogue]:
    rng = random.Random(seed)
    kinds = [_restaurant, _restaurant, _taxi, _appointment]
    return [rng.choice(kinds)(rng) for _ in range(n)]
