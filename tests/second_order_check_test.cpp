// SPDX-License-Identifier: MIT
// Second derivatives in hand derivations: ∂²L/∂a∂b is read in every spelling of the first
// derivative and checked against the engine's exact Hessian at every draw. On the seed
// network the Hessian in w is the outer product g gᵀ, g_i = Σ_k v_k a_{k,i}: correct
// elements pass, every kind of wrong one fails, and what is not read is an error at its
// column.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "check/checker.hpp"
#include "cli/model.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

struct Loaded {
  cli::Model model;
  BuildFn build;
  CheckOptions options;
};

// A JSON model of examples/models, rebuilt for every draw, with its loss in the options.
const Loaded& model(const std::string& path) {
  static std::map<std::string, Loaded> models;
  auto it = models.find(path);
  if (it == models.end()) {
    const std::filesystem::path root(GRADPATH_SOURCE_DIR);
    it = models.emplace(path, Loaded{cli::Model::load((root / path).string()), {}, {}}).first;
    const cli::Model* m = &it->second.model;
    it->second.build = [m](Tape& tape) { m->build(tape); };
    it->second.options.loss = m->loss();
  }
  return it->second;
}

// Every line of `formulas` against one session of `path`, one report each.
std::vector<Report> check_lines(const std::string& path, const std::vector<std::string>& formulas) {
  std::string text;
  for (const std::string& f : formulas) text += f + "\n";
  const Loaded& m = model(path);
  std::vector<Report> reports = check_text(m.build, text, m.options);
  REQUIRE(reports.size() == formulas.size());
  return reports;
}

const std::string seed = "examples/models/seed.json";
const std::string mlp = "examples/models/mlp_sigmoid.json";

// The seed's image pixel under filter tap i (1..9) for output k (1..4): 3x3 taps at stride
// 2 over the 5x5 image, row-major from 1.
int pixel(int k, int i) {
  const int row = 2 * ((k - 1) / 2) + (i - 1) / 3, col = 2 * ((k - 1) % 2) + (i - 1) % 3;
  return 5 * row + col + 1;
}

// g_i = ∂y/∂w_i = Σ_k v_k a_{k,i} written out, with the pixel of term `wrong_k` its neighbour.
std::string g(int i, int wrong_k = 0) {
  std::string s = "(";
  for (int k = 1; k <= 4; ++k) {
    const int p = pixel(k, i), neighbour = p < 25 ? p + 1 : p - 1;
    s += (k > 1 ? " + v" : "v") + std::to_string(k) + "*a" + std::to_string(k == wrong_k ? neighbour : p);
  }
  return s + ")";
}

}  // namespace

TEST_CASE("second order: the seed's Hessian elements in every spelling pass", "[check][second]") {
  const std::vector<std::string> correct{
      "d2L/dw1dw2 = " + g(1) + "*" + g(2),
      "d^2L/dw1^2 = " + g(1) + "^2",
      "d2L/dw1 dw5 = " + g(1) + "*" + g(5),
      "∂²L/∂w5∂w9 = " + g(5) + g(9),
      "∂²L/∂w3² = " + g(3) + "²",
      std::string(R"(\frac{\partial^2 L}{\partial w_1 \partial w_2} = (v_1 a_1 + v_2 a_3 + v_3 a_{11} + v_4 a_{13}))") +
          R"((v_1 a_2 + v_2 a_4 + v_3 a_{12} + v_4 a_{14}))",
      R"(\frac{\partial^{2} L}{\partial w_4\,\partial w_2} = )" + g(4) + g(2),
      R"(\frac{\partial^2 L}{\partial w_1^2} = )" + g(1) + "^2",
      // Mixed: ∂L/∂w_i = (y - t) g_i, and g_1 holds v_1.
      "d2L/dv1dw1 = z1*" + g(1) + " + (y - t)*a1",
      "d2L/dv2dw1 = z2*" + g(1) + " + (y - t)*a3",
      "d2L/db^2 = 1",
      "d2L/db dw7 = " + g(7),
      // Indexed: y is linear in v, so the v block is z zᵀ, for all 16 (k, m).
      R"(\frac{\partial^2 L}{\partial v_k \partial v_m} = z_k z_m)",
  };
  for (const Report& r : check_lines(seed, correct)) {
    INFO(r.formula << "\n" << r.text());
    CHECK(r.verdict == Verdict::Pass);
    CHECK(r.form == Form::SecondDerivative);
  }
}

TEST_CASE("second order: every pair (i, j) of the seed's w block passes, and fails with one pixel off",
          "[check][second][mutation]") {
  std::vector<std::string> correct, wrong;
  for (int i = 1; i <= 9; ++i) {
    for (int j = 1; j <= 9; ++j) {
      correct.push_back("d2L/dw" + std::to_string(i) + "dw" + std::to_string(j) + " = " + g(i) + "*" + g(j));
      wrong.push_back("d2L/dw" + std::to_string(i) + "dw" + std::to_string(j) + " = " + g(i) + "*" +
                      g(j, 1 + (i + j) % 4));
    }
  }
  for (const Report& r : check_lines(seed, correct)) {
    INFO(r.formula << "\n" << r.text());
    CHECK(r.verdict == Verdict::Pass);
  }
  for (const Report& r : check_lines(seed, wrong)) {
    INFO(r.formula << "\n" << r.text());
    CHECK(r.verdict == Verdict::Fail);
  }
}

TEST_CASE("second order: wrong Hessian elements of the seed all fail", "[check][second]") {
  struct Wrong {
    std::string formula;
    Mistake mistake;  // what the checker names, when it names one
  };
  const std::vector<Wrong> wrong{
      {"d2L/dw1dw2 = " + g(1), Mistake::None},                                // a dropped factor
      {"d2L/dw1dw2 = " + g(1) + "*" + g(2, 4), Mistake::WrongIndex},          // a wrong pixel
      {"d2L/dw1dw2 = -" + g(1) + "*" + g(2), Mistake::Sign},                  // the sign flipped
      {"d2L/dw1dw2 = " + g(1) + "*(v1*a2 + v2*a4 + v3*a12)", Mistake::None},  // a term of the sum missing
      {"d2L/dw1dw2 = 2*" + g(1) + "*" + g(2), Mistake::ConstantFactor},       // a constant factor
      {"d2L/dw1^2 = " + g(1) + "^2/2", Mistake::ConstantFactor},              // a constant factor
      {"d2L/dw1dw2 = (y - t)*" + g(2), Mistake::None},                        // ∂L/∂w2 passed off as second order
      {"d2L/dw1^2 = " + g(1), Mistake::None},                                 // g, not g²
      {"d2L/dv1dw1 = z1*" + g(1), Mistake::None},                             // the mixed term (y - t) a1 missing
      {"d2L/dv1dw1 = z1*" + g(1) + " + (y - t)*a2", Mistake::WrongIndex},     // the mixed term's wrong pixel
      {"d2L/dv2dw1 = z1*" + g(2) + " + (y - t)*a2", Mistake::None},           // v_2 and w_1 swapped
      {"d2L/db^2 = 0", Mistake::None},                                        // the curvature of (y - t)²/2 left out
      {R"(\frac{\partial^2 L}{\partial v_k \partial v_m} = z_k z_k)", Mistake::None},  // m for k
  };
  std::vector<std::string> formulas;
  for (const Wrong& w : wrong) formulas.push_back(w.formula);
  const std::vector<Report> reports = check_lines(seed, formulas);
  for (std::size_t n = 0; n < wrong.size(); ++n) {
    const Report& r = reports[n];
    INFO(r.formula << "\n" << r.text());
    REQUIRE(r.verdict == Verdict::Fail);
    REQUIRE(!r.findings.empty());
    if (wrong[n].mistake != Mistake::None) CHECK(r.findings[0].mistake == wrong[n].mistake);
  }
  // The finding gives the engine's value and the formula's, at the draw where they differ.
  CHECK_THAT(reports[0].findings[0].message,
             Catch::Contains("∂²L/∂w1∂w2 is 0.1116 at the current point (the engine's Hessian), the formula has"));
  CHECK_THAT(reports[0].findings[0].message, Catch::Contains("they differ at 6 of 6 draws"));
  CHECK_THAT(reports[1].findings[0].message, Catch::Contains("write a14 for a15"));
}

TEST_CASE("second order: the sigmoid MLP's curvature through σ", "[check][second]") {
  // L = ((y1 - t1)² + (y2 - t2)²)/2, y = σ(u), u = V h + c: ∂²L/∂c1² = σ′(u1)² + (y1 - t1) σ″(u1)
  // with σ′ = y(1 - y) and σ″ = y(1 - y)(1 - 2y); the output units do not mix.
  const std::string s1 = "y1*(1 - y1)";
  const std::vector<Report> reports = check_lines(
      mlp,
      {
          "d2L/dc1^2 = (" + s1 + ")^2 + (y1 - t1)*" + s1 + "*(1 - 2*y1)",
          R"(\frac{\partial^2 L}{\partial V_{1,1} \partial c_1} = h_1 ((y_1 (1 - y_1))^2 + (y_1 - t_1) y_1 (1 - y_1) (1 - 2 y_1)))",
          "d2L/dc1dc2 = 0",
          "d2L/dc1^2 = (" + s1 + ")^2",                    // the Gauss-Newton part only
          "d2L/dc1^2 = (" + s1 + ")^2 + (y1 - t1)*" + s1,  // σ″ without its (1 - 2y)
          "d2L/dc1dc2 = " + s1 + "*y2*(1 - y2)",           // the units mixed
      });
  for (std::size_t n = 0; n < reports.size(); ++n) {
    INFO(reports[n].formula << "\n" << reports[n].text());
    CHECK(reports[n].verdict == (n < 3 ? Verdict::Pass : Verdict::Fail));
  }
}

TEST_CASE("second order: what is not read is an error at its column, never a pass", "[check][second][errors]") {
  struct Refused {
    std::string formula, message;
  };
  const std::vector<Refused> refused{
      {R"(\frac{\partial^3 L}{\partial w_1^3} = 0)", "column 15: only first and second derivatives are read"},
      {"∂³L/∂w1³ = 0", "column 2: only first and second derivatives are read"},
      {"d3L/dw1dw2dw3 = 0", "column 2: only first and second derivatives are read"},
      {R"(\partial^2 L / \partial w_1 = 0)", "column 16: ∂^2 L is a second derivative but one variable is written"},
      {"d2L/dw1 = 0", "column 9: d2L/dw1 is a second derivative with one variable"},
      {R"(\frac{\partial^2 L}{\partial w_1^3} = 0)", "column 33: only first and second derivatives are read"},
      {R"(\frac{\partial L}{\partial w_1 \partial w_2} = 0)", "column 19: two variables below but ∂L above"},
      {R"(\frac{\partial L}{\partial w_1^2} = 0)", "column 19: two variables below but ∂L above"},
      {R"(\frac{\partial^2 L}{\partial w_1 \partial w_2 \partial w_3} = 0)",
       "column 47: only first and second derivatives are read: at most two variables"},
      {R"(\frac{\partial^2 L}{\partial^2 w_1} = 0)", "the order is written on the numerator"},
      {R"(\frac{\partial^2 z_1}{\partial w_1 \partial w_2} = 0)",
       "column 18: second derivatives are read of the loss L only"},
      {"d2L/dy^2 = 1", "column 6: y is computed by the network"},
      {"d2L/dw1dz1 = 0", "column 9: z1 is computed by the network"},
      {R"(\frac{\partial^2 L}{\partial w \partial w} = 0)", "not read in matrix form"},
      {R"(\frac{d^2 L}{dw_1 dw_2} = 0)", "column 7: a second derivative with d in \\frac is not read"},
  };
  std::vector<std::string> formulas;
  for (const Refused& r : refused) formulas.push_back(r.formula);
  const std::vector<Report> reports = check_lines(seed, formulas);
  for (std::size_t n = 0; n < refused.size(); ++n) {
    INFO(reports[n].formula << "\n" << reports[n].error);
    CHECK(reports[n].verdict == Verdict::Error);
    CHECK_THAT(reports[n].error, Catch::Contains(refused[n].message));
  }
}

TEST_CASE("second order: first derivatives read as before", "[check][second]") {
  // A chain written by juxtaposition is two first derivatives, not a second derivative.
  const std::vector<Report> reports = check_lines(
      seed,
      {"∂L/∂z1 ∂z1/∂w1 = v1 a1 (y - t)", R"(\frac{\partial L}{\partial w_1} = )" + std::string("(y - t)*") + g(1)});
  for (const Report& r : reports) {
    INFO(r.formula << "\n" << r.text());
    CHECK(r.verdict == Verdict::Pass);
    CHECK(r.form != Form::SecondDerivative);
  }
}
