"""_model.py — yan.Model (a GGUF model with one context) and yan.Stream (the
iterator that generate/chat return with stream=True).

Contract.
 - A Model owns a yan_model and one yan_context; close() (or the end of a
   with block, or garbage collection) frees both exactly once, after the
   calls in flight. Any use after close raises YanError.
 - The context serves one request at a time (a lock): calls from several
   threads are safe and run one after the other. Each request starts from an
   empty KV cache, so results depend only on the arguments.
 - Generation is yan_generate: the prompt is evaluated, tokens are sampled
   until an end-of-generation token, a stop string, max_tokens or a full
   context. Text comes from its on_text callback, which yan calls with complete
   UTF-8 (split characters held back, as are possible starts of stop strings).
 - Streaming runs yan_generate on a worker thread that puts the pieces in a
   queue; the Stream reads the queue. Closing or dropping the Stream makes the
   callback return false (yan stops after the current token) and joins the
   worker; Model.close() cancels the streams of the model first, so a model
   closed under a live iterator just ends that iterator with YanError.
"""
import array
import atexit
import codecs
import ctypes
import os
import queue
import threading
import weakref
from ctypes import byref, c_bool, c_char_p, c_float, c_void_p

from . import _lib
from ._lib import YanError, lib
from ._tokenizer import Tokenizer, as_bytes, token_array

DEFAULT_CTX = 4096  # n_ctx=0: the model's training context, at most this (as the yan command)

# The text that ends a turn in each chat template family: a stop string for
# chat(), for vocabularies where it is not one end-of-generation token.
END_OF_TURN = {
    "chatml": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "llama2": "</s>",
    "mistral": "</s>",
    "zephyr": "</s>",
    "phi3": "<|end|>",
    "gemma": "<end_of_turn>",
}

_live_models = weakref.WeakSet()


@atexit.register
def _close_all():
    # Stop stream workers before the interpreter goes away under them.
    for m in list(_live_models):
        try:
            m.close()
        except Exception:
            pass


def _free_handles(handles):
    m, ctx = handles
    lib.yan_context_free(ctx)
    lib.yan_model_free(m)


def _lora_list(lora):
    """lora: None, a path, (path, scale), a list of those, or {path: scale}."""
    if lora is None:
        return []
    if isinstance(lora, (str, bytes, os.PathLike)):
        return [(lora, 1.0)]
    if isinstance(lora, dict):
        return [(p, float(s)) for p, s in lora.items()]
    if isinstance(lora, tuple) and len(lora) == 2 and isinstance(lora[1], (int, float)):
        return [(lora[0], float(lora[1]))]
    out = []
    for x in lora:
        if isinstance(x, (str, bytes, os.PathLike)):
            out.append((x, 1.0))
        else:
            p, s = x
            out.append((p, float(s)))
    return out


def _stop_list(stop):
    if stop is None:
        return []
    if isinstance(stop, (str, bytes)):
        stop = [stop]
    out = []
    for s in stop:
        b = as_bytes(s, "a stop string")
        if b"\0" in b:
            raise ValueError("a stop string cannot contain NUL")
        if b:
            out.append(b)
    return out


class _Request:
    """Everything one generation needs, converted for C up front."""

    __slots__ = ("ids", "n", "sp", "max_tokens", "stops", "stop_arr")

    def __init__(self, ids, n, sp, max_tokens, stops):
        self.ids, self.n, self.sp, self.max_tokens = ids, n, sp, max_tokens
        self.stops = stops
        self.stop_arr = (c_char_p * max(len(stops), 1))(*stops)


class _Worker(threading.Thread):
    """The thread that runs one streaming generation."""


class Stream:
    """Iterator over the text pieces of a generation, as they are produced.

    After the iteration: finish_reason ("stop", "length" or "aborted"),
    n_prompt and n_generated. close() (or a with block, or dropping the
    iterator) stops the generation early. A stream cut short by Model.close()
    raises YanError. Use a stream from one thread.
    """

    def __init__(self, model, req):
        self.finish_reason = None
        self.n_prompt = None
        self.n_generated = None
        self._q = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._done = False
        # the worker gets the model, the request and the queue, never the
        # Stream, so that dropping the Stream runs __del__ and cancels it
        self._thread = _Worker(target=_stream_worker, args=(model, req, self._q, self._cancel),
                               name="yan-stream", daemon=True)
        model._register(self._cancel, self._thread)
        try:
            self._thread.start()
        except BaseException:
            model._unregister(self._cancel)
            raise

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        kind, val = self._q.get()
        if kind == "piece":
            return val
        self._done = True
        self._join()
        if kind == "end":
            self.finish_reason = _lib.FINISH.get(val.finish, str(val.finish))
            self.n_prompt, self.n_generated = val.n_prompt, val.n_generated
            raise StopIteration
        raise val

    def _join(self):
        t = self._thread
        if t.is_alive() and t is not threading.current_thread() and not isinstance(threading.current_thread(), _Worker):
            t.join()

    def close(self):
        """Stop the generation (if it still runs) and wait for its thread."""
        if not self._done:
            self._done = True
            self._cancel.set()
            self._join()
            if self.finish_reason is None:
                self.finish_reason = "aborted"

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


def _stream_worker(model, req, q, cancel):
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        def on_bytes(b):
            if cancel.is_set():
                return False
            s = dec.decode(b)
            if s:
                q.put(("piece", s))
            return True

        with model._guard:
            with model._lock:
                res = None if cancel.is_set() else model._run(req, on_bytes)
        if res is None or (cancel.is_set() and res.finish == 2):
            if model._guard.closed:
                raise YanError(_lib.YAN_ERR_ABORTED, "the model was closed during the generation")
            raise YanError(_lib.YAN_ERR_ABORTED, "the generation was cancelled")
        tail = dec.decode(b"", True)
        if tail:
            q.put(("piece", tail))
        q.put(("end", res))
    except BaseException as e:  # delivered to the consumer
        q.put(("error", e))


class Model:
    """A GGUF model (llama, qwen2, qwen3, gpt2 architectures) and a context.

    n_ctx: context length in tokens (0 = the model's training context, at
    most 4096); n_threads: 0 = all cores; kv_type: "f16" or "f32";
    use_mmap: None (default) reads the weights into huge-page memory when
    the file takes at most half of the free memory and maps it otherwise;
    True always maps the file, False always reads it; lora: an
    adapter path, (path, scale), a list of those, or {path: scale}, applied
    in order; n_batch: tokens per evaluation step (0 = 512).
    """

    def __init__(self, path, n_ctx=0, n_threads=0, kv_type="f16", use_mmap=None, lora=None, n_batch=0):
        kv = {"f16": _lib.YAN_KV_F16, "f32": _lib.YAN_KV_F32}.get(kv_type)
        if kv is None:
            raise ValueError("kv_type must be 'f16' or 'f32', not %r" % (kv_type,))
        if n_ctx < 0 or n_threads < 0 or n_batch < 0:
            raise ValueError("n_ctx, n_threads and n_batch must be >= 0")
        loras = _lora_list(lora)
        mp = lib.yan_model_params_default()
        mp.load = 0 if use_mmap is None else (1 if use_mmap else 2)  # YAN_LOAD_AUTO, _MMAP, _COPY
        h = c_void_p()
        fs = os.fsencode(path)
        st = lib.yan_model_load(fs, byref(mp), byref(h))
        if st != 0:
            detail, name = _lib.last_error(), os.fsdecode(fs)
            raise YanError(st, detail if name in detail else "%s: %s" % (name, detail))
        m = h.value
        try:
            for p, s in loras:
                st = lib.yan_model_apply_lora(m, os.fsencode(p), s)
                if st != 0:
                    detail, name = _lib.last_error(), os.fsdecode(p)
                    raise YanError(st, detail if name in detail else "%s: %s" % (name, detail))
            cp = lib.yan_context_params_default()
            if n_ctx == 0:
                t = lib.yan_model_n_ctx_train(m)
                n_ctx = t if 0 < t < DEFAULT_CTX else DEFAULT_CTX
            cp.n_ctx = n_ctx
            cp.n_batch = n_batch
            cp.n_threads = n_threads
            cp.kv_type = kv
            h = c_void_p()
            _lib.check(lib.yan_context_new(m, byref(cp), byref(h)), "cannot create a context")
        except BaseException:
            lib.yan_model_free(m)
            raise
        self._m, self._ctx = m, h.value
        self._tok = lib.yan_model_tokenizer(m)
        self._guard = _lib.Guard("model", (m, h.value), _free_handles)
        self._lock = threading.Lock()  # the context: one request at a time
        self._streams = {}  # cancel event -> worker thread, for close() to cancel and join
        self._streams_lock = threading.Lock()
        self.path = os.fsdecode(fs)
        _live_models.add(self)

    # ------------------------------------------------------------ lifetime

    def close(self):
        """Stop this model's streams, wait for calls in flight, free the
        model and its context. Idempotent; later use raises YanError."""
        guard = getattr(self, "_guard", None)
        if guard is None:
            return
        guard.close(before_wait=self._cancel_streams)
        with self._streams_lock:
            threads = list(self._streams.values())
        me = threading.current_thread()
        for t in threads:
            if t is not me and not isinstance(me, _Worker):
                t.join()

    def _cancel_streams(self):
        with self._streams_lock:
            for ev in self._streams:
                ev.set()

    def _register(self, cancel, thread):
        with self._streams_lock:
            for ev, t in list(self._streams.items()):  # forget the finished ones
                if t.ident is not None and not t.is_alive():
                    del self._streams[ev]
            self._streams[cancel] = thread

    def _unregister(self, cancel):
        with self._streams_lock:
            self._streams.pop(cancel, None)

    @property
    def closed(self):
        return self._guard.closed

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

    # ---------------------------------------------------------- properties

    def _get(self, fn):
        with self._guard:
            return fn(self._m)

    @property
    def tokenizer(self):
        """The model's vocabulary (a Tokenizer valid while the model is open)."""
        with self._guard:
            return Tokenizer._borrow(self, self._tok)

    @property
    def n_vocab(self):
        return self._get(lib.yan_model_n_vocab)

    @property
    def n_embd(self):
        return self._get(lib.yan_model_n_embd)

    @property
    def n_layer(self):
        return self._get(lib.yan_model_n_layer)

    @property
    def n_ctx(self):
        """Tokens the context holds (prompt + generated)."""
        with self._guard:
            return lib.yan_context_n_ctx(self._ctx)

    @property
    def n_ctx_train(self):
        return self._get(lib.yan_model_n_ctx_train)

    @property
    def n_params(self):
        return self._get(lib.yan_model_n_params)

    @property
    def arch(self):
        return self._get(lib.yan_model_arch).decode("utf-8", "replace")

    @property
    def name(self):
        return self._get(lib.yan_model_name).decode("utf-8", "replace")

    @property
    def chat_template(self):
        """The model's tokenizer.chat_template (Jinja text), or None."""
        t = self._get(lib.yan_model_chat_template)
        return None if t is None else t.decode("utf-8", "replace")

    def chat_template_family(self):
        """(family, recognised): the template family yan uses for chat
        ("chatml", "llama3", ...) and whether it recognised the model's own
        template (False: the fallback, chatml)."""
        rec = c_bool(False)
        with self._guard:
            fam = lib.yan_chat_template_family(self._m, byref(rec))
        return fam.decode(), bool(rec.value)

    def describe(self):
        """A human-readable description: architecture, sizes, tensor types."""
        with self._guard:
            out = _lib.sized_bytes(lambda buf, cap: lib.yan_model_describe(self._m, buf, cap), 4096)
        return (out or b"").decode("utf-8", "replace")

    def __repr__(self):
        if self.closed:
            return "<yan.Model %r closed>" % self.path
        return "<yan.Model %s %r n_embd=%d n_layer=%d n_vocab=%d n_ctx=%d>" % (
            self.arch, self.name or os.path.basename(self.path), self.n_embd, self.n_layer, self.n_vocab, self.n_ctx)

    # -------------------------------------------------------------- tokens

    def tokenize(self, text, add_bos=True, special=False):
        """Token ids of text; add_bos adds BOS when the model asks for one."""
        return self.tokenizer.encode(text, add_bos=add_bos, special=special)

    def detokenize(self, ids, skip_special=False):
        return self.tokenizer.decode(ids, skip_special=skip_special)

    def _prompt_ids(self, prompt, special):
        if isinstance(prompt, (str, bytes, bytearray)):
            ids = self.tokenize(prompt, add_bos=True, special=special)
            bos = self.tokenizer.special("bos")
            if len(ids) >= 2 and bos is not None and ids[0] == bos and ids[1] == bos:
                del ids[0]  # a template that writes BOS itself, plus the one the tokenizer adds
        else:
            ids = list(prompt)
        if not ids:
            raise YanError(_lib.YAN_ERR_INVALID_ARG, "the prompt is empty (and the model adds no BOS token)")
        return ids

    def logits(self, tokens, numpy=False):
        """Logits (n_vocab floats) after the last of tokens (a list of ids, or a
        text, tokenized with BOS): an array.array('f'), or a numpy array
        with numpy=True."""
        ids = self._prompt_ids(tokens, False)
        with self._guard:
            with self._lock:
                V = lib.yan_model_n_vocab(self._m)
                arr, n = token_array(ids, V)
                _lib.check(lib.yan_context_truncate(self._ctx, 0))
                _lib.check(lib.yan_eval(self._ctx, arr, n, False))
                p = lib.yan_logits(self._ctx, -1)
                if not p:
                    raise YanError(_lib.YAN_ERR_INVALID_ARG, "no logits after the evaluation")
                data = ctypes.string_at(p, 4 * V)
        if numpy:
            import numpy as np
            return np.frombuffer(data, dtype=np.float32).copy()
        out = array.array("f")
        out.frombytes(data)
        return out

    # ---------------------------------------------------------- generation

    def _request(self, ids, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                 presence_penalty, frequency_penalty, seed, stops):
        if max_tokens is None:
            max_tokens = 0
        if max_tokens < 0:
            raise ValueError("max_tokens must be >= 0 (0 = until the context is full)")
        n_ctx = self.n_ctx
        if len(ids) > n_ctx or len(ids) + max_tokens > n_ctx:
            raise YanError(_lib.YAN_ERR_CONTEXT_FULL,
                           "the prompt (%d tokens) and max_tokens (%d) do not fit the context of %d tokens; "
                           "use a larger n_ctx or a smaller max_tokens" % (len(ids), max_tokens, n_ctx))
        arr, n = token_array(ids, self.n_vocab)
        sp = lib.yan_sampler_params_default()
        sp.temperature = temperature
        sp.top_k = top_k
        sp.top_p = top_p
        sp.min_p = min_p
        sp.repeat_penalty = repeat_penalty
        if repeat_last_n is not None:
            sp.repeat_last_n = repeat_last_n
        sp.presence_penalty = presence_penalty
        sp.frequency_penalty = frequency_penalty
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        if not 0 <= seed < (1 << 64):
            raise ValueError("seed must be in [0, 2**64)")
        sp.seed = seed
        return _Request(arr, n, sp, int(max_tokens), stops)

    def _run(self, req, on_bytes):
        """yan_generate from an empty cache; on_bytes(bytes) -> bool goes on.
        The caller holds a use of the guard and the context lock."""
        failure = []

        def cb(ptr, n, ud):
            try:
                return bool(on_bytes(ctypes.string_at(ptr, n)))
            except BaseException as e:  # e.g. KeyboardInterrupt: stop, re-raise below
                failure.append(e)
                return False

        cfn = _lib.TEXT_FN(cb)
        smp = c_void_p()
        _lib.check(lib.yan_sampler_new(byref(req.sp), lib.yan_model_n_vocab(self._m), byref(smp)), "sampler")
        try:
            _lib.check(lib.yan_context_truncate(self._ctx, 0))
            gp = lib.yan_generate_params_default()
            gp.max_tokens = req.max_tokens
            gp.stop = ctypes.cast(req.stop_arr, ctypes.POINTER(c_char_p))
            gp.n_stop = len(req.stops)
            gp.stop_at_eos = True
            gp.on_text = cfn
            res = _lib.GenerateResult()
            st = lib.yan_generate(self._ctx, smp.value, req.ids, req.n, byref(gp), byref(res))
            err = _lib.error(st) if st != 0 else None
        finally:
            lib.yan_sampler_free(smp.value)
        if failure:
            raise failure[0]
        if err is not None:
            raise err
        return res

    def _complete(self, ids, stream, stops, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                  repeat_last_n, presence_penalty, frequency_penalty, seed):
        req = self._request(ids, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                            presence_penalty, frequency_penalty, seed, stops)
        if stream:
            with self._guard:  # fail now, not at the first next(), when closed
                pass
            return Stream(self, req)
        parts = []
        with self._guard:
            with self._lock:
                self._run(req, lambda b: parts.append(b) or True)
        return b"".join(parts).decode("utf-8", "replace")

    def generate(self, prompt, max_tokens=128, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                 repeat_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0, seed=None, stop=None,
                 stream=False, repeat_last_n=64):
        """Continue prompt (a text, tokenized with BOS when the model asks for
        one, or a list of token ids). Returns the generated text, or with
        stream=True a Stream of text pieces as they come.

        max_tokens: most tokens to generate (0 or None = until the context is
        full); temperature 0 = greedy; top_k 0, top_p 1, min_p 0 and penalties
        1/0/0 are off; seed: same seed, same text (None = random); stop: a
        string or a list of strings that end the generation (not included).
        Ends early at an end-of-generation token.
        """
        ids = self._prompt_ids(prompt, False)
        return self._complete(ids, stream, _stop_list(stop), max_tokens, temperature, top_k, top_p, min_p,
                              repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, seed)

    # ---------------------------------------------------------------- chat

    def format_chat(self, messages, add_assistant=True, template=None):
        """The prompt text of messages ([{"role": ..., "content": ...}]) in the
        model's chat template (template: "chatml", "llama2", "llama3",
        "zephyr", "mistral", "gemma", "phi3" to choose one). add_assistant
        appends the opening of the assistant's turn."""
        msgs = []
        for i, m in enumerate(messages):
            try:
                role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
            except (KeyError, TypeError, ValueError):
                raise TypeError("message %d must be a {'role': ..., 'content': ...} dict" % i) from None
            role, content = as_bytes(role, "a role"), as_bytes(content, "a message's content")
            if b"\0" in role or b"\0" in content:
                raise ValueError("message %d contains a NUL character" % i)
            msgs.append(_lib.ChatMessage(role, content))
        arr = (_lib.ChatMessage * max(len(msgs), 1))(*msgs)
        n = len(msgs)
        tmpl = as_bytes(template, "template") if template else None
        size = sum(len(m.content) + len(m.role) for m in msgs) + 64 * n + 256
        with self._guard:
            out = _lib.sized_bytes(lambda buf, cap: lib.yan_chat_format(self._m, tmpl, arr, n, add_assistant, buf, cap),
                                   size)
            if out is None:
                raise _lib.error(_lib.YAN_ERR_UNSUPPORTED)
        return out.decode("utf-8", "replace")

    def chat(self, messages, max_tokens=128, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
             repeat_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0, seed=None, stop=None, stream=False,
             template=None, repeat_last_n=64):
        """The assistant's answer to messages ([{"role": "system"|"user"|
        "assistant", "content": ...}]), formatted with the chat template
        (see format_chat). Generation ends at the end of the turn (an
        end-of-generation token or the template's end-of-turn marker), at a
        stop string or at max_tokens. Same options as generate()."""
        text = self.format_chat(messages, True, template)
        family = template or self.chat_template_family()[0]
        stops = _stop_list(stop)
        eot = END_OF_TURN.get(family)
        if eot:
            stops.append(eot.encode())
        ids = self._prompt_ids(text, True)
        return self._complete(ids, stream, stops, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                              repeat_last_n, presence_penalty, frequency_penalty, seed)

    # ---------------------------------------------------------- embeddings

    def embed(self, text):
        """The embedding of text: n_embd floats, the mean of the final hidden
        states over the tokens, L2-normalised. A list of texts gives a list
        of embeddings."""
        single = isinstance(text, (str, bytes, bytearray))
        texts = [text] if single else list(text)
        if not _lib.has("yan_embed"):
            raise YanError(_lib.YAN_ERR_UNSUPPORTED,
                           "%s has no yan_embed (the library predates embeddings; rebuild it)" % _lib.path)
        out = []
        with self._guard:
            with self._lock:
                E = lib.yan_model_n_embd(self._m)
                n_ctx = lib.yan_context_n_ctx(self._ctx)
                for t in texts:
                    ids = self.tokenize(t, add_bos=True)
                    if not ids:
                        raise YanError(_lib.YAN_ERR_INVALID_ARG, "cannot embed an empty text")
                    if len(ids) > n_ctx:
                        raise YanError(_lib.YAN_ERR_CONTEXT_FULL, "the text (%d tokens) does not fit the context "
                                       "of %d tokens; use a larger n_ctx" % (len(ids), n_ctx))
                    arr, n = token_array(ids, lib.yan_model_n_vocab(self._m))
                    vec = (c_float * E)()
                    _lib.check(lib.yan_embed(self._ctx, arr, n, vec, E))  # clears the cache
                    out.append(vec[:E])
        return out[0] if single else out
