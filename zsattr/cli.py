"""Command line: `zsattr reproduce`, `zsattr evaluate`, `zsattr presets`, `zsattr train-extractor`,
`zsattr compare-runs`, `zsattr scan`, `zsattr cache list|verify|clean`; the attribution tool:
`zsattr extractor export|show`, `zsattr gallery create|add|remove|list|show`, `zsattr identify`,
`zsattr verify`, `zsattr info`.

Exit codes: 0 done (for `verify`: the same model); 1 `verify` found different models, or a run
or comparison failed; 2 bad input (arguments, files, a gallery or extractor that cannot be used),
with one line on stderr that says what is wrong.

The one module whose project imports are not all at its head: a command imports its stage when
it runs, so `zsattr --help`, `zsattr presets` and argument errors answer in a tenth of a second
instead of after loading torch, papermill and every stage (about 4 s, measured).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from .core.config import DEVICE, PRESETS, SPACES, ConfigError, flat_values, keys, one_of, resolve
from .core.paths import DataDirError


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .report.chain import run_chain  # papermill and jupyter: only when the chain runs

    def show(result) -> None:
        print(f"{result.notebook:<28} {result.status:<7} {result.seconds:>9.1f} s", flush=True)
        if result.status != "ok":
            print(f"  {result.error.splitlines()[0] if result.error else ''}\n"
                  f"  partial executed notebook kept at {result.output}", file=sys.stderr)

    try:
        results = run_chain(args.preset, only=args.only, start=getattr(args, "from"), on_result=show)
    except (ValueError, FileNotFoundError) as exc:
        print(f"zsattr reproduce: {exc}", file=sys.stderr)
        return 2
    total = sum(r.seconds for r in results)
    print(f"{'total':<28} {'':<7} {total:>9.1f} s  (reports/{args.preset}/timings.json)")
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Notebook 05's whole evaluation on a folder of generated images (one sub-folder per model),
    beside the zoo unless --without-zoo; outputs under reports/<preset>/folders/<name>/."""
    from .experiments.zero_shot import folder_reports
    from .images.folders import scan_image_folder
    from .report.chain import run_chain

    cfg = resolve(args.preset)
    try:  # check the folder before the chain spends minutes on it
        folder = scan_image_folder(args.folder, min_size=cfg.image_size)
    except (OSError, ValueError) as exc:
        print(f"zsattr evaluate: {exc}", file=sys.stderr)
        return 2
    needed = cfg.evaluation.k + 1
    short = {name: len(paths) for name, paths in folder.sources.items() if len(paths) < needed}
    if short:
        print(f"zsattr evaluate: the {args.preset} preset needs at least {needed} readable images per model "
              f"(a gallery of evaluation.k plus a query); too few in {short}", file=sys.stderr)
        return 2
    out_dir = folder_reports(args.preset, folder.root)
    print(f"{len(folder.sources)} models, {len(folder)} images, {sum(folder.skipped.values())} skipped "
          f"{dict(folder.skipped)}; results go to {out_dir}", flush=True)
    results = run_chain(args.preset, only=["05"], out_dir=out_dir,
                        parameters={"images": str(folder.root.resolve()), "with_zoo": not args.without_zoo})
    for r in results:
        print(f"{r.notebook:<28} {r.status:<7} {r.seconds:>9.1f} s  {r.output}")
        if r.status != "ok":
            print(f"  {r.error.splitlines()[0] if r.error else ''}", file=sys.stderr)
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_presets(args: argparse.Namespace) -> int:
    values = {name: flat_values(resolve(name)) for name in PRESETS}
    if args.markdown:  # the README's preset table is this output (a test compares them)
        print("| key | " + " | ".join(values) + " |")
        print("|---|" + "---|" * len(values))
        for key in keys():
            print(f"| `{key}` | " + " | ".join(f"{v[key]}" for v in values.values()) + " |")
        return 0
    print(f"{'key':<34}" + "".join(f"{p:>14}" for p in values))
    for key in keys():
        print(f"{key:<34}" + "".join(f"{str(v[key]):>14}" for v in values.values()))
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .images.folders import scan_image_folder

    try:
        folder = scan_image_folder(args.folder, min_size=args.min_size)
    except (OSError, ValueError) as exc:
        print(f"zsattr scan: {exc}", file=sys.stderr)
        return 2
    print(folder.summary())  # per model: images, lossy files, skips by reason; then the totals
    return 0


def _cmd_compare_runs(args: argparse.Namespace) -> int:
    """Exit 0 when every result with a stated spread lands inside it, 1 when one does not."""
    import pandas as pd

    from .report.rerun import compare, verdict_counts

    try:
        table = compare(args.reference, args.rerun)
    except (OSError, ValueError) as exc:
        print(f"zsattr compare-runs: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    counts = verdict_counts(table)
    print(f"\n{counts}")
    return 1 if counts.get("outside") else 0


def _parse_overrides(pairs: list[str]) -> dict:
    """`key=value` strings -> config overrides (keys as in `zsattr presets`: `seed`,
    `bank.steps`, ...); values are JSON where they parse ("4", "true", "0.5", '["a","b"]'),
    plain strings otherwise; the config turns lists into tuples."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = parsed
    return out


def _checked_config(preset: str, overrides: dict):
    """The preset with `overrides` applied and checked (ConfigError), including what the config
    alone cannot check: that a folder setting names a folder, and that torch can use `device`."""
    cfg = resolve(preset, **overrides)
    folder = cfg.photos.real_image_dir
    if folder is not None and not Path(folder).expanduser().is_dir():
        raise ConfigError(f"photos.real_image_dir must be an existing folder, got {folder!r}")
    _check_device(cfg.device)
    return cfg


def _check_device(device: str) -> None:
    """A ConfigError unless torch can use `device` on this machine (`auto` always can)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: no CUDA device on this machine; use auto or cpu")
        if index and int(index) >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA device(s), "
                              f"cuda:0..cuda:{count - 1}")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps': Apple MPS is not available on this machine; use auto or cpu")


def _cmd_train_extractor(args: argparse.Namespace) -> int:
    """Also the entry point under `torchrun --nproc_per_node N` (one process per GPU/CPU slot)."""
    try:  # --space and --steps are checked by the parser
        cfg = _checked_config(args.preset, _parse_overrides(args.set))
        if args.training_seed < 0:
            raise ValueError(f"--training-seed must be >= 0, got {args.training_seed}")
    except (KeyError, TypeError, ValueError) as exc:
        print(f"zsattr train-extractor: {exc}", file=sys.stderr)
        return 2
    from .core.device import resolve_device  # the stage (torch and all): only once the arguments are checked
    from .core.distributed import init_from_env, shutdown
    from .extractor.stage import train_extractor

    info = init_from_env(resolve_device(cfg.device))
    try:
        trained = train_extractor(cfg.replace(device=info.device), space=args.space, steps=args.steps,
                                  rank=info.rank, world_size=info.world_size, training_seed=args.training_seed)
    finally:
        shutdown(info)
    if info.rank == 0:
        print(json.dumps({**trained.summary, "artefact": str(trained.path)}, indent=1))
    return 0


# -- the attribution tool -------------------------------------------------------------------------

TOOL_ERRORS: tuple = (OSError, ValueError, KeyError)  # GalleryError and ExtractorFileError are ValueErrors


def _fail(command: str, exc: BaseException) -> int:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    print(f"zsattr {command}: {message}", file=sys.stderr)
    return 2


def _preflight(*, device: str | None = None, inputs=(), extractor: str | None = None, gallery: str | None = None,
               writes: str | None = None) -> None:
    """A tool command's arguments, checked before any work (an extractor named by a preset is
    exported, which may train it, on first use): the query images or folders exist, --extractor is
    a file or a preset, --gallery exists, the file to write has a folder, torch can use --device."""
    missing = [str(p) for p in inputs if not Path(p).expanduser().exists()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"not found: {', '.join(missing[:3])}{more}; expected image files or folders")
    if extractor is not None and str(extractor) not in PRESETS and not Path(extractor).expanduser().is_file():
        raise FileNotFoundError(f"--extractor {extractor!r} is neither an extractor file nor a preset; a preset is "
                                f"{one_of(extractor, PRESETS)}")
    if gallery is not None and not Path(gallery).expanduser().is_file():
        raise FileNotFoundError(f"gallery {gallery} does not exist; create it with `zsattr gallery create`")
    if writes is not None:
        folder = Path(writes).expanduser().absolute().parent
        if not folder.is_dir():
            raise FileNotFoundError(f"cannot write {writes}: its folder {folder} does not exist")
    if device is not None:
        _check_device(device)


def _threshold(value: str):
    """'auto' | 'none' | a cosine similarity in [-1, 1], for --reject and --threshold."""
    if value in ("auto", "none"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not -1.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected auto, none or a cosine similarity in [-1, 1], got {value!r}")
    return number


def _print_table(table, fmt: str) -> None:
    import pandas as pd

    if fmt == "json":
        print(table.to_json(orient="records", indent=1))
    elif fmt == "csv":
        print(table.to_csv(index=False), end="")
    else:
        with pd.option_context("display.width", 220, "display.max_rows", None, "display.max_columns", None,
                               "display.max_colwidth", 60, "display.float_format", "{:.3f}".format):
            print(table.to_string(index=False))


def _cmd_extractor_export(args: argparse.Namespace) -> int:
    from .attribution import tool

    try:
        overrides = _parse_overrides(args.set)
        _checked_config(args.preset, overrides)  # check every argument before any work
        if args.training_seed < 0:
            raise ValueError(f"--training-seed must be >= 0, got {args.training_seed}")
        _preflight(writes=args.output)
        extractor = tool.export_extractor(args.preset, args.output, args.kind, args.training_seed, **overrides)
    except (*TOOL_ERRORS, TypeError) as exc:
        return _fail("extractor export", exc)
    info = extractor.describe()
    print(f"wrote {args.output}: {info['name']}, id {info['id'][:16]}, {info['fingerprint_dim']}-d fingerprints "
          f"of {info['image_size']}x{info['image_size']} crops; verification threshold "
          f"{info['verification']['threshold']:.4f} (held-out synthetic pairs: accuracy "
          f"{info['verification']['accuracy']:.3f}, EER {info['verification']['eer']:.3f})")
    return 0


def _cmd_extractor_show(args: argparse.Namespace) -> int:
    from .attribution.portable import load_extractor

    try:
        extractor = load_extractor(args.file)
    except TOOL_ERRORS as exc:
        return _fail("extractor show", exc)
    print(json.dumps(extractor.describe(), indent=1))
    return 0


def _cmd_gallery_create(args: argparse.Namespace) -> int:
    from .attribution import tool

    def create():
        if not 0.0 < args.far < 1.0:
            raise ValueError(f"--far must be in (0, 1), got {args.far}")
        _preflight(device=args.device, extractor=args.extractor, writes=args.gallery)
        return tool.create_gallery(args.gallery, args.source, args.extractor, k=args.k, crop=args.crop, far=args.far,
                                   overwrite=args.force, device=args.device, batch_size=args.batch_size)

    return _change_gallery("gallery create", args.gallery, create)


def _change_gallery(command: str, path, change) -> int:
    """Run a gallery change (create, add, remove), then print the gallery's summary line."""
    try:
        gallery = change()
    except TOOL_ERRORS as exc:
        return _fail(command, exc)
    _print_gallery_summary(path, gallery)
    return 0


def _print_gallery_summary(path, gallery) -> None:
    cal = gallery.calibration
    line = f"{path}: {len(gallery.names)} models, {sum(gallery.shots)} images"
    if cal.get("threshold") is not None:
        line += (f"; reject threshold {cal['threshold']:.4f} for FAR {cal['far_target']:g} (leave-one-out on the "
                 f"enrolment images: {cal['known_accepted']:.3f} of known images accepted)")
    else:
        line += f"; no reject threshold ({cal.get('reason') or 'empty'})"
    print(line)


def _cmd_gallery_add(args: argparse.Namespace) -> int:
    from .attribution import tool

    def add():
        _preflight(device=args.device, inputs=args.paths, extractor=args.extractor)
        return tool.enrol(args.gallery, args.name, args.paths, args.extractor, k=args.k, device=args.device,
                          batch_size=args.batch_size)

    return _change_gallery("gallery add", args.gallery, add)


def _cmd_gallery_remove(args: argparse.Namespace) -> int:
    from .attribution import tool

    return _change_gallery("gallery remove", args.gallery, lambda: tool.remove(args.gallery, args.names))


def _cmd_gallery_list(args: argparse.Namespace) -> int:
    from .attribution import tool

    try:
        table = tool.gallery_table(args.gallery)
    except TOOL_ERRORS as exc:
        return _fail("gallery list", exc)
    _print_table(table, args.format)
    return 0


def _cmd_gallery_show(args: argparse.Namespace) -> int:
    from .attribution.gallery import Gallery

    try:
        g = Gallery.load(args.gallery)
    except TOOL_ERRORS as exc:
        return _fail("gallery show", exc)
    print(json.dumps({"models": len(g.names), "images": sum(g.shots), "fingerprint_dim": g.dim, "crop": g.crop,
                      "extractor": g.extractor, "rejection": g.calibration,
                      "k": dict(zip(g.names, g.shots))}, indent=1))
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    from .attribution import tool

    try:
        _preflight(device=args.device, inputs=args.paths, extractor=args.extractor, gallery=args.gallery)
        table = tool.attribute(args.gallery, args.paths, args.extractor, top=args.top, reject=args.reject,
                               device=args.device, batch_size=args.batch_size)
    except TOOL_ERRORS as exc:
        return _fail("identify", exc)
    _print_table(table, args.format)
    skipped = table.attrs.get("skipped") or {}
    if skipped:
        print(f"skipped {sum(skipped.values())} file(s): {skipped}", file=sys.stderr)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .attribution import tool

    try:
        extractor = args.extractor if args.extractor or args.gallery else "cpu"
        _preflight(device=args.device, inputs=[args.a, args.b], extractor=extractor, gallery=args.gallery)
        result = tool.verify(args.a, args.b, extractor, threshold=args.threshold, crop=args.crop,
                             device=args.device, batch_size=args.batch_size, gallery=args.gallery)
    except TOOL_ERRORS as exc:
        return _fail("verify", exc)
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=1))
    else:
        verdict = "same model" if result.same_model else "different models"
        print(f"{verdict}: similarity {result.similarity:.4f} vs threshold {result.threshold:.4f} "
              f"({result.images_a} vs {result.images_b} images)")
    return 0 if result.same_model else 1


def _cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from . import __version__
    from .core.device import resolve_device
    from .core.paths import cache_dir, data_dir, repo_root

    cache = cache_dir()
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    info = {"zsattr": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "device": resolve_device("auto"), "torch_threads": torch.get_num_threads(),
            "repository": str(repo_root()), "data": str(data_dir()), "cache": str(cache),
            "cache_artefacts": sum(1 for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")),
            "cache_mb": round(size / 2**20, 1)}
    print(json.dumps(info, indent=1))
    return 0


# -- the cache: zsattr cache list|verify|clean ----------------------------------------------------

def _cache_columns(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _short_commit(commit: str) -> str:
    head, _, dirty = str(commit).partition("+")
    return head[:12] + (f"+{dirty}" if dirty else "")


def _cmd_cache_list(args: argparse.Namespace) -> int:
    from .core import cache_admin as admin
    from .core.cache import ArtefactStore

    store = ArtefactStore()
    try:
        arts, left = admin.artefacts(store), admin.leftovers(store)
    except TOOL_ERRORS as exc:
        return _fail("cache list", exc)
    rows = [("KEY", "STAGE", "PRESET", "SIZE", "CREATED", "COMMIT")]
    for art in arts:
        m = art.manifest or {"stage": "(unreadable manifest)"}
        rows.append((art.key, str(m.get("stage", "?")), str(m.get("preset", "?")), admin.format_size(art.size),
                     str(m.get("created", "?")), _short_commit(m.get("git_commit", "?"))))
    _cache_columns(rows)
    total = admin.format_size(sum(a.size for a in arts))
    print(f"{len(arts)} artefact{'' if len(arts) == 1 else 's'}, {total} in {store.root}")
    if left:
        print("leftovers (`zsattr cache clean` removes those no running build uses):")
        _cache_columns([(str(item.path.relative_to(store.root)), item.what, admin.format_size(item.size),
                         f"in use by {item.in_use_by}" if item.in_use_by else "") for item in left])
    return 0


def _cmd_cache_verify(args: argparse.Namespace) -> int:
    """Exit 0 when no artefact is damaged, 1 when one is."""
    from .core import cache_admin as admin
    from .core.cache import ArtefactStore

    try:
        results = admin.verify(ArtefactStore())
    except TOOL_ERRORS as exc:
        return _fail("cache verify", exc)
    for art, status, detail in results:
        print(f"{status:<9}  {art.key}  {detail}")
    counts = {s: sum(1 for _, status, _ in results if status == s) for s in ("OK", "DAMAGED", "NO-HASHES")}
    print(f"{counts['OK']} ok, {counts['DAMAGED']} damaged, {counts['NO-HASHES']} without recorded hashes")
    return 1 if counts["DAMAGED"] else 0


def _cmd_cache_clean(args: argparse.Namespace) -> int:
    from .core import cache_admin as admin
    from .core.cache import ArtefactStore

    store = ArtefactStore()
    try:
        removals = admin.clean(store, older_than_days=args.older_than, dry_run=args.dry_run)
    except TOOL_ERRORS as exc:
        return _fail("cache clean", exc)
    for r in removals:
        if r.note:
            verb = f"kept ({r.note})"
        else:
            verb = "would remove" if args.dry_run else "removed" if r.done else "kept"
        print(f"{verb}: {r.path.relative_to(store.root)}  {r.why}  {admin.format_size(r.size)}")
    freed = sum(r.size for r in removals if r.done or (args.dry_run and not r.note))
    print(f"{'would free' if args.dry_run else 'freed'} {admin.format_size(freed)}" if removals else "nothing to clean")
    return 0


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {value!r}")
    return days


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def _device(value: str) -> str:
    if not re.fullmatch(DEVICE[0], value):
        raise argparse.ArgumentTypeError(f"expected {DEVICE[1]}, got {value!r}")
    return value


def _add_run_options(parser) -> None:
    parser.add_argument("--device", default="cpu", type=_device, metavar="DEVICE",
                        help="where a network extractor runs: auto, cpu, cuda, cuda:N or mps (a linear one always "
                             "uses the CPU)")
    parser.add_argument("--batch-size", type=_positive, default=256, help="images read and fingerprinted at a time")


def _add_tool_commands(sub) -> None:
    extractor_help = "an extractor file, or a preset name (its shipped extractor, exported on first use)"
    ext = sub.add_parser("extractor", help="export or inspect a standalone extractor file")
    ext_sub = ext.add_subparsers(dest="extractor_command", required=True)
    exp = ext_sub.add_parser("export", help="write the preset's trained extractor to one file (no cache or "
                             "config needed to use it)")
    exp.add_argument("-o", "--output", required=True, help="the file to write, e.g. cpu.zsx")
    exp.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    exp.add_argument("--kind", default="shipped", choices=["shipped", "linear", "resnet"],
                     help="shipped: the extractor notebook 04 chose on held-out synthetic models")
    exp.add_argument("--training-seed", type=int, default=0)
    exp.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="config overrides, as for train-extractor")
    exp.set_defaults(func=_cmd_extractor_export)
    show = ext_sub.add_parser("show", help="print an extractor file's description")
    show.add_argument("file")
    show.set_defaults(func=_cmd_extractor_show)

    gal = sub.add_parser("gallery", help="create and edit a gallery of known models")
    gal_sub = gal.add_subparsers(dest="gallery_command", required=True)
    create = gal_sub.add_parser("create", help="enrol every sub-folder of a folder as a model")
    create.add_argument("gallery", help="the gallery file to write, e.g. my.gallery")
    create.add_argument("--from", dest="source", required=True, metavar="DIR", help="one sub-folder per model")
    create.add_argument("--extractor", default="cpu", help=extractor_help)
    create.add_argument("--k", type=_positive, default=None, help="images per model (default: all)")
    create.add_argument("--crop", default="centre", choices=["centre", "grid"],
                        help="centre crop, or the mean over a grid of crops (never a resize)")
    create.add_argument("--far", type=float, default=0.05,
                        help="false-accept rate that calibrates --reject auto (default 0.05)")
    create.add_argument("--force", action="store_true", help="overwrite an existing gallery file")
    _add_run_options(create)
    create.set_defaults(func=_cmd_gallery_create)
    add = gal_sub.add_parser("add", help="enrol (or re-enrol) one model from images or folders")
    add.add_argument("gallery")
    add.add_argument("--name", required=True)
    add.add_argument("paths", nargs="+")
    add.add_argument("--k", type=_positive, default=None)
    add.add_argument("--extractor", default=None, help="default: the gallery's own extractor file")
    _add_run_options(add)
    add.set_defaults(func=_cmd_gallery_add)
    rem = gal_sub.add_parser("remove", help="remove models")
    rem.add_argument("gallery")
    rem.add_argument("names", nargs="+")
    rem.set_defaults(func=_cmd_gallery_remove)
    lst = gal_sub.add_parser("list", help="one line per enrolled model")
    lst.add_argument("gallery")
    lst.add_argument("--format", default="table", choices=["table", "json", "csv"])
    lst.set_defaults(func=_cmd_gallery_list)
    gshow = gal_sub.add_parser("show", help="the gallery's extractor, crop rule and rejection calibration")
    gshow.add_argument("gallery")
    gshow.set_defaults(func=_cmd_gallery_show)

    ide = sub.add_parser("identify", help="which enrolled model made each image (or unknown)")
    ide.add_argument("paths", nargs="+", help="images or folders")
    ide.add_argument("--gallery", required=True)
    ide.add_argument("--top", type=_positive, default=3)
    ide.add_argument("--reject", type=_threshold, default="auto",
                     help="auto (the gallery's calibrated threshold), none, or a similarity")
    ide.add_argument("--extractor", default=None, help="default: the gallery's own extractor file")
    ide.add_argument("--format", default="table", choices=["table", "json", "csv"])
    _add_run_options(ide)
    ide.set_defaults(func=_cmd_identify)

    ver = sub.add_parser("verify", help="were A and B made by the same model? (exit 0 same, 1 different)")
    ver.add_argument("a", help="an image or a folder")
    ver.add_argument("b", help="an image or a folder")
    ver.add_argument("--extractor", default=None, help=extractor_help + " (default: the gallery's, else cpu)")
    ver.add_argument("--gallery", default=None,
                     help="take the threshold (and extractor) from this gallery: calibrated on its enrolment images")
    ver.add_argument("--threshold", type=_threshold, default="auto",
                     help="auto (the gallery's if given, else the extractor file's, set on held-out synthetic "
                          "models at export) or a similarity")
    ver.add_argument("--crop", default="centre", choices=["centre", "grid"])
    ver.add_argument("--format", default="text", choices=["text", "json"])
    _add_run_options(ver)
    ver.set_defaults(func=_cmd_verify)

    inf = sub.add_parser("info", help="versions, device, paths and cache size")
    inf.set_defaults(func=_cmd_info)


class _Parser(argparse.ArgumentParser):
    """argparse (its sub-command parsers too) with errors as one line, without the usage block,
    and with choices listed closest to the given value first."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")

    def _check_value(self, action, value):  # argparse's own check of `choices`, reworded
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, f"invalid choice {value!r}; choose {one_of(value, action.choices)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zsattr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the numbered notebooks in order with papermill")
    rep.add_argument("--preset", default="cpu", choices=list(PRESETS))
    rep.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 00 02")
    rep.add_argument("--from", metavar="NN", help="start at this notebook, e.g. --from 03")
    rep.set_defaults(func=_cmd_reproduce)

    ev = sub.add_parser("evaluate", help="run notebook 05's evaluation on a folder of generated images "
                        "(one sub-folder per model), beside the zoo")
    ev.add_argument("folder")
    ev.add_argument("--preset", default="cpu", choices=list(PRESETS))
    ev.add_argument("--without-zoo", action="store_true", help="evaluate the folder's models alone")
    ev.set_defaults(func=_cmd_evaluate)

    pre = sub.add_parser("presets", help="print every preset's configuration")
    pre.add_argument("--markdown", action="store_true", help="as the Markdown table in the README")
    pre.set_defaults(func=_cmd_presets)

    tex = sub.add_parser("train-extractor", help="train (or reuse) the cached fingerprint extractor; "
                         "run it under `torchrun --nproc_per_node N` to train on N processes")
    tex.add_argument("--preset", default="cpu", choices=list(PRESETS))
    tex.add_argument("--space", default="full", choices=SPACES, metavar="SPACE",
                     help="model space: " + ", ".join(map(repr, SPACES)))
    tex.add_argument("--steps", type=_positive, default=None, help="override the preset's extractor.steps")
    tex.add_argument("--training-seed", type=int, default=0,
                     help="training seed 0..extractor.training_seeds-1 (initial weights and batches; notebooks "
                     "05-07 use every one)")
    tex.add_argument("--set", nargs="+", metavar="KEY=VALUE",
                     help="config overrides, keys as `zsattr presets` lists them, e.g. --set bank.steps=8 seed=1")
    tex.set_defaults(func=_cmd_train_extractor)

    cmp_ = sub.add_parser("compare-runs", help="does a rerun land inside a run's stated intervals? "
                          "(two folders of notebook reports, e.g. reports/cpu and another machine's)")
    cmp_.add_argument("reference")
    cmp_.add_argument("rerun")
    cmp_.set_defaults(func=_cmd_compare_runs)

    scan = sub.add_parser("scan", help="check an image folder (one sub-folder per source)")
    scan.add_argument("folder")
    scan.add_argument("--min-size", type=int, default=None, help="smallest acceptable side, pixels")
    scan.set_defaults(func=_cmd_scan)

    cache = sub.add_parser("cache", help="list, verify or clean the artefact cache (under ZSATTR_DATA_DIR)")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    cache_sub.add_parser("list", help="one line per artefact, then leftovers of builds").set_defaults(
        func=_cmd_cache_list)
    cache_sub.add_parser("verify", help="re-hash every artefact's files (exit 1 if one is damaged)").set_defaults(
        func=_cmd_cache_verify)
    clean = cache_sub.add_parser("clean", help="remove leftovers of dead builds (their checkpoints too); "
                                 "never anything a running build holds")
    clean.add_argument("--older-than", type=_days, default=None, metavar="DAYS",
                       help="also remove artefacts created more than DAYS days ago")
    clean.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    clean.set_defaults(func=_cmd_cache_clean)
    _add_tool_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except DataDirError as exc:  # any command that reads or writes the data directory
        return _fail(args.command, exc)
    except ConfigError as exc:  # a bad setting that a command did not catch itself: still one line
        return _fail(args.command, exc)
    except BrokenPipeError:  # e.g. `zsattr identify ... | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
