"""The training report: metrics.json, report.md and PNG plots (quality-cost curve, calibration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(folder: Path, result: dict[str, Any], manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    plots = _plots(folder, result)
    (folder / "report.md").write_text(markdown(result, manifest, plots), encoding="utf-8")


def _plots(folder: Path, result: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if "sweep" in result:
        fig, ax = plt.subplots(figsize=(6, 4))
        pts = result["sweep"]
        ax.plot(
            [p["cost"] for p in pts], [p["quality"] for p in pts], "o-", label="router (cost_weight sweep)"
        )
        for m, s in result["curve"]["single_models"].items():
            ax.plot(s["cost"], s["quality"], "s", label=m)
        ax.set_xscale("log")
        ax.set_xlabel("mean cost per prompt (USD)")
        ax.set_ylabel("mean quality")
        ax.set_title(f"Held-out quality-cost curve (AIQ {result['curve']['aiq']:.3f})")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(folder / "quality_cost.png", dpi=110)
        plt.close(fig)
        made.append("quality_cost.png")
    fig, ax = plt.subplots(figsize=(4, 4))
    rel = result["reliability"]
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot([r["confidence"] for r in rel], [r["observed"] for r in rel], "o-")
    ax.set_xlabel("predicted quality")
    ax.set_ylabel("observed score")
    ax.set_title(f"Calibration (ECE {result['ece']:.3f})")
    fig.tight_layout()
    fig.savefig(folder / "calibration.png", dpi=110)
    plt.close(fig)
    made.append("calibration.png")
    return made


def markdown(result: dict[str, Any], manifest: dict[str, Any], plots: list[str]) -> str:
    lines = [
        "# Router training report",
        "",
        f"- data: `{manifest['data']['source']}` (sha256 `{manifest['data']['sha256'][:16]}…`), "
        f"{manifest['data']['prompts']} prompts, {len(result['models'])} models",
        f"- command: `{manifest['command']}`",
        *_rows_line(result.get("rows")),
        f"- held-out prompts: {result['validation_prompts']} (grouped by text; heads fitted on the other "
        f"{result['train_prompts']})",
        f"- Brier score {result['brier']:.4f}, calibration ECE {result['ece']:.4f}"
        + (
            f", ECE of the selected model at cost_weight 0: {result['selected_ece']:.4f}"
            if "selected_ece" in result
            else ""
        ),
        f"- hyper-parameters: {json.dumps(result['hyperparameters']['blend'])}, "
        f"k = {result['hyperparameters']['knn_k']}, neighbours count from a mean similarity of "
        f"{result['hyperparameters']['near'][0]:g} and in full from "
        f"{result['hyperparameters']['near'][1]:g}",
        f"- ONNX heads vs fitted models: max |diff| {result['onnx_max_abs_diff']:.1e}",
        "",
    ]
    if "curve" in result:
        c = result["curve"]
        apgr = "n/a" if c["apgr"] is None else f"{c['apgr']:.3f}"
        lines += [
            "## Quality-cost curve (held-out)",
            "",
            f"AIQ **{c['aiq']:.4f}** vs {c['aiq_zero']:.4f} for the best mix of single models; APGR {apgr}.",
            "",
            "| model | mean cost (USD) | mean quality |",
            "|---|---|---|",
        ]
        lines += [f"| {m} | {s['cost']:.6f} | {s['quality']:.4f} |" for m, s in c["single_models"].items()]
        lines += ["", "| cost_weight | mean cost | mean quality |", "|---|---|---|"]
        lines += [
            f"| {p['cost_weight']:.2f} | {p['cost']:.6f} | {p['quality']:.4f} |" for p in result["sweep"]
        ]
        lines.append("")
    lines += _calibration_section(result.get("ece_by_source"))
    lines += _model_rows_section(result.get("model_rows"))
    lines += _prompt_labels_section(result.get("prompt_labels"))
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _calibration_section(per_source: dict[str, Any] | None) -> list[str]:
    """Brier score and ECE of the predicted quality per dataset of the held-out rows."""
    if not per_source:
        return []
    return [
        "## Calibration per dataset (held-out)",
        "",
        "| dataset | outcomes | Brier | ECE |",
        "|---|---|---|---|",
        *(f"| {n} | {v['outcomes']} | {v['brier']:.4f} | {v['ece']:.4f} |" for n, v in per_source.items()),
        "",
    ]


def _prompt_labels_section(rep: dict[str, Any] | None) -> list[str]:
    """The capability and complexity heads on the labelled prompts kept out of training
    (training/prompt_labels.py): accuracy, confusion matrix, mean complexity."""
    if not rep:
        return []
    labels = rep["labels"]
    lines = [
        "## Capability and complexity heads on held-out labelled prompts",
        "",
        f"{rep['prompts']} prompts kept out of training by text hash: real user-style prompts "
        "(Arena-Hard, MT-Bench, Vicuna, RouterArena, GSM8K, HumanEval, llmfao) and held-out seeds.",
        "",
    ]
    for name in ("real", "seeds"):
        part = rep[name]
        if not part["n"]:
            continue
        lines += [
            f"**{name}**: top-1 accuracy {part['accuracy']:.3f} on {part['n']} prompts.",
            "",
            "| capability | prompts | accuracy |",
            "|---|---|---|",
            *(f"| {c} | {v['n']} | {v['accuracy']:.3f} |" for c, v in part["per_capability"].items()),
            "",
            "| true \\ predicted | " + " | ".join(labels) + " |",
            "|---|" + "---|" * len(labels),
            *(
                f"| {c} | " + " | ".join(str(x) for x in row) + " |"
                for c, row in zip(labels, part["confusion"], strict=True)
                if sum(row)
            ),
            "",
        ]
    cx = rep["complexity"]
    lines += [
        "| source | prompts | accuracy | mean complexity |",
        "|---|---|---|---|",
        *(
            f"| {s} | {v['n']} | {v['accuracy']:.3f} | {v['complexity']:.3f} |"
            for s, v in rep["per_source"].items()
        ),
        "",
        "Mean predicted complexity per capability: "
        + ", ".join(f"{c} {v:.3f}" for c, v in cx["per_capability"].items())
        + ".",
        "",
        f"Trivial anchors (<= 0.1): {_mean(cx['trivial'])}; hard anchors (>= 0.8): {_mean(cx['hard'])}; "
        f"correlation with the anchors: {cx['anchor_correlation']}.",
        "",
    ]
    return lines


def _mean(part: dict[str, Any]) -> str:
    return f"{part['mean']:.3f} over {part['n']} prompts" if part["n"] else "none"


def _model_rows_section(model_rows: dict[str, Any] | None) -> list[str]:
    """A table: per model, the outcome rows it learned from, and how many each source gave."""
    if not model_rows:
        return []
    lines = ["## Outcome rows per model", "", "| model | rows | from |", "|---|---|---|"]
    for m, r in model_rows.items():
        parts = ", ".join(f"{src} {k}" for src, k in r["sources"].items())
        lines.append(f"| {m} | {r['rows']} | {parts} |")
    return [*lines, ""]


def _rows_line(rows: dict[str, Any] | None) -> list[str]:
    if not rows or not rows["base"]:
        return []
    return [
        f"- rows: {rows['base']} from the base set (`{rows['base_source']}`) and {rows['user']} of yours, "
        f"each of yours weighing {rows['user_weight']:g}"
    ]
