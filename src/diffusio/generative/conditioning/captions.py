"""Captions for labelled datasets, in several phrasings.

A text-conditioned model trained on one caption per class learns a lookup
table; training on many phrasings of each class teaches it the *region* of
sentence-embedding space that means "trousers", so unseen wordings land there.
"""

from __future__ import annotations

# Synonyms per Fashion-MNIST class.  Keep the test paraphrases (tests/
# test_shipped_model.py) out of these lists: they measure generalisation.
FASHION_SYNONYMS: dict[str, list[str]] = {
    "T-shirt/top": ["t-shirt", "tee shirt", "short-sleeved top", "top", "casual tee", "crew-neck t-shirt"],
    "Trouser": ["trousers", "pair of trousers", "pants", "slacks", "long trousers", "pair of pants"],
    "Pullover": ["pullover", "sweater", "jumper", "knitted pullover", "long-sleeved sweater", "wool jumper"],
    "Dress": ["dress", "summer dress", "long dress", "sleeveless dress", "gown", "women's dress"],
    "Coat": ["coat", "jacket", "overcoat", "long coat", "buttoned jacket", "zip-up jacket"],
    "Sandal": ["sandal", "pair of sandals", "open-toe sandal", "strappy sandal", "flip-flop", "summer sandal"],
    "Shirt": ["shirt", "button-up shirt", "long-sleeved shirt", "blouse", "collared shirt", "dress shirt"],
    "Sneaker": ["sneaker", "trainer", "sports shoe", "athletic shoe", "canvas shoe", "low-top sneaker"],
    "Bag": ["bag", "purse", "tote bag", "shoulder bag", "leather bag", "shopping bag"],
    "Ankle boot": ["ankle boot", "boot", "leather boot", "short boot", "heeled boot", "chelsea boot"],
}

# One canonical prompt per class, used to measure per-class accuracy; all are training captions.
FASHION_PROMPTS: dict[str, str] = {
    "T-shirt/top": "a photo of a t-shirt", "Trouser": "a photo of a pair of trousers",
    "Pullover": "a photo of a pullover", "Dress": "a photo of a dress", "Coat": "a photo of a coat",
    "Sandal": "a photo of a sandal", "Shirt": "a photo of a shirt", "Sneaker": "a photo of a sneaker",
    "Bag": "a photo of a bag", "Ankle boot": "a photo of an ankle boot",
}

TEMPLATES: list[str] = [
    "{w}",
    "{a} {w}",
    "a photo of {a} {w}",
    "a picture of {a} {w}",
    "an image of {a} {w}",
    "a black and white photo of {a} {w}",
    "a small photo of {a} {w}",
    "a product photo of {a} {w}",
]


def _article(word: str) -> str:
    if word.startswith(("pair ", "pairs ")):
        return "a"
    return "an" if word[0] in "aeiou" else "a"


def class_captions(class_name: str, synonyms: dict[str, list[str]] | None = None) -> list[str]:
    """All phrasings used for one class.

    >>> class_captions("Bag", FASHION_SYNONYMS)[:3]
    ['bag', 'a bag', 'a photo of a bag']
    """
    words = (synonyms or {}).get(class_name) or [class_name.lower()]
    captions: list[str] = []
    for word in words:
        for template in TEMPLATES:
            text = template.format(a=_article(word), w=word)
            if text not in captions:
                captions.append(text)
    return captions
