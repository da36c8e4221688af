#!/usr/bin/python3
"""torch_ref.py — the PyTorch reference for yan's training model.

  torch_ref.py run DIR OUT          the model DIR/model.gguf and the batches
                                    DIR/batches.bin (both written by
                                    `build/tools/train_check gen`) in PyTorch:
                                    loss, logits and every gradient of batch 0,
                                    then the AdamW steps; records to OUT.
  torch_ref.py compare REF GOT      per-record errors of GOT against REF;
                                    exit status 1 when a tolerance is missed.
  torch_ref.py bench [--dim N] [--layers N] [--heads N] [--kv-heads N]
                     [--ff N] [--n-vocab V] [--batch B] [--seq T]
                     [--threads N] [--steps N]
                                    times forward + backward + clip + AdamW.

The model is written here from the GGUF alone, in float32: a small GGUF
reader (v2/v3, f32 tensors, the llama.* keys), token embedding, per layer
RMSNorm (x * rsqrt(mean(x^2) + eps) * w), q/k/v without biases, RoPE in
llama.cpp's NORM layout (adjacent pairs (2i, 2i+1) rotated by
pos * base^(-2i/HD); the angles as ggml computes them: a running product in
float32), GQA by repeat_interleave of the kv heads, causal softmax attention,
output projection, residual, RMSNorm, SwiGLU, residual; final RMSNorm, output
projection (token_embd when there is no output.weight), cross-entropy with
ignore_index -1. AdamW is torch.optim.AdamW (foreach=False) with the norms
in a group without weight decay, after torch.nn.utils.clip_grad_norm_.

LoRA (DIR/adapter.gguf present, written by `train_check gen --lora-rank`):
the model's weights are frozen (requires_grad False) and every adapted
matrix W (a tensor "<W>.lora_a" A (r, in) and "<W>.lora_b" B (out, r) in the
adapter file) computes x W^T + (alpha / r) (x A^T) B^T, PEFT's LoRA layer
without dropout; the gradients recorded are those of A and B, and AdamW
steps (all adapters decayed) and clips the adapters only.

Tolerances of compare (what is measured):
  loss, adamw.loss, adamw.norm   |got - ref| <= RTOL * |ref| per value
                                 (1e-5 for loss, 1e-4 for the AdamW losses
                                 and gradient norms, step by step);
  logits                         max |got - ref| <= 1e-4 * (max ref - min ref);
  grad.<tensor>                  max |got - ref| <= 1e-4 * max |ref| + 1e-8.

Records file: b"YANTRES1", then records of u32 name length, name, u64 count,
float32 values. Needs /usr/bin/python3 with torch and numpy (Debian's
python3-torch; scripts/deps.sh test installs it).
"""
import math
import struct
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write("torch_ref.py: PyTorch/NumPy not importable by %s (%s); "
                     "install python3-torch (scripts/deps.sh test)\n" % (sys.executable, e))
    sys.exit(3)

# ------------------------------------------------------------------ GGUF

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8", "replace")
        self.p += n
        return s

    def value(self, t):
        if t in _SCALAR:
            return self.take(_SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et = self.take("<I")
            n = self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d" % t)


def read_gguf(path):
    """(metadata dict, {name: float32 numpy array shaped [ne1][ne0]})"""
    data = open(path, "rb").read()
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("%s: not a GGUF file" % path)
    r.p = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("%s: GGUF version %d" % (path, version))
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        typ = r.take("<I")
        off = r.take("<Q")
        infos.append((name, dims, typ, off))
    align = kv.get("general.alignment", 32)
    base = (r.p + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        if typ != 0:
            raise ValueError("%s: tensor %s is not f32 (type %d)" % (path, name, typ))
        n = 1
        for d in dims:
            n *= d
        a = np.frombuffer(data, dtype="<f4", count=n, offset=base + off)
        shape = list(reversed(dims)) if len(dims) > 1 else [dims[0]]
        tensors[name] = a.reshape(shape).copy()
    return kv, tensors


# ------------------------------------------------------------------ model

class Cfg:
    def __init__(self, kv, tensors):
        self.V = tensors["token_embd.weight"].shape[0]
        self.C = kv["llama.embedding_length"]
        self.L = kv["llama.block_count"]
        self.NH = kv["llama.attention.head_count"]
        self.NKV = kv.get("llama.attention.head_count_kv", self.NH)
        self.FF = kv["llama.feed_forward_length"]
        self.eps = kv.get("llama.attention.layer_norm_rms_epsilon", 1e-5)
        self.base = kv.get("llama.rope.freq_base", 10000.0)
        self.HD = self.C // self.NH
        self.tied = "output.weight" not in tensors


def rope_tables(T, HD, base):
    """cos, sin (T, HD/2) float32; angles as ggml: theta_{i+1} = theta_i * base^(-2/HD) in float32"""
    half = HD // 2
    scale = np.float32(math.pow(np.float32(base), np.float32(-2.0) / np.float32(HD)))
    cos = np.zeros((T, half), np.float32)
    sin = np.zeros((T, half), np.float32)
    for t in range(T):
        th = np.float32(t)
        for i in range(half):
            cos[t, i] = math.cos(th)
            sin[t, i] = math.sin(th)
            th = np.float32(th * scale)
    return torch.from_numpy(cos), torch.from_numpy(sin)


def rope(x, cos, sin):
    """x (B, T, H, HD): pairs (2i, 2i+1)"""
    B, T, H, HD = x.shape
    xp = x.view(B, T, H, HD // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    c = cos.view(1, T, 1, HD // 2)
    s = sin.view(1, T, 1, HD // 2)
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).view(B, T, H, HD)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(P, cfg, inp, tgt, tables, lora=None):
    """lora: None or (scale, {W name: (A, B)})"""
    B, T = inp.shape
    C, NH, NKV, HD = cfg.C, cfg.NH, cfg.NKV, cfg.HD
    cos, sin = tables
    cos, sin = cos[:T], sin[:T]
    x = P["token_embd.weight"][inp]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)

    def lin(h, name):
        y = h @ P[name].t()
        if lora is not None and name in lora[1]:
            a, b = lora[1][name]
            y = y + lora[0] * ((h @ a.t()) @ b.t())
        return y

    for l in range(cfg.L):
        p = "blk.%d." % l
        h = rmsnorm(x, P[p + "attn_norm.weight"], cfg.eps)
        q = lin(h, p + "attn_q.weight").view(B, T, NH, HD)
        k = lin(h, p + "attn_k.weight").view(B, T, NKV, HD)
        v = lin(h, p + "attn_v.weight").view(B, T, NKV, HD)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if NKV != NH:
            k = k.repeat_interleave(NH // NKV, dim=1)
            v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HD))
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + lin(o, p + "attn_output.weight")
        h = rmsnorm(x, P[p + "ffn_norm.weight"], cfg.eps)
        g = lin(h, p + "ffn_gate.weight")
        u = lin(h, p + "ffn_up.weight")
        x = x + lin(F.silu(g) * u, p + "ffn_down.weight")
    x = rmsnorm(x, P["output_norm.weight"], cfg.eps)
    W = P["token_embd.weight"] if cfg.tied else P["output.weight"]
    logits = x @ W.t()
    loss = F.cross_entropy(logits.view(-1, cfg.V), tgt.reshape(-1), ignore_index=-1)
    return loss, logits


# ------------------------------------------------------------------ files

def read_batches(path):
    d = open(path, "rb").read()
    if d[:8] != b"YANTBAT1":
        raise ValueError("%s: not a batches file" % path)
    B, T, NB, NS = struct.unpack_from("<4i", d, 8)
    max_norm, b1, b2, eps, wd = struct.unpack_from("<5f", d, 24)
    lr = np.frombuffer(d, "<f4", NS, 44).astype(np.float64)
    n = NB * B * T
    o = 44 + 4 * NS
    inp = np.frombuffer(d, "<i4", n, o).reshape(NB, B, T)
    tgt = np.frombuffer(d, "<i4", n, o + 4 * n).reshape(NB, B, T)
    return dict(B=B, T=T, NB=NB, NS=NS, max_norm=max_norm, b1=b1, b2=b2, eps=eps, wd=wd, lr=lr,
                inp=torch.from_numpy(inp.astype(np.int64)), tgt=torch.from_numpy(tgt.astype(np.int64)))


def write_records(path, recs):
    with open(path, "wb") as f:
        f.write(b"YANTRES1")
        for name, v in recs:
            a = np.ascontiguousarray(np.asarray(v, dtype="<f4").reshape(-1))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<Q", a.size))
            f.write(a.tobytes())


def read_records(path):
    d = open(path, "rb").read()
    if d[:8] != b"YANTRES1":
        raise ValueError("%s: not a records file" % path)
    p, out = 8, {}
    while p < len(d):
        (ln,) = struct.unpack_from("<I", d, p)
        name = d[p + 4:p + 4 + ln].decode()
        (n,) = struct.unpack_from("<Q", d, p + 4 + ln)
        p += 12 + ln
        out[name] = np.frombuffer(d, "<f4", n, p).astype(np.float64)
        p += 4 * n
    return out


# ------------------------------------------------------------------ commands

def cmd_run(dirname, out):
    torch.manual_seed(0)
    kv, tensors = read_gguf(dirname + "/model.gguf")
    cfg = Cfg(kv, tensors)
    bt = read_batches(dirname + "/batches.bin")
    tables = rope_tables(bt["T"], cfg.HD, cfg.base)
    lora = None
    try:
        akv, atens = read_gguf(dirname + "/adapter.gguf")
    except FileNotFoundError:
        akv = None
    if akv is None:
        names = list(tensors.keys())
        P = {k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in tensors.items()}
        G = P
    else:  # LoRA: a frozen base, the adapters are the parameters
        assert akv["general.type"] == "adapter" and akv["adapter.type"] == "lora", "not a LoRA adapter"
        P = {k: torch.from_numpy(v) for k, v in tensors.items()}  # requires_grad False
        names = list(atens.keys())  # yan's order: the adapter file's
        G = {k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in atens.items()}
        rank = next(iter(atens.values())).shape[0]
        pairs = {k[:-7]: (G[k], G[k[:-7] + ".lora_b"]) for k in names if k.endswith(".lora_a")}
        lora = (akv["adapter.lora.alpha"] / rank, pairs)
    recs = []
    loss, logits = forward(P, cfg, bt["inp"][0], bt["tgt"][0], tables, lora)
    loss.backward()
    recs.append(("loss", [loss.item()]))
    recs.append(("n_targets", [int((bt["tgt"][0] >= 0).sum())]))
    recs.append(("logits", logits.detach().numpy()))
    for k in names:  # yan's order: GGUF order as written
        recs.append(("grad." + k, G[k].grad.numpy().copy()))
    decay = [G[k] for k in names if not k.endswith("norm.weight")]
    no_decay = [G[k] for k in names if k.endswith("norm.weight")]
    groups = [{"params": decay, "weight_decay": bt["wd"]}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=float(bt["lr"][0]), betas=(bt["b1"], bt["b2"]), eps=bt["eps"], foreach=False)
    params = [G[k] for k in names]
    losses, norms = [], []
    for s in range(bt["NS"]):
        b = s % bt["NB"]
        opt.zero_grad(set_to_none=False)
        loss, _ = forward(P, cfg, bt["inp"][b], bt["tgt"][b], tables, lora)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, bt["max_norm"])))
        for g in opt.param_groups:
            g["lr"] = float(bt["lr"][s])
        opt.step()
        losses.append(loss.item())
    recs.append(("adamw.loss", losses))
    recs.append(("adamw.norm", norms))
    write_records(out, recs)
    print("torch: loss %.7f; after %d AdamW steps %.7f" % (recs[0][1][0], bt["NS"], losses[-1]))


def cmd_compare(ref_path, got_path):
    ref, got = read_records(ref_path), read_records(got_path)
    fails = 0
    worst_grad = (0.0, "")
    for name, r in ref.items():
        if name not in got:
            print("FAIL %-32s missing" % name)
            fails += 1
            continue
        g = got[name]
        if g.shape != r.shape:
            print("FAIL %-32s %d values, expected %d" % (name, g.size, r.size))
            fails += 1
            continue
        err = np.abs(g - r)
        mx = float(err.max()) if err.size else 0.0
        rel = float((err / np.maximum(np.abs(r), 1e-30)).max()) if err.size else 0.0
        if name in ("loss", "n_targets"):
            bound, what = 1e-5 * np.abs(r), "rel"
            ok = bool((err <= bound).all())
            line = "max abs %.3g  rel %.3g (tol 1e-5 rel)" % (mx, rel)
        elif name.startswith("adamw."):
            ok = bool((err <= 1e-4 * np.abs(r)).all())
            line = "max abs %.3g  rel %.3g (tol 1e-4 rel per step)" % (mx, rel)
        elif name == "logits":
            rng = float(r.max() - r.min())
            ok = mx <= 1e-4 * rng
            line = "max abs %.3g = %.3g of the range %.3g (tol 1e-4)" % (mx, mx / rng, rng)
        else:
            scale = float(np.abs(r).max())
            ok = mx <= 1e-4 * scale + 1e-8
            ratio = mx / scale if scale > 0 else 0.0
            if ratio > worst_grad[0]:
                worst_grad = (ratio, name)
            line = "max abs %.3g = %.3g of max|g| %.3g (tol 1e-4)" % (mx, ratio, scale)
        print("%s %-32s %s" % ("ok  " if ok else "FAIL", name, line))
        fails += 0 if ok else 1
    if worst_grad[1]:
        print("worst gradient: %s, max abs error %.3g of its max |g|" % (worst_grad[1], worst_grad[0]))
    return 1 if fails else 0


def cmd_bench(argv):
    o = dict(dim=256, layers=4, heads=4, kv_heads=0, ff=704, n_vocab=4096, batch=8, seq=256, threads=2, steps=3)
    i = 0
    while i < len(argv):
        k = argv[i].lstrip("-").replace("-", "_")
        if k not in o or i + 1 >= len(argv):
            sys.stderr.write("torch_ref.py bench: unknown option %s\n" % argv[i])
            return 2
        o[k] = int(argv[i + 1])
        i += 2
    torch.set_num_threads(o["threads"])
    torch.manual_seed(0)
    C, NH, FF, V, L = o["dim"], o["heads"], o["ff"], o["n_vocab"], o["layers"]
    NKV = o["kv_heads"] or NH
    HD = C // NH
    kv = {"llama.embedding_length": C, "llama.block_count": L, "llama.attention.head_count": NH,
          "llama.attention.head_count_kv": NKV, "llama.feed_forward_length": FF}
    tensors = {"token_embd.weight": np.zeros((V, C), np.float32), "output.weight": None}
    cfg = Cfg(kv, tensors)
    shapes = {"token_embd.weight": (V, C), "output_norm.weight": (C,), "output.weight": (V, C)}
    for l in range(L):
        p = "blk.%d." % l
        shapes.update({p + "attn_norm.weight": (C,), p + "attn_q.weight": (C, C),
                       p + "attn_k.weight": (NKV * HD, C), p + "attn_v.weight": (NKV * HD, C),
                       p + "attn_output.weight": (C, C), p + "ffn_norm.weight": (C,),
                       p + "ffn_gate.weight": (FF, C), p + "ffn_up.weight": (FF, C), p + "ffn_down.weight": (C, FF)})
    P = {k: torch.nn.Parameter(torch.randn(s) * 0.02 if len(s) == 2 else torch.ones(s)) for k, s in shapes.items()}
    names = list(P.keys())
    B, T = o["batch"], o["seq"]
    tables = rope_tables(T, HD, 10000.0)
    inp = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))
    opt = torch.optim.AdamW([{"params": [P[k] for k in names if not k.endswith("norm.weight")]},
                             {"params": [P[k] for k in names if k.endswith("norm.weight")], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=False)
    times = []
    for s in range(o["steps"] + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss, _ = forward(P, cfg, inp, tgt, tables)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(P.values(), 1.0)
        opt.step()
        if s:
            times.append(time.perf_counter() - t0)
    step = sum(times) / len(times)
    print("torch %s: V %d, C %d, L %d, NH %d, NKV %d, FF %d; batch %d x %d; %d threads" %
          (torch.__version__, V, C, L, NH, NKV, FF, B, T, torch.get_num_threads()))
    print("step: %.1f ms (best %.1f ms), %.0f tokens/s" % (1e3 * step, 1e3 * min(times), B * T / step))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "run":
        cmd_run(argv[1], argv[2])
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return cmd_compare(argv[1], argv[2])
    if argv and argv[0] == "bench":
        return cmd_bench(argv[1:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
