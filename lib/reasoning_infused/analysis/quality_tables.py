"""Reasoning quality as tables: the terminal's and the report's (markdown), from reasoning_quality.json."""

from __future__ import annotations

from typing import Any


def _label_noun(report: dict[str, Any]) -> str:
    """What the labels are called in the tables: emotions for the emotion task (older reports name no task)."""
    return "emotion" if report.get("task", "emotion") == "emotion" else "label"


def _cue_share(r: dict[str, Any], with_ci: bool) -> str:
    """The share of rows whose reasoning quotes the text's cue; n/a for a task that declares no cue (e-SNLI)."""
    if r.get("quotes_cue") is None:
        return "n/a (the task declares no cue)"
    ci = r.get("quotes_cue_ci")
    interval = f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if with_ci and ci else ""
    return (
        f"{r['quotes_cue']:.1%}{interval} ({r['rows_with_a_cue']:,})" if with_ci else f"{r['quotes_cue']:.1%}"
    )


def quality_table(report: dict[str, Any]) -> str:
    """The headline metrics of each assessed set, as plain text."""
    noun = _label_noun(report)
    lines = []
    for name in ("training_reasonings", "human_training_reasonings", "qra_test_reasonings"):
        r = report.get(name)
        if not r:
            continue
        inf = r["informativeness"]
        cut = "n/a" if r["cut_at_limit"] is None else f"{r['cut_at_limit']:.1%}"
        lines += [
            f"{name} ({r['rows']} rows)",
            f"  length median {r['length_tokens']['median']:.0f} tokens (p90 {r['length_tokens']['p90']:.0f}), "
            f"cut at the limit {cut}, "
            f"repetitive {r['repetitive']:.1%}, distinct-1 {r['distinct_1']:.3f}, distinct-2 {r['distinct_2']:.3f}",
            f"  leaks the gold {noun} {r['leaks_gold']:.1%}, names another {r['names_other_emotion']:.1%}",
            f"  grounding {r['grounding']:.3f} [{r['grounding_ci'][0]:.3f}, {r['grounding_ci'][1]:.3f}] "
            f"(share of content words from the text); quotes the cue {_cue_share(r, False)} of "
            f"{r['rows_with_a_cue']} rows with one",
            f"  LAS {inf['las'] * 100:+.1f} points [{inf['las_ci'][0] * 100:+.1f}, {inf['las_ci'][1] * 100:+.1f}] "
            f"({inf['simulator']})",
            "  most frequent: "
            + "; ".join(f"{m['count']}× {m['reasoning'][:60]!r}" for m in r["most_frequent"][:3]),
        ]
    g = report.get("generator_heldout")
    if g:
        lines.append(
            f"generator on {g['rows']} held-out triples: token F1 {g['token_f1']:.3f} "
            f"[{g['token_f1_ci'][0]:.3f}, {g['token_f1_ci'][1]:.3f}], ROUGE-L {g['rouge_l']:.3f} "
            f"[{g['rouge_l_ci'][0]:.3f}, {g['rouge_l_ci'][1]:.3f}] against the human rationales"
        )
    return "\n".join(lines)


def quality_markdown(report: dict[str, Any]) -> str:
    """The README's reasoning-quality table, rendered from reasoning_quality.json."""
    noun = _label_noun(report)
    sets = [
        (k, v)
        for k, v in (
            ("training reasonings (augmentation)", report.get("training_reasonings")),
            ("human reasonings of the same rows", report.get("human_training_reasonings")),
            ("Q→RA reasonings at test", report.get("qra_test_reasonings")),
        )
        if v
    ]

    def ci(x: list[float], scale: float = 1.0, fmt: str = ".3f") -> str:
        return f"[{x[0] * scale:{fmt}}, {x[1] * scale:{fmt}}]"

    def group(r: dict[str, Any], name: str) -> str:
        g = r["informativeness"]["groups"][name]
        if not g["n"]:
            return "—"
        return f"{g['accuracy_text_only']:.2f} → {g['accuracy_text_and_reasoning']:.2f} (n = {g['n']:,})"

    rows = [
        ("rows", lambda r: f"{r['rows']:,}"),
        (
            "median length (p90), tokens",
            lambda r: f"{r['length_tokens']['median']:.0f} ({r['length_tokens']['p90']:.0f})",
        ),
        (
            "cut at the token limit",
            lambda r: "n/a" if r["cut_at_limit"] is None else f"{r['cut_at_limit']:.1%}",
        ),
        ("repetitive", lambda r: f"{r['repetitive']:.1%}"),
        ("distinct-1 / distinct-2", lambda r: f"{r['distinct_1']:.3f} / {r['distinct_2']:.3f}"),
        (
            "most frequent reasoning",
            lambda r: f"{r['most_frequent'][0]['count']}× “{r['most_frequent'][0]['reasoning'][:50]}”",
        ),
        (f"names the gold {noun} (leaks)", lambda r: f"{r['leaks_gold']:.1%}"),
        (f"names another {noun}", lambda r: f"{r['names_other_emotion']:.1%}"),
        ("grounding: content words from the text", lambda r: f"{r['grounding']:.3f} {ci(r['grounding_ci'])}"),
        (
            "quotes the text's cue (rows with one)",
            lambda r: _cue_share(r, True),
        ),
        ("simulator accuracy, leaking rows: text → text + reasoning", lambda r: group(r, "leaking")),
        ("simulator accuracy, other rows: text → text + reasoning", lambda r: group(r, "not_leaking")),
        (
            "LAS (points)",
            lambda r: (
                f"{r['informativeness']['las'] * 100:+.1f} {ci(r['informativeness']['las_ci'], 100, '+.1f')}"
            ),
        ),
    ]
    lines = [
        f"Experiment `{report['experiment']}`, code `{report['code_version']}`; 95% percentile-bootstrap intervals over "
        "rows. Simulator: TF-IDF + logistic regression, cross-fitted on the training reasonings (5 folds) and, for "
        "the test reasonings, trained on the training reasonings.",
        "",
        "| metric | " + " | ".join(name for name, _ in sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    lines += [f"| {label} | " + " | ".join(f(r) for _, r in sets) + " |" for label, f in rows]
    g = report.get("generator_heldout")
    if g:
        lines += [
            "",
            f"The generator on its {g['rows']} held-out triples (FLAN/e-SNLI, never trained on), against the human "
            f"rationales: token F1 {g['token_f1']:.3f} [{g['token_f1_ci'][0]:.3f}, {g['token_f1_ci'][1]:.3f}], "
            f"ROUGE-L {g['rouge_l']:.3f} [{g['rouge_l_ci'][0]:.3f}, {g['rouge_l_ci'][1]:.3f}]; median "
            f"{g['generated']['median_words']:.0f} words against the humans' {g['human']['median_words']:.0f}, "
            f"{g['generated']['cut_at_limit']:.0%} cut at the token limit, repetitive {g['generated']['repetitive']:.0%} "
            f"(human {g['human']['repetitive']:.0%}), distinct-2 {g['generated']['distinct_2']:.3f} (human "
            f"{g['human']['distinct_2']:.3f}).",
        ]
    return "\n".join(lines)
