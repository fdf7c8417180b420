"""What the report pages draw with: the page style, escaping, tables and matplotlib plots as inline SVG."""

from __future__ import annotations

import html
import io

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;
text-align:left;vertical-align:top} th{background:#f4f4f4} .ok{color:#176b2c} .bad{color:#b00020;font-weight:600}
.banner{padding:.8em 1em;border-radius:6px;font-size:1.15em} .pass{background:#e3f6e8} .fail{background:#fde2e2}
.answers li{margin:.25em 0} .plots{display:flex;flex-wrap:wrap;gap:1em} .plots svg{max-width:100%;height:auto}
code{background:#f4f4f4;padding:0 .3em} nav.links{margin:.3em 0 .8em;font-size:.95em}
.warn{background:#fff4d6;border-left:5px solid #e0a100;padding:.5em 1em;margin:.8em 0}
dl.glossary dt{font-weight:600;margin-top:.5em} dl.glossary dd{margin-left:1.5em;color:#333}"""


def esc(value) -> str:
    """HTML-escaped text of a value."""
    return html.escape(str(value))


def svg(fig) -> str:
    """A matplotlib figure as inline SVG markup (text as text), then closed."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def pyplot():
    """Matplotlib's pyplot on the Agg backend, SVG text kept as text, a fixed hash salt (reproducible pages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "graft"})
    return plt


def table_html(head: list[str], rows: list[list]) -> str:
    """An HTML table: escaped headers, cells as given (already HTML)."""
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def learning_curves(histories: dict[str, list[dict]]) -> str:
    """Loss and validation accuracy per epoch for each run (fine-tuned, scratch)."""
    plt = pyplot()
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, rows in histories.items():
        epochs = [r["epoch"] for r in rows]
        loss.plot(epochs, [r["train_loss"] for r in rows], "--", label=f"{name} train")
        loss.plot(epochs, [r["val_loss"] for r in rows], "-o", label=f"{name} validation")
        acc.plot(epochs, [r["val_accuracy"] for r in rows], "-o", label=name)
    from matplotlib.ticker import MaxNLocator

    loss.set(title="loss (train dashed, validation solid)", xlabel="epoch", ylabel="cross-entropy")
    acc.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (loss, acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 1.5 / 2.5 ticks
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, frameon=False)
    return svg(fig)


def intervals(comparisons: dict) -> str:
    """Each comparison's macro-F1 difference with its 95% interval (a forest plot), zero marked."""
    plt = pyplot()
    names = list(comparisons)
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(names)))
    for i, name in enumerate(names):
        c = comparisons[name]["macro_f1"]
        ax.errorbar(c["diff"], i, xerr=[[c["diff"] - c["ci_low"]], [c["ci_high"] - c["diff"]]], fmt="o", capsize=4)
        ax.annotate(f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]", (c["ci_high"], i),
                    xytext=(6, -3), textcoords="offset points", fontsize=8)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(names)), [n.replace("_vs_", " - ") for n in names])
    ax.set(xlabel="macro-F1 difference (95% CI)", ylim=(-0.6, len(names) - 0.4))
    ax.margins(x=0.35)
    return svg(fig)


def confusion(labels: list[str], matrix: list[list[int]]) -> str:
    """The fine-tuned model's confusion matrix as a heatmap with counts."""
    plt = pyplot()
    size = 1.6 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="actual", title="fine-tuned, test split")
    return svg(fig)
