"""_lib.py — finding libyan.so and declaring its C API for ctypes.

Contract: importing this module loads the shared library once (_candidates
gives the search order) and sets argtypes/restype on every
function the package calls, so a wrong argument type fails in Python instead
of corrupting memory. The ctypes structures mirror include/yan.h field for
field (tests/test_yan.py compiles a C program that checks sizes and offsets
against the header); when a params struct grows in yan.h, grow it here too.
Also home of YanError and the status helpers. No other module touches ctypes
prototypes.
"""
import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)

# ------------------------------------------------------------------ status

STATUS_NAMES = {
    0: "YAN_OK",
    -1: "YAN_ERR_NOMEM",
    -2: "YAN_ERR_IO",
    -3: "YAN_ERR_FORMAT",
    -4: "YAN_ERR_UNSUPPORTED",
    -5: "YAN_ERR_CONTEXT_FULL",
    -6: "YAN_ERR_ABORTED",
    -7: "YAN_ERR_INVALID_ARG",
    -8: "YAN_ERR_TOO_SMALL",
    -9: "YAN_ERR_NOT_FOUND",
}
YAN_OK = 0
YAN_ERR_NOMEM = -1
YAN_ERR_IO = -2
YAN_ERR_FORMAT = -3
YAN_ERR_UNSUPPORTED = -4
YAN_ERR_CONTEXT_FULL = -5
YAN_ERR_ABORTED = -6
YAN_ERR_INVALID_ARG = -7
YAN_ERR_TOO_SMALL = -8
YAN_ERR_NOT_FOUND = -9

INT64_MIN = -(1 << 63)


class YanError(Exception):
    """An error reported by libyan (or a misuse caught before calling it).

    Attributes: code (the yan_status, a negative int), name ("YAN_ERR_IO"),
    status (yan_status_str, e.g. "i/o error") and detail (yan_last_error()
    at the time of the failure: what failed, usually naming the file).
    """

    def __init__(self, code, detail=""):
        self.code = int(code)
        self.name = STATUS_NAMES.get(self.code, "YAN_ERR_%d" % self.code)
        try:
            self.status = lib.yan_status_str(self.code).decode("utf-8", "replace")
        except Exception:  # the library is not loaded (or is going away)
            self.status = self.name
        self.detail = detail or self.status
        super().__init__("%s [%s]" % (self.detail, self.name))

    def __reduce__(self):  # picklable (multiprocessing)
        return (YanError, (self.code, self.detail))


def last_error():
    """yan_last_error() of the calling thread, as str ("" when none)."""
    return lib.yan_last_error().decode("utf-8", "replace")


def error(code, detail=None):
    """A YanError for a failed call on this thread; detail defaults to yan_last_error()."""
    return YanError(code, last_error() if detail is None else detail)


def check(status, what=None):
    """Raise YanError unless status is YAN_OK. what prefixes the message."""
    if status != 0:
        detail = last_error()
        if what:
            detail = "%s: %s" % (what, detail) if detail else what
        raise YanError(status, detail)


def closed_error(what):
    return YanError(YAN_ERR_INVALID_ARG, "the %s is closed" % what)


# -------------------------------------------------------------- structures

yan_token = c_int32
PROGRESS_FN = CFUNCTYPE(c_bool, c_float, c_void_p)
TEXT_FN = CFUNCTYPE(c_bool, c_void_p, c_size_t, c_void_p)  # text as a pointer: it is not NUL-terminated


class TokenizerParams(Structure):
    _fields_ = [("pre", c_char_p), ("n_threads", c_int)]


class ModelParams(Structure):
    _fields_ = [("progress", PROGRESS_FN), ("progress_ud", c_void_p), ("load", c_int),
                ("check_tensors", c_bool)]


class ContextParams(Structure):
    _fields_ = [("n_ctx", c_int32), ("n_batch", c_int32), ("n_threads", c_int), ("kv_type", c_int)]


class SamplerParams(Structure):
    _fields_ = [("temperature", c_float), ("top_k", c_int32), ("top_p", c_float), ("min_p", c_float),
                ("repeat_penalty", c_float), ("repeat_last_n", c_int32), ("presence_penalty", c_float),
                ("frequency_penalty", c_float), ("seed", c_uint64)]


class GenerateParams(Structure):
    _fields_ = [("max_tokens", c_int32), ("stop", POINTER(c_char_p)), ("n_stop", c_int),
                ("stop_at_eos", c_bool), ("on_text", TEXT_FN), ("ud", c_void_p)]


class GenerateResult(Structure):
    _fields_ = [("n_prompt", c_int32), ("n_generated", c_int32), ("finish", c_int),
                ("prompt_seconds", c_double), ("generate_seconds", c_double)]


class ChatMessage(Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


# name in yan.h -> ctypes structure (the ABI test walks this table)
STRUCTS = {
    "yan_tokenizer_params": TokenizerParams,
    "yan_model_params": ModelParams,
    "yan_context_params": ContextParams,
    "yan_sampler_params": SamplerParams,
    "yan_generate_params": GenerateParams,
    "yan_generate_result": GenerateResult,
    "yan_chat_message": ChatMessage,
}

YAN_TOKENIZE_SPECIAL = 1
YAN_TOKENIZE_ADD_BOS = 2
YAN_KV_F16, YAN_KV_F32 = 0, 1
SPECIALS = {"bos": 0, "eos": 1, "eot": 2, "unk": 3, "pad": 4, "sep": 5, "cls": 6, "mask": 7}
FINISH = {0: "stop", 1: "length", 2: "aborted"}

# C name -> the value used here (the ABI test checks them against yan.h)
CONSTANTS = dict({n: c for c, n in STATUS_NAMES.items()},
                 YAN_TOKENIZE_SPECIAL=YAN_TOKENIZE_SPECIAL, YAN_TOKENIZE_ADD_BOS=YAN_TOKENIZE_ADD_BOS,
                 YAN_KV_F16=YAN_KV_F16, YAN_KV_F32=YAN_KV_F32, YAN_FINISH_STOP=0, YAN_FINISH_LENGTH=1,
                 YAN_FINISH_ABORTED=2, **{"YAN_SPECIAL_" + k.upper(): v for k, v in SPECIALS.items()})

# ----------------------------------------------------------------- loading

_EXT = ".dylib" if sys.platform == "darwin" else ".so"
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.abspath(os.path.join(_HERE, "..", "..", ".."))


def _candidates():
    """(description, path) pairs in search order; YAN_LIB alone when it is set."""
    env = os.environ.get("YAN_LIB")
    if env:
        return [("$YAN_LIB", env)]
    c = [("next to the package", os.path.join(_HERE, "libyan" + _EXT)),
         ("the repository build", os.path.join(_REPO, "build", "libyan" + _EXT))]
    found = ctypes.util.find_library("yan")
    if found:
        c.append(("the system (find_library)", found))
    c.append(("the system loader", "libyan" + _EXT))
    return c


def _load():
    tried = []
    for where, path in _candidates():
        is_file_path = os.sep in path
        if is_file_path and not os.path.exists(path):
            tried.append("  %s: %s (no such file)" % (where, path))
            if where == "$YAN_LIB":
                break
            continue
        try:
            h = ctypes.CDLL(path)
            h.yan_version  # a libyan at all?
            return h, path
        except (OSError, AttributeError) as e:
            tried.append("  %s: %s (%s)" % (where, path, e))
            if where == "$YAN_LIB":
                break
    raise ImportError(
        "yan: cannot load the libyan shared library. Tried:\n%s\n"
        "Build it with `make build/libyan.so` in the yan repository, install it with `make install`, "
        "or set YAN_LIB to the path of libyan%s." % ("\n".join(tried), _EXT), name="yan")


lib, path = _load()


def _proto(name, restype, *argtypes, optional=False):
    f = getattr(lib, name, None)
    if f is None:
        if optional:
            return
        raise ImportError("yan: %s lacks %s (an older libyan?)" % (path, name), name="yan")
    f.restype = restype
    f.argtypes = list(argtypes)


P = c_void_p  # opaque handles
_proto("yan_status_str", c_char_p, c_int)
_proto("yan_last_error", c_char_p)
_proto("yan_version", c_char_p)
_proto("yan_cpu_features", c_char_p)
_proto("yan_cpu_count", c_int)
# tokenizer
_proto("yan_tokenizer_params_default", TokenizerParams)
_proto("yan_tokenizer_load", c_int, c_char_p, POINTER(TokenizerParams), POINTER(P))
_proto("yan_tokenizer_free", None, P)
_proto("yan_tokenizer_n_vocab", c_int32, P)
_proto("yan_tokenizer_kind", c_char_p, P)
_proto("yan_tokenizer_pre", c_char_p, P)
_proto("yan_tokenizer_special", yan_token, P, c_int)
_proto("yan_tokenizer_find", yan_token, P, c_char_p, c_size_t)
_proto("yan_tokenize", c_int64, P, c_char_p, c_size_t, POINTER(yan_token), c_size_t, c_uint32)
_proto("yan_token_to_piece", c_int64, P, yan_token, c_void_p, c_size_t)
_proto("yan_detokenize", c_int64, P, POINTER(yan_token), c_size_t, c_void_p, c_size_t, c_bool)
_proto("yan_decoder_new", c_int, P, POINTER(P))
_proto("yan_decoder_free", None, P)
_proto("yan_decoder_push", c_int64, P, yan_token, c_void_p, c_size_t)
_proto("yan_decoder_flush", c_int64, P, c_void_p, c_size_t)
# model
_proto("yan_model_params_default", ModelParams)
_proto("yan_model_load", c_int, c_char_p, POINTER(ModelParams), POINTER(P))
_proto("yan_model_free", None, P)
_proto("yan_model_tokenizer", P, P)
_proto("yan_model_arch", c_char_p, P)
_proto("yan_model_name", c_char_p, P)
_proto("yan_model_n_ctx_train", c_int32, P)
_proto("yan_model_n_embd", c_int32, P)
_proto("yan_model_n_layer", c_int32, P)
_proto("yan_model_n_vocab", c_int32, P)
_proto("yan_model_n_params", c_uint64, P)
_proto("yan_model_weight_bytes", c_uint64, P)
_proto("yan_model_chat_template", c_char_p, P)
_proto("yan_model_describe", c_int64, P, c_void_p, c_size_t)
_proto("yan_model_apply_lora", c_int, P, c_char_p, c_float)
# context
_proto("yan_context_params_default", ContextParams)
_proto("yan_context_bytes", c_uint64, P, POINTER(ContextParams))
_proto("yan_context_new", c_int, P, POINTER(ContextParams), POINTER(P))
_proto("yan_context_free", None, P)
_proto("yan_context_n_ctx", c_int32, P)
_proto("yan_context_n_past", c_int32, P)
_proto("yan_context_truncate", c_int, P, c_int32)
_proto("yan_eval", c_int, P, POINTER(yan_token), c_size_t, c_bool)
_proto("yan_logits", POINTER(c_float), P, c_int32)
# sampler, generation
_proto("yan_sampler_params_default", SamplerParams)
_proto("yan_sampler_new", c_int, POINTER(SamplerParams), c_int32, POINTER(P))
_proto("yan_sampler_free", None, P)
_proto("yan_generate_params_default", GenerateParams)
_proto("yan_generate", c_int, P, P, POINTER(yan_token), c_size_t, POINTER(GenerateParams), POINTER(GenerateResult))
# chat
_proto("yan_chat_format", c_int64, P, c_char_p, POINTER(ChatMessage), c_size_t, c_bool, c_void_p, c_size_t)
_proto("yan_chat_template_family", c_char_p, P, POINTER(c_bool))
# embeddings (optional: libraries before yan_embed lack it)
_proto("yan_embed", c_int, P, POINTER(yan_token), c_size_t, POINTER(c_float), c_size_t, optional=True)


def has(name):
    """Whether the loaded library exports name."""
    return getattr(lib, name, None) is not None


def sized_bytes(fill, first_cap=256):
    """Call fill(buf, cap) -> n | -(needed) | INT64_MIN (yan's buffer
    convention, NUL-terminated or not) and return the n bytes, or None on INT64_MIN."""
    cap = max(int(first_cap), 1)
    for _ in range(8):
        buf = ctypes.create_string_buffer(cap)
        n = fill(buf, cap)
        if n == INT64_MIN:
            return None
        if n >= 0:
            return buf.raw[:n]
        cap = max(-n, cap + 1)
    raise YanError(YAN_ERR_TOO_SMALL, "the library kept asking for a larger buffer")


# ----------------------------------------------------------------- handles

class Guard:
    """The lifetime of one C handle: calls in flight hold a use (with guard:
    ...); close() refuses new uses, waits for those in flight and frees the
    handle exactly once. Entering after close raises YanError ("the <what>
    is closed"). Thread-safe; a thread must not close a guard it is using."""

    __slots__ = ("what", "ptr", "_free", "_cv", "_users", "closed")

    def __init__(self, what, ptr, free):
        self.what = what
        self.ptr = ptr
        self._free = free
        self._cv = threading.Condition(threading.Lock())
        self._users = 0
        self.closed = False

    def __enter__(self):
        with self._cv:
            if self.closed:
                raise closed_error(self.what)
            self._users += 1
        return self.ptr

    def __exit__(self, *exc):
        with self._cv:
            self._users -= 1
            if self._users == 0:
                self._cv.notify_all()
        return False

    def close(self, before_wait=None):
        """Free the handle once; before_wait() runs after new uses are refused
        and before waiting for the ones in flight (to cancel them)."""
        with self._cv:
            if self.closed:
                return False
            self.closed = True
        if before_wait is not None:
            before_wait()
        with self._cv:
            while self._users:
                self._cv.wait()
            ptr, self.ptr = self.ptr, None
        if ptr is not None:
            self._free(ptr)
        return True
