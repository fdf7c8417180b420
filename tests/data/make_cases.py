"""Writes tests/data/bad (malformed inputs, each breaking one thing) and tests/data/ok (valid but awkward).

Run from the repo root: .venv/bin/python tests/data/make_cases.py — the files are committed; this documents them.
"""

import io
import json
import zipfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
LABELS = ["HillaryClinton", "realDonaldTrump"]


def rows(n: int = 40) -> pd.DataFrame:
    """n distinct, clean rows, both classes equally."""
    return pd.DataFrame({"text": [f"Campaign message number {i} about jobs and taxes" for i in range(n)],
                         "label": [LABELS[i % 2] for i in range(n)]})


def csv_text(df: pd.DataFrame, **kw) -> str:
    return df.to_csv(index=False, **kw)


def bad_cases() -> dict[str, bytes | pd.DataFrame]:
    """File name -> content (bytes written as is; a DataFrame as CSV or Parquet by the suffix)."""
    base = rows()
    cases: dict[str, bytes | pd.DataFrame] = {}
    cases["empty.csv"] = b""
    cases["header_only.csv"] = b"text,label\n"
    cases["missing_text_column.csv"] = base.rename(columns={"text": "body"})
    cases["missing_label_column.csv"] = base.drop(columns="label")
    cases["wrong_delimiter.csv"] = csv_text(base, sep=";").encode()
    latin = base.copy()
    latin.loc[3, "text"] = "Caf\u00e9 con le\u00f1a"
    cases["non_utf8.csv"] = csv_text(latin).encode("latin-1")
    cases["binary_garbage.csv"] = bytes(range(256)) * 8
    xlsx = io.BytesIO()
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    cases["excel_renamed.csv"] = xlsx.getvalue()
    nulls = base.copy().astype(object)
    nulls.loc[[2, 9], "text"] = None
    cases["null_texts.parquet"] = nulls
    tokens = base.copy()
    tokens.loc[[1, 7, 12], "text"] = ["NULL", "", "\\N"]  # how exporters write a missing value
    cases["null_tokens.csv"] = tokens
    blank = base.copy()
    blank.loc[[4, 5], "text"] = ["   ", "\t"]
    cases["whitespace_texts.csv"] = blank
    unknown = base.copy()
    unknown.loc[6, "label"] = "BernieSanders"
    cases["unknown_label.csv"] = unknown
    cases["single_class.csv"] = base.assign(label=LABELS[0])
    dup = base.copy()
    dup.loc[::2, "text"] = "Make America great again!"
    cases["mass_duplicates.csv"] = dup
    near = base.copy()
    near.loc[:9, "text"] = [f"{'STRONGER' if i % 2 else 'stronger'}  together{'!' * i}" for i in range(10)]
    cases["near_duplicates.csv"] = near
    huge = base.copy()
    huge.loc[1, "text"] = "lorem ipsum " * 90_000  # ~1 MB cell
    cases["huge_cell.csv"] = huge
    cases["numeric_labels.csv"] = base.assign(label=[i % 2 for i in range(len(base))])
    ctrl = base.copy()
    ctrl.loc[8, "text"] = "ring the bell\x07 now"
    cases["control_chars.csv"] = ctrl
    skew = rows(230)
    skew["label"] = [LABELS[1] if i < 12 else LABELS[0] for i in range(230)]
    cases["imbalanced.csv"] = skew
    lines = [json.dumps(r) for r in base.to_dict("records")]
    lines[5] = lines[5][:-3]
    cases["broken_line.jsonl"] = ("\n".join(lines) + "\n").encode()
    cases["numbers_as_text.parquet"] = base.assign(text=range(len(base)))
    cases["csv_named_parquet.parquet"] = csv_text(base).encode()
    cases["spreadsheet.xlsx"] = xlsx.getvalue()
    leak = rows(80).assign(split=["train"] * 40 + ["validation"] * 20 + ["test"] * 20)
    leak.loc[65, "text"] = leak.loc[3, "text"].upper() + "!"  # a test row that is a training row, re-cased
    cases["train_test_leakage.csv"] = leak
    cases["unknown_split.csv"] = rows(40).assign(split=["train"] * 30 + ["holdout"] * 10)
    return cases


def ok_cases() -> dict[str, bytes | pd.DataFrame]:
    """Valid files that naive readers get wrong."""
    base = rows()
    quoted = base.copy()
    quoted.loc[0, "text"] = 'He said "jobs, jobs, jobs",\nthen left.'
    quoted.loc[1, "text"] = "Line one\r\nline two, with a comma"
    uni = base.copy()
    uni.loc[:4, "text"] = ["Vote \U0001f1fa\U0001f1f8 today \U0001f64c", "na\u00efve caf\u00e9 r\u00e9sum\u00e9",
                           "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
                           "\u4f60\u597d\uff0c\u4e16\u754c", "tab\tinside text"]
    return {
        "quoted_multiline.csv": quoted,
        "unicode_emoji.csv": uni,
        "utf8_bom.csv": b"\xef\xbb\xbf" + csv_text(base).encode(),
        "records.jsonl": ("\n".join(json.dumps(r, ensure_ascii=False) for r in uni.to_dict("records")) + "\n").encode(),
        "tabs.tsv": csv_text(uni.assign(text=uni["text"].str.replace("\t", " ")), sep="\t").encode(),
        "typed.parquet": uni,
        "with_split_column.csv": rows(80).assign(split=["train"] * 40 + ["validation"] * 20 + ["test"] * 20),
    }


def write(folder: Path, cases: dict[str, bytes | pd.DataFrame]) -> None:
    folder.mkdir(exist_ok=True)
    for name, content in cases.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif path.suffix == ".parquet":
            content.to_parquet(path, index=False)
        else:
            path.write_text(csv_text(content), encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "bad", bad_cases())
    write(HERE / "ok", ok_cases())
