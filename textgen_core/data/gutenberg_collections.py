"""The named Project Gutenberg collections of the poet seed, by Gutenberg ebook id.

The seed lists the books by title only; each is mapped to the Project Gutenberg ebook that holds
that translation/edition (README lists them). Order is the seed's order, which is also the order
the books are concatenated in.
"""

from __future__ import annotations

from typing import NamedTuple


class Book(NamedTuple):
    id: int
    title: str
    author: str


COLLECTIONS: dict[str, tuple[Book, ...]] = {
    "women-writers": (
        Book(63022, "Mr. Bennett and Mrs. Brown", "Virginia Woolf"),
        Book(5670, "Jacob's Room", "Virginia Woolf"),
        Book(1342, "Pride and Prejudice", "Jane Austen"),
        Book(1245, "Night and Day", "Virginia Woolf"),
        Book(946, "Lady Susan", "Jane Austen"),
        Book(768, "Wuthering Heights", "Emily Brontë"),
        Book(161, "Sense and Sensibility", "Jane Austen"),
        Book(158, "Emma", "Jane Austen"),
        Book(144, "The Voyage Out", "Virginia Woolf"),
        Book(141, "Mansfield Park", "Jane Austen"),
        Book(121, "Northanger Abbey", "Jane Austen"),
        Book(105, "Persuasion", "Jane Austen"),
    ),
    "philosophers": (
        Book(58169, "Hegel's Lectures on the History of Philosophy, Vol. 3 of 3", "G. W. F. Hegel"),
        Book(52915, "The Will to Power, Books III and IV", "Friedrich Nietzsche"),
        Book(52914, "The Will to Power, Books I and II", "Friedrich Nietzsche"),
        Book(52881, "The Joyful Wisdom", "Friedrich Nietzsche"),
        Book(52821, "Kant's Prolegomena", "Immanuel Kant"),
        Book(51636, "Hegel's Lectures on the History of Philosophy, Vol. 2 of 3", "G. W. F. Hegel"),
        Book(51635, "Hegel's Lectures on the History of Philosophy, Vol. 1 of 3", "G. W. F. Hegel"),
        Book(51548, "Early Greek Philosophy & Other Essays", "Friedrich Nietzsche"),
        Book(50922, "Perpetual Peace", "Immanuel Kant"),
        Book(48433, "Kant's Critique of Judgement", "Immanuel Kant"),
        Book(38226, "Thoughts Out of Season, Part II", "Friedrich Nietzsche"),
        Book(38145, "Human, All Too Human", "Friedrich Nietzsche"),
        Book(18267, "We Philologists (Complete Works, Vol. 8 of 18)", "Friedrich Nietzsche"),
        Book(5684, "The Metaphysical Elements of Ethics", "Immanuel Kant"),
        Book(5683, "The Critique of Practical Reason", "Immanuel Kant"),
        Book(5682, "Fundamental Principles of the Metaphysic of Morals", "Immanuel Kant"),
        Book(5652, "Thoughts out of Season, Part I", "Friedrich Nietzsche"),
        Book(4363, "Beyond Good and Evil", "Friedrich Nietzsche"),
        Book(4280, "The Critique of Pure Reason", "Immanuel Kant"),
        Book(1998, "Thus Spake Zarathustra", "Friedrich Nietzsche"),
    ),
}
