"""The stand-in dataset: Bengali graphemes drawn with fonts and a pen, written in the competition's format.

Modules: ``dataset`` (``bengaliai synth``: sampling and writing the files), ``render`` (one image:
fonts, glyph cache, distortion), ``shaping`` (which font shapes a text cleanly), ``unseen`` (graphemes
the training set lacks), ``fontsigns`` / ``letterforms`` / ``rootbank`` (a font's signs redrawn on
handwritten roots). Its output reaches training only as a folder on disk: training, inference and
kaggle never import it.
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "synthesize": "dataset",
    "RenderConfig": "render",
    "Renderer": "render",
    "LetterformConfig": "letterforms",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
