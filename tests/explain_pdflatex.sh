#!/bin/sh
# gradpath explain --format latex --standalone compiles with pdflatex, for every example
# model. Exit 77 (ctest: skipped) when pdflatex is not installed.
set -eu
command=$1
source_dir=$2
if ! command -v pdflatex >/dev/null 2>&1; then
  echo "pdflatex is not installed (apt-get install texlive-latex-base): skipped"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for model in "$source_dir"/examples/models/*.json; do
  name=$(basename "$model" .json)
  "$command" explain "$model" --format latex --standalone --lr 0.1 -o "$work/$name.tex"
  if ! (cd "$work" && pdflatex -interaction=nonstopmode -halt-on-error "$name.tex" >"$name.out" 2>&1); then
    echo "pdflatex failed on the derivation of $model:"
    tail -n 30 "$work/$name.out"
    exit 1
  fi
  echo "$name.tex: $(grep -c '' "$work/$name.tex") lines compiled to $name.pdf"
done
