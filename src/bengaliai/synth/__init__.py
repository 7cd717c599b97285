"""The stand-in dataset: Bengali graphemes drawn with fonts and a pen, written in the competition's format.

Modules: ``dataset`` (``bengaliai synth``: writing the files), ``manifest`` (synth.json and the guard on
the output folder), ``sampling`` (what each split draws and
each image's generator), ``drawing`` (the images in chunks, in worker processes), ``render`` (one
image: fonts, glyph cache, distortion), ``strokes`` (matra, centre lines and stroke width of ink
masks), ``shaping`` (which font shapes a text cleanly), ``unseen`` (graphemes the training set lacks),
``fontsigns`` / ``realroot`` / ``letterforms`` / ``rootbank`` (a font's signs redrawn on handwritten
roots), ``realsigns`` / ``signbank`` (real writers' signs cut from handwritten whole graphemes, drawn
instead of a font's: ``synth --signs-from``). Its output reaches training only as a folder on disk: training, inference and kaggle never
import it.
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
