#!/usr/bin/env bash
# gradpath report end to end: the page for the seed network loaded in headless Chromium
# (verdicts present, a click on w1 lights exactly its 4 paths, no script error), hostile
# formulas and file names inert, KaTeX absent, Graphviz absent, a 10,000-node tape
# collapsed; and the seed graph from gradpath dot at most 1600 px wide as a PNG.
# Usage: report_test.sh GRADPATH SOURCE_DIR [browser]; exit 77 (skipped) without chromium.
set -euo pipefail
gradpath=$1
source_dir=$2
mode=${3:-command}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
models=$source_dir/examples/models

png_width() { od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'; }

if [[ $mode == command ]]; then
  # The seed graph, layered, fits 1600 px at 100%.
  "$gradpath" dot "$models/seed.json" -o "$dir/seed.dot"
  dot -Tpng "$dir/seed.dot" -o "$dir/seed.png"
  width=$(png_width "$dir/seed.png")
  echo "seed graph PNG width: $width px"
  (( width <= 1600 )) || fail "seed graph is $width px wide"
  "$gradpath" dot "$models/seed.json" --highlight w1 --products --partials | grep -q "sum over 4 paths" ||
    fail "--products: no path table"
  # --collapse works for any op output: a ReLU's (the issue: it asked for "collapse_scopes").
  cat > "$dir/relu.json" <<'JSON'
{"inputs": {"x": {"shape": [4], "values": [0.5, -1.0, 2.0, -0.5]}, "t": {"shape": [], "values": [1.0]}},
 "params": {"v": {"shape": [4], "values": [0.1, 0.2, 0.3, 0.4]}, "b": {"shape": [], "values": [0.0]}},
 "graph": [{"op": "relu", "in": ["x"], "out": "r"}, {"op": "dense", "in": ["r", "v", "b"], "out": "y"},
           {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}], "loss": "L"}
JSON
  "$gradpath" dot "$dir/relu.json" --collapse r | grep -q 'label="r (1 node)"' || fail "--collapse r"
  "$gradpath" dot "$models/seed.json" --focus z2 --depth 1 | dot -Tpng -o "$dir/focus.png" || fail "--focus"
  # Unknown names are errors naming near ones.
  if "$gradpath" dot "$models/seed.json" --collapse zz 2> "$dir/err"; then fail "--collapse zz succeeded"; fi
  grep -q "no node, tensor or scope is named 'zz'; near names: z" "$dir/err" || fail "message: $(cat "$dir/err")"

  # The report, with formulas, and a hostile model file name and formula file.
  cp "$models/seed.json" "$dir/<img src=x onerror=alert(1)>.json"
  # (Without KaTeX, whose own code holds "<img": every tag left is gradpath's.)
  GRADPATH_KATEX_DIR=$dir/none "$gradpath" report "$dir/<img src=x onerror=alert(1)>.json" \
    "$source_dir/tests/report/hostile_formulas.tex" -o "$dir/hostile.html"
  scripts=$(grep -o "<script" "$dir/hostile.html" | wc -l)
  (( scripts == 3 )) || fail "hostile page has $scripts <script> tags, not 3 (errors, data, page)"
  if grep -q "<img" "$dir/hostile.html"; then fail "an <img> tag reached the page"; fi
  # Without KaTeX: raw LaTeX in <code>, and the page says so.
  GRADPATH_KATEX_DIR=$dir/none "$gradpath" report "$models/seed.json" "$source_dir/examples/seed_note_formulas.tex" \
    -o "$dir/nokatex.html"
  grep -q 'id="nokatex"' "$dir/nokatex.html" || fail "no note that KaTeX is missing"
  # Without Graphviz: a clear error.
  if PATH=/nonexistent "$gradpath" report "$models/seed.json" -o "$dir/x.html" 2> "$dir/err"; then
    fail "report without dot succeeded"
  fi
  grep -q "Graphviz's dot is not installed" "$dir/err" || fail "message: $(cat "$dir/err")"
  # A 10,000-node tape: collapsed by default, and says so.
  python3 - "$dir/big.json" <<'PY'
import json, sys
n = 34
model = {"inputs": {"a": {"shape": [n, n], "values": [((i * 7) % 11) / 10 for i in range(n * n)]},
                    "t": {"shape": [], "values": [1.0]}},
         "params": {"w": {"shape": [3, 3], "values": [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9]},
                    "v": {"shape": [(n - 2) ** 2], "values": [0.01] * (n - 2) ** 2},
                    "b": {"shape": [], "values": [0.1]}},
         "graph": [{"op": "conv2d_mac", "in": ["a", "w"], "stride": 1, "padding": 0, "out": "z"},
                   {"op": "flatten", "in": ["z"], "out": "f"},
                   {"op": "dense", "in": ["f", "v", "b"], "out": "y"},
                   {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}],
         "loss": "L"}
json.dump(model, open(sys.argv[1], "w"))
PY
  "$gradpath" report "$dir/big.json" -o "$dir/big.html"
  grep -q 'id="collapsed"' "$dir/big.html" || fail "large tape not collapsed"
  echo "report sizes: seed $(stat -c %s "$dir/nokatex.html") bytes without KaTeX, big $(stat -c %s "$dir/big.html") bytes"
  exit 0
fi

# In the browser.
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n $browser ]] || { echo "chromium is not installed: skipping the browser test"; exit 77; }
"$gradpath" report "$models/seed.json" "$source_dir/examples/seed_note_formulas.tex" -o "$dir/seed.html"
echo "seed report: $(stat -c %s "$dir/seed.html") bytes"
cp "$models/seed.json" "$dir/<img src=x onerror=alert(1)>.json"
"$gradpath" report "$dir/<img src=x onerror=alert(1)>.json" "$source_dir/tests/report/hostile_formulas.tex" \
  -o "$dir/hostile.html"
for page in seed hostile; do
  timeout 120 "$browser" --headless --disable-gpu --no-sandbox --user-data-dir="$dir/profile" \
    --dump-dom "file://$dir/$page.html#selftest" > "$dir/$page.dom" 2> "$dir/$page.log" || true
  check=$(grep -o '<div id="selfcheck"[^>]*>' "$dir/$page.dom" || true)
  echo "$page: $check"
  [[ $check == *'data-paths="4"'* ]] || fail "$page: a click on w1 does not list 4 paths"
  [[ $check == *'data-lit-edges="13"'* ]] || fail "$page: a click on w1 does not light the 13 edges of its 4 paths"
  grep -q '<div id="errors"></div>' "$dir/$page.dom" ||
    fail "$page: script errors: $(grep -o '<div id="errors">[^<]*' "$dir/$page.dom")"
  if grep -q "pwned" <(grep -o "<title>[^<]*</title>" "$dir/$page.dom" | head -1); then fail "$page: injected script ran"; fi
done
selfcheck=$(grep -o '<div id="selfcheck"[^>]*>' "$dir/seed.dom")
verdicts=$(grep -o 'data-verdicts="[0-9]*"' <<< "$selfcheck")
[[ $verdicts != 'data-verdicts="0"' ]] || fail "no verdicts"
grep -q 'class="verdict">fail</span>' "$dir/seed.dom" || fail "the note's wrong formula is not marked fail"
katex=$(grep -o 'data-katex="[0-9]*"' <<< "$selfcheck")
[[ $katex != 'data-katex="0"' ]] || fail "no formula rendered by KaTeX"
marked=$(grep -o 'data-marked="[0-9]*"' <<< "$selfcheck")
[[ $marked != 'data-marked="0"' ]] || fail "no wrong term marked in place"
echo "browser: $verdicts $katex $marked"
