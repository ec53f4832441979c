// SPDX-License-Identifier: MIT
// Lexer and recursive-descent parser of the formula language, and the file splitter.
#include "check/formula.hpp"

#include "autodiff/functions.hpp"
#include "graph/symbolic.hpp"
#include "graph/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

namespace gradpath::check {

namespace {

// ---- code points ----------------------------------------------------------------------

struct CodePoint {
  char32_t c;
  SourcePos pos;
};

// Decodes UTF-8 (invalid bytes pass through one by one) and numbers lines and columns.
std::vector<CodePoint> decode(std::string_view text, SourcePos start) {
  std::vector<CodePoint> out;
  SourcePos pos = start;
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    const int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : 0;
    char32_t c = extra == 0 ? b : (b & (0x3F >> extra));
    std::size_t len = 1;
    if (extra > 0 && i + extra < text.size()) {
      len = static_cast<std::size_t>(extra) + 1;
      for (int k = 1; k <= extra; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    out.push_back({c, pos});
    i += len;
    if (c == U'\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
  }
  return out;
}

std::string encode(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// 'x', or for what a terminal would not show plainly, its code point: ' ' (U+00A0).
std::string describe_code_point(char32_t c) {
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
  const bool plain = c > 0x20 && c < 0x7F;
  const bool control = c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0);
  const bool space = c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F ||
                     c == 0x3000 || c == 0x2028 || c == 0x2029;
  const bool invisible = (c >= 0x200B && c <= 0x200F) || c == 0xFEFF || c == 0x2060;
  if (plain) return "'" + std::string(1, static_cast<char>(c)) + "'";
  if (control) return std::string(code) + " (a control character)";
  if (space) return std::string(code) + " (a space other than ' ': retype it)";
  if (invisible) return std::string(code) + " (an invisible character: delete it)";
  return "'" + encode(c) + "' (" + code + ")";
}

bool is_letter(char32_t c) { return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z'); }
bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_space(char32_t c) { return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r'; }

// ---- tokens ---------------------------------------------------------------------------

enum class Tok {
  Number,
  Name,
  Derivative,
  Partial,
  Function,
  Frac,
  Plus,
  Minus,
  Star,
  Slash,
  Caret,
  Superscript,  // ², ³: a power written as one code point (∂²L, ∂w₁²); number = the power
  Equals,
  Compare,  // > < >= <= inside an Iverson bracket [z > 0]
  Implies,
  Comma,      // \max(a, b) and "i = 1, \dots, 9" (a subscript reads its own commas: W_{1,2})
  Indicator,  // \mathbb{1}, \mathbf{1}, 𝟙: the condition follows in brackets (or as a subscript)
  BigSum,     // \sum, Σ, ∑ with its subscript (text) and upper bound (wrt)
  Defines,    // :=, \coloneqq, \equiv, ≔, ≡
  Forall,     // \forall, ∀, \text{for}
  In,         // \in, ∈
  Let,        // let, \text{let}
  Transpose,  // \top, \intercal after ^; ᵀ by itself
  Hadamard,   // \odot, \circ, ⊙, ∘
  Ellipsis,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  End,
};

struct Token {
  Tok kind = Tok::End;
  std::string text;      // Name: canonical name; Derivative: what is differentiated; Function: its name
  std::string wrt;       // Derivative
  std::string wrt2;      // Derivative of the second order (d2L/dw1dw2): the second variable
  double number = 0.0;   // Number, Superscript
  std::string spelling;  // as written, for messages
  SourcePos pos, wrt_pos, wrt2_pos;
  SourcePos end;                                   // column of the last code point
  WrittenName written, wrt_written, wrt2_written;  // Name, Derivative: as written
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// A function: one of the table (autodiff/functions.hpp) by its name or a listed spelling,
// exactly (only a listed spelling may differ in case, so a node called Max or Exp stays a
// name), or max, min and step, which are read into comparisons.
constexpr std::array comparisons{"max", "min", "step"};
bool is_function(std::string_view name) {
  return function_spelled(name) != nullptr ||
         std::find(comparisons.begin(), comparisons.end(), name) != comparisons.end();
}

// Greek letters are names (δ_k, \alpha); σ is the sigmoid and Σ a sum.
constexpr std::array greek{"alpha", "beta",    "gamma",  "delta",  "epsilon", "varepsilon", "zeta",  "eta",
                           "theta", "iota",    "kappa",  "lambda", "mu",      "nu",         "xi",    "rho",
                           "tau",   "upsilon", "phi",    "varphi", "chi",     "psi",        "omega", "Gamma",
                           "Delta", "Theta",   "Lambda", "Xi",     "Phi",     "Psi",        "Omega"};
// The same letters in Unicode, from α (U+03B1) to ω (U+03C9); "" where the letter is no name.
std::string_view unicode_greek(char32_t c) {
  constexpr std::array<const char*, 25> lowercase{
      "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",   "iota", "kappa", "lambda", "mu",   "nu",
      "xi",    "",     "",      "rho",   "",        "",     "tau", "upsilon", "phi",  "chi",   "psi",    "omega"};
  if (c >= U'\u03B1' && c <= U'\u03C9') return lowercase[c - U'\u03B1'];
  if (c == U'\u0394') return "Delta";
  return "";
}

// ₀…₉, ᵢ ⱼ ₖ ₘ ₙ and ₊ ₋ ₍ ₎ as subscript characters; 0 for any other code point.
char unicode_subscript(char32_t c) {
  if (c >= U'\u2080' && c <= U'\u2089') return static_cast<char>('0' + (c - U'\u2080'));
  switch (c) {
    case U'\u1D62':
      return 'i';
    case U'\u2C7C':
      return 'j';
    case U'\u2096':
      return 'k';
    case U'\u2098':
      return 'm';
    case U'\u2099':
      return 'n';
    case U'\u208A':
      return '+';
    case U'\u208B':
      return '-';
    case U'\u208D':
      return '(';
    case U'\u208E':
      return ')';
    default:
      return 0;
  }
}

// A subscript of letters and digits only is part of the name (a_{13} is a13).
bool plain_subscript(std::string_view sub) {
  return std::all_of(sub.begin(), sub.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

class Lexer {
 public:
  Lexer(std::string_view text, SourcePos start) : text_(text), start_(start), cps_(decode(text, start)) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    while (true) {
      skip_space();
      if (i_ >= cps_.size()) break;
      if (std::optional<Token> t = next()) out.push_back(std::move(*t));
    }
    Token end;
    end.kind = Tok::End;
    end.spelling = "the end of the formula";
    end.pos = out.empty() ? start_ : SourcePos{out.back().end.line, out.back().end.column + 1};
    out.push_back(end);
    return out;
  }

 private:
  char32_t peek(std::size_t ahead = 0) const {
    return i_ + ahead < std::min(stop_, cps_.size()) ? cps_[i_ + ahead].c : U'\0';
  }
  SourcePos here() const { return i_ < cps_.size() ? cps_[i_].pos : (cps_.empty() ? start_ : cps_.back().pos); }
  SourcePos last() const { return cps_[i_ - 1].pos; }

  [[noreturn]] void fail(SourcePos pos, const std::string& what) const {
    throw ParseError(located_message(text_, start_, pos, what), pos);
  }

  void skip_space() {
    while (i_ < cps_.size() && (is_space(peek()) || peek() == U'&' || peek() == U'$')) ++i_;
  }

  Token make(Tok kind, SourcePos pos, std::string spelling) const {
    Token t;
    t.kind = kind;
    t.pos = pos;
    t.end = last();
    t.spelling = std::move(spelling);
    return t;
  }

  // A name: letters and digits, then an optional subscript (see subscripted).
  std::string name_run(WrittenName& written) {
    std::string base;
    while (is_letter(peek()) || is_digit(peek())) base += static_cast<char>(peek()), ++i_;
    return subscripted(base, written);
  }

  // `base` with the subscript that follows it: _x, _12, _{12}, _{i,j}, _{2(i-1)+m}, ₁₂, or
  // [1,2] right after the name. The canonical name keeps a subscript of letters and
  // digits (a_{13} -> a13); any other stays W_{1,2} until the checker binds it.
  std::string subscripted(const std::string& name, WrittenName& written) {
    std::string base = name + layer_superscript();
    written = {base, "", here()};
    if (peek() == U'_') {
      const SourcePos at = here();
      ++i_;
      written.pos = here();
      if (peek() == U'{') {
        ++i_;
        written.pos = here();
        written.subscript = subscript_text(U'}', at);
      } else if (is_letter(peek()) || is_digit(peek())) {
        while (is_letter(peek()) || is_digit(peek())) written.subscript += static_cast<char>(peek()), ++i_;
      } else {
        fail(here(), "expected a subscript after '_'");
      }
    } else if (unicode_subscript(peek()) != 0) {
      while (unicode_subscript(peek()) != 0) written.subscript += unicode_subscript(peek()), ++i_;
    } else if (peek() == U'[' && bracket_index()) {
      const SourcePos at = here();
      ++i_;
      written.pos = here();
      written.subscript = subscript_text(U']', at);
    }
    if (peek() == U'\u0302') ++i_;  // combining circumflex: y\u0302 is the hat of y
    if (base == name) {             // W_{1,2}^{(2)}: the layer after the subscript
      base += layer_superscript();
      written.base = base;
    }
    if (plain_subscript(written.subscript)) return base + written.subscript;
    return base + "_{" + written.subscript + "}";
  }

  // A layer written as a superscript in parentheses or brackets, W^{(2)}, W^{[2]}, W^{(2)}:
  // the digits, which name the tensor W2 as courses number layers; "" when none follows
  // (a power is written without brackets: x^2).
  std::string layer_superscript() {
    if (peek() != U'^') return {};
    std::size_t j = 1;
    const bool braced = peek(j) == U'{';
    if (braced) ++j;
    const char32_t open = peek(j);
    if (open != U'(' && open != U'[') return {};
    const char32_t close = open == U'(' ? U')' : U']';
    std::string digits;
    for (++j; is_digit(peek(j)); ++j) digits += static_cast<char>(peek(j));
    if (digits.empty() || peek(j) != close) return {};
    ++j;
    if (braced && peek(j++) != U'}') return {};
    i_ += j;
    return digits;
  }

  // The text of a subscript up to `close`: numbers, index letters, + - * ( ) and commas;
  // spaces and \, are left out.
  std::string subscript_text(char32_t close, SourcePos opened) {
    std::string sub;
    while (i_ < cps_.size() && peek() != close) {
      const char32_t c = peek();
      if (c == U'\\' && (peek(1) == U',' || peek(1) == U';' || peek(1) == U'!' || peek(1) == U' ')) {
        i_ += 2;
      } else if (is_space(c)) {
        ++i_;
      } else if (is_letter(c) || is_digit(c) || c == U',' || c == U'+' || c == U'-' || c == U'(' || c == U')' ||
                 c == U'*' || c == U'=') {
        sub += static_cast<char>(c);
        ++i_;
      } else if (c == U'\u2212') {
        sub += '-';
        ++i_;
      } else {
        fail(here(), "a subscript holds numbers and index letters (a_{13}, W_{1,2}, w_i, a_{2(i-1)+m}); found " +
                         describe_code_point(c));
      }
    }
    if (peek() != close) {
      fail(here(),
           "expected '" + encode(close) + "' to close the subscript opened at column " + std::to_string(opened.column));
    }
    ++i_;
    return sub;
  }

  // W[1,2], W[i,j] and x[3] index (from 1): numbers or single letters, and a comma or a
  // number. v[t] and v[y - t] stay a bracket times v.
  bool bracket_index() const {
    std::size_t k = i_ + 1;
    bool comma = false, number = false, item = false;
    for (; k < cps_.size() && cps_[k].c != U']'; ++k) {
      const char32_t c = cps_[k].c;
      if (is_digit(c)) {
        number = item = true;
      } else if (is_letter(c)) {
        if (k + 1 < cps_.size() && is_letter(cps_[k + 1].c)) return false;
        item = true;
      } else if (c == U',') {
        if (!item) return false;
        comma = true;
        item = false;
      } else if (!is_space(c)) {
        return false;
      }
    }
    return k < cps_.size() && item && (comma || number);
  }

  // \hat{y} or \hat y: a name with a hat is that name.
  Token hat_name(SourcePos pos) {
    Token t = make(Tok::Name, pos, "");
    skip_space();
    if (peek() == U'{') {
      ++i_;
      skip_space();
      std::string name = is_letter(peek()) ? name_run(t.written) : std::string();
      skip_space();
      if (name.empty() || peek() != U'}') fail(here(), "expected a name in \\hat{...}");
      ++i_;
      t.text = peek() == U'_' ? subscripted(t.written.base, t.written) : std::move(name);
    } else {
      if (!is_letter(peek())) fail(here(), "expected a name after \\hat");
      t.text = name_run(t.written);
    }
    t.end = last();
    t.spelling = t.text;
    return t;
  }

  bool at_word(std::string_view w) const {
    for (std::size_t k = 0; k < w.size(); ++k) {
      if (peek(k) != static_cast<char32_t>(w[k])) return false;
    }
    return !is_letter(peek(w.size()));
  }

  // A word in a font or text command: \text{loss}, \mathrm{ReLU}, \mathcal{L}, \mathbb{1}.
  std::string braced_word(const std::string& spelling) {
    skip_space();
    if (peek() != U'{') fail(here(), "expected '{' after " + spelling);
    const SourcePos open = here();
    ++i_;
    std::string word;
    while (i_ < cps_.size() && peek() != U'}') {
      if (!is_letter(peek()) && !is_digit(peek()) && !is_space(peek())) {
        fail(here(), spelling + "{…} holds a name (" + spelling + "{loss}); found " + describe_code_point(peek()));
      }
      word += static_cast<char>(peek());
      ++i_;
    }
    if (peek() != U'}') fail(open, "'{' after " + spelling + " is never closed");
    ++i_;
    const std::size_t first = word.find_first_not_of(' '), end = word.find_last_not_of(' ');
    return first == std::string::npos ? std::string() : word.substr(first, end - first + 1);
  }

  std::optional<Token> font(SourcePos pos, const std::string& spelling) {
    const std::string word = braced_word(spelling);
    if (word == "1") {
      Token t = make(Tok::Indicator, pos, spelling + "{1}");
      if (peek() == U'_') ++i_;  // \mathbb{1}_{z > 0}: the condition is the subscript
      return t;
    }
    if (lower(word) == "let") return make(Tok::Let, pos, spelling + "{" + word + "}");
    if (lower(word) == "for" || lower(word) == "for all" || lower(word) == "forall") {
      return make(Tok::Forall, pos, spelling + "{" + word + "}");
    }
    if (word.empty() || word.find(' ') != std::string::npos || !is_letter(static_cast<unsigned char>(word[0]))) {
      fail(pos, "a name is one word starting with a letter: " + spelling + "{loss}, " + spelling + "{W}_{1,2}");
    }
    if (is_function(word)) return function(pos, spelling + "{" + word + "}", word);
    Token t = make(Tok::Name, pos, "");
    t.text = subscripted(word, t.written);
    t.end = last();
    t.spelling = t.text;
    return t;
  }

  // \sum_{k=1}^{4}, Σ_k, ∑_{i,j}: the subscript is the index (and its first value), the
  // superscript the last value; either may come first.
  Token big_sum(SourcePos pos, std::string spelling) {
    Token t = make(Tok::BigSum, pos, std::move(spelling));
    bool sub = false, sup = false;
    while (true) {
      skip_space();
      if (at_word("\\limits")) {
        i_ += 7;
        continue;
      }
      const char32_t c = peek();
      if ((c != U'_' || sub) && (c != U'^' || sup)) break;
      const SourcePos at = here();
      ++i_;
      std::string text;
      const SourcePos text_pos = here();
      if (peek() == U'{') {
        ++i_;
        text = subscript_text(U'}', at);
      } else if (is_letter(peek()) || is_digit(peek())) {
        text = std::string(1, static_cast<char>(peek()));
        ++i_;
      } else {
        fail(here(), "expected the index after " + std::string(c == U'_' ? "_" : "^") + ": \\sum_{k=1}^{4}");
      }
      if (c == U'_') {
        sub = true;
        t.text = text;
        t.written.pos = text_pos;
      } else {
        sup = true;
        t.wrt = text;
        t.wrt_pos = text_pos;
      }
    }
    if (!sub) fail(pos, "write the index the sum runs over: \\sum_k or \\sum_{k=1}^{4}");
    t.end = last();
    return t;
  }

  std::optional<Token> command(SourcePos pos) {
    ++i_;  // the backslash
    std::string cmd;
    if (!is_letter(peek())) {
      const char32_t c = peek();
      ++i_;
      if (c == U'\\' || c == U',' || c == U';' || c == U'!' || c == U':' || c == U' ') return std::nullopt;
      if (c == U'{') return make(Tok::LBrace, pos, "\\{");
      if (c == U'}') return make(Tok::RBrace, pos, "\\}");
      fail(pos, "unknown command '\\" + encode(c) + "'");
    }
    while (is_letter(peek())) cmd += static_cast<char>(peek()), ++i_;
    const std::string spelling = "\\" + cmd;
    if (cmd == "left" || cmd == "right" || cmd == "quad" || cmd == "qquad") {
      if ((cmd == "left" || cmd == "right") && peek() == U'.') ++i_;  // \left. is no bracket
      return std::nullopt;
    }
    if (cmd == "nonumber" || cmd == "notag") return std::nullopt;
    if (cmd == "begin" || cmd == "end" || cmd == "label" || cmd == "tag") {  // \begin{aligned}, \label{eq:1}
      skip_space();
      if (peek() != U'{') fail(here(), "expected '{' after " + spelling);
      while (i_ < cps_.size() && peek() != U'}') ++i_;
      if (peek() != U'}') fail(pos, "'{' after " + spelling + " is never closed");
      ++i_;
      return std::nullopt;
    }
    if (cmd == "cdot" || cmd == "times" || cmd == "ast") return make(Tok::Star, pos, spelling);
    if (cmd == "Rightarrow" || cmd == "implies") return make(Tok::Implies, pos, spelling);
    if (cmd == "dots" || cmd == "ldots" || cmd == "cdots") return make(Tok::Ellipsis, pos, spelling);
    if (cmd == "frac") return make(Tok::Frac, pos, spelling);
    if (cmd == "partial") return make(Tok::Partial, pos, spelling);
    if (cmd == "hat" || cmd == "widehat") return hat_name(pos);
    if (cmd == "text" || cmd == "textrm" || cmd == "mathrm" || cmd == "operatorname" || cmd == "mathit" ||
        cmd == "mathcal" || cmd == "mathbf" || cmd == "mathbb" || cmd == "mathds" || cmd == "boldsymbol" ||
        cmd == "bm") {
      return font(pos, spelling);
    }
    if (std::find(greek.begin(), greek.end(), cmd) != greek.end()) {
      Token t = make(Tok::Name, pos, "");
      t.text = subscripted(cmd, t.written);
      t.end = last();
      t.spelling = t.text;
      return t;
    }
    if (cmd == "sum" || cmd == "Sigma") return big_sum(pos, spelling);
    if (cmd == "coloneqq" || cmd == "coloneq" || cmd == "equiv" || cmd == "triangleq") {
      return make(Tok::Defines, pos, spelling);
    }
    if (cmd == "forall") return make(Tok::Forall, pos, spelling);
    if (cmd == "in") return make(Tok::In, pos, spelling);
    if (cmd == "top" || cmd == "intercal") return make(Tok::Transpose, pos, spelling);
    if (cmd == "odot" || cmd == "circ") return make(Tok::Hadamard, pos, spelling);
    if (cmd == "otimes") {
      fail(pos,
           "the outer product \\otimes is not read: write \\delta x^\\top, or one element, e.g. "
           "\\frac{\\partial L}{\\partial W_{1,2}} = \\delta_1 x_2");
    }
    if (cmd == "geq" || cmd == "ge") return compare(pos, spelling, ">=");
    if (cmd == "leq" || cmd == "le") return compare(pos, spelling, "<=");
    if (cmd == "gt") return compare(pos, spelling, ">");
    if (cmd == "lt") return compare(pos, spelling, "<");
    if (is_function(cmd)) return function(pos, spelling, cmd);
    fail(pos, "unknown command '" + spelling +
                  "'; formulas are written with \\frac{\\partial L}{\\partial w_1}, \\sum_{k=1}^{4}, \\cdot, "
                  "\\sigma'(z_1), \\mathbb{1}[z_1 > 0], \\max(a, b), \\hat{y}, \\text{name}, \\delta_k");
  }

  Token compare(SourcePos pos, std::string spelling, std::string op) const {
    Token t = make(Tok::Compare, pos, std::move(spelling));
    t.text = std::move(op);
    return t;
  }

  // A function whose name holds an underscore (leaky_relu, gelu_tanh), here as a whole
  // word: read before the name, which would take _relu for a subscript.
  std::optional<std::string_view> underscored_function() const {
    for (const FunctionInfo& f : functions) {
      auto whole_word = [&](std::string_view w) {
        return w.find('_') != std::string_view::npos && at_word(w) && !is_digit(peek(w.size())) &&
               peek(w.size()) != U'_';
      };
      if (whole_word(f.name)) return f.name;
      for (const std::string_view w : f.spellings) {
        if (whole_word(w)) return w;
      }
    }
    return std::nullopt;
  }

  // A function name, canonical (ln is log, σ is sigmoid, ReLU is relu), with a prime when one follows:
  // sigmoid'(z) is the derivative of sigmoid at z.
  Token function(SourcePos pos, std::string spelling, std::string_view name) {
    Token t = make(Tok::Function, pos, std::move(spelling));
    const FunctionInfo* f = function_spelled(name);
    t.text = f != nullptr ? std::string(f->name) : std::string(name);
    if (peek() == U'\'' || peek() == U'\u2032') {
      ++i_;
      t.text += "'";
      t.spelling += "'";
      t.end = last();
    }
    return t;
  }

  // A number: digits with at most one '.', then an optional exponent. Read with
  // from_chars, so a value no double holds is an error at its column, never an exception.
  Token number(SourcePos pos) {
    std::string digits;
    while (is_digit(peek()) || (peek() == U'.' && peek(1) != U'.')) digits += static_cast<char>(peek()), ++i_;
    if ((peek() == U'e' || peek() == U'E') &&
        (is_digit(peek(1)) || ((peek(1) == U'-' || peek(1) == U'+') && is_digit(peek(2))))) {
      digits += static_cast<char>(peek()), ++i_;
      digits += static_cast<char>(peek()), ++i_;
      while (is_digit(peek())) digits += static_cast<char>(peek()), ++i_;
    }
    const std::string shown = digits.size() > 40 ? digits.substr(0, 40) + "…" : digits;
    if (std::count(digits.begin(), digits.end(), '.') > 1) fail(pos, "malformed number '" + shown + "'");
    Token t = make(Tok::Number, pos, shown);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.number);
    const bool tiny = digits.find("e-") != std::string::npos || digits.find("E-") != std::string::npos;
    if (ec == std::errc::result_out_of_range && tiny) {
      fail(pos, "the number '" + shown + "' is too small for a double: it would read as 0");
    }
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && !std::isfinite(t.number))) {
      fail(pos, "the number '" + shown + "' is out of the range of a double");
    }
    if (ec != std::errc() || end != digits.data() + digits.size()) fail(pos, "malformed number '" + shown + "'");
    return t;
  }

  // The order after the d of d2L or d^2L (d^{2}L): the digit, or 1 when none is written.
  int ascii_order() {
    std::size_t at = 0;  // where the digit is
    if (is_digit(peek()) && is_letter(peek(1))) {
      at = 0;
    } else if (peek() == U'^' && is_digit(peek(1)) && is_letter(peek(2))) {
      at = 1;
    } else if (peek() == U'^' && peek(1) == U'{' && is_digit(peek(2)) && peek(3) == U'}' && is_letter(peek(4))) {
      at = 2;
    } else {
      return 1;
    }
    const int order = static_cast<int>(peek(at) - U'0');
    i_ += at == 2 ? 4 : at + 1;
    return order;
  }

  // The first variable of d2L/dw1dw2: its name ends at the d of the second, after a digit
  // or a closing brace (dw1dw2, dw_{1}dw_{2}); otherwise at a space (d2L/dw_i dw_j).
  std::string first_variable(WrittenName& written) {
    auto in_name = [&](char32_t c) { return is_letter(c) || is_digit(c) || c == U'_' || c == U'{' || c == U'}'; };
    for (std::size_t k = i_ + 1; k + 1 < cps_.size() && in_name(cps_[k].c); ++k) {
      if (cps_[k].c == U'd' && is_letter(cps_[k + 1].c) && (is_digit(cps_[k - 1].c) || cps_[k - 1].c == U'}')) {
        stop_ = k;
        break;
      }
    }
    std::string name = name_run(written);
    stop_ = std::numeric_limits<std::size_t>::max();
    return name;
  }

  // dX/dY written as one word, as in dL/dw1 (spaces around '/' allowed); a second
  // derivative d2L/dw1dw2, d^2L/dw1 dw2 or d2L/dw1^2.
  std::optional<Token> ascii_derivative(SourcePos pos) {
    const std::size_t start = i_;
    ++i_;  // d
    const SourcePos order_pos = here();
    const int order = ascii_order();
    const SourcePos of_pos = here();
    WrittenName of_written, wrt_written;
    std::string of = is_letter(peek()) ? name_run(of_written) : std::string();
    skip_space();
    if (of.empty() || peek() != U'/') {
      i_ = start;
      return std::nullopt;
    }
    ++i_;
    skip_space();
    if (peek() != U'd' || !is_letter(peek(1))) {
      i_ = start;
      return std::nullopt;
    }
    ++i_;
    if (order != 1 && order != 2) fail(order_pos, "only first and second derivatives are read: d2L/dw1dw2");
    const SourcePos wrt_pos = here();
    Token t = make(Tok::Derivative, pos, "");
    t.text = std::move(of);
    t.wrt = order == 2 ? first_variable(wrt_written) : name_run(wrt_written);
    t.written = std::move(of_written);
    t.wrt_written = std::move(wrt_written);
    t.pos = of_pos;
    t.wrt_pos = wrt_pos;
    t.spelling = "d" + t.text + "/d" + t.wrt;
    if (order == 2) second_variable(t);
    t.end = last();
    return t;
  }

  // After the first variable of d2L/dw1: d and the second (dw1dw2, dw1 dw2), or ^2 (dw1^2).
  void second_variable(Token& t) {
    if (peek() == U'^' && peek(1) == U'2' && !is_digit(peek(2))) {
      i_ += 2;
      t.wrt2 = t.wrt;
      t.wrt2_pos = t.wrt_pos;
      t.wrt2_written = t.wrt_written;
      t.spelling = "d2" + t.text + "/d" + t.wrt + "^2";
      return;
    }
    skip_space();
    if (peek() != U'd' || !is_letter(peek(1))) {
      fail(here(), "d2" + t.text + "/d" + t.wrt +
                       " is a second derivative with one variable: write two, d2L/dw1dw2, or d2L/dw1^2 for the "
                       "same one twice");
    }
    ++i_;
    t.wrt2_pos = here();
    t.wrt2 = name_run(t.wrt2_written);
    if (peek() == U'^') fail(here(), "only first and second derivatives are read: d2L/dw1dw2");
    t.spelling = "d2" + t.text + "/d" + t.wrt + "d" + t.wrt2;
  }

  std::optional<Token> next() {
    const SourcePos pos = here();
    const char32_t c = peek();
    if (c == U'\\') return command(pos);
    if (is_digit(c) || (c == U'.' && is_digit(peek(1)))) return number(pos);
    if (c == U'd') {
      if (std::optional<Token> t = ascii_derivative(pos)) return t;
    }
    if (is_letter(c) || c == U'\u0177') {
      Token t;
      WrittenName written;
      if (c == U'\u0177') {  // ŷ
        ++i_;
        t = make(Tok::Name, pos, "y");
        t.text = subscripted("y", written);
      } else {
        if (const std::optional<std::string_view> f = underscored_function()) {
          i_ += f->size();
          return function(pos, std::string(*f), *f);
        }
        std::string name = name_run(written);
        if (written.subscript.empty() && is_function(name)) return function(pos, name, name);
        t = make(Tok::Name, pos, name);
        t.text = std::move(name);
      }
      t.written = std::move(written);
      t.end = last();
      t.spelling = t.text;
      return t;
    }
    if (c == U'\u03C3') {  // σ
      ++i_;
      return function(pos, "σ", "σ");
    }
    if (const std::string_view g = unicode_greek(c); !g.empty()) {
      ++i_;
      Token t = make(Tok::Name, pos, "");
      t.text = subscripted(std::string(g), t.written);
      t.end = last();
      t.spelling = t.text;
      return t;
    }
    if (c == U'\u03A3' || c == U'\u2211') {  // Σ, ∑
      ++i_;
      return big_sum(pos, encode(c));
    }
    if (c == U'\U0001D7D9') {  // 𝟙
      ++i_;
      Token t = make(Tok::Indicator, pos, "𝟙");
      if (peek() == U'_') ++i_;
      return t;
    }
    ++i_;
    switch (c) {
      case U'+':
        return make(Tok::Plus, pos, "+");
      case U'-':
      case U'\u2212':
        return make(Tok::Minus, pos, "-");
      case U'*':
      case U'\u00B7':
      case U'\u00D7':
      case U'\u22C5':
        return make(Tok::Star, pos, encode(c));
      case U'/':
        return make(Tok::Slash, pos, "/");
      case U'^':
        return make(Tok::Caret, pos, "^");
      case U'(':
        return make(Tok::LParen, pos, "(");
      case U')':
        return make(Tok::RParen, pos, ")");
      case U'[':
        return make(Tok::LBracket, pos, "[");
      case U']':
        return make(Tok::RBracket, pos, "]");
      case U'{':
        return make(Tok::LBrace, pos, "{");
      case U'}':
        return make(Tok::RBrace, pos, "}");
      case U'\u2202':
        return make(Tok::Partial, pos, "∂");
      case U'\u00B2':
      case U'\u00B3': {
        Token t = make(Tok::Superscript, pos, encode(c));
        t.number = c == U'\u00B2' ? 2 : 3;
        return t;
      }
      case U'\u1D40':
        return make(Tok::Transpose, pos, "ᵀ");
      case U'\u2299':
      case U'\u2218':
        return make(Tok::Hadamard, pos, encode(c));
      case U'\u21D2':
        return make(Tok::Implies, pos, "⇒");
      case U'\u2026':
      case U'\u22EF':
      case U'\u22EE':
        return make(Tok::Ellipsis, pos, encode(c));
      case U'>':
      case U'<':
        if (peek() == U'=') {
          ++i_;
          return compare(pos, encode(c) + "=", encode(c) + "=");
        }
        return compare(pos, encode(c), encode(c));
      case U'\u2265':
        return compare(pos, "≥", ">=");
      case U'\u2264':
        return compare(pos, "≤", "<=");
      case U'=':
        if (peek() == U'>') {
          ++i_;
          return make(Tok::Implies, pos, "=>");
        }
        return make(Tok::Equals, pos, "=");
      case U'.':
        if (peek() == U'.' && peek(1) == U'.') {
          i_ += 2;
          return make(Tok::Ellipsis, pos, "...");
        }
        if (peek() == U'.') {  // 1..9 in a range
          ++i_;
          return make(Tok::Ellipsis, pos, "..");
        }
        break;
      case U',':
        return make(Tok::Comma, pos, ",");
      case U':':
        if (peek() == U'=') {
          ++i_;
          return make(Tok::Defines, pos, ":=");
        }
        break;
      case U'\u2254':
      case U'\u2261':
      case U'\u225C':
        return make(Tok::Defines, pos, encode(c));
      case U'_':
        fail(pos, "a subscript follows its name directly: w_1, W_{1,2}, \\hat{y}_2");
      case U'|':
        fail(pos, "write |x| as abs(x)");
      case U'\u2200':
        return make(Tok::Forall, pos, "∀");
      case U'\u2208':
        return make(Tok::In, pos, "∈");
      case U'\u22A4':
        fail(pos, "the matrix form (⊤) is not read: write one element, e.g. ∂L/∂W_{1,2} = δ_1 x_2");
      default:
        break;
    }
    fail(pos, "unexpected character " + describe_code_point(c));
  }

  std::string_view text_;
  SourcePos start_;
  std::vector<CodePoint> cps_;
  std::size_t i_ = 0;
  std::size_t stop_ = std::numeric_limits<std::size_t>::max();  // peek() sees nothing from here on
};

// ---- parser ---------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::string_view text, SourcePos start) : text_(text), start_(start), tokens_(Lexer(text, start).run()) {}

  // `chained_lhs`: the left side of the row before, for a row "&= …" that goes on with it.
  Formula run(const Expr* chained_lhs = nullptr) {
    Formula f;
    f.defines = at_let();
    if (f.defines) ++i_;
    if ((at(Tok::Equals) || at(Tok::Defines)) && chained_lhs == nullptr) {
      fail(peek().pos, "the left side is empty: expected an expression before '" + peek().spelling + "'");
    }
    f.lhs = at(Tok::Equals) && chained_lhs != nullptr ? *chained_lhs : sum();
    if (at(Tok::End)) fail(peek().pos, "expected '=': a formula is an equation (left side = right side)");
    if (at(Tok::Defines)) {
      f.defines = true;
    } else if (!at(Tok::Equals)) {
      unexpected();
    }
    const Token relation = peek();
    ++i_;
    if (at(Tok::End)) fail(peek().pos, "the right side is empty: expected an expression after '='");
    if (f.defines && f.lhs.kind != ExprKind::Name) {
      fail(f.lhs.pos, "a definition names one thing: δ_k " + relation.spelling + " ∂L/∂z_k, let a = …");
    }
    ellipsis_seen_ = false;
    f.rhs = sum();
    f.has_ellipsis = ellipsis_seen_;
    if (f.defines && at(Tok::Equals)) {  // δ_1 := ∂L/∂z_1 = v_1 (y - t): the definition states a fact
      if (f.has_ellipsis) fail(relation.pos, "a definition with '…' names nothing: write every term");
      ++i_;
      ellipsis_seen_ = false;
      f.fact.push_back(sum());
      f.has_ellipsis = ellipsis_seen_;
    }
    if (at(Tok::Equals)) fail(peek().pos, "a second '=': write one equation per formula");
    if (f.defines && f.fact.empty() && f.has_ellipsis) {
      fail(relation.pos, "a definition with '…' names nothing: write every term");
    }
    f.ranges = ranges();
    if (!at(Tok::End)) unexpected();
    f.annotations = std::move(annotations_);
    return f;
  }

 private:
  const Token& peek() const { return tokens_[i_]; }
  bool at(Tok k) const { return tokens_[i_].kind == k; }
  const Token& ahead(std::size_t n) const { return tokens_[std::min(i_ + n, tokens_.size() - 1)]; }

  // "let δ = …" and "\text{let} δ = …" open a definition.
  bool at_let() const {
    const bool word = at(Tok::Name) && (peek().text == "let" || peek().text == "Let");
    return (word || at(Tok::Let)) && ahead(1).kind == Tok::Name;
  }

  // After a formula: ", i = 1,\dots,9", "\forall i", "(i \in \{1..9\})", "\text{for} i, j".
  bool at_ranges() const {
    if (at(Tok::Forall)) return true;
    const std::size_t k = at(Tok::Comma) || at(Tok::LParen) ? 1 : 0;
    if (ahead(k).kind == Tok::Forall) return true;
    const Tok after = ahead(k + 1).kind;
    return k > 0 && ahead(k).kind == Tok::Name && (after == Tok::Equals || after == Tok::In || after == Tok::Comma);
  }

  std::vector<IndexRange> ranges() {
    std::vector<IndexRange> out;
    if (at(Tok::End)) return out;
    if (!at_ranges()) return out;
    if (at(Tok::Comma)) ++i_;
    const bool paren = at(Tok::LParen);
    const Token open = peek();
    if (paren) ++i_;
    if (at(Tok::Forall)) ++i_;
    while (true) {
      if (!at(Tok::Name) || !peek().written.subscript.empty() || peek().text.size() != 1) {
        fail(peek().pos, "expected an index letter: i = 1,\\dots,9 or \\forall i");
      }
      out.push_back({peek().text, false, 1, 0, peek().pos});
      ++i_;
      if (!at(Tok::Comma) || ahead(1).kind != Tok::Name) break;
      ++i_;
    }
    if (at(Tok::Equals) || at(Tok::In)) {
      ++i_;
      const bool braced = at(Tok::LBrace);
      const Token brace = peek();
      if (braced) ++i_;
      const long first = range_bound();
      if (at(Tok::Comma)) ++i_;
      if (!at(Tok::Ellipsis)) fail(peek().pos, "expected a range: i = 1,\\dots,9 or i \\in \\{1..9\\}");
      ++i_;
      if (at(Tok::Comma)) ++i_;
      const long last = range_bound();
      if (braced) expect_close(Tok::RBrace, brace);
      if (last < first)
        fail(out.back().pos, "the range " + std::to_string(first) + ".." + std::to_string(last) + " is empty");
      for (IndexRange& r : out) r.written = true, r.first = first, r.last = last;
    }
    if (paren) expect_close(Tok::RParen, open);
    return out;
  }

  long range_bound() {
    if (!at(Tok::Number) || peek().number != std::floor(peek().number) || std::abs(peek().number) > 1e6) {
      fail(peek().pos, "a range bound is a whole number: i = 1,\\dots,9");
    }
    return static_cast<long>(tokens_[i_++].number);
  }

  [[noreturn]] void fail(SourcePos pos, const std::string& what) const {
    throw ParseError(located_message(text_, start_, pos, what), pos);
  }
  [[noreturn]] void unexpected() const {
    const Token& t = peek();
    if (t.kind == Tok::RParen || t.kind == Tok::RBracket || t.kind == Tok::RBrace) {
      fail(t.pos, "unmatched '" + t.spelling + "': no bracket is open");
    }
    fail(t.pos, "unexpected '" + t.spelling + "'");
  }

  // sum := [+|-] term {(+|-) term}, where a term may be an ellipsis
  Expr sum() {
    Expr s;
    s.kind = ExprKind::Sum;
    s.pos = peek().pos;
    bool negative = false;
    if (at(Tok::Plus) || at(Tok::Minus)) negative = tokens_[i_++].kind == Tok::Minus;
    while (true) {
      Expr term;
      if (at(Tok::Ellipsis)) {
        term.kind = ExprKind::Ellipsis;
        term.pos = peek().pos;
        ellipsis_seen_ = true;
        ++i_;
      } else {
        term = hadamard();
      }
      if (negative) term = wrap(ExprKind::Negate, std::move(term));
      s.args.push_back(std::move(term));
      if (!at(Tok::Plus) && !at(Tok::Minus)) break;
      negative = tokens_[i_++].kind == Tok::Minus;
    }
    if (s.args.size() == 1 && s.args[0].kind != ExprKind::Ellipsis) return std::move(s.args[0]);
    return s;
  }

  static Expr wrap(ExprKind kind, Expr e) {
    Expr w;
    w.kind = kind;
    w.pos = e.pos;
    w.args.push_back(std::move(e));
    return w;
  }

  static bool starts_primary(Tok k) {
    return k == Tok::Number || k == Tok::Name || k == Tok::Derivative || k == Tok::Partial || k == Tok::Function ||
           k == Tok::Frac || k == Tok::LParen || k == Tok::LBracket || k == Tok::LBrace || k == Tok::Indicator ||
           k == Tok::BigSum;
  }

  // hadamard := product {('\\odot' | '\\circ') product}: looser than a product, so
  // σ'(z) ⊙ V^⊤ δ is σ'(z) ⊙ (V^⊤ δ).
  Expr hadamard() {
    Expr h;
    h.kind = ExprKind::Hadamard;
    h.pos = peek().pos;
    h.args.push_back(product());
    while (at(Tok::Hadamard)) {
      ++i_;
      h.args.push_back(product());
    }
    if (h.args.size() == 1) return std::move(h.args[0]);
    return h;
  }

  // product := unary {('*' | '/' | juxtaposition) unary}
  Expr product() {
    Expr p;
    p.kind = ExprKind::Product;
    p.pos = peek().pos;
    p.args.push_back(unary());
    while (true) {
      if (at(Tok::Star)) {
        ++i_;
        p.args.push_back(unary());
      } else if (at(Tok::Slash)) {
        ++i_;
        Expr q;
        q.kind = ExprKind::Quotient;
        q.pos = p.args.back().pos;
        q.args.push_back(std::move(p.args.back()));
        q.args.push_back(unary());
        p.args.back() = std::move(q);
      } else if (starts_primary(peek().kind) && !at_ranges()) {
        p.args.push_back(unary());
      } else {
        break;
      }
    }
    if (p.args.size() == 1) return std::move(p.args[0]);
    return p;
  }

  // Every recursion of the grammar (a bracket, a sign, an exponent, a function argument)
  // holds one Nest, so a formula nested deeper than max_depth is refused at its position
  // instead of overflowing the stack, here or in anything that walks the tree.
  static constexpr int max_depth = 200;
  struct Nest {
    explicit Nest(Parser& p) : parser(p) {
      if (++parser.depth_ > max_depth) {
        parser.fail(parser.peek().pos, "the formula is nested too deeply (more than " + std::to_string(max_depth) +
                                           " levels of brackets, signs, powers or function calls)");
      }
    }
    ~Nest() { --parser.depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    Parser& parser;
  };

  // unary := [+|-] unary | power {⇒ power}
  Expr unary() {
    const Nest nest(*this);
    if (at(Tok::Minus) || at(Tok::Plus)) {
      const bool negative = tokens_[i_++].kind == Tok::Minus;
      Expr e = unary();
      return negative ? wrap(ExprKind::Negate, std::move(e)) : e;
    }
    Expr e = power();
    while (at(Tok::Implies)) {
      ++i_;
      annotations_.push_back({e, power()});
    }
    return e;
  }

  // The transpose after a primary: ^\\top, ^T, ^{\\top}, ^{T}, ^\\intercal, or ᵀ; false
  // when none follows (a power's ^ is left in place).
  bool transpose_mark() {
    if (at(Tok::Transpose)) {
      ++i_;
      return true;
    }
    if (!at(Tok::Caret)) return false;
    auto is_t = [&](std::size_t k) {
      return ahead(k).kind == Tok::Transpose || (ahead(k).kind == Tok::Name && ahead(k).text == "T");
    };
    if (is_t(1)) {
      i_ += 2;
      return true;
    }
    if (ahead(1).kind == Tok::LBrace && is_t(2) && ahead(3).kind == Tok::RBrace) {
      i_ += 4;
      return true;
    }
    return false;
  }

  // power := primary {transpose} ['^' unary | '²' | '³']
  Expr power() {
    Expr base = primary();
    while (transpose_mark()) base = wrap(ExprKind::Transpose, std::move(base));
    if (at(Tok::Superscript)) {
      Expr exponent;
      exponent.kind = ExprKind::Number;
      exponent.number = peek().number;
      exponent.pos = peek().pos;
      ++i_;
      Expr p = wrap(ExprKind::Power, std::move(base));
      p.args.push_back(std::move(exponent));
      return p;
    }
    if (!at(Tok::Caret)) return base;
    ++i_;
    const bool braced_star = at(Tok::LBrace) && ahead(1).kind == Tok::Star && ahead(2).kind == Tok::RBrace;
    if (at(Tok::Star) || braced_star) {  // w_i^*, w_i^{*}
      if (base.kind != ExprKind::Name) fail(peek().pos, "^* marks an updated weight: write it after a name, w_i^*");
      i_ += braced_star ? 3 : 1;
      return wrap(ExprKind::Updated, std::move(base));
    }
    Expr p;
    p.kind = ExprKind::Power;
    p.pos = base.pos;
    p.args.push_back(std::move(base));
    const Nest nest(*this);
    if (at(Tok::Minus) || at(Tok::Plus)) {
      p.args.push_back(unary());
    } else {
      p.args.push_back(power());
    }
    return p;
  }

  [[noreturn]] void expected_expression() const {
    const Token& t = peek();
    if (t.kind == Tok::Ellipsis) fail(t.pos, "'" + t.spelling + "' can only stand for whole terms of a sum");
    std::string what = "expected an expression";
    if (i_ > 0) what += " after '" + tokens_[i_ - 1].spelling + "'";
    if (t.kind != Tok::End) what += ", found '" + t.spelling + "'";
    fail(t.pos, what);
  }

  Expr primary() {
    const Token& t = peek();
    Expr e;
    e.pos = t.pos;
    switch (t.kind) {
      case Tok::Number:
        e.kind = ExprKind::Number;
        e.number = t.number;
        ++i_;
        return e;
      case Tok::Name:
        if (heaviside_at()) return step(t);
        e.kind = ExprKind::Name;
        e.name = t.text;
        e.written = t.written;
        ++i_;
        return e;
      case Tok::Derivative:
        e.kind = ExprKind::Derivative;
        e.name = t.text;
        e.wrt = t.wrt;
        e.wrt_pos = t.wrt_pos;
        e.written = t.written;
        e.wrt_written = t.wrt_written;
        e.wrt2 = t.wrt2;
        e.wrt2_pos = t.wrt2_pos;
        e.wrt2_written = t.wrt2_written;
        ++i_;
        return e;
      case Tok::Partial:
        return partial_slash();
      case Tok::Function: {
        if (new_word_as_name(t)) {
          e.kind = ExprKind::Name;
          e.name = t.spelling;
          e.written.base = t.spelling;
          ++i_;
          return e;
        }
        if (t.text == "step") return step(t);
        if (t.text == "max" || t.text == "min") return max_min(t);
        if (t.text.ends_with("'") && (t.text.starts_with("max") || t.text.starts_with("min") || t.text == "step'")) {
          fail(t.pos, t.spelling + " has no derivative here: write the branch with an Iverson bracket, [a > b]");
        }
        ++i_;
        const Nest nest(*this);
        if (at(Tok::Caret)) return function_power(t);
        if (!starts_primary(peek().kind)) fail(peek().pos, "expected the argument of " + t.spelling);
        e.kind = ExprKind::Call;
        e.name = t.text;
        if (parameterised(t) && (at(Tok::LParen) || at(Tok::LBrace))) return as_written(with_parameter(t, e), t);
        e.args.push_back(primary());
        return as_written(std::move(e), t);
      }
      case Tok::Indicator:
        return indicator();
      case Tok::BigSum: {
        ++i_;
        if (!starts_primary(peek().kind)) fail(peek().pos, "expected the summand after " + t.spelling);
        e.kind = ExprKind::IndexSum;
        e.name = t.text;
        e.wrt = t.wrt;
        e.wrt_pos = t.wrt_pos;
        e.written.pos = t.written.pos;
        const Nest nest(*this);
        e.args.push_back(product());
        return e;
      }
      case Tok::Frac:
        return frac();
      case Tok::LParen:
      case Tok::LBracket:
      case Tok::LBrace:
        return group();
      default:
        expected_expression();
    }
  }

  // max, min and step written as words with no bracket after them are names, as they
  // were before they were functions: a network may have a node called max.
  bool new_word_as_name(const Token& t) const {
    const bool word = t.spelling == "max" || t.spelling == "min" || t.spelling == "step";
    const Tok next = ahead(1).kind;
    return word && next != Tok::LParen && next != Tok::LBrace && next != Tok::LBracket;
  }

  // A function of the table with a parameter (leaky_relu's slope, elu's alpha), or its derivative.
  static bool parameterised(const Token& t) {
    std::string_view name = t.text;
    if (name.ends_with('\'')) name.remove_suffix(1);
    const FunctionInfo* f = function_named(name);
    return f != nullptr && f->has_parameter();
  }
  // leaky_relu(z1) or leaky_relu(z1, 0.2): the argument, then the parameter when written
  // (the function's default when not).
  Expr with_parameter(const Token& t, Expr call) {
    const Token open = peek();
    ++i_;
    call.args.push_back(sum());
    if (at(Tok::Comma)) {
      ++i_;
      call.args.push_back(sum());
    }
    if (at(Tok::Comma))
      fail(peek().pos, t.spelling + " takes an argument and its parameter: " + t.spelling + "(z, 0.2)");
    expect_close(open.kind == Tok::LParen ? Tok::RParen : Tok::RBrace, open);
    return call;
  }

  // \tanh^2(z) = (\tanh(z))^2, as derivations write it.
  Expr function_power(const Token& f) {
    ++i_;  // ^
    const SourcePos exponent_pos = peek().pos;
    Expr exponent = primary();
    if (exponent.kind != ExprKind::Number || exponent.number < 1) {  // \tanh^{-1} is no power
      fail(exponent_pos,
           "a power of a function is written " + f.spelling + "^2(z); write (" + f.spelling + "(z))^{…} for any other");
    }
    if (!starts_primary(peek().kind)) fail(peek().pos, "expected the argument of " + f.spelling);
    Expr call;
    call.kind = ExprKind::Call;
    call.name = f.text;
    call.pos = f.pos;
    call.args.push_back(primary());
    call = as_written(std::move(call), f);
    Expr p;
    p.kind = ExprKind::Power;
    p.pos = f.pos;
    p.args.push_back(std::move(call));
    p.args.push_back(std::move(exponent));
    return p;
  }

  // H(z) right after the H (no space) is the step function, as written in the notes.
  bool heaviside_at() const {
    const Token& t = peek();
    const Token& next = ahead(1);
    return t.text == "H" && next.kind == Tok::LParen && next.pos.line == t.end.line &&
           next.pos.column == t.end.column + 1;
  }

  // H(z), step(z): [z > 0], the derivative of relu.
  Expr step(const Token& t) {
    ++i_;
    if (!at(Tok::LParen) && !at(Tok::LBrace))
      fail(peek().pos, "expected the argument of " + t.spelling + ": step(z_1)");
    const Nest nest(*this);
    Expr zero;
    zero.pos = t.pos;
    return as_written(comparison(">", primary(), std::move(zero), t.pos), t);
  }

  // A function written as a bare word (H, step, max, relu) keeps that word, so the
  // checker can refuse it where the network has a node of that name.
  static Expr as_written(Expr e, const Token& t) {
    std::string word = t.spelling;
    if (word.ends_with('\'')) word.pop_back();
    const bool bare = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    });
    if (bare) e.written.base = word;
    return e;
  }

  static Expr comparison(std::string op, Expr a, Expr b, SourcePos pos) {
    Expr c;
    c.kind = ExprKind::Compare;
    c.name = std::move(op);
    c.pos = pos;
    c.args.push_back(std::move(a));
    c.args.push_back(std::move(b));
    return c;
  }

  // \max(a, b) = a·[a >= b] + b·[a < b] (a tie takes the first, as max-pool does);
  // \min(a, b) = a·[a <= b] + b·[a > b].
  Expr max_min(const Token& t) {
    ++i_;
    if (!at(Tok::LParen) && !at(Tok::LBrace) && !at(Tok::LBracket)) {
      fail(peek().pos, "expected the two arguments of " + t.spelling + ": " + t.spelling + "(a, b)");
    }
    const Token open = peek();
    ++i_;
    const Nest nest(*this);
    Expr a = sum();
    if (!at(Tok::Comma)) fail(peek().pos, t.spelling + " takes two arguments: " + t.spelling + "(a, b)");
    ++i_;
    Expr b = sum();
    if (at(Tok::Comma)) fail(peek().pos, t.spelling + " takes two arguments: " + t.spelling + "(a, b)");
    expect_close(open.kind == Tok::LParen ? Tok::RParen : open.kind == Tok::LBrace ? Tok::RBrace : Tok::RBracket, open);
    const bool max = t.text == "max";
    Expr first;
    first.kind = ExprKind::Product;
    first.pos = t.pos;
    first.args = {a, comparison(max ? ">=" : "<=", a, b, t.pos)};
    Expr second;
    second.kind = ExprKind::Product;
    second.pos = t.pos;
    second.args = {b, comparison(max ? "<" : ">", a, b, t.pos)};
    Expr s;
    s.kind = ExprKind::Sum;
    s.pos = t.pos;
    s.args.push_back(std::move(first));
    s.args.push_back(std::move(second));
    return as_written(std::move(s), t);
  }

  // \mathbb{1}[z > 0], \mathbb{1}_{z > 0}, \mathbf{1}\{z > 0\}: the Iverson bracket.
  Expr indicator() {
    const Token t = peek();
    ++i_;
    if (!at(Tok::LBracket) && !at(Tok::LBrace) && !at(Tok::LParen)) {
      fail(peek().pos, "expected the condition of " + t.spelling + ": \\mathbb{1}[z_1 > 0] or \\mathbb{1}_{z_1 > 0}");
    }
    const Nest nest(*this);
    Expr c = group(true);
    if (c.kind != ExprKind::Compare) {
      fail(t.pos, "the indicator " + t.spelling + " holds a comparison: \\mathbb{1}[z_1 > 0]");
    }
    return c;
  }

  // ∂X/∂Y, ∂²X/∂Y∂Z, ∂²X/∂Y²
  Expr partial_slash() {
    Expr e;
    e.kind = ExprKind::Derivative;
    const int order = partial_name(e.name, e.pos, e.written);
    if (!at(Tok::Slash)) fail(peek().pos, "expected '/' after ∂" + e.name + " (write ∂" + e.name + "/∂x)");
    ++i_;
    partial_variables(e, order, false);
    return e;
  }

  // ∂X or ∂^2 X (∂^{2} X, ∂²X): the name into name, pos and written; the order returned.
  int partial_name(std::string& name, SourcePos& pos, WrittenName& written) {
    if (!at(Tok::Partial)) fail(peek().pos, "expected '∂' (\\partial), found '" + peek().spelling + "'");
    ++i_;
    const int order = power_written();
    if (!at(Tok::Name)) fail(peek().pos, "expected a name after '∂', found '" + peek().spelling + "'");
    name = peek().text;
    pos = peek().pos;
    written = peek().written;
    ++i_;
    return order;
  }

  // The power ^2, ^{2} or ² written here, read; 1 when none is. Any power but 1 and 2 is
  // refused: only first and second derivatives are read.
  int power_written() {
    const Token& t = peek();
    double power = 1;
    if (at(Tok::Superscript)) {
      power = t.number;
      i_ += 1;
    } else if (at(Tok::Caret) && ahead(1).kind == Tok::Number) {
      power = ahead(1).number;
      i_ += 2;
    } else if (at(Tok::Caret) && ahead(1).kind == Tok::LBrace && ahead(2).kind == Tok::Number &&
               ahead(3).kind == Tok::RBrace) {
      power = ahead(2).number;
      i_ += 4;
    } else if (at(Tok::Caret)) {
      fail(t.pos, "expected the order of the derivative after '^': \\partial^2 L");
    }
    if (power != 1 && power != 2) {
      fail(t.pos, "only first and second derivatives are read: \\frac{\\partial^2 L}{\\partial w_1 \\partial w_2}");
    }
    return static_cast<int>(power);
  }

  // The variables of a derivative of `order` (1 or 2): ∂w_1, ∂w_1 ∂w_2 or ∂w_1^2, whose
  // powers add up to the order. Unbraced (∂L/∂w_1 ∂z/∂w), a first derivative reads one
  // variable and no power, as it always has: what follows is a factor.
  void partial_variables(Expr& e, int order, bool braced) {
    const SourcePos below = peek().pos;
    const bool second = order == 2 || braced;
    if (partial_name(e.wrt, e.wrt_pos, e.wrt_written) != 1) {
      fail(e.wrt_pos, "the order is written on the numerator: \\frac{\\partial^2 L}{\\partial w_1 \\partial w_2}");
    }
    int written_order = second ? power_written() : 1;
    if (written_order == 2) {
      e.wrt2 = e.wrt;
      e.wrt2_pos = e.wrt_pos;
      e.wrt2_written = e.wrt_written;
    } else if (second && at(Tok::Partial)) {
      if (partial_name(e.wrt2, e.wrt2_pos, e.wrt2_written) != 1 || power_written() != 1) {
        fail(e.wrt2_pos,
             "only first and second derivatives are read: \\frac{\\partial^2 L}{\\partial w_1 \\partial w_2}");
      }
      written_order = 2;
    }
    if (braced && at(Tok::Partial)) {
      fail(peek().pos, "only first and second derivatives are read: at most two variables below the line");
    }
    if (order == 2 && written_order == 1) {
      fail(below, "∂^2 " + e.name +
                      " is a second derivative but one variable is written below: write two, ∂w_1 ∂w_2, or ∂w_1^2 "
                      "for the same one twice");
    }
    if (order == 1 && written_order == 2) {
      fail(below,
           "two variables below but ∂" + e.name + " above: a second derivative is written \\partial^2 " + e.name);
    }
  }

  void expect_close(Tok close, const Token& open) {
    if (at(close)) {
      ++i_;
      return;
    }
    const std::string closer = close == Tok::RParen ? ")" : close == Tok::RBracket ? "]" : "}";
    const std::string where = "'" + open.spelling + "' at line " + std::to_string(open.pos.line) + ", column " +
                              std::to_string(open.pos.column);
    if (at(Tok::End)) fail(open.pos, where + " is never closed: expected '" + closer + "'");
    fail(peek().pos, "expected '" + closer + "' to close " + where + ", found '" + peek().spelling + "'");
  }

  // A bracket; `condition`: the bracket of an indicator, which may hold a comparison.
  Expr group(bool condition = false) {
    const Token open = peek();
    ++i_;
    const Tok close = open.kind == Tok::LParen ? Tok::RParen : open.kind == Tok::LBracket ? Tok::RBracket : Tok::RBrace;
    if (at(close)) fail(peek().pos, "empty brackets '" + open.spelling + peek().spelling + "'");
    Expr e = sum();
    if (at(Tok::Compare)) {  // an Iverson bracket: [z > 0]
      if (open.kind != Tok::LBracket && !condition) {
        fail(peek().pos, "a comparison belongs in an Iverson bracket: write [a " + peek().text + " b]");
      }
      Expr c;
      c.kind = ExprKind::Compare;
      c.name = peek().text;
      c.pos = open.pos;
      ++i_;
      c.args.push_back(std::move(e));
      c.args.push_back(sum());
      e = std::move(c);
    }
    expect_close(close, open);
    return e;
  }

  // \frac{\partial X}{\partial Y} is a derivative; any other \frac{A}{B} a quotient.
  Expr frac() {
    const Token cmd = peek();
    ++i_;
    auto braced = [&](auto parse) {
      if (!at(Tok::LBrace)) fail(peek().pos, "expected '{' after \\frac, found '" + peek().spelling + "'");
      const Token open = peek();
      ++i_;
      auto result = parse();
      expect_close(Tok::RBrace, open);
      return result;
    };
    if (at(Tok::LBrace) && tokens_[i_ + 1].kind == Tok::Partial) {  // an End token always follows '{'
      Expr e;
      e.kind = ExprKind::Derivative;
      const int order = braced([&] { return partial_name(e.name, e.pos, e.written); });
      braced([&] {
        partial_variables(e, order, true);
        return 0;
      });
      return e;
    }
    if (std::optional<Expr> e = d_derivative()) return *e;
    if (at(Tok::LBrace) && ahead(1).kind == Tok::Name && ahead(1).text == "d" && ahead(2).kind == Tok::Caret) {
      // \frac{d^2 L}{dw_1 dw_2} is not read: refused, so that it is never a quotient of a node d.
      fail(ahead(1).pos,
           "a second derivative with d in \\frac is not read: write \\frac{\\partial^2 L}{\\partial w_1 \\partial "
           "w_2} or d2L/dw1dw2");
    }
    Expr q;
    q.kind = ExprKind::Quotient;
    q.pos = cmd.pos;
    q.args.push_back(braced([&] { return sum(); }));
    q.args.push_back(braced([&] { return sum(); }));
    return q;
  }

  // {dL} or {d L} (or {\mathrm{d} L}) at token k: the name differentiated, and the token after '}'.
  std::optional<std::pair<Token, std::size_t>> d_name(std::size_t k) const {
    auto token = [&](std::size_t n) -> const Token& { return tokens_[std::min(n, tokens_.size() - 1)]; };
    if (token(k).kind != Tok::LBrace) return std::nullopt;
    const Token& first = token(k + 1);
    if (first.kind != Tok::Name) return std::nullopt;
    if (first.text == "d" && token(k + 2).kind == Tok::Name && token(k + 3).kind == Tok::RBrace) {
      return std::pair{token(k + 2), k + 4};
    }
    const WrittenName& w = first.written;
    const bool greek_letter = std::find(greek.begin(), greek.end(), w.base) != greek.end();  // \delta is no d
    if (w.base.size() < 2 || w.base[0] != 'd' || greek_letter || token(k + 2).kind != Tok::RBrace) {
      return std::nullopt;
    }
    Token of = first;  // dz_1: z_1
    of.written.base = w.base.substr(1);
    of.text = first.text.substr(1);
    of.pos.column += 1;
    return std::pair{of, k + 3};
  }

  // \frac{dL}{dy}, \frac{d L}{d y}: a derivative written with d.
  std::optional<Expr> d_derivative() {
    const auto of = d_name(i_);
    if (!of) return std::nullopt;
    const auto wrt = d_name(of->second);
    if (!wrt) return std::nullopt;
    Expr e;
    e.kind = ExprKind::Derivative;
    e.name = of->first.text;
    e.pos = of->first.pos;
    e.written = of->first.written;
    e.wrt = wrt->first.text;
    e.wrt_pos = wrt->first.pos;
    e.wrt_written = wrt->first.written;
    i_ = wrt->second;
    return e;
  }

  std::string_view text_;
  SourcePos start_;
  std::vector<Token> tokens_;
  std::size_t i_ = 0;
  std::vector<Annotation> annotations_;
  bool ellipsis_seen_ = false;
  int depth_ = 0;
};

using graph::number_text;

// Precedence for printing: sums bind loosest, then products, powers, atoms.
int rank(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Sum:
    case ExprKind::Negate:
      return 0;
    case ExprKind::Product:
    case ExprKind::Quotient:
    case ExprKind::Hadamard:
      return 1;
    case ExprKind::Power:
      return 2;
    default:
      return 3;
  }
}

std::string print(const Expr& e, int min_rank) {
  std::string s;
  switch (e.kind) {
    case ExprKind::Number:
      s = e.number == std::exp(1.0) ? "e" : number_text(e.number);  // Euler's number, as written
      break;
    case ExprKind::Name:
      s = e.name;
      break;
    case ExprKind::Derivative:
      if (e.wrt2.empty()) {
        s = "∂" + e.name + "/∂" + e.wrt;
      } else {
        s = "∂²" + e.name + "/∂" + e.wrt + (e.wrt2 == e.wrt ? "²" : "∂" + e.wrt2);
      }
      break;
    case ExprKind::Ellipsis:
      s = "…";
      break;
    case ExprKind::IndexSum:
      s = "Σ_{" + e.name + "}" + (e.wrt.empty() ? "" : "^{" + e.wrt + "}") + " " + print(e.args[0], 1);
      break;
    case ExprKind::Call:
      s = e.name + "(" + print(e.args[0], 0) + ")";
      break;
    case ExprKind::Compare:
      s = "[" + print(e.args[0], 0) + " " + e.name + " " + print(e.args[1], 0) + "]";
      break;
    case ExprKind::Negate:
      s = "-" + print(e.args[0], 1);
      break;
    case ExprKind::Power:
      s = print(e.args[0], 3) + "^" + print(e.args[1], 2);
      break;
    case ExprKind::Quotient:
      s = print(e.args[0], 1) + "/" + print(e.args[1], 2);
      break;
    case ExprKind::Product:
      s = graph::join(e.args, "·", [](const Expr& f) { return print(f, 1); });
      break;
    case ExprKind::Hadamard:
      s = graph::join(e.args, " ⊙ ", [](const Expr& f) { return print(f, 1); });
      break;
    case ExprKind::Transpose:
      s = print(e.args[0], 3) + "ᵀ";
      break;
    case ExprKind::Updated:
      s = print(e.args[0], 3) + "*";
      break;
    case ExprKind::Sum:
      for (const Expr& t : e.args) {
        if (s.empty()) {
          s = print(t, 0);
        } else if (t.kind == ExprKind::Negate) {
          s += " - " + print(t.args[0], 1);
        } else {
          s += " + " + print(t, 0);
        }
      }
      break;
  }
  const bool derivative_in_product = e.kind == ExprKind::Derivative && min_rank >= 1;
  if (rank(e) < min_rank && !derivative_in_product) return "(" + s + ")";
  return s;
}

void collect_names(const Expr& e, std::vector<NameUse>& out) {
  if (e.kind == ExprKind::Name) out.push_back({e.name, e.pos});
  if (e.kind == ExprKind::Derivative) {
    out.push_back({e.name, e.pos});
    out.push_back({e.wrt, e.wrt_pos});
    if (!e.wrt2.empty()) out.push_back({e.wrt2, e.wrt2_pos});
  }
  for (const Expr& a : e.args) collect_names(a, out);
}

}  // namespace

Formula parse_formula(std::string_view text, int first_line) { return Parser(text, {first_line, 1}).run(); }

Formula parse_formula(const FormulaSource& src) {
  if (src.chained_lhs.empty()) return Parser(src.text, src.start()).run();
  const Formula previous = parse_formula(src.chained_lhs);
  return Parser(src.text, src.start()).run(&previous.lhs);
}

std::string located_message(std::string_view text, int first_line, SourcePos pos, std::string_view what) {
  return located_message(text, SourcePos{first_line, 1}, pos, what);
}

std::string located_message(std::string_view text, SourcePos start, SourcePos pos, std::string_view what) {
  const int first_line = start.line;
  const int file_column = pos.column;
  if (pos.line == start.line) pos.column = std::max(1, pos.column - (start.column - 1));  // within `text`
  std::string_view line = text;
  for (int l = first_line; l < pos.line; ++l) {
    const std::size_t nl = line.find('\n');
    line = nl == std::string_view::npos ? std::string_view() : line.substr(nl + 1);
  }
  line = line.substr(0, line.find('\n'));
  // A long line is shown as a window of code points around the column, cut with '…'.
  constexpr std::size_t before = 40, width = 80;
  const auto column = static_cast<std::size_t>(pos.column - 1);
  const std::size_t first = column > before ? column - before : 0;
  std::string shown = first ? "…" : "";
  std::size_t cp = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const bool starts = (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80;
    if (starts && cp++ == first + width) {
      shown += "…";
      break;
    }
    const auto byte = static_cast<unsigned char>(line[i]);
    // Control characters (an escape sequence among them) never reach the terminal raw.
    if (cp > first)
      shown += byte == '\t' || byte == '\r'  ? std::string(" ")
               : byte < 0x20 || byte == 0x7F ? std::string("\uFFFD")
                                             : std::string(1, line[i]);
  }
  return "line " + std::to_string(pos.line) + ", column " + std::to_string(file_column) + ": " + std::string(what) +
         "\n  " + shown + "\n  " + std::string(column - first + (first ? 1 : 0), ' ') + "^";
}

namespace {

// The file's text with every comment blanked (kept as spaces, so lines and columns stay):
// in LaTeX from an unescaped % to the end of the line; in a plain file whole lines that
// start with % or #.
std::string blank_comments(std::string_view text, bool latex) {
  std::string out(text);
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') {
      line_start = i + 1;
      continue;
    }
    const bool first_on_line = out.find_first_not_of(" \t\r", line_start) == i;
    const bool comment =
        latex ? out[i] == '%' && (i == 0 || out[i - 1] != '\\') : first_on_line && (out[i] == '%' || out[i] == '#');
    if (!comment) continue;
    while (i < out.size() && out[i] != '\n') out[i++] = ' ';
    --i;
  }
  return out;
}

bool looks_like_latex(std::string_view text) {
  return text.find('$') != std::string_view::npos || text.find("\\[") != std::string_view::npos ||
         text.find("\\(") != std::string_view::npos || text.find("\\begin{") != std::string_view::npos;
}

// Line and column (in code points) of byte offsets asked in increasing order: a cursor
// that only moves forward, so a file of many formulas on one line stays linear.
class Positions {
 public:
  explicit Positions(std::string_view text) : text_(text) {}
  SourcePos at(std::size_t offset) {
    if (offset < offset_) offset_ = 0, pos_ = {1, 1};
    for (; offset_ < offset && offset_ < text_.size(); ++offset_) {
      if (text_[offset_] == '\n') {
        pos_ = {pos_.line + 1, 1};
      } else if ((static_cast<unsigned char>(text_[offset_]) & 0xC0) != 0x80) {
        ++pos_.column;
      }
    }
    return pos_;
  }

 private:
  std::string_view text_;
  std::size_t offset_ = 0;
  SourcePos pos_{1, 1};
};

constexpr std::array display_environments{"equation", "align",       "gather", "multline",
                                          "eqnarray", "displaymath", "flalign"};

// The environment a \begin{…} at `at` opens, when it is a display environment.
std::optional<std::string> display_environment(std::string_view text, std::size_t at) {
  if (text.compare(at, 7, "\\begin{") != 0) return std::nullopt;
  const std::size_t close = text.find('}', at + 7);
  if (close == std::string_view::npos) return std::nullopt;
  std::string env(text.substr(at + 7, close - at - 7));
  std::string base = !env.empty() && env.back() == '*' ? env.substr(0, env.size() - 1) : env;
  for (const char* e : display_environments) {
    if (base == e) return env;
  }
  return std::nullopt;
}

// An '=' that is a relation, not part of <=, >= or => (a row "&+ [z >= 0] c" goes on
// with the sum before it).
bool states_equality(std::string_view row) {
  for (std::size_t i = row.find('='); i != std::string_view::npos; i = row.find('=', i + 1)) {
    const bool comparison = i > 0 && (row[i - 1] == '<' || row[i - 1] == '>');
    const bool arrow = i + 1 < row.size() && row[i + 1] == '>';
    if (!comparison && !arrow) return true;
  }
  return false;
}

// An inline formula is checked when it states something about a derivative.
bool states_a_derivative(std::string_view math) {
  if (!states_equality(math)) return false;
  if (math.find("\\partial") != std::string_view::npos || math.find("∂") != std::string_view::npos) return true;
  for (std::size_t i = 0; i + 1 < math.size(); ++i) {  // dL/dw, \frac{dL}{dw}
    if (math[i] == '/' || math.compare(i, 2, "}{") == 0) {
      const std::size_t next = math.find_first_not_of(" {", i + 1);
      if (next != std::string_view::npos && math[next] == 'd') return true;
    }
  }
  return false;
}

// The inline $…$ opened at `open`: where its text ends, and whether a single $ closes it
// there. It stops unclosed at a blank line or where a display block opens ($$, \[,
// \begin{align}…), so a stray dollar in prose cannot swallow the display blocks after it.
struct InlineDollar {
  std::size_t end;
  bool closed;
};
InlineDollar inline_dollar(std::string_view t, std::size_t open) {
  for (std::size_t end = open + 1; end < t.size(); ++end) {
    const bool display = t.compare(end, 2, "\\[") == 0 || display_environment(t, end);
    if (t.compare(end, 2, "\n\n") == 0 || display) return {end, false};
    if (t[end] != '$' || t[end - 1] == '\\') continue;
    return {end, t.compare(end, 2, "$$") != 0};
  }
  return {t.size(), false};
}

class Splitter {
 public:
  Splitter(std::string_view text, std::vector<FormulaSource>& out) : text_(text), pos_(text), out_(out) {}

  // The rows of the block text_[begin, end): one formula per claim.
  void block(std::size_t begin, std::size_t end) {
    std::vector<std::pair<std::size_t, std::size_t>> rows;
    std::size_t row = begin;
    for (std::size_t i = begin; i + 1 < end; ++i) {
      if (text_[i] == '\\' && text_[i + 1] == '\\') {
        rows.emplace_back(row, i);
        row = i + 2;
        ++i;
      }
    }
    rows.emplace_back(row, end);
    std::optional<std::size_t> open;  // the formula the next rows may go on with
    std::size_t open_begin = 0;       // where its text starts
    std::string chain_lhs;            // the left side a row "&= …" is about
    for (auto [first, last] : rows) {
      const std::string_view r = text_.substr(first, last - first);
      const std::size_t content = first_content(r);
      if (content == std::string_view::npos) continue;
      const bool chained = r[content] == '=';
      const bool has_equals = states_equality(r);
      if (open && !has_equals) {  // "&+ …": the sum goes on; the lexer skips the \\ between
        out_[*open].text = std::string(text_.substr(open_begin, last - open_begin));
        continue;
      }
      FormulaSource f = source(first + content, last);
      if (chained && !chain_lhs.empty()) f.chained_lhs = chain_lhs;
      if (!chained) chain_lhs = std::string(r.substr(content));
      out_.push_back(std::move(f));
      open = out_.size() - 1;
      open_begin = first + content;
    }
  }

  // True when the inline math is a formula.
  bool inline_math(std::size_t begin, std::size_t end) {
    if (!states_a_derivative(text_.substr(begin, end - begin))) return false;
    out_.push_back(source(begin, end));
    return true;
  }

  void line(std::size_t begin, std::size_t end) {
    if (first_content(text_.substr(begin, end - begin)) != std::string_view::npos) out_.push_back(source(begin, end));
  }

 private:
  // The first character that is not space, '&' or a \begin{…}/\end{…} around the rows.
  static std::size_t first_content(std::string_view r) {
    std::size_t i = 0;
    while (i < r.size()) {
      if (r[i] == ' ' || r[i] == '\t' || r[i] == '\n' || r[i] == '\r' || r[i] == '&') {
        ++i;
      } else if (r.compare(i, 7, "\\begin{") == 0 || r.compare(i, 5, "\\end{") == 0) {
        const std::size_t close = r.find('}', i);
        if (close == std::string_view::npos) return i;
        i = close + 1;
      } else {
        return i;
      }
    }
    return std::string_view::npos;
  }

  FormulaSource source(std::size_t begin, std::size_t end) {
    const SourcePos p = pos_.at(begin);
    return FormulaSource{std::string(text_.substr(begin, end - begin)), p.line, p.column, {}};
  }

  std::string_view text_;
  Positions pos_;
  std::vector<FormulaSource>& out_;
};

}  // namespace

std::vector<FormulaSource> split_formulas(std::string_view file_text) {
  std::vector<FormulaSource> out;
  const bool latex = looks_like_latex(blank_comments(file_text, false));
  const std::string text = blank_comments(file_text, latex);
  Splitter split(text, out);
  const std::string_view t = text;
  if (!latex) {
    for (std::size_t start = 0; start <= t.size();) {
      const std::size_t end = std::min(t.find('\n', start), t.size());
      split.line(start, end);
      start = end + 1;
    }
    return out;
  }
  // Each opener and the closer that ends it; an unclosed block runs to the end of the
  // file, so it is still read (and its error reported), never dropped.
  auto until = [&](std::size_t from, std::string_view closer) {
    const std::size_t at = t.find(closer, from);
    return at == std::string_view::npos ? std::pair{t.size(), t.size()} : std::pair{at, at + closer.size()};
  };
  for (std::size_t i = 0; i < t.size();) {
    if (t.compare(i, 2, "$$") == 0) {
      const auto [end, next] = until(i + 2, "$$");
      split.block(i + 2, end);
      i = next;
    } else if (t.compare(i, 2, "\\[") == 0) {
      const auto [end, next] = until(i + 2, "\\]");
      split.block(i + 2, end);
      i = next;
    } else if (t.compare(i, 2, "\\(") == 0) {
      const auto [end, next] = until(i + 2, "\\)");
      split.inline_math(i + 2, end);
      i = next;
    } else if (const std::optional<std::string> env = display_environment(t, i)) {
      const std::size_t body = t.find('}', i) + 1;
      const auto [end, next] = until(body, "\\end{" + *env + "}");
      split.block(body, end);
      i = next;
    } else if (t[i] == '$' && (i == 0 || t[i - 1] != '\\')) {
      // Unclosed, it is still read when it states a derivative (and its error shown);
      // otherwise the $ was prose, and what follows it is read as the rest of the file.
      const InlineDollar math = inline_dollar(t, i);
      const bool taken = split.inline_math(i + 1, math.end);
      i = math.closed ? math.end + 1 : taken ? math.end : i + 1;
    } else {
      i += t[i] == '\\' ? 2 : 1;  // an escaped character (\$, \%) is prose
    }
  }
  return out;
}

std::string to_string(const Expr& e) { return print(e, 0); }

std::vector<NameUse> names_in(const Expr& e) {
  std::vector<NameUse> out;
  collect_names(e, out);
  return out;
}

}  // namespace gradpath::check
