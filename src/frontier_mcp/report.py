"""HTML reports: one self-contained page per experiment, read from the archive only.

A page tells an experiment's story to a person: the conjecture, its fields and lineage, the
source, the last compile log, loss curves of the candidate against the best tuned baseline on
every problem of every visible benchmark run, the statistics, the hidden holdout's verdict (never
its problems), the recorded verdict and the provenance.

Everything the model wrote (conjecture, names, notes, source, compiler output quoting it) is
untrusted: every value goes through `esc()`, and the page carries a Content-Security-Policy that
forbids scripts, so even a missed escape could not run one. The plots are inline SVG drawn here
(polylines on a log-scale axis): no plotting dependency, no JavaScript, no network, a few KB a plot.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .archive import Archive, ArchiveError
from .bench import SUITES

Point = list[float | None]

CANDIDATE_COLOR = "#1f5fbf"
BASELINE_COLOR = "#d9731a"
LOSS_FLOOR = 1e-300  # only used to keep log10 defined; non-positive losses switch the axis to linear


def esc(value: Any) -> str:
    """Text for HTML: every model-written value goes through here."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def is_hidden(suite: str) -> bool:
    """A hidden suite's problems never reach a page; a suite this version does not know fails closed."""
    known = SUITES.get(suite)
    return known is None or known.hidden


def field_name(field_id: str) -> str:
    try:
        from .pairing import catalog

        card = catalog().get(field_id)
    except Exception:  # the catalog is a convenience here; the archive holds the ids
        card = None
    return card.name if card is not None else field_id


def page_name(experiment_id: int) -> str:
    return f"experiment-{experiment_id}.html"


# -- archive reads shared by the report and the terminal views -------------------------------

def experiment_row(archive: Archive, experiment_id: int) -> dict[str, Any]:
    """One experiment with its latest visible run's outcome and ratio, its holdout and verdict."""
    rows = archive.query(
        """SELECT e.id, e.name, e.status, e.parent_id, e.created_at, p.field_a, p.field_b,
                  (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict
           FROM experiments e JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?""", (experiment_id,))
    if not rows:
        raise ArchiveError(f"experiment {experiment_id} does not exist; see `frontier-mcp history` for ids.")
    row = rows[0]
    runs = archive.query("SELECT id, suite, outcome, geomean_ratio FROM benchmark_runs WHERE experiment_id = ? "
                         "ORDER BY id", (experiment_id,))
    visible = [r for r in runs if not is_hidden(r["suite"])]
    hidden = [r for r in runs if is_hidden(r["suite"])]
    last = visible[-1] if visible else None
    row["suite"] = last["suite"] if last else None
    row["outcome"] = last["outcome"] if last else None
    row["geomean_ratio"] = last["geomean_ratio"] if last else None
    row["holdout"] = hidden[-1]["outcome"] if hidden else None
    return row


def descendants(archive: Archive, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
    """Every experiment below this one, with its parent id and depth (1 = child), in id order."""
    return archive.query(
        """WITH RECURSIVE tree(id, parent_id, depth) AS (
               SELECT id, parent_id, 1 FROM experiments WHERE parent_id = ?
               UNION ALL
               SELECT e.id, e.parent_id, tree.depth + 1 FROM experiments e JOIN tree ON e.parent_id = tree.id
               WHERE tree.depth < ?)
           SELECT id, parent_id, depth FROM tree ORDER BY id""", (experiment_id, max_depth))


def family(archive: Archive, experiment_id: int) -> list[int]:
    """The experiment, its ancestors and its descendants: the pages that link to each other."""
    ids = [row["id"] for row in archive.lineage(experiment_id)]
    ids += [row["id"] for row in descendants(archive, experiment_id)]
    return sorted(set(ids))


def pairing_rows(archive: Archive) -> list[dict[str, Any]]:
    """Per unordered pair of fields: proposals, experiments, best visible ratio, wins and failures."""
    visible = tuple(name for name in SUITES if not is_hidden(name))
    marks = ", ".join("?" for _ in visible)
    return archive.query(
        f"""SELECT p.pair_key AS pair_key,
                  COUNT(DISTINCT p.id) AS proposed,
                  COUNT(DISTINCT e.id) AS experiments,
                  (SELECT MIN(b.geomean_ratio) FROM benchmark_runs b JOIN experiments e2 ON e2.id = b.experiment_id
                   JOIN pairings p2 ON p2.id = e2.pairing_id
                   WHERE p2.pair_key = p.pair_key AND b.suite IN ({marks})) AS best_ratio,
                  COUNT(DISTINCT CASE WHEN v.verdict = 'win' THEN e.id END) AS wins,
                  COUNT(DISTINCT CASE WHEN v.verdict IN ('loss', 'broken') THEN e.id END) AS failures,
                  MAX(p.created_at) AS last_proposed
           FROM pairings p
           LEFT JOIN experiments e ON e.pairing_id = p.id
           LEFT JOIN verdicts v ON v.experiment_id = e.id
           GROUP BY p.pair_key
           ORDER BY best_ratio IS NULL, best_ratio, proposed DESC, p.pair_key""", visible)


# -- SVG plots -------------------------------------------------------------------------------

def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _linear_ticks(low: float, high: float, target: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = _nice_step(high - low, target)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick values (not logs) for an axis spanning 10**low .. 10**high."""
    decades = list(range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1))
    if len(decades) >= 2:
        stride = max(1, math.ceil(len(decades) / 7))
        return [10.0 ** k for k in decades[::stride]]
    ticks = [m * 10.0 ** k for k in range(math.floor(low) - 1, math.ceil(high) + 1) for m in (1, 2, 5)
             if low - 1e-9 <= math.log10(m * 10.0 ** k) <= high + 1e-9]
    if len(ticks) >= 2:
        return ticks
    return [10 ** low, 10 ** high]


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) < 1e-9 and abs(exponent) >= 3:
        return f"1e{round(exponent)}" if value > 0 else f"-1e{round(exponent)}"
    return format(value, ".3g")


def loss_plot(series: list[tuple[str, list[Point], str, bool]], *, title: str, width: int = 520,
              height: int = 300) -> str:
    """Loss against step as inline SVG; log-scale y unless a loss is not positive.

    `series`: (label, [[step, loss], ...], colour, dashed). A null or infinite loss (a diverged
    median run) breaks the line and is marked at the top edge.
    """
    left, right, top, bottom = 62, 14, 30, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [(float(x), float(y)) for _, points, _, _ in series for x, y in points
              if x is not None and y is not None and math.isfinite(y)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">',
             f"<title>{esc(title)}</title>",
             f'<text x="{left}" y="18" class="plot-title">{esc(title)}</text>']
    if not finite:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no finite loss recorded</text>'
                     "</svg>")
        return "".join(parts)
    log_scale = all(y > 0 for _, y in finite)
    ys = [math.log10(max(y, LOSS_FLOOR)) if log_scale else y for _, y in finite]
    y_low, y_high = min(ys), max(ys)
    pad = (y_high - y_low) * 0.05 or (0.5 if log_scale else max(abs(y_low) * 0.1, 1e-12))
    y_low, y_high = y_low - pad, y_high + pad
    x_high = max(x for x, _ in finite) or 1.0

    def px(x: float) -> float:
        return left + x / x_high * plot_w

    def py(y: float) -> float:
        value = math.log10(max(y, LOSS_FLOOR)) if log_scale else y
        return top + (y_high - value) / (y_high - y_low) * plot_h

    # axes, grid and ticks
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    y_ticks = _log_ticks(y_low, y_high) if log_scale else _linear_ticks(y_low, y_high)
    for tick in y_ticks:
        y = py(tick)
        if top - 0.5 <= y <= top + plot_h + 0.5:
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                         f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                         f"{esc(_tick_label(tick))}</text>")
    for tick in _linear_ticks(0.0, x_high):
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
                     f"{esc(_tick_label(tick))}</text>")
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis">step</text>'
                 f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" class="axis" '
                 f'transform="rotate(-90 14 {top + plot_h / 2})">'
                 f"{'loss (log scale)' if log_scale else 'loss'}</text>")

    # the curves: one polyline per unbroken segment, a dot per point, a cross where a run diverged
    for label, points, colour, dashed in series:
        segments: list[list[tuple[float, float]]] = [[]]
        diverged_at: float | None = None
        for step, loss in points:
            if step is None:
                continue
            if loss is None or not math.isfinite(loss):
                diverged_at = float(step) if diverged_at is None else diverged_at
                segments.append([])
                continue
            segments[-1].append((px(float(step)), py(float(loss))))
        dash = ' stroke-dasharray="7 4"' if dashed else ""
        parts.append(f'<g class="series" data-series="{esc(label)}">')
        for segment in segments:
            if len(segment) >= 2:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            for x, y in segment:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="{colour}"/>')
        if diverged_at is not None:
            x = px(diverged_at)
            parts.append(f'<path d="M{x - 5:.1f},{top + 2} l10,10 m0,-10 l-10,10" stroke="{colour}" '
                         f'stroke-width="2"/><text x="{x + 8:.1f}" y="{top + 11}" class="tick" '
                         f'fill="{colour}">diverged</text>')
        parts.append("</g>")

    # legend
    legend_x = left + plot_w - 170
    for index, (label, _, colour, dashed) in enumerate(series):
        y = top + 14 + 16 * index
        dash = ' stroke-dasharray="7 4"' if dashed else ""
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 26}" y1="{y}" y2="{y}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/><text x="{legend_x + 32}" y="{y + 4}" class="legend">'
                     f"{esc(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


# -- page sections ---------------------------------------------------------------------------

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1c1f24;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.6em;margin:.2em 0}h2{margin-top:1.8em;border-bottom:1px solid #dde1e6;padding-bottom:.2em}
h3{margin-top:1.4em}.sub{color:#5b6470}.pre{white-space:pre-wrap}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;font-size:.85em;background:#e4e7eb}
.win{background:#d3f2dc;color:#135c2a}.loss,.broken{background:#fbd9d6;color:#8a1c12}
.tie,.mixed,.inconclusive{background:#fcefc7;color:#6b4e00}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #dde1e6;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f0f2f5}td.l,th.l{text-align:left}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}dl.kv dt{color:#5b6470}dl.kv dd{margin:0}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{background:#fff;border:1px solid #e4e7eb;font-size:11px}
.plot .frame{fill:none;stroke:#9aa3ad}.plot .grid{stroke:#eceff2}.plot .tick{fill:#5b6470;font-size:10px}
.plot .axis{fill:#3a414a;font-size:11px}.plot .legend{fill:#1c1f24;font-size:11px}
.plot .plot-title{font-weight:600;font-size:12px;fill:#1c1f24}
pre.log{background:#1e2127;color:#e6e6e6;padding:10px 12px;overflow-x:auto;font-size:.85em}
table.src{border:none;font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;width:100%}
table.src td{border:none;padding:0 8px;text-align:left;white-space:pre}
table.src td.n{color:#9aa3ad;text-align:right;user-select:none;width:3em;border-right:1px solid #e4e7eb}
table.src tr.diag td{background:#fde8e6}
ul.chain{list-style:none;padding-left:0}ul.chain li{margin:2px 0}
"""


def _badge(value: str | None, label: str | None = None) -> str:
    """An outcome or verdict as a coloured label (`label` overrides the text, not the colour)."""
    if not value:
        return '<span class="badge">–</span>'
    return f'<span class="badge {esc(value)}">{esc(label or value)}</span>'


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML the caller already escaped."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A table; cells are HTML the caller already escaped. The first `left` columns align left."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _link(archive_row: dict[str, Any], link: Callable[[int], str]) -> str:
    return (f'<a href="{esc(link(archive_row["id"]))}">#{archive_row["id"]} {esc(archive_row["name"])}</a> '
            f"{_badge(archive_row.get('verdict') or archive_row.get('outcome'))} "
            f"<span class=\"sub\">ratio {esc(fmt(archive_row.get('geomean_ratio')))}</span>")


def _lineage_section(archive: Archive, experiment_id: int) -> str:
    chain = [experiment_row(archive, row["id"]) for row in archive.lineage(experiment_id)]
    below = descendants(archive, experiment_id)
    items = []
    for depth, row in enumerate(chain):
        text = _link(row, page_name) if row["id"] != experiment_id else \
            f"<strong>#{row['id']} {esc(row['name'])} (this experiment)</strong>"
        items.append(f'<li style="margin-left:{depth * 1.4}em">{"↳ " if depth else ""}{text}</li>')
    base = len(chain) - 1
    for node in below:
        row = experiment_row(archive, node["id"])
        items.append(f'<li style="margin-left:{(base + node["depth"]) * 1.4}em">↳ {_link(row, page_name)}</li>')
    note = "" if len(chain) > 1 or below else '<p class="sub">No parent and no children yet.</p>'
    return f'<h2 id="lineage">Lineage</h2><ul class="chain">{"".join(items)}</ul>{note}'


def _knobs(knobs: dict[str, Any] | None) -> str:
    """The candidate's tuned knobs, if it declared any, under its learning rate."""
    if not knobs:
        return ""
    return '<br><span class="sub">' + ", ".join(f"{esc(k)}={esc(fmt(v))}" for k, v in knobs.items()) + "</span>"


def _problem_stats(problems: list[dict[str, Any]]) -> str:
    rows = []
    for p in problems:
        cand = p["candidate"]
        best: dict[str, Any] = next((b for b in p.get("baselines", []) if b["optimizer"] == p["best_baseline"]), {})
        rows.append([
            esc(p["problem"]), esc(fmt(cand.get("lr"))) + _knobs(cand.get("knobs")),
            f"{esc(fmt(cand.get('median_final_loss')))} [{esc(fmt(cand.get('ci_low')))}, "
            f"{esc(fmt(cand.get('ci_high')))}]",
            f"{esc(p['best_baseline'])} (lr {esc(fmt(best.get('lr')))})",
            f"{esc(fmt(best.get('median_final_loss')))} [{esc(fmt(best.get('ci_low')))}, "
            f"{esc(fmt(best.get('ci_high')))}]",
            esc(fmt(p.get("ratio"))), esc(fmt(p.get("p_value"))), esc(fmt(p.get("p_holm"))),
            _badge(p.get("outcome")),
            f"{esc(fmt(p.get('steps_to_target'), '.0f'))} / {esc(fmt(p.get('best_baseline_steps'), '.0f'))}",
            esc(fmt(p.get("speedup"))),
            f"{esc(fmt(cand.get('median_test_accuracy')))} / {esc(fmt(best.get('median_test_accuracy')))}",
            f"{esc(cand.get('diverged'))}/{esc(cand.get('runs'))}",
            f"{esc(fmt(cand.get('ns_per_step'), '.0f'))} / {esc(fmt(best.get('ns_per_step'), '.0f'))}",
            esc(fmt(cand.get("evals_per_step"))),
        ])
    return _table(["problem", "cand. lr", "candidate loss [95% CI]", "best baseline", "baseline loss [95% CI]",
                   "ratio", "p", "p (Holm)", "outcome", "steps to target (cand / base)", "speed-up",
                   "test acc. (cand / base)", "diverged", "ns/step (cand / base)", "evals/step"], rows)


def _all_baselines(problems: list[dict[str, Any]]) -> str:
    blocks = []
    for p in problems:
        rows = [[esc(s["optimizer"]), esc(fmt(s.get("lr"))), esc(fmt(s.get("median_final_loss"))),
                 f"[{esc(fmt(s.get('ci_low')))}, {esc(fmt(s.get('ci_high')))}]",
                 esc(fmt(s.get("median_test_accuracy"))), f"{esc(s.get('diverged'))}/{esc(s.get('runs'))}",
                 esc(fmt(s.get("ns_per_step"), ".0f"))]
                for s in [p["candidate"], *p.get("baselines", [])]]
        blocks.append(f"<h4>{esc(p['problem'])} (target loss {esc(fmt(p.get('target_loss')))})</h4>"
                      + _table(["optimizer", "lr", "median final loss", "95% CI", "test acc.", "diverged",
                                "ns/step"], rows))
    return "<details><summary>Every tuned optimizer, per problem</summary>" + "".join(blocks) + "</details>"


def _profile(report: dict[str, Any]) -> str:
    profile = report.get("performance_profile") or {}
    if not profile:
        return ""
    taus = list(next(iter(profile.values())).keys())
    rows = [[esc(name), *(esc(fmt(share, ".2f")) for share in shares.values())] for name, shares in profile.items()]
    return ("<details><summary>Performance profile (share of problems solved within τ × the fastest)</summary>"
            + _table(["optimizer", *(f"τ = {tau}" for tau in taus)], rows) + "</details>")


def _visible_run(run: dict[str, Any], report: dict[str, Any]) -> str:
    problems = report.get("problems") or []
    summary = _kv([
        ("outcome", f"{_badge(report.get('outcome'))} {esc(report.get('wins'))} win(s), "
                    f"{esc(report.get('ties'))} tie(s), {esc(report.get('losses'))} loss(es) after Holm"),
        ("geometric-mean loss ratio", esc(fmt(report.get("geomean_ratio")))),
        ("geometric-mean speed-up", f"{esc(fmt(report.get('geomean_speedup')))} (target reached on "
                                    f"{esc(report.get('reached_target'))} problems)"),
        ("time per step vs Adam", esc(fmt(report.get("time_ratio_vs_adam")))),
        ("indistinguishable from", esc(", ".join(report.get("indistinguishable_from") or []) or "none")),
        ("rediscovery of", esc(report.get("rediscovery_of") or "none")),
        ("harness runs", f"{esc(report.get('trials'))} in {esc(fmt(report.get('seconds'), '.1f'))} s "
                         f"(baseline cache {esc(report.get('baseline_cache'))})"),
    ])
    plots = []
    for p in problems:
        curves = p.get("curves") or {}
        base = p["best_baseline"]
        series = [(f"candidate (lr {fmt(p['candidate'].get('lr'))})", curves.get("candidate", []),
                   CANDIDATE_COLOR, False)]
        best: dict[str, Any] = next((b for b in p.get("baselines", []) if b["optimizer"] == base), {})
        series.append((f"{base} (lr {fmt(best.get('lr'))})", curves.get(base, []), BASELINE_COLOR, True))
        plots.append(loss_plot(series, title=f"{p['problem']}: ratio {fmt(p.get('ratio'))}, {p.get('outcome')}"))
    return (f'<h3 id="run-{esc(run["id"])}">Run {esc(run["id"])}: suite “{esc(run["suite"])}”, '
            f"{esc(when(run['created_at']))}</h3>{summary}"
            f"<p class=\"sub\">Median loss curves over the evaluation seeds: candidate (solid) against the best "
            f"tuned baseline of each problem (dashed).</p><div class=\"plots\">{''.join(plots)}</div>"
            f"{_problem_stats(problems)}{_all_baselines(problems)}{_profile(report)}")


def _hidden_run(run: dict[str, Any], report: dict[str, Any]) -> str:
    count = len(report.get("problems") or [])
    return (f'<h3 id="run-{esc(run["id"])}">Run {esc(run["id"])}: hidden suite “{esc(run["suite"])}”, '
            f"{esc(when(run['created_at']))}</h3>"
            + _kv([("verdict", f"{_badge(run['outcome'])} {esc(run['wins'])} win(s), {esc(run['ties'])} tie(s), "
                               f"{esc(run['losses'])} loss(es) on {count} problems"),
                   ("geometric-mean loss ratio", esc(fmt(run["geomean_ratio"]))),
                   ("job", esc(run["job_id"]))])
            + '<p class="sub">The holdout suite\'s problems, seeds and curves are never shown, here or to the '
              "model: only its verdict.</p>")


def _compile_section(archive: Archive, experiment: dict[str, Any]) -> tuple[str, set[int]]:
    builds = archive.query("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id", (experiment["id"],))
    if not builds:
        return '<h2 id="compile">Compile log</h2><p class="sub">Never compiled.</p>', set()
    rows = [[esc(b["id"]), _badge("win", "ok") if b["ok"] else _badge("loss", "failed"),
             esc(fmt(b["seconds"], ".2f")), esc(b["errors"]), esc(b["warnings"]), esc(when(b["created_at"]))]
            for b in builds]
    last = builds[-1]
    diagnostics = json.loads(last["diagnostics"] or "[]")
    provenance = json.loads(last["provenance"] or "{}")
    same_source = provenance.get("source_sha256") in (None, experiment["source_sha256"])
    marked = {int(d["line"]) for d in diagnostics
              if same_source and d.get("file") == "optimizer.rs" and isinstance(d.get("line"), int)}
    log = "".join(d.get("rendered") or f"{d.get('level')}: {d.get('message')}\n" for d in diagnostics)
    note = "" if same_source else ('<p class="sub">The last build compiled an earlier revision of the source '
                                   "(the experiment was revised after it).</p>")
    body = (f"<p>Last build #{esc(last['id'])}: {'ok' if last['ok'] else 'FAILED'} in "
            f"{esc(fmt(last['seconds'], '.2f'))} s, {esc(last['errors'])} error(s), "
            f"{esc(last['warnings'])} warning(s).</p>{note}"
            + (f'<pre class="log">{esc(log)}</pre>' if log else '<p class="sub">No diagnostics.</p>'))
    return (f'<h2 id="compile">Compile log</h2>'
            f"{_table(['build', 'result', 'seconds', 'errors', 'warnings', 'at'], rows)}{body}"), marked


def _source_section(source: str, marked: set[int]) -> str:
    flagged = ' class="diag"'
    rows = "".join(f'<tr id="L{n}"{flagged if n in marked else ""}><td class="n">{n}</td>'
                   f"<td>{esc(line)}</td></tr>" for n, line in enumerate(source.splitlines() or [""], 1))
    note = " Lines the compiler flagged are shaded." if marked else ""
    return (f'<h2 id="source">Source (optimizer.rs)</h2><p class="sub">{len(source.splitlines())} lines.{note}</p>'
            f'<table class="src"><tbody>{rows}</tbody></table>')


def _provenance_section(experiment: dict[str, Any], visible_runs: list[tuple[dict[str, Any], dict[str, Any]]],
                        build: dict[str, Any] | None, db_path: Path) -> str:
    pairs = [("experiment", f"#{esc(experiment['id'])} {esc(experiment['name'])}, created "
                            f"{esc(when(experiment['created_at']))}, updated {esc(when(experiment['updated_at']))}"),
             ("pairing", f"#{esc(experiment['pairing_id'])}"),
             ("source sha256", f"<code>{esc(experiment['source_sha256'])}</code> "
                               f"({esc(experiment['source_bytes'])} bytes)")]
    if build is not None:
        for key, value in json.loads(build["provenance"] or "{}").items():
            pairs.append((f"last build: {key}", f"<code>{esc(value)}</code>"))
    html_parts = [_kv(pairs)]
    for run, report in visible_runs:
        provenance = report.get("provenance") or json.loads(run.get("provenance") or "{}")
        items = [(key, f"<code>{esc(json.dumps(value) if isinstance(value, dict | list) else value)}</code>")
                 for key, value in provenance.items()]
        html_parts.append(f"<h4>Benchmark run {esc(run['id'])} ({esc(run['suite'])}, harness "
                          f"{esc(run['harness_version'])}, job {esc(run['job_id'])})</h4>{_kv(items)}")
    html_parts.append(f'<p class="sub">Generated by frontier-mcp {esc(__version__)} on {esc(when(time.time()))} '
                      f"from {esc(db_path)}.</p>")
    return '<h2 id="provenance">Provenance</h2>' + "".join(html_parts)


def render_experiment(archive: Archive, experiment_id: int) -> str:
    """The whole page for one experiment, as a string of self-contained HTML."""
    experiment = archive.require_experiment(experiment_id)
    summary = experiment_row(archive, experiment_id)
    verdict = archive.verdict(experiment_id)
    runs = archive.benchmark_runs(experiment_id)
    parsed = [(run, json.loads(run["summary"])) for run in runs]
    visible = [(run, report) for run, report in parsed if not is_hidden(run["suite"])]
    fields = f"{field_name(experiment['field_a'])} × {field_name(experiment['field_b'])}"
    title = f"#{experiment['id']} {experiment['name']}"

    header = (f"<header><p class=\"sub\">frontier-mcp experiment report</p><h1>{esc(title)}</h1>"
              f"<p><strong>{esc(fields)}</strong> <span class=\"sub\">({esc(experiment['field_a'])} × "
              f"{esc(experiment['field_b'])})</span></p>"
              f"<p>status {_badge(experiment['status'])} · verdict {_badge(verdict['verdict'] if verdict else None)}"
              f" · latest visible benchmark {_badge(summary['outcome'])} (ratio {esc(fmt(summary['geomean_ratio']))})"
              f" · holdout {_badge(summary['holdout'])}</p>"
              '<nav class="sub"><a href="#conjecture">conjecture</a> · <a href="#lineage">lineage</a> · '
              '<a href="#results">results</a> · <a href="#verdict">verdict</a> · <a href="#compile">compile log</a> · '
              '<a href="#source">source</a> · <a href="#provenance">provenance</a> · '
              '<a href="index.html">all experiments</a></nav></header>')
    conjecture = ('<h2 id="conjecture">Conjecture</h2>'
                  + _kv([("statement", f'<span class="pre">{esc(experiment["statement"])}</span>'),
                         ("mechanism", f'<span class="pre">{esc(experiment["mechanism"])}</span>'),
                         ("prediction", f'<span class="pre">{esc(experiment["prediction"])}</span>')]))
    results = ['<h2 id="results">Results</h2>']
    if not parsed:
        results.append('<p class="sub">Not benchmarked yet.</p>')
    for run, report in parsed:
        results.append(_hidden_run(run, report) if is_hidden(run["suite"]) else _visible_run(run, report))
    if verdict is None:
        verdict_html = '<h2 id="verdict">Verdict</h2><p class="sub">No verdict recorded yet.</p>'
    else:
        verdict_html = ('<h2 id="verdict">Verdict</h2>'
                        + _kv([("verdict", _badge(verdict["verdict"])),
                               ("recorded", esc(when(verdict["created_at"]))),
                               ("against run", esc(verdict["benchmark_run_id"])),
                               ("notes", f'<span class="pre">{esc(verdict["notes"]) or "–"}</span>'),
                               ("lessons", f'<span class="pre">{esc(verdict["lessons"]) or "–"}</span>')]))
    compile_html, marked = _compile_section(archive, experiment)
    body = "".join([header, conjecture, _lineage_section(archive, experiment_id), *results, verdict_html,
                    compile_html, _source_section(experiment["source"], marked),
                    _provenance_section(experiment, visible, archive.last_build(experiment_id), archive.path)])
    return _page(title, body)


def _page(title: str, body: str) -> str:
    # No script may run on the page, whatever ends up in it; styles are inline, nothing is fetched.
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>frontier-mcp · {esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def render_index(archive: Archive) -> str:
    ids = [row["id"] for row in archive.query("SELECT id FROM experiments ORDER BY id")]
    rows = []
    for experiment_id in ids:
        row = experiment_row(archive, experiment_id)
        rows.append([f'<a href="{page_name(experiment_id)}">#{experiment_id} {esc(row["name"])}</a>',
                     esc(f"{field_name(row['field_a'])} × {field_name(row['field_b'])}"),
                     esc(f"#{row['parent_id']}" if row["parent_id"] else ""), _badge(row["status"]),
                     f"{_badge(row['outcome'])} {esc(row['suite'] or '')}", esc(fmt(row["geomean_ratio"])),
                     _badge(row["holdout"]), _badge(row["verdict"])])
    table = _table(["experiment", "fields", "parent", "status", "latest visible run", "ratio", "holdout",
                    "verdict"], rows, left=3)
    return _page("all experiments", f"<h1>{len(ids)} experiment(s)</h1><p class=\"sub\">{esc(archive.path)}</p>"
                                    + table)


def write_reports(archive: Archive, reports_dir: Path, experiment_ids: Iterable[int]) -> list[Path]:
    """Write one page per experiment, plus the index; returns the experiment pages' paths."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for experiment_id in experiment_ids:
        path = reports_dir / page_name(experiment_id)
        _write(path, render_experiment(archive, experiment_id))
        written.append(path)
    _write(reports_dir / "index.html", render_index(archive))
    return written


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
