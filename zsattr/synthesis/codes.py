"""Architecture codes of the synthetic model space (PAPER.md section 4).

A code is six digits `[K, L, S, U, A, N]`, written like the authors' class names
(`SynModel_{code}_k3_c32`, e.g. `"101210"`). `ArchCode` validates every digit on
construction, so an invalid architecture cannot exist past parsing. `ablation_subsets()`
gives the named subsets of the paper's Table II (FFD ablations), one definition shared by
every stage that needs them.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, fields

# digit name -> (meaning, readable value names by digit value)
DIGITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "K": ("blocks down = blocks up", ("1 block", "2 blocks")),
    "L": ("conv layers per up-block", ("1 layer", "2 layers")),
    "S": ("order", ("post", "pre")),
    "U": ("upsampling", ("bilinear", "nearest", "transposed")),
    "A": ("activation", ("none", "relu", "sigmoid", "tanh")),
    "N": ("normalisation", ("none", "batch", "instance")),
}


@dataclass(frozen=True, order=True)
class ArchCode:
    """One synthetic architecture. Immutable, hashable, ordered like its string form."""

    K: int
    L: int
    S: int
    U: int
    A: int
    N: int

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = len(DIGITS[f.name][1])
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < allowed:
                names = ", ".join(f"{i}={v}" for i, v in enumerate(DIGITS[f.name][1]))
                raise ValueError(f"arch digit {f.name} ({DIGITS[f.name][0]}) must be one of "
                                 f"{names}; got {value!r}")

    @classmethod
    def parse(cls, text: "str | ArchCode") -> "ArchCode":
        """'101210' (also 'SynModel_101210_k3_c32' or '[1,0,1,2,1,0]') -> ArchCode."""
        if isinstance(text, ArchCode):
            return text
        raw = str(text).strip()
        if raw.startswith("SynModel_"):
            raw = raw.split("_")[1]
        digits = "".join(ch for ch in raw if ch not in "[], ")
        if len(digits) != 6 or not digits.isdigit():
            raise ValueError(f"an architecture code is six digits [K,L,S,U,A,N], got {text!r}")
        return cls(*(int(d) for d in digits))

    def __str__(self) -> str:
        return "".join(str(getattr(self, f.name)) for f in fields(self))

    @property
    def digits(self) -> tuple[int, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def class_name(self) -> str:
        """The authors' class name for this architecture."""
        return f"SynModel_{self}_k3_c32"

    @property
    def readable(self) -> str:
        """e.g. '2 blocks, 1 layer, pre, transposed, relu, instance'."""
        return ", ".join(DIGITS[f.name][1][getattr(self, f.name)] for f in fields(self))

    def value_name(self, digit: str) -> str:
        return DIGITS[digit][1][getattr(self, digit)]


def all_codes() -> list[ArchCode]:
    """All 2*2*2*3*4*3 = 288 architectures, in code order."""
    ranges = [range(len(values)) for _, values in DIGITS.values()]
    return [ArchCode(*digits) for digits in itertools.product(*ranges)]


def parse_codes(codes) -> list[ArchCode]:
    return [ArchCode.parse(c) for c in codes]


# Table II: what each ablation keeps fixed (digit -> the single value kept).
ABLATION_FIXED: dict[str, dict[str, int]] = {
    "w/o K": {"K": 0},  # 1 block only
    "w/o L": {"L": 0},  # 1 layer per up-block only
    "w/o S": {"S": 0},  # post order only
    "w/o U": {"U": 0},  # bilinear only
    "w/o A": {"A": 0},  # no activation
    "w/o N": {"N": 0},  # no normalisation
}


@dataclass(frozen=True)
class Subset:
    """A named slice of the model space: which architectures, and how many seeds of each.

    `max_seeds=None` keeps every trained seed; `max_seeds=1` is the paper's 'w/o seed' row
    (all architectures, one seed each: only the first trained seed is kept).
    """

    name: str
    codes: tuple[ArchCode, ...]
    max_seeds: int | None = None

    def select(self, models):
        """Filter (code, seed) pairs (or objects with .code and .seed) to this subset.

        Seeds are ranked per code in ascending order, so 'first seed' is well defined.
        """
        keep = set(self.codes)
        seen: dict[ArchCode, list[int]] = {}
        for m in sorted(models, key=_seed_of):
            code = ArchCode.parse(_code_of(m))
            if code in keep:
                seen.setdefault(code, []).append(_seed_of(m))
        out = []
        for m in models:
            code = ArchCode.parse(_code_of(m))
            if code in keep and (self.max_seeds is None
                                 or _seed_of(m) in seen[code][: self.max_seeds]):
                out.append(m)
        return out


def _code_of(m):
    return m.code if hasattr(m, "code") else m[0]


def _seed_of(m):
    return m.seed if hasattr(m, "seed") else m[1]


def ablation_subsets(codes=None) -> dict[str, Subset]:
    """Table II rows: 'full', 'w/o K' ... 'w/o N' (fixed digit), 'w/o seed' (one seed each).

    `codes` restricts everything to a given list (e.g. a smaller bank); default: all 288.
    """
    base = tuple(sorted(parse_codes(codes))) if codes is not None else tuple(all_codes())
    subsets = {"full": Subset("full", base)}
    for name, fixed in ABLATION_FIXED.items():
        chosen = tuple(c for c in base if all(getattr(c, d) == v for d, v in fixed.items()))
        subsets[name] = Subset(name, chosen)
    subsets["w/o seed"] = Subset("w/o seed", base, max_seeds=1)
    return subsets


def spread_codes(n: int) -> list[ArchCode]:
    """`n` codes that together cover every value of every digit as early as possible.

    Used by small presets: a deterministic greedy pick that maximises the number of
    (digit, value) pairs not yet covered, ties broken by a hash of the code (so the picks are
    varied rather than the lowest codes). 4 codes already cover all values (the activation
    digit has 4 values); after full coverage a new round starts.
    """
    everything = all_codes()
    if n >= len(everything):
        return everything
    chosen: list[ArchCode] = []
    covered: set[tuple[str, int]] = set()
    names = [f.name for f in fields(ArchCode)]
    for _ in range(n):
        def gain(c):
            new = {(d, getattr(c, d)) for d in names} - covered
            return len(new)
        best = max((c for c in everything if c not in chosen), key=lambda c: (gain(c), hashlib.sha256(str(c).encode()).hexdigest()))
        chosen.append(best)
        covered |= {(d, getattr(best, d)) for d in names}
        if len(covered) == sum(len(v) for _, v in DIGITS.values()):
            covered = set()  # start a second round of coverage
    return sorted(chosen)
