"""Public handwriting datasets turned into competition training files (``bengaliai import``).

Modules: ``folder_import`` (the engine for any class-per-folder dataset), ``class_folders`` (such a
dataset's layout, its images listed, one image read to its ink), ``import_output`` (the output folder:
guarded, written all or nothing), ``placement`` (a character drawn into a competition-like frame),
``banglalekha`` and ``compounds`` (one spec each). A new source is a new spec module beside them.
The Bangla Handwriting Character Corpus is scanned table pages, not folders: ``bhcc_corpus`` reads
them (``bhcc_pages``/``bhcc_grid``: the table and its cells; ``bhcc_labels``: the row list and its
labels; ``bhcc_verify``/``bhcc_codes``: each row's label checked against fonts and printed code
points) and ``bhcc`` writes its verified rows as training files (``bengaliai import bhcc``; its bare
vowel signs to a folder of their own; ``bhcc_dev``: whole writers held out as a real dev split,
``--dev-writers``). Like synth, its output reaches training only as a folder on disk.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "import_folders": "folder_import",
    "import_banglalekha": "banglalekha",
    "PlacementConfig": "placement",
    "read_corpus": "bhcc_corpus",
    "import_bhcc": "bhcc",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
