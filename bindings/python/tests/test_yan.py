"""test_yan.py — tests of the yan Python package (plain unittest).

Run by tests/e2e/test_python_sdk.sh, which builds libyan.so, the yan
command and mkmodel and writes a small random-weight llama model. Run alone:

    PYTHONPATH=bindings/python /usr/bin/python3 -m unittest discover -s bindings/python/tests -v

Environment: YAN_TEST_MODEL (a GGUF model; default: one written here by
build/tools/mkmodel), YAN_TEST_VOCAB (default models/kjv-8k.tokenizer.json),
YAN (the yan command, default build/yan). Outputs are compared with the yan
command's for the same arguments: the binding adds no behaviour of its own.
"""
import array
import ctypes
import gc
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import yan
from yan import YanError, _lib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VOCAB = os.environ.get("YAN_TEST_VOCAB") or os.path.join(ROOT, "models", "kjv-8k.tokenizer.json")
YAN = os.environ.get("YAN") or os.path.join(ROOT, "build", "yan")
MKMODEL = os.path.join(ROOT, "build", "tools", "mkmodel")
PROMPT = "In the beginning"
ENGLISH = "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.  "
CHINESE = "起初，神创造天地。地是空虚混沌，渊面黑暗；神的灵运行在水面上。"
MODEL = None
_tmp = None


def setUpModule():
    global MODEL, _tmp
    MODEL = os.environ.get("YAN_TEST_MODEL")
    if not MODEL:
        _tmp = tempfile.mkdtemp(prefix="yan-py-")
        MODEL = os.path.join(_tmp, "m.gguf")
        subprocess.run([MKMODEL, "--arch", "llama", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
                        "--ff", "128", "--type", "f32", "--vocab", VOCAB, "-o", MODEL],
                       check=True, stdout=subprocess.DEVNULL)


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def cli(*args, stdin=None):
    """stdout of the yan command as text (raw bytes decoded as the binding does)."""
    r = subprocess.run([YAN] + [str(a) for a in args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=False, timeout=120)
    if r.returncode != 0:
        raise AssertionError("yan %s failed: %s" % (" ".join(map(str, args)), r.stderr.decode(errors="replace")))
    return r.stdout.decode("utf-8", "replace")


def as_printed(text):
    """What `yan run` prints for a generated text: a newline is added unless it ends with one."""
    return text if text == "" or text.endswith("\n") else text + "\n"


def os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


# ------------------------------------------------------------------ library

class TestLibrary(unittest.TestCase):
    def test_version(self):
        with open(os.path.join(ROOT, "include", "yan.h")) as f:
            want = [l.split('"')[1] for l in f if l.startswith("#define YAN_VERSION_STRING")][0]
        self.assertEqual(yan.version(), want)
        self.assertEqual(yan.__version__, want)

    def test_cpu(self):
        feats = yan.cpu_features()
        self.assertIsInstance(feats, list)
        self.assertTrue(all(isinstance(f, str) and f for f in feats))
        self.assertGreaterEqual(yan.cpu_count(), 1)

    def test_yan_lib_points_at_the_library(self):
        lib = yan.library_path  # the one this process loaded
        if not os.path.isabs(lib):
            self.skipTest("the library was found by the system loader, not by a path")
        r = subprocess.run([sys.executable, "-c", "import yan; print(yan.library_path)"],
                           env=dict(os.environ, YAN_LIB=lib), capture_output=True, text=True, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), lib)

    def test_missing_library_is_a_clear_import_error(self):
        r = subprocess.run([sys.executable, "-c", "import yan"], env=dict(os.environ, YAN_LIB="/nonexistent/libyan.so"),
                           capture_output=True, text=True, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("/nonexistent/libyan.so", r.stderr)
        self.assertIn("YAN_LIB", r.stderr)

    def test_abi_matches_yan_h(self):
        """Sizes and field offsets of the ctypes structures, and the enum
        values used, equal the C compiler's for yan.h."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            self.skipTest("no C compiler to check the structure layouts")
        lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "yan.h"', "int main(void) {"]
        want = []
        for name, st in sorted(_lib.STRUCTS.items()):
            lines.append('printf("%s %%zu\\n", sizeof(%s));' % (name, name))
            want.append("%s %d" % (name, ctypes.sizeof(st)))
            for field in st._fields_:
                f = field[0]
                lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (name, f, name, f))
                want.append("%s.%s %d" % (name, f, getattr(st, f).offset))
        for name, value in sorted(_lib.CONSTANTS.items()):
            lines.append('printf("%s %%d\\n", (int)%s);' % (name, name))
            want.append("%s %d" % (name, value))
        lines += ["return 0;", "}"]
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "abi.c"), os.path.join(d, "abi")
            with open(src, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = subprocess.run([cc, "-std=c11", "-I", os.path.join(ROOT, "include"), "-o", exe, src],
                               capture_output=True, text=True, check=False)
            self.assertEqual(r.returncode, 0, "a field or constant is missing in yan.h:\n" + r.stderr[-2000:])
            got = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split("\n")
        self.assertEqual([g for g in got if g], want)


# ---------------------------------------------------------------- tokenizer

class TestTokenizer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tok = yan.Tokenizer(VOCAB)

    @classmethod
    def tearDownClass(cls):
        cls.tok.close()

    def test_properties(self):
        self.assertEqual(self.tok.n_vocab, 8000)
        self.assertEqual(self.tok.kind, "bpe")
        self.assertIsInstance(self.tok.pre, str)
        self.assertIn("n_vocab=8000", repr(self.tok))

    def test_round_trip_english_and_chinese(self):
        for text in (ENGLISH, CHINESE, ENGLISH + CHINESE, ""):
            ids = self.tok.encode(text)
            self.assertTrue(all(isinstance(i, int) and 0 <= i < 8000 for i in ids))
            self.assertEqual(self.tok.decode(ids), text)
        self.assertEqual(self.tok.encode(""), [])

    def test_bytes_round_trip(self):
        data = b"\xff\xfe broken \xe4\xb8 utf-8 \r\n"
        self.assertEqual(self.tok.decode_bytes(self.tok.encode(data)), data)

    def test_agrees_with_yan_tokenize(self):
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
            f.write(ENGLISH + CHINESE)
        try:
            want = [int(x) for x in cli("tokenize", "--vocab", VOCAB, f.name).split()]
        finally:
            os.unlink(f.name)
        self.assertEqual(self.tok.encode(ENGLISH + CHINESE), want)
        self.assertGreater(len(want), 20)

    def test_special_tokens(self):
        text = "a<|endoftext|>b"
        want = [int(x) for x in cli("tokenize", "--vocab", VOCAB, "--special", stdin=text.encode()).split()]
        self.assertEqual(self.tok.encode(text, special=True), want)
        self.assertIn(7999, want)
        self.assertNotIn(7999, self.tok.encode(text))
        self.assertEqual(self.tok.find("<|endoftext|>"), 7999)
        self.assertIsNone(self.tok.find("no such token text"))
        with self.assertRaises(ValueError):
            self.tok.special("nonsense")

    def test_token_to_piece(self):
        ids = self.tok.encode(ENGLISH + CHINESE)
        self.assertEqual(b"".join(self.tok.token_to_piece(i) for i in ids), (ENGLISH + CHINESE).encode())
        with self.assertRaises(YanError):
            self.tok.token_to_piece(8000)

    def test_stream_decoder_holds_split_characters(self):
        ids = self.tok.encode(CHINESE)
        self.assertGreater(len(ids), len(CHINESE))  # characters are split across byte tokens
        with self.tok.decoder() as d:
            pieces = [d.push(i) for i in ids] + [d.flush()]
        self.assertEqual("".join(pieces), CHINESE)
        self.assertFalse(any("\ufffd" in p for p in pieces))

    def test_decode_rejects_bad_ids(self):
        with self.assertRaises(YanError) as cm:
            self.tok.decode([1, 8000])
        self.assertEqual(cm.exception.name, "YAN_ERR_INVALID_ARG")
        self.assertIn("8000", str(cm.exception))
        with self.assertRaises(TypeError):
            self.tok.decode(["a"])

    def test_missing_file(self):
        path = "/nonexistent/dir/no-such-vocab.json"
        with self.assertRaises(YanError) as cm:
            yan.Tokenizer(path)
        self.assertIn(path, str(cm.exception))
        self.assertLess(cm.exception.code, 0)

    def test_use_after_close(self):
        t = yan.Tokenizer(VOCAB)
        d = t.decoder()
        t.close()
        t.close()  # idempotent
        self.assertTrue(t.closed)
        with self.assertRaises(YanError):
            t.encode("x")
        with self.assertRaises(YanError):
            t.n_vocab
        with self.assertRaises(YanError):
            d.push(1)
        d.close()
        self.assertIn("closed", repr(t))

    def test_threads_encode_at_once(self):
        want = self.tok.encode(ENGLISH * 20)
        got = []
        ts = [threading.Thread(target=lambda: got.append(self.tok.encode(ENGLISH * 20))) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(got, [want] * 4)


# -------------------------------------------------------------------- model

class TestModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = yan.Model(MODEL, n_threads=1)

    @classmethod
    def tearDownClass(cls):
        cls.m.close()

    def test_properties(self):
        m = self.m
        self.assertEqual(m.arch, "llama")
        self.assertEqual(m.n_embd, 64)
        self.assertEqual(m.n_layer, 2)
        self.assertEqual(m.n_vocab, 8000)
        self.assertEqual(m.n_ctx, 2048)  # the model's training context (mkmodel's default)
        self.assertEqual(m.n_ctx_train, 2048)
        self.assertEqual(m.n_params, 1098048)
        self.assertIsInstance(m.name, str)
        self.assertIsNone(m.chat_template)
        self.assertEqual(m.chat_template_family(), ("chatml", False))
        self.assertIn("llama", m.describe())
        self.assertIn("n_embd=64", repr(m))

    def test_n_ctx_option(self):
        with yan.Model(MODEL, n_ctx=256, n_threads=1, kv_type="f32", use_mmap=False) as m:
            self.assertEqual(m.n_ctx, 256)
            self.assertTrue(m.generate(PROMPT, max_tokens=4, temperature=0) is not None)
        with self.assertRaises(ValueError):
            yan.Model(MODEL, kv_type="q4")

    def test_tokenizer_is_the_models(self):
        with yan.Tokenizer(VOCAB) as t:
            self.assertEqual(self.m.tokenizer.encode(ENGLISH), t.encode(ENGLISH))
        self.assertEqual(self.m.tokenizer.n_vocab, 8000)
        ids = self.m.tokenize(ENGLISH)
        self.assertEqual(self.m.detokenize(ids), ENGLISH)

    def test_greedy_equals_yan_run(self):
        text = self.m.generate(PROMPT, max_tokens=16, temperature=0)
        self.assertTrue(text)
        self.assertEqual(as_printed(text), cli("run", MODEL, "-p", PROMPT, "-n", 16, "--temp", 0, "--threads", 1))

    def test_seed_determinism(self):
        kw = dict(max_tokens=16, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
        a = self.m.generate(PROMPT, seed=7, **kw)
        b = self.m.generate(PROMPT, seed=7, **kw)
        c = self.m.generate(PROMPT, seed=8, **kw)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertEqual(as_printed(a), cli("run", MODEL, "-p", PROMPT, "-n", 16, "--temp", 1, "--top-k", 0,
                                            "--top-p", 1, "--min-p", 0, "--seed", 7, "--threads", 1))

    def test_penalties_are_passed(self):
        kw = dict(max_tokens=24, temperature=0)
        plain = self.m.generate(PROMPT, **kw)
        pen = self.m.generate(PROMPT, repeat_penalty=1.5, presence_penalty=1.0, frequency_penalty=1.0, **kw)
        want = cli("run", MODEL, "-p", PROMPT, "-n", 24, "--temp", 0, "--repeat-penalty", 1.5,
                   "--presence-penalty", 1, "--frequency-penalty", 1, "--threads", 1)
        self.assertEqual(as_printed(pen), want)
        self.assertEqual(as_printed(plain), cli("run", MODEL, "-p", PROMPT, "-n", 24, "--temp", 0, "--threads", 1))

    def test_prompt_as_token_ids(self):
        ids = self.m.tokenize(PROMPT)
        self.assertEqual(self.m.generate(ids, max_tokens=8, temperature=0),
                         self.m.generate(PROMPT, max_tokens=8, temperature=0))

    def test_stream_concatenates_to_the_text(self):
        for kw in (dict(temperature=0), dict(temperature=0.9, seed=3)):
            text = self.m.generate(PROMPT, max_tokens=32, **kw)
            s = self.m.generate(PROMPT, max_tokens=32, stream=True, **kw)
            self.assertIsInstance(s, yan.Stream)
            pieces = list(s)
            self.assertGreater(len(pieces), 1)  # one piece per token, not the text at the end
            self.assertTrue(all(isinstance(p, str) and p for p in pieces))
            self.assertEqual("".join(pieces), text)
            self.assertIn(s.finish_reason, ("stop", "length"))
            if s.finish_reason == "length":
                self.assertEqual(s.n_generated, 32)
            self.assertEqual(list(s), [])  # exhausted

    def test_stream_joins_utf8_split_across_callbacks(self):
        # yan hands over complete UTF-8; should a piece still end inside a
        # character, the binding holds the bytes until the character completes
        m = yan.Model(MODEL, n_threads=1)

        def fake_run(req, on_bytes):
            for b in (b"\xe4\xb8", b"\xad\xe6", b"\x96\x87!", b"\xf0\x9f"):
                if not on_bytes(b):
                    break
            return _lib.GenerateResult(n_prompt=req.n, n_generated=4, finish=1)

        m._run = fake_run
        try:
            s = m.generate(PROMPT, stream=True)
            self.assertEqual(list(s), ["\u4e2d", "\u6587!", "\ufffd"])
            self.assertEqual((s.finish_reason, s.n_generated), ("length", 4))
            self.assertEqual(m.generate(PROMPT), "\u4e2d\u6587!\ufffd")
        finally:
            m.close()

    def test_stop_strings(self):
        full = self.m.generate(PROMPT, max_tokens=16, temperature=0)
        self.assertGreaterEqual(len(full), 12)
        stop = full[6:9]
        want = full.split(stop)[0]
        self.assertEqual(self.m.generate(PROMPT, max_tokens=16, temperature=0, stop=stop), want)
        self.assertEqual(self.m.generate(PROMPT, max_tokens=16, temperature=0, stop=["\x01never", stop]), want)
        self.assertEqual("".join(self.m.generate(PROMPT, max_tokens=16, temperature=0, stop=stop, stream=True)), want)
        self.assertEqual(as_printed(want), cli("run", MODEL, "-p", PROMPT, "-n", 16, "--temp", 0, "--stop", stop,
                                               "--threads", 1))
        s = self.m.generate(PROMPT, max_tokens=16, temperature=0, stop=stop, stream=True)
        list(s)
        self.assertEqual(s.finish_reason, "stop")

    def test_chat_format(self):
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        self.assertEqual(self.m.format_chat(msgs),
                         "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                         "<|im_start|>assistant\n")
        self.assertEqual(self.m.format_chat(msgs, add_assistant=False),
                         "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n")
        self.assertEqual(self.m.format_chat(msgs, template="llama3"),
                         "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                         "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
        with self.assertRaises(YanError) as cm:
            self.m.format_chat(msgs, template="nosuch")
        self.assertIn("nosuch", str(cm.exception))
        with self.assertRaises(TypeError):
            self.m.format_chat([{"role": "user"}])

    def test_every_template_family_has_an_end_of_turn(self):
        with self.assertRaises(YanError) as cm:
            self.m.format_chat([{"role": "user", "content": "x"}], template="nosuch")
        known = str(cm.exception).split("known: ")[1].split(")")[0].split(", ")
        self.assertGreaterEqual(len(known), 7)
        from yan._model import END_OF_TURN
        for fam in known:
            self.assertIn(fam, END_OF_TURN)
            self.assertIn(END_OF_TURN[fam], self.m.format_chat([{"role": "user", "content": "x"},
                                                                {"role": "assistant", "content": "y"}],
                                                               add_assistant=False, template=fam))

    def test_chat_equals_yan_run_chat(self):
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        text = self.m.chat(msgs, max_tokens=8, temperature=0)
        self.assertNotIn("<|im_end|>", text)
        want = cli("run", MODEL, "--chat", "--system", "Be brief.", "-p", "Hello", "-n", 8, "--temp", 0, "--threads", 1)
        self.assertEqual(as_printed(text), want)
        self.assertEqual("".join(self.m.chat(msgs, max_tokens=8, temperature=0, stream=True)), text)
        # (role, content) pairs work too
        self.assertEqual(self.m.chat([("system", "Be brief."), ("user", "Hello")], max_tokens=8, temperature=0), text)

    def test_chat_stops_at_end_of_turn(self):
        # The random model never writes an end-of-turn marker by itself, so
        # check that chat() asks yan_generate to stop at the template's
        # marker (stop strings themselves are tested above), next to the
        # end-of-generation tokens yan_generate always stops at.
        seen = []
        real = self.m._complete

        def spy(ids, stream, stops, *a):
            seen.append(list(stops))
            return real(ids, stream, stops, *a)

        self.m._complete = spy
        try:
            msgs = [{"role": "user", "content": "Hello"}]
            answer = self.m.chat(msgs, max_tokens=12, temperature=0, stop="zz")
            self.m.chat(msgs, max_tokens=4, temperature=0, template="llama3")
            self.m.chat(msgs, max_tokens=4, temperature=0, template="gemma", stream=True).close()
        finally:
            del self.m._complete
        self.assertEqual(seen, [[b"zz", b"<|im_end|>"], [b"<|eot_id|>"], [b"<end_of_turn>"]])
        prompt = self.m.tokenize(self.m.format_chat(msgs), special=True)
        self.assertEqual(answer, self.m.generate(prompt, max_tokens=12, temperature=0, stop=["zz", "<|im_end|>"]))

    def test_logits(self):
        ids = self.m.tokenize(PROMPT)
        lg = self.m.logits(ids)
        self.assertIsInstance(lg, array.array)
        self.assertEqual(len(lg), 8000)
        self.assertTrue(all(math.isfinite(x) for x in lg))
        best = max(range(len(lg)), key=lg.__getitem__)
        first = self.m.generate(PROMPT, max_tokens=1, temperature=0)
        self.assertEqual(self.m.tokenizer.token_to_piece(best).decode("utf-8", "replace"), first)
        self.assertEqual(list(self.m.logits(PROMPT)), list(lg))
        try:
            import numpy as np
        except ImportError:
            return
        a = self.m.logits(ids, numpy=True)
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.shape, (8000,))
        self.assertEqual(a.tolist(), list(lg))

    def test_embed(self):
        if not _lib.has("yan_embed"):
            self.skipTest("yan_embed is not in %s yet" % _lib.path)
        v = self.m.embed(ENGLISH)
        self.assertEqual(len(v), self.m.n_embd)
        self.assertTrue(all(isinstance(x, float) and math.isfinite(x) for x in v))
        self.assertAlmostEqual(math.sqrt(sum(x * x for x in v)), 1.0, places=4)
        vs = self.m.embed([ENGLISH, CHINESE, ENGLISH])
        self.assertEqual(len(vs), 3)
        self.assertEqual(vs[0], v)
        self.assertEqual(vs[2], v)
        self.assertNotEqual(vs[1], v)
        for w in vs:
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in w)), 1.0, places=4)
        # embedding leaves generation unchanged
        self.assertEqual(as_printed(self.m.generate(PROMPT, max_tokens=8, temperature=0)),
                         cli("run", MODEL, "-p", PROMPT, "-n", 8, "--temp", 0, "--threads", 1))
        with self.assertRaises(YanError):
            self.m.embed("")

    def test_threads_share_a_model(self):
        want = self.m.generate(PROMPT, max_tokens=12, temperature=0)
        got = []

        def work():
            got.append(self.m.generate(PROMPT, max_tokens=12, temperature=0))
            got.append("".join(self.m.generate(PROMPT, max_tokens=12, temperature=0, stream=True)))

        ts = [threading.Thread(target=work) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(got, [want] * 6)

    def test_errors(self):
        with self.assertRaises(YanError) as cm:
            self.m.generate(PROMPT, max_tokens=5000)
        self.assertEqual(cm.exception.name, "YAN_ERR_CONTEXT_FULL")
        with self.assertRaises(YanError) as cm:
            self.m.generate([1, 99999], max_tokens=2)
        self.assertEqual(cm.exception.name, "YAN_ERR_INVALID_ARG")
        with self.assertRaises(YanError):
            self.m.generate("", max_tokens=2)
        with self.assertRaises(ValueError):
            self.m.generate(PROMPT, max_tokens=-1)
        with self.assertRaises(ValueError):
            self.m.generate(PROMPT, seed=-1)


class TestLifetime(unittest.TestCase):
    def test_missing_model_names_the_path(self):
        path = "/nonexistent/dir/no-such-model.gguf"
        with self.assertRaises(YanError) as cm:
            yan.Model(path)
        e = cm.exception
        self.assertIn(path, str(e))
        self.assertLess(e.code, 0)
        self.assertTrue(e.name.startswith("YAN_ERR_"))
        self.assertTrue(e.status)
        self.assertIn(path, e.detail)

    def test_not_a_model(self):
        with self.assertRaises(YanError) as cm:
            yan.Model(VOCAB)
        self.assertIn(VOCAB, str(cm.exception))

    def test_lora_errors_name_the_adapter(self):
        with self.assertRaises(YanError) as cm:
            yan.Model(MODEL, lora=MODEL)  # a model, not an adapter
        self.assertIn(MODEL, str(cm.exception))
        with self.assertRaises(YanError) as cm:
            yan.Model(MODEL, lora=[("/nonexistent/adapter.gguf", 0.5)])
        self.assertIn("/nonexistent/adapter.gguf", str(cm.exception))

    def test_use_after_close_raises(self):
        m = yan.Model(MODEL, n_threads=1)
        tok = m.tokenizer
        m.close()
        m.close()  # idempotent
        self.assertTrue(m.closed)
        for f in (lambda: m.generate(PROMPT), lambda: m.generate(PROMPT, stream=True),
                  lambda: m.chat([{"role": "user", "content": "hi"}]), lambda: m.embed("x"),
                  lambda: m.logits([1, 2]), lambda: m.tokenize("x"), lambda: m.n_vocab, lambda: m.describe(),
                  lambda: tok.encode("x"), lambda: tok.decode([1]), lambda: m.tokenizer):
            with self.assertRaises(YanError) as cm:
                f()
            self.assertIn("closed", str(cm.exception))
        self.assertIn("closed", repr(m))

    def test_context_manager_closes(self):
        with yan.Model(MODEL, n_threads=1) as m:
            m.generate(PROMPT, max_tokens=2)
        self.assertTrue(m.closed)

    def test_tokenizer_keeps_its_model_alive(self):
        tok = yan.Model(MODEL, n_threads=1).tokenizer
        gc.collect()
        self.assertEqual(tok.decode(tok.encode(ENGLISH)), ENGLISH)

    def test_model_closed_under_a_live_iterator(self):
        m = yan.Model(MODEL, n_threads=1, n_ctx=2048)
        it = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)  # ~2000 tokens: still running below
        first = next(it)
        self.assertTrue(first)
        m.close()
        with self.assertRaises(YanError) as cm:
            for _ in it:
                pass
        self.assertIn("closed", str(cm.exception))
        self.assertEqual(list(it), [])
        with self.assertRaises(YanError):
            m.generate(PROMPT)

    def test_model_closed_by_another_thread(self):
        m = yan.Model(MODEL, n_threads=1, n_ctx=2048)
        it = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)
        next(it)
        t = threading.Thread(target=m.close)
        t.start()
        with self.assertRaises(YanError):
            for _ in it:
                pass
        t.join()
        self.assertTrue(m.closed)

    def test_unstarted_iterator_after_close(self):
        m = yan.Model(MODEL, n_threads=1)
        it = m.generate(PROMPT, max_tokens=8, temperature=0, stream=True)
        m.close()
        try:  # finished before close: its text; else cut short: YanError; never a crash
            list(it)
        except YanError as e:
            self.assertIn("closed", str(e))

    def test_abandoned_iterator_stops_its_generation(self):
        with yan.Model(MODEL, n_threads=1, n_ctx=2048) as m:
            it = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)
            next(it)
            t0 = time.monotonic()
            it.close()
            self.assertEqual(it.finish_reason, "aborted")
            self.assertEqual(list(it), [])
            # the context is free again at once, and results are unchanged
            self.assertEqual(as_printed(m.generate(PROMPT, max_tokens=8, temperature=0)),
                             cli("run", MODEL, "-p", PROMPT, "-n", 8, "--temp", 0, "--threads", 1))
            self.assertLess(time.monotonic() - t0, 30)
            it2 = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)
            next(it2)
            del it2  # dropped: cancelled and joined by __del__
            with m.generate(PROMPT, max_tokens=0, temperature=0, stream=True) as it3:
                next(it3)

    def test_no_thread_leak(self):
        gc.collect()
        time.sleep(0.2)  # threads of earlier tests finish exiting
        py0, os0 = threading.active_count(), os_threads()
        for _ in range(3):
            m = yan.Model(MODEL, n_threads=2, n_ctx=2048)  # a pool with a worker thread
            "".join(m.generate(PROMPT, max_tokens=16, temperature=0, stream=True))  # exhausted
            it = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)
            next(it)
            del it  # abandoned
            it = m.generate(PROMPT, max_tokens=0, temperature=0, stream=True)
            next(it)
            m.close()  # closed under a live iterator
            del it
            m2 = yan.Model(MODEL, n_threads=2)
            m2.generate(PROMPT, max_tokens=4)
            del m2  # freed by garbage collection
        gc.collect()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (threading.active_count(), os_threads()) != (py0, os0):
            time.sleep(0.05)
        self.assertEqual(threading.active_count(), py0, [t.name for t in threading.enumerate()])
        self.assertEqual(os_threads(), os0)

    def test_interpreter_exit_with_a_live_stream(self):
        code = ("import yan, sys\n"
                "m = yan.Model(sys.argv[1], n_threads=1)\n"
                "it = m.generate('In the beginning', max_tokens=0, temperature=0, stream=True)\n"
                "print(next(it) != '')\n")
        r = subprocess.run([sys.executable, "-c", code, MODEL], capture_output=True, text=True, timeout=60,
                           check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "True"), r.stderr)


if __name__ == "__main__":
    unittest.main()
