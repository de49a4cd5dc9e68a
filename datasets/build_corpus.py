#!/usr/bin/python3
"""Build moescope's multi-domain text corpus from files that Debian packages install.

Usage (as root, or with the packages already installed):
    /usr/bin/python3 datasets/build_corpus.py [--out datasets/corpus] [--no-install]
        [--train-cap 5000000] [--eval-cap 250000]

Steps:
 1. apt-get install --no-install-recommends every package of datasets/packages.txt that is not
    installed yet (skipped with --no-install; missing packages are then an error).
 2. For each domain, read the files of its sources (file lists come from `dpkg -L <package>`, so they
    do not depend on what else is installed; the legal domain is the exception, see below), clean the
    text and cut it into documents of at most 8 KB at paragraph boundaries (target 4 KB).
 3. Split documents into train and held-out eval by document: a document is eval when
    sha256("split:" + id) mod 20 == 0 (5 %).
 4. Cap each domain (default 5,000,000 bytes of train text and 250,000 bytes of eval text,
    counted as UTF-8 bytes of "text") so that domains are balanced. Within a domain the cap is shared
    between sources by water-filling (every source gets an equal share; shares a source cannot use
    go to the others). Inside a source, documents are taken in order of sha256("select:" + id)
    until its share is used up; a document that would overshoot is skipped.
 5. Write <out>/train/<domain>.jsonl and <out>/eval/<domain>.jsonl (one JSON object per line:
    id, domain, source, license, text; documents in id order), and <out>/manifest.json.

Deterministic: same installed package versions -> byte-identical output. The legal domain reads
/usr/share/doc/*/copyright of *every* installed package (plus /usr/share/common-licenses), so it
changes when the set of installed packages changes; the manifest records which files were used.
"""

import argparse
import gzip
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES_TXT = os.path.join(HERE, "packages.txt")

TARGET_DOC = 4096   # close a document once it reaches this many characters
MAX_DOC = 8192      # never exceed this (long paragraphs are cut at line ends, then hard)
MIN_DOC = 64        # drop documents shorter than this
EVAL_MODULUS = 20   # 1 in 20 documents is held out


# ---------------------------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------------------------


def read_package_list(path=PACKAGES_TXT):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def package_status(names):
    """{name: version or None when not installed}."""
    out = {}
    for name in names:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", name],
                           capture_output=True, text=True)
        status, _, version = r.stdout.partition("\t")
        out[name] = version if r.returncode == 0 and status.endswith(" installed") else None
    return out


def ensure_installed(names, install):
    status = package_status(names)
    missing = [n for n, v in status.items() if v is None]
    if missing and not install:
        sys.exit(f"not installed: {' '.join(missing)} (run without --no-install, as root)")
    if missing:
        print(f"apt-get install {len(missing)} packages: {' '.join(missing)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing,
                       check=True, env=env)
        status = package_status(names)
        still = [n for n, v in status.items() if v is None]
        if still:
            sys.exit(f"still not installed: {' '.join(still)}")
    return status


_dpkg_cache = {}


def dpkg_files(package):
    """Regular files (no symlinks, no directories) that a package installs, sorted."""
    if package not in _dpkg_cache:
        r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
        files = [p for p in r.stdout.splitlines()
                 if p.startswith("/") and os.path.isfile(p) and not os.path.islink(p)]
        _dpkg_cache[package] = sorted(set(files))
    return _dpkg_cache[package]


def version_of(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


# ---------------------------------------------------------------------------------------------
# text helpers
# ---------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_text(path):
    """File text (gunzipped for .gz), UTF-8 or else Latin-1, with \\r\\n -> \\n and control
    characters other than tab/newline removed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    return clean(raw)


def clean(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return _CONTROL.sub("", text)


def paragraphs(text):
    """Split at blank lines; keep paragraphs' own line structure."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def _split_long(unit, limit):
    """Cut a unit longer than limit at line ends, then hard."""
    pieces, cur = [], ""
    for line in unit.split("\n"):
        while len(line) > limit:
            if cur:
                pieces.append(cur)
                cur = ""
            pieces.append(line[:limit])
            line = line[limit:]
        if cur and len(cur) + 1 + len(line) > limit:
            pieces.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    if cur:
        pieces.append(cur)
    return pieces


def chunk(units, joiner="\n\n", target=TARGET_DOC, limit=MAX_DOC):
    """Group consecutive units (paragraphs, entries, fortunes) into documents of about target
    characters and never more than limit."""
    docs, cur = [], []
    size = 0
    for unit in units:
        for piece in (_split_long(unit, limit) if len(unit) > limit else [unit]):
            add = len(piece) + (len(joiner) if cur else 0)
            if cur and size + add > limit:
                docs.append(joiner.join(cur))
                cur, size = [], 0
                add = len(piece)
            cur.append(piece)
            size += add
            if size >= target:
                docs.append(joiner.join(cur))
                cur, size = [], 0
    if cur:
        docs.append(joiner.join(cur))
    return [d for d in docs if len(d.strip()) >= MIN_DOC]


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page; block elements become line breaks."""

    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table",
             "dt", "dd", "ul", "ol", "dl", "blockquote", "section", "title"}
    SKIP = {"script", "style", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip, self.pre = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self.parts.append("\n\n" if tag not in ("br", "li", "tr", "dt", "dd") else "\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.skip:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(text):
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    out = "".join(parser.parts)
    out = re.sub(r"[ \t]+\n", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def strip_roff_comments(text):
    """Drop roff comment lines (mostly repeated copyright headers)."""
    return "\n".join(l for l in text.split("\n")
                     if not (l.startswith('.\\"') or l.startswith("'\\\"") or l.startswith('.\\#')))


# ---------------------------------------------------------------------------------------------
# extractors: each yields (source_key, relative file name, [document texts])
# ---------------------------------------------------------------------------------------------


def files_of(packages, pattern, exclude=None):
    rx, ex = re.compile(pattern), re.compile(exclude) if exclude else None
    out = []
    for p in packages:
        out += [f for f in dpkg_files(p) if rx.search(f) and not (ex and ex.search(f))]
    return sorted(set(out))


def plain_files(packages, pattern, exclude=None, transform=None):
    def gen():
        for path in files_of(packages, pattern, exclude):
            text = read_text(path)
            if transform:
                text = transform(text)
            yield path, chunk(paragraphs(text))
    return gen


def html_files(packages, pattern):
    def gen():
        for path in files_of(packages, pattern):
            yield path, chunk(paragraphs(html_to_text(read_text(path))))
    return gen


_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64num(s):
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def dictd(name):
    """Entries of /usr/share/dictd/<name>.dict.dz in file order (from the .index), grouped into
    documents; the 00-database-* meta entries are skipped."""
    def gen():
        index = f"/usr/share/dictd/{name}.index"
        path = f"/usr/share/dictd/{name}.dict.dz"
        spans = set()
        with open(index, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 3 or fields[0].startswith("00-database") or fields[0].startswith("00database"):
                    continue
                spans.add((_b64num(fields[1]), _b64num(fields[2])))
        with gzip.open(path, "rb") as f:
            raw = f.read()
        entries, end = [], -1
        for off, length in sorted(spans):
            if off < end:  # nested/duplicate span (same entry under several headwords)
                continue
            entries.append(clean(raw[off:off + length]).strip("\n"))
            end = off + length
        yield path, chunk([e for e in entries if e.strip()])
    return gen


_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TAG = re.compile(r"<[^>]*>")


def sword_bible(module, title_note=""):
    """One document per chapter of a SWORD Bible module (exported with mod2imp), OSIS tags and
    footnotes removed. Module keys are English book names ('Genesis 1:1')."""
    def gen():
        r = subprocess.run(["mod2imp", module], capture_output=True, check=True)
        text = clean(r.stdout)
        chapters = {}
        order = []
        key = None
        for line in text.split("\n"):
            if line.startswith("$$$"):
                key = line[3:].strip()
                continue
            if key is None:
                continue
            m = re.match(r"^(.+?) (\d+):(\d+)$", key)
            if not m or m.group(2) == "0" or m.group(3) == "0":
                continue
            verse = _TAG.sub("", _NOTE.sub("", line))
            verse = re.sub(r"\s+", " ", verse).strip()
            if not verse:
                continue
            chap = f"{m.group(1)} {m.group(2)}"
            if chap not in chapters:
                chapters[chap] = []
                order.append(chap)
            chapters[chap].append(f"{m.group(3)} {verse}")
        for chap in order:
            body = "\n".join(chapters[chap])
            docs = chunk([f"{chap}\n\n{body}"] if len(body) < MAX_DOC else [chap] + chapters[chap], joiner="\n")
            yield f"sword:{module}/{chap}", docs
    return gen


def fortunes(package, skip=r"(ascii-?art)$"):
    def gen():
        rx = re.compile(skip)
        for path in files_of([package], r"^/usr/share/games/fortunes/"):
            if path.endswith(".dat") or rx.search(path):
                continue
            items = [t.strip("\n") for t in re.split(r"^%$", read_text(path), flags=re.M)]
            yield path, chunk([t for t in items if t.strip()], joiner="\n%\n")
    return gen


def copyright_files():
    """/usr/share/common-licenses/* and /usr/share/doc/<pkg>/copyright of every installed package
    (package-name order), with paragraphs already seen in an earlier file removed."""
    def gen():
        paths = sorted(os.path.join("/usr/share/common-licenses", n) for n in os.listdir("/usr/share/common-licenses"))
        paths = [p for p in paths if os.path.isfile(p) and not os.path.islink(p)]
        docs = sorted(os.listdir("/usr/share/doc"))
        paths += [p for p in (f"/usr/share/doc/{d}/copyright" for d in docs)
                  if os.path.isfile(p) and not os.path.islink(p)]
        seen = set()
        for path in paths:
            keep = []
            for para in paragraphs(read_text(path)):
                key = hashlib.sha1(" ".join(para.split()).lower().encode()).digest()
                if key in seen:
                    continue
                seen.add(key)
                keep.append(para)
            if keep:
                yield path, chunk(keep)
    return gen


# ---------------------------------------------------------------------------------------------
# domains
# ---------------------------------------------------------------------------------------------

PY_EXCLUDE = r"/(test|tests|idle_test|lib2to3/tests)/|/site-packages/|/dist-packages/"

# domain -> list of (source name, packages (for versions), license, extractor)
SOURCES = {
    "code": [
        ("glibc-headers", ["libc6-dev"], "LGPL-2.1+ (GNU C Library)",
         plain_files(["libc6-dev"], r"^/usr/include/.*\.h$")),
        ("libstdcxx-headers", ["libstdc++-12-dev"], "GPL-3+ with GCC Runtime Library Exception 3.1",
         plain_files(["libstdc++-12-dev"], r"^/usr/include/c\+\+/12/", r"\.gch$")),
        ("python-stdlib", ["libpython3.11-stdlib", "libpython3.11-minimal"], "PSF-2.0",
         plain_files(["libpython3.11-stdlib", "libpython3.11-minimal"], r"^/usr/lib/python3\.11/.*\.py$",
                     PY_EXCLUDE)),
    ],
    "encyclopedic": [
        ("gcide", ["dict-gcide"], "GPL-3+ (GCIDE, based on Webster's 1913, public domain)", dictd("gcide")),
        ("wordnet", ["dict-wn"], "WordNet 3.0 license (BSD-like)", dictd("wn")),
        ("foldoc", ["dict-foldoc"], "GFDL-1.1+ (FOLDOC)", dictd("foldoc")),
        ("jargon", ["dict-jargon"], "public domain (Jargon File 4.4.7)", dictd("jargon")),
    ],
    "books": [
        ("bible-web", ["sword-text-web", "libsword-utils"], "public domain (World English Bible)",
         sword_bible("engWEB2015eb")),
        ("bible-kjv", ["sword-text-kjv", "libsword-utils"], "public domain (King James Version text)",
         sword_bible("engKJV2006eb")),
        ("fortunes-en", ["fortunes"], "BSD-3-clause (fortune-mod data; quotations)", fortunes("fortunes")),
        ("devils-dictionary", ["dict-devil"], "public domain (Ambrose Bierce, The Devil's Dictionary)",
         dictd("devil")),
    ],
    "math": [
        ("pari-doc-tex", ["pari-doc"], "GPL-2+ (PARI/GP documentation)",
         plain_files(["pari-doc"], r"\.tex(\.gz)?$", r"(macs|macro|paricfg)\.tex")),
        ("texlive-science-doc-tex", ["texlive-science-doc"], "LPPL / GPL / various (TeX Live package docs)",
         plain_files(["texlive-science-doc"], r"\.(tex|ltx|dtx)(\.gz)?$")),
    ],
    "techdocs": [
        ("python-docs-rst", ["python3.11-doc"], "PSF-2.0",
         plain_files(["python3.11-doc"], r"/_sources/.*\.rst\.txt$")),
        ("perl-pod", ["perl-doc"], "GPL-1+ or Artistic",
         plain_files(["perl-doc"], r"/pod/.*\.pod$")),
        ("manpages-en", ["manpages", "manpages-dev"], "Linux man-pages licenses (verbatim / GPL-2+ / BSD)",
         plain_files(["manpages", "manpages-dev"], r"^/usr/share/man/man\d/.*\.gz$", transform=strip_roff_comments)),
        ("postgresql-docs", ["postgresql-doc-15"], "PostgreSQL license (BSD-like)",
         html_files(["postgresql-doc-15"], r"/html/.*\.html$")),
    ],
    "legal": [
        ("copyright-files", [], "the license texts themselves (each file's own license)", copyright_files()),
    ],
    "multilingual": [
        ("manpages-de", ["manpages-de"], "GPL-3+ (translations)",
         plain_files(["manpages-de"], r"^/usr/share/man/de/.*\.gz$", transform=strip_roff_comments)),
        ("manpages-fr", ["manpages-fr"], "GPL-3+ (translations)",
         plain_files(["manpages-fr"], r"^/usr/share/man/fr/.*\.gz$", transform=strip_roff_comments)),
        ("manpages-es", ["manpages-es"], "GPL-3+ (translations)",
         plain_files(["manpages-es"], r"^/usr/share/man/es/.*\.gz$", transform=strip_roff_comments)),
        ("fortunes-de", ["fortunes-de"], "GPL-2+", fortunes("fortunes-de")),
        ("fortunes-es", ["fortunes-es"], "GPL-2+", fortunes("fortunes-es")),
        ("bible-es-rv1909", ["sword-text-sparv", "libsword-utils"], "public domain (Reina-Valera 1909)",
         sword_bible("spaRV1909eb")),
    ],
}


# ---------------------------------------------------------------------------------------------
# split, cap, write
# ---------------------------------------------------------------------------------------------


def hkey(prefix, doc_id):
    return hashlib.sha256((prefix + doc_id).encode("utf-8")).digest()


def is_eval(doc_id):
    return int.from_bytes(hkey("split:", doc_id)[:8], "big") % EVAL_MODULUS == 0


def waterfill(available, cap):
    """Share cap between sources with these available sizes: equal shares, unused share moves on."""
    shares = {k: 0 for k in available}
    left = dict(available)
    budget = cap
    while left and budget > 0:
        each = budget / len(left)
        small = {k: v for k, v in left.items() if v <= each}
        if not small:
            for k in left:
                shares[k] += each
            break
        for k, v in small.items():
            shares[k] += v
            budget -= v
            del left[k]
    return {k: int(v) for k, v in shares.items()}


def select(docs, cap):
    """docs: list of (id, text, ...); take in select-hash order until cap bytes; return in id order."""
    by_source = {}
    for d in docs:
        by_source.setdefault(d["source_name"], []).append(d)
    sizes = {s: sum(d["bytes"] for d in v) for s, v in by_source.items()}
    shares = waterfill(sizes, cap)
    chosen = []
    for s, items in sorted(by_source.items()):
        used = 0
        for d in sorted(items, key=lambda d: hkey("select:", d["id"])):
            if used + d["bytes"] > shares[s]:
                continue
            chosen.append(d)
            used += d["bytes"]
    return sorted(chosen, key=lambda d: d["id"])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_domain(domain, sources, out_dir, train_cap, eval_cap):
    t0 = time.time()
    docs = []
    available = {}
    for name, _packages, license_, extractor in sources:
        n_files = 0
        for path, texts in extractor():
            n_files += 1
            rel = path.lstrip("/")
            for i, text in enumerate(texts):
                doc_id = f"{domain}/{name}/{rel}#{i}"
                docs.append({"id": doc_id, "domain": domain, "source": rel, "license": license_,
                             "text": text, "source_name": name, "bytes": len(text.encode("utf-8"))})
        available[name] = {"files": n_files}
    train = [d for d in docs if not is_eval(d["id"])]
    held = [d for d in docs if is_eval(d["id"])]
    for name in available:
        available[name]["documents"] = sum(1 for d in docs if d["source_name"] == name)
        available[name]["bytes"] = sum(d["bytes"] for d in docs if d["source_name"] == name)
    split_out = {}
    for split, items, cap in (("train", train, train_cap), ("eval", held, eval_cap)):
        chosen = select(items, cap)
        path = os.path.join(out_dir, split, f"{domain}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for d in chosen:
                rec = {k: d[k] for k in ("id", "domain", "source", "license", "text")}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        per_source = {}
        for d in chosen:
            s = per_source.setdefault(d["source_name"], {"documents": 0, "bytes": 0, "files": set()})
            s["documents"] += 1
            s["bytes"] += d["bytes"]
            s["files"].add(d["source"])
        split_out[split] = {
            "file": os.path.relpath(path, out_dir),
            "documents": len(chosen),
            "bytes": sum(d["bytes"] for d in chosen),
            "sha256": sha256_file(path),
            "per_source": {k: {"documents": v["documents"], "bytes": v["bytes"], "files": len(v["files"])}
                           for k, v in sorted(per_source.items())},
            "files": sorted({d["source"] for d in chosen}),
        }
    info = {
        "sources": [],
        "train": split_out["train"],
        "eval": split_out["eval"],
    }
    for name, packages, license_, _ in sources:
        info["sources"].append({
            "name": name,
            "packages": {p: version_of(p) for p in packages},
            "license": license_,
            "available": available[name],
        })
    if domain == "legal":
        info["sources"][0]["note"] = ("/usr/share/common-licenses and /usr/share/doc/*/copyright of all "
                                      "installed packages; paragraphs seen earlier removed")
    return info, time.time() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "corpus"))
    parser.add_argument("--no-install", action="store_true", help="do not run apt-get")
    parser.add_argument("--train-cap", type=int, default=5_000_000, help="train bytes per domain")
    parser.add_argument("--eval-cap", type=int, default=250_000, help="eval bytes per domain")
    parser.add_argument("--domains", nargs="*", default=list(SOURCES), help="subset of domains")
    args = parser.parse_args()
    t0 = time.time()
    names = read_package_list()
    status = ensure_installed(names, not args.no_install)
    t_install = time.time() - t0
    for split in ("train", "eval"):
        os.makedirs(os.path.join(args.out, split), exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {"domains": {}}
    if os.path.exists(manifest_path) and set(args.domains) != set(SOURCES):
        with open(manifest_path) as f:
            manifest = json.load(f)
    for domain in args.domains:
        info, seconds = build_domain(domain, SOURCES[domain], args.out, args.train_cap, args.eval_cap)
        manifest["domains"][domain] = info
        print(f"{domain:14s} train {info['train']['documents']:6d} docs {info['train']['bytes'] / 1e6:6.2f} MB"
              f"   eval {info['eval']['documents']:5d} docs {info['eval']['bytes'] / 1e6:5.2f} MB"
              f"   ({seconds:.0f} s)", flush=True)
    manifest.update({
        "builder": "datasets/build_corpus.py",
        "packages": {n: status[n] for n in names},
        "train_cap_bytes": args.train_cap,
        "eval_cap_bytes": args.eval_cap,
        "eval_rule": f"sha256('split:' + id) mod {EVAL_MODULUS} == 0",
        "document_chars": {"target": TARGET_DOC, "max": MAX_DOC, "min": MIN_DOC},
    })
    manifest["domains"] = {k: manifest["domains"][k] for k in sorted(manifest["domains"])}
    with open(manifest_path, "w") as f:
        f.write(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"install/check {t_install:.0f} s, total {time.time() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
