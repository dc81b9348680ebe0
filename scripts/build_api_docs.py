"""Build the API reference (HTML) from the public API's docstrings with pdoc.

    python scripts/build_api_docs.py [OUT_DIR]      # default docs/api; `make docs` runs this

Documents `tunelab` (the names in `tunelab.__all__`) and `tunelab.integrations.kedro`; every other
module is internal and left out. A warning from pdoc (a broken cross-reference, an annotation it
cannot resolve) fails the build, so the reference cannot rot silently: tests/test_api_docs.py runs
this script in CI.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

PUBLIC = ["tunelab", "tunelab.integrations.kedro"]
# pdoc walks a package's submodules; this negative pattern keeps only the public ones.
INTERNAL = r"!tunelab\.(?!integrations\.kedro$).*"


def build(out: Path) -> list[Path]:
    import pdoc
    import pdoc.extract

    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modules = pdoc.extract.walk_specs([*PUBLIC, INTERNAL])
        pdoc.pdoc(*modules, output_directory=out)
    problems = [str(w.message) for w in caught if "pdoc" in (w.filename or "") or "tunelab" in str(w.message)]
    if problems:
        raise SystemExit("api docs: " + "\n".join(problems))
    return sorted(out.rglob("*.html"))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/api")
    pages = build(out)
    print(f"api docs: {len(pages)} pages in {out}")


if __name__ == "__main__":
    main()
