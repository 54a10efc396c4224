"""Loss curves as inline SVG: the geometry is computed here, the markup is `templates/plot.svg.j2`.

Polylines on a log-scale axis (linear if a loss is not positive): no plotting dependency, no
JavaScript, no network, a few KB a plot. Every label goes through the template's autoescaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup

from .env import ENV

Point = list[float | None]
LOSS_FLOOR = 1e-300  # only used to keep log10 defined; non-positive losses switch the axis to linear


@dataclass
class Series:
    label: str
    points: list[Point]
    colour: str
    dashed: bool = False


@dataclass
class DrawnSeries:
    label: str
    colour: str
    dashed: bool
    lines: list[str] = field(default_factory=list)  # "x,y x,y ..." per unbroken segment of two or more
    dots: list[tuple[str, str]] = field(default_factory=list)
    diverged_x: float | None = None


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def linear_ticks(low: float, high: float, target: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = _nice_step(high - low, target)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
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


def tick_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) < 1e-9 and abs(exponent) >= 3:
        return f"1e{round(exponent)}" if value > 0 else f"-1e{round(exponent)}"
    return format(value, ".3g")


def loss_plot(series: list[Series], *, title: str, width: int = 520, height: int = 300) -> Markup:
    """Loss against step; a null or infinite loss (a diverged median run) breaks the line and is marked
    at the top edge."""
    left, right, top, bottom = 62, 14, 30, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [(float(x), float(y)) for s in series for x, y in s.points
              if x is not None and y is not None and math.isfinite(y)]
    frame = {"width": width, "height": height, "left": left, "top": top, "plot_w": plot_w, "plot_h": plot_h,
             "title": title}
    if not finite:
        return Markup(ENV.get_template("plot.svg.j2").render(frame=frame, empty=True))
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

    y_ticks = [(f"{py(t):.1f}", f"{py(t) + 4:.1f}", tick_label(t))
               for t in (log_ticks(y_low, y_high) if log_scale else linear_ticks(y_low, y_high))
               if top - 0.5 <= py(t) <= top + plot_h + 0.5]
    x_ticks = [(f"{px(t):.1f}", tick_label(t)) for t in linear_ticks(0.0, x_high)]
    drawn = []
    for s in series:
        out = DrawnSeries(s.label, s.colour, s.dashed)
        segments: list[list[tuple[float, float]]] = [[]]
        for step, loss in s.points:
            if step is None:
                continue
            if loss is None or not math.isfinite(loss):
                out.diverged_x = px(float(step)) if out.diverged_x is None else out.diverged_x
                segments.append([])
                continue
            segments[-1].append((px(float(step)), py(float(loss))))
        for segment in segments:
            if len(segment) >= 2:
                out.lines.append(" ".join(f"{x:.1f},{y:.1f}" for x, y in segment))
            out.dots += [(f"{x:.1f}", f"{y:.1f}") for x, y in segment]
        drawn.append(out)
    return Markup(ENV.get_template("plot.svg.j2").render(
        frame=frame, empty=False, log_scale=log_scale, y_ticks=y_ticks, x_ticks=x_ticks, series=drawn,
        legend_x=left + plot_w - 170))
