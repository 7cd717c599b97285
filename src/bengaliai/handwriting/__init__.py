"""Public handwriting datasets turned into competition training files (``bengaliai import``).

Modules: ``folder_import`` (the engine for any class-per-folder dataset), ``class_folders`` (such a
dataset's layout, its images listed, one image read to its ink), ``import_output`` (the output folder:
guarded, written all or nothing), ``placement`` (a character drawn into a competition-like frame),
``banglalekha`` and ``compounds`` (one spec each). A new source is a new spec module beside them.
Like synth, its output reaches training only as a folder on disk.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "import_folders": "folder_import",
    "import_banglalekha": "banglalekha",
    "PlacementConfig": "placement",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
