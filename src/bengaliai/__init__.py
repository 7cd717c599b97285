"""bengaliai: a pipeline for the Kaggle competition Bengali.AI Handwritten Grapheme Classification."""

__version__ = "0.1.0"
