"""Facts and plumbing every stage shares: the competition's constants, errors, atomic files, configuration, fonts.

Modules: ``competition`` (class counts, image shape, component order, the label tables of
``_tables``), ``errors`` (what the CLI turns into one line), ``fileio`` (atomic writes), ``config``
(frozen dataclasses, YAML, ``--set``), ``fonts`` (where the bundled fonts are), ``lazy`` (these
``__init__`` exports). The lowest layer: it imports no other stage.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "BengaliaiError": "errors",
    "DataError": "errors",
    "load_config": "config",
    "atomic_path": "fileio",
    "write_csv": "fileio",
    "write_json": "fileio",
    "font_path": "fonts",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
