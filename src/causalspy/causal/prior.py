"""Physical prior knowledge for causal discovery: tiers, forbidden and required edges."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from causalspy.exceptions import InvalidParameterError

__all__ = ["Prior"]


@dataclass
class Prior:
    """Prior knowledge every discovery method honours.

    Parameters
    ----------
    tiers : list of list of str
        Causal order of groups of variables: a variable may cause variables in
        its own or later tiers, never earlier ones (e.g. composition before
        structure before polarization).
    forbidden : list of (cause, effect)
        Edges that must not appear.
    required : list of (cause, effect)
        Edges that must appear.

    Examples
    --------
    >>> Prior(tiers=[["intensity_A"], ["area"], ["p_mag", "tetragonality"]],
    ...       forbidden=[("p_mag", "area")])  # doctest: +ELLIPSIS
    Prior(tiers=[['intensity_A'], ['area'], ['p_mag', 'tetragonality']], ...)
    """

    tiers: list[list[str]] = field(default_factory=list)
    forbidden: list[tuple[str, str]] = field(default_factory=list)
    required: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        self.tiers = [list(t) for t in (self.tiers or [])]
        self.forbidden = [tuple(e) for e in (self.forbidden or [])]
        self.required = [tuple(e) for e in (self.required or [])]

    @classmethod
    def parse(cls, tiers: str | None = None, forbid: list[str] | None = None,
              require: list[str] | None = None) -> Prior:
        """From command-line text: ``tiers="a,b;c;d"``, ``forbid=["a:b"]``, ``require=["c:d"]``."""
        t = [[v.strip() for v in grp.split(",") if v.strip()] for grp in (tiers or "").split(";")]
        t = [g for g in t if g]

        def pairs(items, what):
            out = []
            for it in items or []:
                parts = it.split(":")
                if len(parts) != 2 or not all(p.strip() for p in parts):
                    raise InvalidParameterError(f"--{what} takes cause:effect pairs; got {it!r}.")
                out.append((parts[0].strip(), parts[1].strip()))
            return out

        return cls(tiers=t, forbidden=pairs(forbid, "forbid"), required=pairs(require, "require"))

    @property
    def empty(self) -> bool:
        return not (self.tiers or self.forbidden or self.required)

    def tier_of(self) -> dict[str, int]:
        return {v: k for k, grp in enumerate(self.tiers) for v in grp}

    def allows(self, cause: str, effect: str) -> bool:
        """Whether the edge ``cause -> effect`` is compatible with the prior."""
        if (cause, effect) in self.forbidden:
            return False
        tier = self.tier_of()
        return not (cause in tier and effect in tier and tier[cause] > tier[effect])

    def validate(self, columns: list[str]) -> None:
        """Raise a clear error for unknown names or a prior that contradicts itself."""
        names = set(columns)
        used = {v for g in self.tiers for v in g} | {v for e in self.forbidden + self.required
                                                     for v in e}
        unknown = sorted(used - names)
        if unknown:
            raise InvalidParameterError(
                f"The prior names unknown column(s) {unknown}; the columns are {sorted(names)}."
            )
        seen: dict[str, int] = {}
        for k, grp in enumerate(self.tiers):
            for v in grp:
                if v in seen and seen[v] != k:
                    raise InvalidParameterError(f"{v!r} is in two tiers ({seen[v]} and {k}).")
                seen[v] = k
        both = sorted(set(self.forbidden) & set(self.required))
        if both:
            raise InvalidParameterError(f"Edge(s) {both} are both required and forbidden.")
        bad = [e for e in self.required if not self.allows(*e) and e not in self.forbidden]
        if bad:
            raise InvalidParameterError(f"Required edge(s) {bad} go against the tier order.")
        for a, b in self.required:
            if a == b:
                raise InvalidParameterError(f"A required edge {a!r} -> {b!r} is a self-loop.")
        g = nx.DiGraph(self.required)
        if not nx.is_directed_acyclic_graph(g):
            cyc = nx.find_cycle(g)
            raise InvalidParameterError(f"The required edges form a cycle: {cyc}.")

    def as_dict(self) -> dict:
        return {"tiers": self.tiers, "forbidden": [list(e) for e in self.forbidden],
                "required": [list(e) for e in self.required]}
