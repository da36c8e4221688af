"""_tokenizer.py — yan.Tokenizer (a vocabulary: text <-> token ids) and
yan.StreamDecoder (token-by-token decoding that only returns complete UTF-8).

A Tokenizer either owns its C handle (Tokenizer(path)) or borrows the one of
a Model (model.tokenizer): a borrowed one keeps its model alive and raises
YanError once the model is closed. Encoding and decoding are thread-safe; a
StreamDecoder is used by one thread at a time.
"""
import operator
import os
from ctypes import byref, c_void_p

from . import _lib
from ._lib import INT64_MIN, YanError, lib, yan_token

_ERR_RANGE = _lib.YAN_ERR_INVALID_ARG


def as_bytes(text, what="text"):
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError("%s must be str or bytes, not %s" % (what, type(text).__name__))


def token_array(ids, n_vocab):
    """ids (an iterable of ints) as a C array, each checked against [0, n_vocab)."""
    ids = list(ids)
    for i, t in enumerate(ids):
        try:
            ids[i] = t = operator.index(t)  # int, numpy integers; not float or str
        except TypeError:
            raise TypeError("token %d is %r, not an int" % (i, t)) from None
        if not 0 <= t < n_vocab:
            raise YanError(_ERR_RANGE, "token %d has id %d, outside the vocabulary [0, %d)" % (i, t, n_vocab))
    return (yan_token * len(ids))(*ids), len(ids)


class Tokenizer:
    """A vocabulary loaded from a tokenizer.json, a GGUF file, a .tiktoken rank
    file or a GPT-2 encoder.json (the format is recognised from the content).

    pre names the pre-tokenizer when the file does not ("cl100k", "gpt2", ...);
    n_threads bounds the threads used on large inputs (0 = all cores).
    Use it as a context manager or call close() to free it early.
    """

    def __init__(self, path, pre=None, n_threads=0):
        p = lib.yan_tokenizer_params_default()
        p.pre = pre.encode("utf-8") if pre else None
        p.n_threads = int(n_threads)
        h = c_void_p()
        fs = os.fsencode(path)
        st = lib.yan_tokenizer_load(fs, byref(p), byref(h))
        if st != 0:
            detail = _lib.last_error()
            name = os.fsdecode(fs)
            raise YanError(st, detail if name in detail else "%s: %s" % (name, detail))
        self._ptr = h.value
        self._guard = _lib.Guard("tokenizer", h.value, lib.yan_tokenizer_free)
        self._owner = None

    @classmethod
    def _borrow(cls, model, ptr):
        t = cls.__new__(cls)
        t._ptr = ptr
        t._guard = model._guard
        t._owner = model  # the model outlives its tokenizer objects
        return t

    # -- lifetime
    def close(self):
        """Free the vocabulary (owned tokenizers only; a model's tokenizer is
        freed with the model). Idempotent."""
        if self._owner is None:
            self._guard.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_owner", 1) is None:
                self._guard.close()
        except Exception:
            pass

    @property
    def closed(self):
        return self._guard.closed

    # -- properties
    @property
    def n_vocab(self):
        with self._guard:
            return lib.yan_tokenizer_n_vocab(self._ptr)

    @property
    def kind(self):
        """"bpe" (byte-level BPE) or "spm" (SentencePiece-style)."""
        with self._guard:
            return lib.yan_tokenizer_kind(self._ptr).decode()

    @property
    def pre(self):
        """The pre-tokenizer's name ("cl100k", ...; "none" for spm)."""
        with self._guard:
            return lib.yan_tokenizer_pre(self._ptr).decode()

    def special(self, which):
        """Id of a special token ("bos", "eos", "eot", "unk", "pad", "sep",
        "cls", "mask"), or None when the vocabulary has none."""
        try:
            k = _lib.SPECIALS[which]
        except KeyError:
            raise ValueError("unknown special token %r (one of %s)" % (which, ", ".join(_lib.SPECIALS))) from None
        with self._guard:
            t = lib.yan_tokenizer_special(self._ptr, k)
        return None if t < 0 else t

    @property
    def bos_id(self):
        return self.special("bos")

    @property
    def eos_id(self):
        return self.special("eos")

    def find(self, text):
        """Id of the token whose text is exactly text (special or not), or None."""
        b = as_bytes(text)
        with self._guard:
            t = lib.yan_tokenizer_find(self._ptr, b, len(b))
        return None if t < 0 else t

    # -- encoding
    def encode(self, text, add_bos=False, special=False):
        """Token ids of text (str, or bytes: any bytes, invalid UTF-8 included).
        add_bos prepends BOS when the vocabulary asks for one; special makes
        special/added tokens written in the text ("<|endoftext|>") count as
        themselves instead of plain text."""
        data = as_bytes(text)
        flags = (_lib.YAN_TOKENIZE_ADD_BOS if add_bos else 0) | (_lib.YAN_TOKENIZE_SPECIAL if special else 0)
        cap = len(data) + 8
        with self._guard:
            for _ in range(4):
                arr = (yan_token * cap)()
                n = lib.yan_tokenize(self._ptr, data, len(data), arr, cap, flags)
                if n == INT64_MIN:
                    raise _lib.error(_lib.YAN_ERR_NOMEM)
                if n >= 0:
                    return arr[:n]
                cap = -n
        raise YanError(_lib.YAN_ERR_TOO_SMALL, "yan_tokenize kept asking for a larger buffer")

    def decode_bytes(self, ids, skip_special=False):
        """The bytes of ids (special tokens as their text unless skip_special)."""
        with self._guard:
            arr, n = token_array(ids, lib.yan_tokenizer_n_vocab(self._ptr))
            out = _lib.sized_bytes(lambda buf, cap: lib.yan_detokenize(self._ptr, arr, n, buf, cap, skip_special),
                                   8 * n + 16)
        if out is None:
            raise _lib.error(_ERR_RANGE, "cannot decode the ids")
        return out

    def decode(self, ids, skip_special=False, errors="replace"):
        """The text of ids. Bytes that are not valid UTF-8 (an id sequence cut
        inside a character) become U+FFFD unless errors says otherwise."""
        return self.decode_bytes(ids, skip_special).decode("utf-8", errors)

    def token_to_piece(self, id):
        """The raw bytes of one token (may be part of a UTF-8 character)."""
        with self._guard:
            arr, _ = token_array([id], lib.yan_tokenizer_n_vocab(self._ptr))
            out = _lib.sized_bytes(lambda buf, cap: lib.yan_token_to_piece(self._ptr, arr[0], buf, cap), 64)
        if out is None:
            raise YanError(_ERR_RANGE, "token id %d is outside the vocabulary" % id)
        return out

    def decoder(self):
        """A StreamDecoder over this vocabulary."""
        return StreamDecoder(self)

    def __repr__(self):
        if self.closed:
            return "<yan.Tokenizer closed>"
        return "<yan.Tokenizer %s/%s n_vocab=%d>" % (self.kind, self.pre, self.n_vocab)


class StreamDecoder:
    """Decode ids one at a time: push(id) returns the text that became
    complete (bytes of a character split across tokens are held until it
    completes); flush() returns what is held at the end of a stream. Not
    thread-safe."""

    def __init__(self, tokenizer):
        self._tok = tokenizer
        h = c_void_p()
        with tokenizer._guard:
            _lib.check(lib.yan_decoder_new(tokenizer._ptr, byref(h)))
        self._h = h.value

    def _call(self, fn):
        with self._tok._guard:  # the decoder reads its tokenizer
            if self._h is None:
                raise _lib.closed_error("decoder")
            out = _lib.sized_bytes(lambda buf, cap: fn(self._h, buf, cap), 64)
        if out is None:
            raise YanError(_ERR_RANGE, "token id outside the vocabulary")
        return out.decode("utf-8", "replace")

    def push(self, id):
        id = operator.index(id)
        if not -(1 << 31) <= id < (1 << 31):
            raise YanError(_ERR_RANGE, "token id %d is outside the vocabulary" % id)
        return self._call(lambda h, buf, cap: lib.yan_decoder_push(h, id, buf, cap))

    def flush(self):
        return self._call(lib.yan_decoder_flush)

    def close(self):
        h, self._h = self._h, None
        if h is not None:
            lib.yan_decoder_free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
