// common.mjs — locate the repo, the cache and the npm peers; load peer packages
// from <cache>/peers/node_modules (ESM resolves packages from the importing
// file's folder, so we go through createRequire rooted at the peers folder).
import {createRequire} from "node:module";
import {fileURLToPath, pathToFileURL} from "node:url";
import path from "node:path";
import fs from "node:fs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CACHE = process.env.YAN_CACHE || path.join(ROOT, ".cache");
export const PEERS = process.env.YAN_PEERS || path.join(CACHE, "peers");
export const peerRequire = createRequire(path.join(PEERS, "package.json"));
// node-llama-cpp lives in its own folder (`scripts/peers.sh llama`)
export const PEERS_LLAMA = process.env.YAN_PEERS_LLAMA || path.join(CACHE, "peers-llama");

// node-llama-cpp's module. It is ESM and is imported by absolute path, so the
// scripts can live in the repository while the package lives in the cache.
export async function importLlamaCpp() {
    const entry = path.join(PEERS_LLAMA, "node_modules", "node-llama-cpp", "dist", "index.js");
    if (!fs.existsSync(entry)) die(`node-llama-cpp is not installed in ${PEERS_LLAMA} (run scripts/peers.sh llama)`);
    return import(pathToFileURL(entry).href);
}

// Take "NAME VALUE" out of argv (an array, changed in place); def when absent.
export function takeOpt(argv, name, def) {
    const i = argv.indexOf(name);
    if (i < 0) return def;
    const v = argv[i + 1];
    argv.splice(i, 2);
    return v;
}

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
