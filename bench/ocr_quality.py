"""OCR quality and speed on a labelled set this script renders itself.

    python bench/ocr_quality.py [--docs 112] [--blank 48] [--scenes 16] [--rounds 3] [--threads 2]
    python bench/ocr_quality.py --speed-only       # the speed table alone (16 documents built)

The set: --docs documents of four kinds (shop receipts, app screenshots, street signs, slides),
each rendered in one of seven fonts from Debian's font packages (fonts-dejavu-core,
fonts-liberation2, fonts-noto-core: DejaVu Sans and Serif, Liberation Sans, Serif and Mono,
Noto Sans and Serif), in nine variants: on a 1280x960 photo-like background clean (dark on
light), light on dark, rotated +10° and -10°, perspective-skewed, JPEG q50, blurred (Gaussian,
1.6 px) and low contrast; and small_in_scene, the document photographed small inside a 12 MP
scene (4032x3024, JPEG q90; it fills 18 % of the height, so a receipt's print is about 1/110 of
the long side, 6 pixels at the detector's 640-pixel probe). 112 documents give 1,008 photos.
Every photo also carries one made-up word found in no other photo, for the search figure.

Reported:
- per variant, the character error rate (Levenshtein distance over the truth's length, on the
  text in reading order, whitespace collapsed) and the word recall (the share of the truth's
  words, case-folded, found among the recognized words);
- `find --contains` recall@10: for each photo's unique word, is that photo among the top 10;
- photos/s and CPU seconds per photo (this process and its decode workers) through
  `Library.ocr` (decode workers + the engine, store writes included, engine load excluded) on
  --blank 12 MP photos without text (gradients, texture and blurred shapes, JPEG q90) and
  --scenes 12 MP photos with small text, for the detector's probe in the decode workers (now)
  and in the main process (before 2026-12-07), interleaved over --rounds rounds (medians); and
  once for RapidOCR's own detector limit (short side at least 736, no probe) on the blank ones.
  The load average is printed at the start and the end: on a shared machine, CPU s per photo
  is the steadier figure (2 cores / CPU s per photo bounds photos/s on 2 idle cores).

Photos are indexed with a stand-in encoder (no CLIP): OCR is all that is measured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from mcphotos.library import Library  # noqa: E402
from mcphotos.ocr.engine import OcrSettings  # noqa: E402
from mcphotos.ocr.runner import OcrOptions  # noqa: E402
from mcphotos.ocr.textstore import stored_texts  # noqa: E402
from mcphotos.search.query import FindSpec  # noqa: E402
from tests.support.fakes import SPEC, FakeEncoder  # noqa: E402

FONTS = {
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVu Serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "Liberation Sans": "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "Liberation Serif": "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "Liberation Mono": "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
    "Noto Sans": "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "Noto Serif": "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
}
VARIANTS = ("clean", "light_on_dark", "rotate+10", "rotate-10", "perspective", "jpeg_q50", "blur", "low_contrast",
            "small_in_scene")
SCENE = (4032, 3024)  # a 12 MP phone photo
SMALL_SHARE = 0.18  # small_in_scene: the document's height over the scene's (its width at most 0.35 of it)
KINDS = ("receipt", "screenshot", "sign", "slide")

WORDS = [
    "Café", "Müller", "Bäckerei", "total", "subtotal", "VAT", "cash", "card", "change", "receipt", "thank", "you",
    "visit", "again", "bread", "milk", "coffee", "butter", "cheese", "apples", "tomatoes", "invoice", "payment",
    "due", "date", "account", "settings", "profile", "search", "network", "password", "router", "platform", "exit",
    "station", "north", "south", "street", "avenue", "closed", "open", "daily", "roadmap", "quarter", "revenue",
    "growth", "team", "meeting", "agenda", "summary", "next", "steps", "customers", "product", "launch", "München",
    "Zürich", "Málaga", "Kraków", "Göteborg", "naïve", "crème", "brûlée", "façade", "résumé",
]
SYLLABLES = [
    "ka", "lo", "mi", "ru", "ve", "sa", "ne", "to", "bi", "da", "fu", "go", "ha", "ji", "ke", "ma", "no", "pe",
    "ri", "su", "ta", "vo", "wa", "ze",
]


def unique_word(i: int) -> str:
    """A made-up word of 3-4 syllables, distinct for each i (no real word collides with it)."""
    rng = random.Random(i)
    parts = [SYLLABLES[(i // 24 ** k) % 24] for k in range(3)] + [rng.choice(SYLLABLES)]
    return "".join(parts).capitalize()


def document(kind: str, rng: random.Random, marker: str) -> list[str]:
    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    if kind == "receipt":
        lines = [rng.choice(["Bäckerei Müller", "Café Central", "Markt Zürich"]), f"Bon {rng.randint(1000, 9999)}"]
        lines += [f"{rng.choice(WORDS)} {rng.randint(1, 19)}.{rng.randint(10, 99)}" for _ in range(5)]
        lines += [f"Total {rng.randint(20, 99)}.{rng.randint(10, 99)}", f"{marker} thank you"]
    elif kind == "screenshot":
        lines = [f"Settings {words(2)}", words(4), words(4), f"Network {marker}", words(3), words(4)]
    elif kind == "sign":
        lines = [rng.choice(["Platform", "Exit", "Station", "Avenue"]) + f" {rng.randint(1, 12)}", marker]
    else:
        lines = [f"Q{rng.randint(1, 4)} {words(2)}", f"- {words(4)}", f"- {words(3)} {marker}", f"- {words(4)}"]
    return lines


def paper_of(kind: str, lines: list[str], font_path: str) -> Image.Image:
    """Dark text on light paper (or a panel) at the kind's font size."""
    size = {"receipt": 30, "screenshot": 28, "sign": 64, "slide": 44}[kind]
    font = ImageFont.truetype(font_path, size)
    step = int(size * 1.45)
    width = int(max(font.getlength(line) for line in lines)) + 2 * size
    height = step * len(lines) + 2 * size
    paper_colour = {"receipt": (250, 248, 240), "screenshot": (245, 246, 250), "sign": (235, 240, 235),
                    "slide": (255, 255, 255)}[kind]
    paper = Image.new("RGB", (width, height), paper_colour)
    d = ImageDraw.Draw(paper)
    for i, line in enumerate(lines):
        d.text((size, size + i * step), line, font=font, fill=(20, 20, 30))
    return paper


def render(paper: Image.Image, rng: random.Random) -> Image.Image:
    """The paper centred on a 1280x960 photo-like background, filling most of it."""
    w, h = 1280, 960
    bg = background((w, h), rng)
    scale = min(1.0, 0.85 * w / paper.width, 0.85 * h / paper.height)
    if scale < 1.0:
        paper = paper.resize((int(paper.width * scale), int(paper.height * scale)), Image.Resampling.LANCZOS)
    bg.paste(paper, ((w - paper.width) // 2, (h - paper.height) // 2))
    return bg


def small_in_scene(paper: Image.Image, rng: random.Random) -> Image.Image:
    """The paper photographed small inside a large scene: a 12 MP photo where the document
    fills under a fifth of the height, at a random place (a receipt's print ends up about 1/110
    of the photo's long side, 6 pixels at the detector's 640-pixel probe)."""
    w, h = SCENE
    scale = min(SMALL_SHARE * h / paper.height, 0.35 * w / paper.width)
    paper = paper.resize((int(paper.width * scale), int(paper.height * scale)), Image.Resampling.LANCZOS)
    bg = background(SCENE, rng)
    bg.paste(paper, (rng.randint(0, w - paper.width), rng.randint(0, h - paper.height)))
    return bg


def background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A photo-like scene without text: a gradient, blurred shapes and sensor-like noise.

    Scenes over 2 MP are drawn and blurred at a quarter of the size and scaled up (the blur
    leaves nothing finer); the noise is added at full size.
    """
    w, h = size
    nrng = np.random.default_rng(rng.randint(0, 2**31))
    f = 4 if w * h > 2_000_000 else 1
    sw, sh = w // f, h // f
    top, bottom = nrng.uniform(40, 220, 3), nrng.uniform(40, 220, 3)
    t = np.linspace(0, 1, sh, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(top * (1 - t) + bottom * t, (sh, sw, 3)).copy()
    img = Image.fromarray(pixels.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rng.randint(0, sw), rng.randint(0, sh), rng.randint(sw // 20, sw // 4)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in nrng.integers(0, 255, 3)))
    img = img.filter(ImageFilter.GaussianBlur(sw / 60))
    if f > 1:
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    noisy = np.asarray(img, dtype=np.float32)
    noisy += nrng.standard_normal((h, w, 3), dtype=np.float32) * 6
    return Image.fromarray(np.clip(noisy, 0, 255, out=noisy).astype(np.uint8))


def variant(img: Image.Image, name: str) -> tuple[Image.Image, int]:
    """The variant and the JPEG quality to save it with (0: PNG)."""
    if name == "light_on_dark":
        return Image.eval(img, lambda v: 255 - v), 0
    if name.startswith("rotate"):
        angle = 10 if name.endswith("+10") else -10
        return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(90, 90, 90)), 0
    if name == "perspective":
        w, h = img.size
        # The top edge narrowed by 12 % on each side: a photo taken from below.
        coeffs = _perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)],
                                     [(0.12 * w, 0), (0.88 * w, 0), (w, h), (0, h)])
        return img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC), 0
    if name == "jpeg_q50":
        return img, 50
    if name == "blur":
        return img.filter(ImageFilter.GaussianBlur(1.6)), 0
    if name == "low_contrast":
        return Image.eval(img, lambda v: int(110 + v * 0.3)), 0
    return img, 0


def _perspective_coeffs(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> list[float]:
    """PIL's 8 coefficients mapping output points ``dst`` to input points ``src``."""
    a = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    b = np.array([c for pt in src for c in pt], dtype=np.float64)
    return list(np.linalg.solve(np.array(a, dtype=np.float64), b))


def blank_photo(path: Path, seed: int) -> None:
    background(SCENE, random.Random(seed)).save(path, quality=90)


# -- metrics -------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def words_of(text: str) -> list[str]:
    return [w for w in (re.sub(r"^\W+|\W+$", "", t).casefold() for t in text.split()) if w]


def word_recall(truth: str, got: str) -> float:
    want = words_of(truth)
    have: dict[str, int] = defaultdict(int)
    for w in words_of(got):
        have[w] += 1
    hit = 0
    for w in want:
        if have[w] > 0:
            have[w] -= 1
            hit += 1
    return hit / len(want) if want else 1.0


# -- the run -------------------------------------------------------------------------------------


def build_document(out: Path, i: int, fonts: list[tuple[str, str]]) -> dict[str, tuple[str, str, str]]:
    """Write document ``i`` in every variant; returns path -> (variant, truth text, unique word)."""
    truth: dict[str, tuple[str, str, str]] = {}
    rng = random.Random(i)
    kind = KINDS[i % len(KINDS)]
    font_name, font_path = fonts[i % len(fonts)]
    for k, v in enumerate(VARIANTS):
        marker = unique_word(i * len(VARIANTS) + k)
        lines = document(kind, random.Random(i * 31 + 7), marker)
        paper = paper_of(kind, lines, font_path)
        if v == "small_in_scene":
            img, quality = small_in_scene(paper, rng), 90
        else:
            img, quality = variant(render(paper, rng), v)
        name = f"{i:04d}-{kind}-{font_name.replace(' ', '')}-{v}"
        path = out / (name + (".jpg" if quality else ".png"))
        if quality:
            img.save(path, quality=quality)
        else:
            img.save(path, compress_level=1)  # PNG's default level costs a second per noisy photo
        truth[str(path)] = (v, "\n".join(lines), marker)
    return truth


def build(out: Path, docs: int, blanks: Path, n_blank: int) -> dict[str, tuple[str, str, str]]:
    """Write the text photos and the blank ones, on every core; returns path -> (variant, truth
    text, unique word) for the text photos."""
    fonts = [(name, path) for name, path in FONTS.items() if os.path.isfile(path)]
    missing = sorted(set(FONTS) - {n for n, _ in fonts})
    if missing:
        print(f"fonts missing (apt-get install fonts-dejavu-core fonts-liberation2 fonts-noto-core): {missing}")
    truth: dict[str, tuple[str, str, str]] = {}
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
        blank_jobs = [pool.submit(blank_photo, blanks / f"blank-{i:03d}.jpg", 10_000 + i) for i in range(n_blank)]
        for part in pool.map(build_document, [out] * docs, range(docs), [fonts] * docs):
            truth.update(part)
        for job in blank_jobs:
            job.result()
    return truth


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the decode workers, once closed)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed_ocr(home: Path, folder: Path, settings: OcrSettings, options: OcrOptions | None = None
              ) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, photos read) of one `Library.ocr` pass over ``folder``,
    indexed first if it is not (engine load excluded: it is built before the clock starts)."""
    encoder = FakeEncoder()
    with Library(home=home, engine_factory=lambda: encoder, preprocess=SPEC) as lib:
        if not (home / "done-indexing").exists():
            lib.index([str(folder)])
            (home / "done-indexing").touch()
        lib.ocr_engine(settings)
        c0, t0 = cpu_seconds(), time.perf_counter()
        report = lib.ocr([str(folder)], options=options, settings=settings)
        return time.perf_counter() - t0, cpu_seconds() - c0, report.read


def speed(tmp: Path, folders: dict[str, Path], configs: dict[str, tuple[OcrSettings, OcrOptions]],
          rounds: int) -> None:
    """photos/s and CPU seconds per photo of each configuration on each folder, the
    configurations interleaved (their order alternates from round to round); medians."""
    runs: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    for r in range(rounds):
        order = list(configs) if r % 2 == 0 else list(configs)[::-1]
        for folder_name, folder in folders.items():
            for label in order:
                settings, options = configs[label]
                home = tmp / f"home-speed-{folder_name}"
                runs[(folder_name, label)].append(timed_ocr(home, folder, settings, options))
    print(f"\n| photos | configuration | photos | photos/s (median of {rounds}) | CPU s per photo |"
          "\n|---|---|---:|---:|---:|")
    for (folder_name, label), got in runs.items():
        rate = statistics.median(n / wall for wall, _, n in got)
        cpu = statistics.median(c / n for _, c, n in got)
        print(f"| {folder_name} | {label} | {got[0][2]} | {rate:.2f} | {cpu:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=112, help="documents (x9 variants = photos)")
    ap.add_argument("--blank", type=int, default=48, help="12 MP photos without text, for the speed figure")
    ap.add_argument("--scenes", type=int, default=16, help="12 MP photos with text (small_in_scene) timed")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds (medians)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (and decode workers)")
    ap.add_argument("--speed-only", action="store_true", help="skip the quality and search figures")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    tmp = args.out or Path(tempfile.mkdtemp(prefix="ocr-bench-"))
    texts, blanks, scenes = tmp / "text", tmp / "blank", tmp / "scenes"
    for d in (texts, blanks, scenes):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    for home in tmp.glob("home*"):
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} "
          f"on {os.cpu_count()} cores")
    t0 = time.perf_counter()
    docs = args.docs if not args.speed_only else args.scenes  # one small_in_scene photo each
    truth = build(texts, docs, blanks, args.blank)
    for path in [p for p, (v, _, _) in truth.items() if v == "small_in_scene"][:args.scenes]:
        shutil.copy2(path, scenes / Path(path).name)
    print(f"built {len(truth)} text photos and {args.blank} blank 12 MP photos in {time.perf_counter() - t0:.0f}s "
          f"under {tmp}")
    ours = OcrSettings(threads=args.threads)
    workers = OcrOptions(workers=args.threads, force=True, probe_in_workers=True)

    if not args.speed_only:
        quality(tmp / "home", texts, truth, ours, OcrOptions(workers=args.threads, probe_in_workers=True))

    # Speed, 12 MP photos: the probe in the decode workers (now) against the probe in the main
    # process (mcphotos before 2026-12-07), interleaved; then RapidOCR's defaults once.
    speed(tmp, {"12 MP, no text": blanks, "12 MP, small text": scenes},
          {"probe in the decode workers": (ours, workers),
           "probe in the main process": (ours, OcrOptions(workers=args.threads, force=True, probe_in_workers=False))},
          args.rounds)
    default = OcrSettings(threads=args.threads, det_side=736, det_limit="min", probe_side=0)
    wall, cpu, read = timed_ocr(tmp / "home-speed-12 MP, no text", blanks, default, workers)
    print(f"| 12 MP, no text | RapidOCR's defaults (short side >= 736, no probe), once | {read} | "
          f"{read / wall:.2f} | {cpu / read:.3f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} at the end")


def quality(home: Path, texts: Path, truth: dict[str, tuple[str, str, str]], settings: OcrSettings,
            options: OcrOptions) -> None:
    """CER and word recall per variant, and `find --contains` recall@10 for each photo's unique word."""
    wall, _, read = timed_ocr(home, texts, settings, options)
    print(f"text photos: {read} read in {wall:.1f}s = {read / wall:.2f} photos/s "
          f"(1280x960, and 12 MP for small_in_scene)")
    encoder = FakeEncoder()
    with Library(home=home, engine_factory=lambda: encoder, preprocess=SPEC) as lib:
        store = lib.store()
        per: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for path, (v, text, _) in truth.items():
            rec = store.get_file(path)
            assert rec is not None and rec.hash
            got = stored_texts(store, [rec.hash])[rec.hash].result.text
            t, g = normalize(text), normalize(got)
            per[v].append((levenshtein(t, g) / max(1, len(t)), word_recall(text, got)))
        print("\n| variant | photos | CER | word recall |\n|---|---:|---:|---:|")
        degraded: list[float] = []
        for v in VARIANTS:
            cer = float(np.mean([c for c, _ in per[v]]))
            rec_ = float(np.mean([r for _, r in per[v]]))
            if v != "clean":
                degraded += [r for _, r in per[v]]
            print(f"| {v} | {len(per[v])} | {cer:.3f} | {rec_:.3f} |")
        print(f"| all degraded | {len(degraded)} | | {float(np.mean(degraded)):.3f} |")
        hits = 0
        t1 = time.perf_counter()
        for path, (_, _, marker) in truth.items():
            top = lib.run_find(FindSpec(contains=(marker.lower(),), k=10))
            hits += any(h.path == path for h in top)
        per_query = (time.perf_counter() - t1) / len(truth)
        print(f"\nfind --contains recall@10 over {len(truth)} photos, one unique word each: "
              f"{hits / len(truth):.3f} ({per_query * 1000:.1f} ms per query)", flush=True)


if __name__ == "__main__":
    main()
