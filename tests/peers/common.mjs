// common.mjs — locate the repo, the cache and the npm peers; load peer packages
// from <cache>/peers/node_modules (ESM resolves packages from the importing
// file's folder, so we go through createRequire rooted at the peers folder).
import {createRequire} from "node:module";
import {fileURLToPath} from "node:url";
import path from "node:path";
import fs from "node:fs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CACHE = process.env.YAN_CACHE || path.join(ROOT, ".cache");
export const PEERS = process.env.YAN_PEERS || path.join(CACHE, "peers");
export const peerRequire = createRequire(path.join(PEERS, "package.json"));

export function peerVersion(name) {
    return JSON.parse(fs.readFileSync(path.join(PEERS, "node_modules", name, "package.json"), "utf8")).version;
}

export function die(msg) {
    process.stderr.write(`${path.basename(process.argv[1])}: ${msg}\n`);
    process.exit(1);
}

// Read a file as UTF-8 text; refuse invalid UTF-8 (the peers would silently
// replace it with U+FFFD and the comparison would be meaningless).
export function readText(file) {
    const buf = fs.readFileSync(file);
    try {
        return new TextDecoder("utf-8", {fatal: true, ignoreBOM: true}).decode(buf);
    } catch {
        die(`${file}: not valid UTF-8`);
    }
}
