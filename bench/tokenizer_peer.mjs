// tokenizer_peer.mjs VOCAB FILE... — time the real peer's encode of each whole
// FILE inside node (load time excluded; one warm-up, then the median of 3) and
// print "VOCAB FILE BYTES TOKENS MEDIAN_SECONDS MB_S" per file.
import {loadPeer} from "../tests/peers/peer_encode.mjs";
import {readText, die} from "../tests/peers/common.mjs";

const [vocab, ...files] = process.argv.slice(2);
if (!vocab || files.length === 0) die("usage: tokenizer_peer.mjs VOCAB FILE...");
const encode = await loadPeer(vocab);
for (const f of files) {
    const text = readText(f);
    const bytes = Buffer.byteLength(text, "utf8");
    let n = encode(text).length; // warm-up
    const times = [];
    for (let r = 0; r < 3; r++) {
        const t0 = process.hrtime.bigint();
        n = encode(text).length;
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    times.sort((a, b) => a - b);
    const med = times[1];
    console.log(`${vocab} ${f} ${bytes} ${n} ${med.toFixed(4)} ${(bytes / 1e6 / med).toFixed(2)}`);
}
