"""The result of :func:`tokforge.metrics.analyze`: rows of (tokenizer, language, metric, value,
params), written as CSV, JSON, a terminal table, PNG plots (matplotlib, the ``plot`` extra) and
a self-contained HTML page with those plots inline.

>>> r = Report([Row("a", "en", "fertility", 1.25, {}), Row("b", "en", "fertility", 1.5, {})])
>>> r.pivot("fertility")
{'a': {'en': 1.25}, 'b': {'en': 1.5}}
>>> print(r.to_csv().splitlines()[1])
a,en,fertility,1.25,{}
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import InputError

__all__ = ["Row", "Report", "TABLE_METRICS"]

#: Columns of the terminal table (one line per tokenizer × language).
TABLE_METRICS = (
    "fertility",
    "pcw",
    "bytes_per_token",
    "chars_per_token",
    "nsl",
    "premium",
    "renyi_efficiency",
    "vocab_utilisation",
    "split_char_rate",
    "throughput_mb_s",
)

_SHORT = {
    "fertility": "fert",
    "pcw": "PCW",
    "bytes_per_token": "B/tok",
    "chars_per_token": "C/tok",
    "nsl": "NSL",
    "premium": "premium",
    "renyi_efficiency": "Rényi",
    "vocab_utilisation": "VU",
    "split_char_rate": "split%",
    "throughput_mb_s": "MB/s",
}


@dataclass(frozen=True)
class Row:
    """One number: ``value`` of ``metric`` for ``tokenizer`` on ``language`` (``"*"`` for
    vocabulary-level metrics), with the parameters that define it (α, reference, unit...);
    ``value`` is ``None`` when undefined, with ``params["reason"]``."""

    tokenizer: str
    language: str
    metric: str
    value: Optional[float]
    params: dict[str, Any] = field(default_factory=dict)


def _num(v: Optional[float]) -> Optional[float]:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _fmt(v: Optional[float]) -> str:
    v = _num(v)
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


class Report:
    """Rows plus notes (warnings such as "fertility per character for zh")."""

    def __init__(self, rows: Iterable[Row], notes: Sequence[str] = ()) -> None:
        self.rows = list(rows)
        self.notes = list(notes)

    # ---- access ---------------------------------------------------------------------------
    @property
    def tokenizers(self) -> list[str]:
        return list(dict.fromkeys(r.tokenizer for r in self.rows if r.tokenizer != "*"))

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys(r.language for r in self.rows if r.language != "*"))

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(r.metric for r in self.rows))

    def value(self, tokenizer: str, language: str, metric: str) -> Optional[float]:
        """The value of one cell (``KeyError`` if the report has no such row)."""
        for r in self.rows:
            if (r.tokenizer, r.language, r.metric) == (tokenizer, language, metric):
                return r.value
        raise KeyError((tokenizer, language, metric))

    def pivot(self, metric: str) -> dict[str, dict[str, Optional[float]]]:
        """``{tokenizer: {language: value}}`` of one metric."""
        out: dict[str, dict[str, Optional[float]]] = {}
        for r in self.rows:
            if r.metric == metric:
                out.setdefault(r.tokenizer, {})[r.language] = r.value
        return out

    def correlation(
        self, metric: str, scores: dict[str, float], *, language: Optional[str] = None
    ) -> float:
        """Pearson r between a metric and a downstream score per tokenizer (``scores``), over
        the tokenizers that have both (one language: ``language``, or the only one there is).

        >>> rows = [Row(t, "tr", "tr_pct", v, {}) for t, v in
        ...         [("gemma-2", 48.63), ("llama-3.1", 45.80), ("qwen2.5", 40.33), ("aya", 50.67)]]
        >>> mmlu = {"gemma-2": 72.10, "llama-3.1": 70.42, "qwen2.5": 61.68, "aya": 70.66}
        >>> round(Report(rows).correlation("tr_pct", mmlu), 2)
        0.9
        """
        piv = self.pivot(metric)
        pairs = []
        for tok, score in scores.items():
            vals = piv.get(tok, {})
            if language is None and len(vals) > 1:
                raise InputError(f"{metric} has several languages {list(vals)}: pass language=")
            v = _num(
                vals.get(language) if language is not None else next(iter(vals.values()), None)
            )
            if v is not None:
                pairs.append((v, float(score)))
        if len(pairs) < 3:
            raise InputError(f"a correlation needs 3 or more tokenizers with {metric} and a score")
        xs, ys = zip(*pairs)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxy = sum((x - mx) * (y - my) for x, y in pairs)
        sxx = sum((x - mx) ** 2 for x in xs)
        syy = sum((y - my) ** 2 for y in ys)
        if sxx == 0 or syy == 0:
            raise InputError("a correlation needs values that vary")
        return sxy / math.sqrt(sxx * syy)

    # ---- text formats ---------------------------------------------------------------------
    def to_csv(self) -> str:
        """CSV with a header; ``params`` as compact JSON."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["tokenizer", "language", "metric", "value", "params"])
        for r in self.rows:
            v = _num(r.value)
            p = json.dumps(r.params, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            w.writerow([r.tokenizer, r.language, r.metric, "" if v is None else repr(v), p])
        return buf.getvalue()

    def to_json(self) -> str:
        """``{"rows": [...], "notes": [...]}`` (NaN written as null)."""
        rows = [{**asdict(r), "value": _num(r.value)} for r in self.rows]
        return json.dumps({"rows": rows, "notes": self.notes}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Report:
        doc = json.loads(text)
        return cls([Row(**r) for r in doc["rows"]], doc.get("notes", ()))

    def table(self, metrics: Sequence[str] = TABLE_METRICS) -> str:
        """A readable terminal table: one line per tokenizer × language."""
        metrics = [m for m in metrics if m in set(self.metrics)]
        cells: dict[tuple[str, str], dict[str, Optional[float]]] = {}
        for r in self.rows:
            if r.language != "*" and r.metric in metrics:
                cells.setdefault((r.tokenizer, r.language), {})[r.metric] = r.value
        if not cells:
            return "(no corpus metrics)"
        tw = max(9, *(len(t) for t, _ in cells))
        lw = max(8, *(len(lang) for _, lang in cells))
        head = f"{'tokenizer':<{tw}}  {'language':<{lw}}" + "".join(
            f"{_SHORT.get(m, m):>9}" for m in metrics
        )
        lines = [head, "-" * len(head)]
        for (t, lang), vals in cells.items():
            line = f"{t:<{tw}}  {lang:<{lw}}"
            for m in metrics:
                v = _num(vals.get(m))
                line += f"{'-':>9}" if v is None else f"{v:>9.3f}"
            lines.append(line)
        renyi = next((r for r in self.rows if r.metric == "renyi_efficiency"), None)
        if renyi is not None and "renyi_efficiency" in metrics:
            lines.append(f"Rényi: alpha={renyi.params.get('alpha')}, V = {renyi.params.get('V')}")
        vocab = [r for r in self.rows if r.language == "*" and r.metric == "vocab_size"]
        if vocab:
            lines += [
                "",
                "vocabulary: " + ", ".join(f"{r.tokenizer} {r.value:,.0f}" for r in vocab),
            ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self, metric: str, languages: Optional[Sequence[str]] = None) -> str:
        """One metric as a Markdown table: tokenizers × languages.

        >>> print(Report([Row("a", "en", "pcw", 0.25, {})]).markdown("pcw"))
        | tokenizer | en |
        | --- | ---: |
        | a | 0.25 |
        """
        piv = self.pivot(metric)
        langs = list(languages or dict.fromkeys(lang for d in piv.values() for lang in d))
        lines = [
            "| tokenizer | " + " | ".join(langs) + " |",
            "| --- |" + " ---: |" * len(langs),
        ]
        for t, vals in piv.items():
            lines.append(f"| {t} | " + " | ".join(_fmt(vals.get(lang)) for lang in langs) + " |")
        return "\n".join(lines)

    # ---- plots ----------------------------------------------------------------------------
    def _figures(self) -> list[tuple[str, str, bytes]]:
        """``(name, title, PNG bytes)`` of every plot the rows allow."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise InputError("plots need matplotlib: pip install 'tokforge[plot]'") from None
        figs: list[tuple[str, str, bytes]] = []

        def bars(
            name: str,
            title: str,
            data: dict[str, dict[str, Optional[float]]],
            ylabel: str,
            log: bool = False,
        ) -> None:
            groups = list(dict.fromkeys(k for d in data.values() for k in d))
            series = list(data)
            if not groups or not series:
                return
            width_in = min(15.0, max(6.0, 0.12 * len(groups) * len(series) + 2.0))
            fig, ax = plt.subplots(figsize=(width_in, 3.8))
            width = 0.8 / len(series)
            for i, s in enumerate(series):
                xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
                ys = [_num(data[s].get(g)) or 0.0 for g in groups]
                ax.bar(xs, ys, width=width, label=s)
            vals = sorted(v for d in data.values() for v in map(_num, d.values()) if v)
            if log and vals and vals[-1] > 10 * vals[len(vals) // 2]:
                ax.set_yscale("log")  # an outlier (a script without spaces) must not hide the rest
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels(groups, rotation=60 if len(groups) > 8 else 0, fontsize=8)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.legend(fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            plt.close(fig)
            figs.append((name, title, buf.getvalue()))

        for metric, title, ylabel in (
            ("fertility", "Fertility (tokens per word; per character for zh/ja/th)", "tokens"),
            ("premium", "Premium vs English on parallel text (1 = parity)", "ratio"),
            ("bytes_per_token", "Bytes per token", "bytes"),
            ("renyi_efficiency", "Rényi efficiency", "efficiency"),
        ):
            pivot = {t: v for t, v in self.pivot(metric).items() if t != "*"}
            if pivot:
                bars(metric, title, pivot, ylabel, log=True)
        if any(r.metric.startswith("qtok.") for r in self.rows):
            data: dict[str, dict[str, Optional[float]]] = {}
            for r in self.rows:
                if r.metric.startswith("qtok.") and r.metric.count(".") == 1:
                    data.setdefault(r.tokenizer, {})[r.metric[5:]] = r.value
            bars("qtok_categories", "Qtok categories (% of vocabulary)", data, "%")
            scripts: dict[str, dict[str, Optional[float]]] = {}
            for r in self.rows:
                if r.metric.startswith("qtok.script.") and (r.value or 0) > 1.0:
                    scripts.setdefault(r.tokenizer, {})[r.metric[12:]] = r.value
            bars("qtok_scripts", "Scripts of alpha tokens (% of alpha tokens, > 1%)", scripts, "%")
        pur: dict[str, dict[str, Optional[float]]] = {}
        for r in self.rows:
            if r.metric in ("tr_pct", "pure_pct"):
                label = ("%TR " if r.metric == "tr_pct" else "%Pure ") + r.language
                pur.setdefault(r.tokenizer, {})[label] = r.value
        if pur:
            bars("purity", "%TR and %Pure (type-weighted, offline validator)", pur, "%")
        return figs

    def plot(self, directory: Union[str, Path]) -> list[Path]:
        """Write one PNG per plot into ``directory``; returns the paths. Needs matplotlib."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, _, png in self._figures():
            p = d / f"{name}.png"
            p.write_bytes(png)
            out.append(p)
        return out

    def html(self, path: Union[str, Path]) -> Path:
        """Write a self-contained HTML page: plots inline (PNG data URIs), one table per metric
        (tokenizers × languages), notes. Needs matplotlib for the plots."""
        figs = self._figures()
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>tokforge analyze</title>",
            "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
            "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px}"
            "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%;border:1px solid #eee;margin:0.5em 0}</style></head><body>",
            "<h1>Tokenizer comparison</h1>",
            f"<p>Tokenizers: {html.escape(', '.join(self.tokenizers))}. "
            f"Languages: {html.escape(', '.join(self.languages))}.</p>",
        ]
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes))
            parts.append("</ul>")
        parts.append("<h2>Plots</h2>")
        for name, title, png in figs:
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure id='{name}'><img alt='{html.escape(title)}' "
                f"src='data:image/png;base64,{b64}'><figcaption>{html.escape(title)}"
                "</figcaption></figure>"
            )
        parts.append("<h2>Tables</h2>")
        for metric in self.metrics:
            piv = self.pivot(metric)
            langs = list(dict.fromkeys(lang for d in piv.values() for lang in d))
            # parameters that every row of the metric shares (alpha, reference, ...)
            plist = [r.params for r in self.rows if r.metric == metric]
            common = {k: v for k, v in plist[0].items() if all(p.get(k) == v for p in plist)}
            ptxt = ", ".join(f"{k}={v}" for k, v in common.items())
            parts.append(f"<h3>{html.escape(metric)}</h3>")
            if ptxt:
                parts.append(f"<p><small>{html.escape(ptxt)}</small></p>")
            parts.append("<table><tr><th>tokenizer</th>")
            parts.append("".join(f"<th>{html.escape(lang)}</th>" for lang in langs) + "</tr>")
            for t, vals in piv.items():
                cells = "".join(f"<td>{_fmt(vals.get(lang))}</td>" for lang in langs)
                parts.append(f"<tr><td>{html.escape(t)}</td>{cells}</tr>")
            parts.append("</table>")
        parts.append("</body></html>")
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(parts), encoding="utf-8")
        return p
