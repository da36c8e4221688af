"""yan — Python bindings for libyan, the yan LLM system (pure Python, ctypes).

    import yan
    with yan.Model("model.gguf", n_ctx=2048) as m:
        print(m.generate("In the beginning", max_tokens=32, temperature=0))
        for piece in m.chat([{"role": "user", "content": "Hello"}], stream=True):
            print(piece, end="", flush=True)

The shared library is found through $YAN_LIB, else libyan.so next to this
package, else build/libyan.so of the repository this package sits in, else
the system's (after `make install`). C failures raise yan.YanError.
"""
from ._lib import YanError
from ._lib import path as library_path
from ._lib import lib as _clib
from ._model import Model, Stream
from ._tokenizer import StreamDecoder, Tokenizer

__version__ = "0.1.0"
__all__ = ["Model", "Stream", "Tokenizer", "StreamDecoder", "YanError", "version", "cpu_features", "cpu_count",
           "library_path"]


def version():
    """The version of the loaded libyan ("0.1.0")."""
    return _clib.yan_version().decode()


def cpu_features():
    """The SIMD features libyan detected and dispatches to, e.g. ["avx2", "fma", "f16c"]."""
    return _clib.yan_cpu_features().decode().split()


def cpu_count():
    """Online cores (the default thread count)."""
    return _clib.yan_cpu_count()
