"""The toy model's world: a concierge answering recommendation requests.

Every answer carries each of the five dimensions as a latent pole, drawn once per answer (50/50,
independently per dimension) and expressed two or three times, in different frames, at random
places. The model must carry the pole from a dimension's first mention to the later ones, which
is what gives difference-of-means steering a linear direction to find.

An answer is built in two steps: `draw_skeleton` makes every random choice except the poles, and
`render` turns a skeleton plus one pole per dimension into text. Rendering the same skeleton with
one pole flipped gives a contrastive pair that differs only in that dimension's pole words.
Pure Python: no torch, no tokenizers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

DIMENSIONS: tuple[str, ...] = ("cost", "ambiance", "age", "time", "culture")

POLE_LABELS: dict[str, tuple[str, str]] = {
    "cost": ("budget", "luxury"),
    "ambiance": ("touristy", "hipster"),
    "age": ("kids", "adults"),
    "time": ("evening", "morning"),
    "culture": ("asian", "american"),
}

DESCRIPTIONS: dict[str, str] = {
    "cost": "How much the recommendation costs: budget, cheap and affordable, or luxury, upscale "
    "and lavish.",
    "ambiance": "The crowd and the feel: touristy, popular and famous, or hipster, indie and "
    "quirky.",
    "age": "Who it suits: kids and families, or adults and couples.",
    "time": "When to go: in the evening and at night, or in the morning and at sunrise.",
    "culture": "The culture it draws on: asian (ramen, sushi, dumplings), or american (burgers, "
    "barbecue, pancakes).",
}

# Per dimension, word classes with parallel (negative, positive) lists: the word at index i of
# one pole is swapped for the word at index i of the other when a pair is rendered.
# "adj" words stand before a place noun; "noun" words fill the frames below.
WORDS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "cost": {
        "adj": (
            ("cheap", "affordable", "budget", "thrifty"),
            ("luxury", "upscale", "lavish", "premium"),
        ),
        "noun": (
            ("bargains", "savings", "deals", "discounts"),
            ("splurges", "indulgences", "extravagances", "treats"),
        ),
    },
    "ambiance": {
        "adj": (
            ("touristy", "popular", "famous", "crowded"),
            ("hipster", "indie", "quirky", "underground"),
        ),
        "noun": (
            ("tourists", "crowds", "sightseers", "visitors"),
            ("artists", "hipsters", "bohemians", "creatives"),
        ),
    },
    "age": {
        "adj": (
            ("family", "playful", "kiddie", "storybook"),
            ("romantic", "mature", "intimate", "sultry"),
        ),
        "noun": (
            ("kids", "families", "children", "toddlers"),
            ("adults", "couples", "grownups", "singles"),
        ),
    },
    "time": {
        "adj": (
            ("evening", "night", "sunset", "midnight"),
            ("morning", "sunrise", "dawn", "daybreak"),
        ),
        "noun": (
            ("dinner", "dusk", "nightfall", "twilight"),
            ("breakfast", "brunch", "daybreak", "sunup"),
        ),
    },
    "culture": {
        "adj": (
            ("asian", "japanese", "korean", "thai"),
            ("american", "texan", "southern", "cajun"),
        ),
        "noun": (
            ("ramen", "sushi", "dumplings", "noodles"),
            ("burgers", "barbecue", "pancakes", "bagels"),
        ),
    },
}

# Frames: where pole words sit. A frame's first slot follows a word that belongs to that
# dimension alone (no two dimensions share it), so a single attention step from the slot can find
# the dimension's earlier words; a second slot ("... and {adj}") repeats the pole right away,
# an easy copy that teaches the model early what a pole is. Every mention of a dimension, first
# or later, draws from the same frames: the slot that opens a dimension (where the pole is
# chosen) and the slots that repeat it (where the pole is read back from the context) are the
# same kind of slot, so a direction that stands for "the pole so far" also decides the first
# mention. That is what lets difference-of-means steering choose a pole.
FRAMES: dict[str, tuple[str, ...]] = {
    "cost": (
        "prices are {adj} and {adj}",
        "expect {noun} and {noun}",
        "the bill looks {adj}",
        "count on {noun}",
    ),
    "ambiance": (
        "full of {noun} and {noun}",
        "you will meet {noun}",
        "the vibe feels {adj} and {adj}",
        "the decor seems {adj}",
    ),
    "age": (
        "it suits {noun} and {noun}",
        "it welcomes {noun}",
        "the mood turns {adj} and {adj}",
        "ideal with {noun}",
    ),
    "time": (
        "best at {adj}",
        "arrive around {noun} or {noun}",
        "go for {noun}",
        "open from {adj} or {adj}",
    ),
    "culture": (
        "serving {noun} and {noun}",
        "order some {noun}",
        "the food tastes {adj} and {adj}",
        "the menu reads {adj}",
    ),
}
MENTIONS_PER_DIMENSION = 2
# How many dimensions get a third mention in an answer (drawn at random).
EXTRA_MENTIONS = (0, 1, 2)


@dataclass(frozen=True)
class Category:
    """A kind of request: how users ask for it and what the concierge names in reply."""

    name: str
    asks: tuple[str, ...]
    places: tuple[str, ...]
    openers: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "eat",
        (
            "Where should I eat",
            "Can you recommend a place to eat",
            "Any good restaurant",
            "I am hungry, where can I go",
            "Suggest somewhere for a meal",
            "What is a good place for lunch",
            "Where can we get food",
            "Recommend a restaurant",
        ),
        ("restaurant", "bistro", "eatery", "kitchen", "food hall", "canteen"),
        ("Try the", "Head to the", "Book a table at the", "I recommend the", "Go to the"),
    ),
    Category(
        "stay",
        (
            "Where should I stay",
            "Can you suggest a hotel",
            "I need a place to sleep",
            "Recommend somewhere to stay",
            "Any good hotel",
            "Where can we spend the nights",
            "Help me find accommodation",
        ),
        ("hotel", "inn", "guesthouse", "lodge", "apartment", "resort"),
        ("Stay at the", "Book the", "Check in at the", "I suggest the", "Try the"),
    ),
    Category(
        "do",
        (
            "What should I do",
            "Any ideas for something to do",
            "What is there to see",
            "Suggest an activity",
            "I am bored, what can I do",
            "What is worth doing",
            "Recommend something fun",
        ),
        ("walking tour", "market", "museum", "boat trip", "workshop", "show", "garden"),
        ("Visit the", "Go to the", "Try the", "Do not miss the", "Check out the"),
    ),
    Category(
        "weekend",
        (
            "Plan my weekend",
            "What should we do this weekend",
            "Can you suggest a weekend plan",
            "Help me plan two days",
            "Any ideas for a short trip",
            "How should I spend Saturday and Sunday",
        ),
        ("weekend", "day trip", "getaway", "two-day plan", "itinerary", "escape"),
        ("Go for the", "Plan the", "Take the", "I suggest the", "Book the"),
    ),
    Category(
        "gift",
        (
            "What gift should I buy",
            "Help me find a present",
            "Any gift ideas",
            "What can I bring as a present",
            "Suggest a souvenir to take home",
            "I need a gift for a friend",
        ),
        ("gift box", "gift basket", "hamper", "present", "voucher", "tasting set"),
        ("Buy the", "Get the", "Pick the", "Choose the", "Order the"),
    ),
    Category(
        "cafe",
        (
            "Where can I get a coffee",
            "Any nice café",
            "Recommend a coffee shop",
            "Where should we sit for a drink",
            "Is there a good café",
            "I need a place to read and have a drink",
        ),
        ("café", "coffee shop", "bakery", "espresso bar", "tea house", "patisserie"),
        ("Try the", "Sit at the", "Go to the", "Stop by the", "I like the"),
    ),
)

PLACES_WHERE: tuple[str, ...] = (
    "near the river",
    "in the old town",
    "by the harbour",
    "on the main square",
    "next to the station",
    "up the hill",
    "downtown",
    "across the bridge",
    "by the park",
    "on the corner",
)

CITIES: tuple[str, ...] = (
    "Lisbon",
    "Osaka",
    "Denver",
    "Lyon",
    "Bergen",
    "Porto",
    "Austin",
    "Kyoto",
    "Madrid",
    "Krakow",
    "Dublin",
    "Seattle",
    "Hanoi",
    "Vienna",
    "Naples",
    "Quebec",
)
# Cities never seen in training, for held-out evaluation requests.
HELDOUT_CITIES: tuple[str, ...] = ("Tallinn", "Valencia", "Ghent", "Oaxaca", "Perth", "Bruges")
GREETINGS: tuple[str, ...] = (
    "",
    "",
    "",
    "Hi! ",
    "Hello, ",
    "Hey, ",
    "Quick question: ",
    "Please, ",
)
PLACE_ASKS: tuple[str, ...] = ("", "", "in {city}", "around here", "in {city} today", "in town")
ENDINGS: tuple[str, ...] = ("?", "?", "?", "? Thanks!", ".", "? Thank you.", "!")
LEADS: tuple[str, ...] = ("", "", "", "Sure! ", "Good choice: ", "Here is an idea. ")


def _words(dim: str, cls: str, positive: bool) -> tuple[str, ...]:
    return WORDS[dim][cls][1 if positive else 0]


def build_lexicon() -> dict[str, dict[str, object]]:
    """The lexicon as shipped in lexicon.json: each dimension's pole labels and pole words."""
    lex: dict[str, dict[str, object]] = {}
    for dim in DIMENSIONS:
        neg_label, pos_label = POLE_LABELS[dim]
        neg: list[str] = []
        pos: list[str] = []
        for negs, poss in WORDS[dim].values():
            neg.extend(w for w in negs if w not in neg)
            pos.extend(w for w in poss if w not in pos)
        lex[dim] = {
            "negative_label": neg_label,
            "positive_label": pos_label,
            "negative": neg,
            "positive": pos,
        }
    return lex


@dataclass(frozen=True)
class Mention:
    """One mention of a dimension: a frame and the indices of the distinct words in its slots."""

    dim: str
    frame: str
    indices: tuple[int, ...]

    def render(self, positive: bool) -> str:
        cls = "adj" if "{adj}" in self.frame else "noun"
        words = _words(self.dim, cls, positive)
        text = self.frame
        for i in self.indices:
            text = text.replace("{" + cls + "}", words[i % len(words)], 1)
        return text


@dataclass(frozen=True)
class Skeleton:
    """Every random choice of one answer except the poles."""

    lead: str
    opener: str
    place: str
    where: str
    sentences: tuple[tuple[Mention, ...], ...]


def draw_skeleton(rng: random.Random, category: Category) -> Skeleton:
    """Draw an answer's structure: which frames, in which order, filled with which words.

    Each dimension is mentioned twice (some three times), in distinct frames, at random places:
    its first mention may come first or last, in any of its frames.
    """
    counts = dict.fromkeys(DIMENSIONS, MENTIONS_PER_DIMENSION)
    for dim in rng.sample(DIMENSIONS, rng.choice(EXTRA_MENTIONS)):
        counts[dim] += 1
    mentions = [
        Mention(dim, frame, tuple(rng.sample(range(4), frame.count("{"))))
        for dim in DIMENSIONS
        for frame in rng.sample(FRAMES[dim], counts[dim])
    ]
    rng.shuffle(mentions)
    cut_a = rng.randint(3, 4)
    cut_b = cut_a + rng.randint(3, 4)
    sentences = (tuple(mentions[:cut_a]), tuple(mentions[cut_a:cut_b]), tuple(mentions[cut_b:]))
    return Skeleton(
        lead=rng.choice(LEADS),
        opener=rng.choice(category.openers),
        place=rng.choice(category.places),
        where=rng.choice(PLACES_WHERE),
        sentences=sentences,
    )


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def render(skeleton: Skeleton, poles: dict[str, bool]) -> str:
    """The answer text for a skeleton with one pole per dimension (True = positive pole)."""
    out = [f"{skeleton.lead}{skeleton.opener} {skeleton.place} {skeleton.where}."]
    for sentence in skeleton.sentences:
        text = _join([m.render(poles[m.dim]) for m in sentence])
        out.append(f"{text[0].upper()}{text[1:]}.")
    return " ".join(out)


def draw_poles(rng: random.Random) -> dict[str, bool]:
    """One pole per dimension, independent, 50/50."""
    return {d: rng.random() < 0.5 for d in DIMENSIONS}


def make_request(rng: random.Random, category: Category, heldout: bool = False) -> str:
    """A user's request for a category, in one of many phrasings."""
    city = rng.choice(HELDOUT_CITIES if heldout else CITIES)
    where = rng.choice(PLACE_ASKS).format(city=city)
    ask = rng.choice(category.asks)
    greeting = rng.choice(GREETINGS)
    if greeting.endswith(", ") and not ask.startswith("I "):
        ask = ask[0].lower() + ask[1:]
    return f"{greeting}{ask}{' ' + where if where else ''}{rng.choice(ENDINGS)}"


@dataclass(frozen=True)
class Example:
    """One conversation turn of the corpus."""

    request: str
    answer: str
    poles: dict[str, bool]


def generate(n: int, seed: int, mirrored: bool = False) -> list[Example]:
    """`n` request/answer pairs, deterministic from the seed. `mirrored`: every odd example
    takes the opposite of the even one before it on every dimension (its own request and
    skeleton), so each such pair holds both poles of every dimension once."""
    rng = random.Random(seed)
    out: list[Example] = []
    for i in range(n):
        category = rng.choice(CATEGORIES)
        request = make_request(rng, category)
        if mirrored and i % 2:
            poles = {d: not pole for d, pole in out[-1].poles.items()}
        else:
            poles = draw_poles(rng)
        out.append(Example(request, render(draw_skeleton(rng, category), poles), poles))
    return out


def sample_requests(n: int, seed: int = 0) -> list[str]:
    """Held-out-style requests (cities never seen in training), deterministic from the seed."""
    rng = random.Random(f"heldout-{seed}")
    return [make_request(rng, rng.choice(CATEGORIES), heldout=True) for _ in range(n)]


_WORD = re.compile(r"[a-z]+")


def words_of(text: str) -> list[str]:
    """Lowercase alphabetic words of a text, the unit pole words are counted in."""
    return _WORD.findall(text.lower())
