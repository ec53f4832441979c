// SPDX-License-Identifier: MIT
// Grading a folder of submissions (gradpath check MODEL DIR --csv FILE): the rows and
// totals of tests/grading/submissions/, whose mistakes are known, against a CSV written
// by hand (tests/grading/expected.csv); partial credit; CSV quoting; determinism.
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "check/grading.hpp"

using namespace gradpath;

namespace {

const std::string grading_dir = GRADPATH_SOURCE_DIR "/tests/grading";
const std::string sigmoid_model = "../../examples/models/mlp_sigmoid.json";

struct Run {
  int status;
  std::string out;
};

// Runs the command in tests/grading, so the submissions' paths in its output are relative.
Run run(const std::string& args) {
  const std::string line = "cd '" + grading_dir + "' && " + GRADPATH_COMMAND + " " + args + " 2>&1";
  FILE* pipe = popen(line.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("gradpath_grading_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("grading: a folder of submissions with known mistakes gives the CSV written by hand", "[grading]") {
  const std::string csv = temp_path("grades.csv");
  const Run r = run("check " + sigmoid_model + " submissions --csv " + csv);
  CHECK(r.status == 1);  // some formulas fail, one file holds none, one cannot be read
  CHECK(slurp(csv) == slurp(grading_dir + "/expected.csv"));
  // The text report says the same, a total per submission.
  CHECK(r.out.find("submissions/bob.txt: 2.5 of 4 formulas (62.5%)") != std::string::npos);
  CHECK(r.out.find("submissions/late/erin.txt:3  error  credit 0  [unreadable]") != std::string::npos);
  CHECK(r.out.find(".hidden") == std::string::npos);
  // Byte for byte the same on a second run.
  const std::string again = temp_path("again.csv");
  const Run second = run("check " + sigmoid_model + " submissions --csv " + again);
  CHECK(second.out == r.out);
  CHECK(slurp(again) == slurp(csv));
}

TEST_CASE("grading: files given one by one, exit status, JSON, a bad model", "[grading]") {
  SECTION("every formula of every file holds: 0") {
    const Run r = run("check " + sigmoid_model + " submissions/alice.txt submissions/alice.txt");
    CHECK(r.status == 0);
    CHECK(r.out.find("submissions/alice.txt: 4 of 4 formulas (100.0%)") != std::string::npos);
  }
  SECTION("files keep the order they are given in") {
    const Run r = run("check " + sigmoid_model + " submissions/dave.txt submissions/alice.txt --csv -");
    CHECK(r.status == 1);
    CHECK(r.out.find("submissions/dave.txt") < r.out.find("submissions/alice.txt"));
  }
  SECTION("a missing file is a row with its error, the others are still graded") {
    const Run r = run("check " + sigmoid_model + " submissions/nobody.txt submissions/alice.txt");
    CHECK(r.status == 1);
    CHECK(r.out.find("submissions/nobody.txt  error  credit 0  [unreadable]") != std::string::npos);
    CHECK(r.out.find("submissions/alice.txt: 4 of 4") != std::string::npos);
  }
  SECTION("--json") {
    const Run r = run("check " + sigmoid_model + " submissions --grade --json");
    CHECK(r.status == 1);
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j["submissions"].size() == 6);
    CHECK(j["submissions"][1]["submission"] == "submissions/bob.txt");
    CHECK(j["submissions"][1]["points"] == 2.5);
    CHECK(j["submissions"][1]["formulas"][1]["mistake"] == "transposed index");
    CHECK(j["submissions"][4]["error"].get<std::string>().find("holds no formula") != std::string::npos);
  }
  SECTION("a lone directory without --grade or --csv is an error that says how to grade it") {
    const Run r = run("check " + sigmoid_model + " submissions");
    CHECK(r.status == 2);
    CHECK(r.out.find("submissions: is a directory, not a formula file; to grade the submissions in it") !=
          std::string::npos);
    CHECK(run("check " + sigmoid_model + " submissions --grade").status == 1);
  }
  SECTION("a model that cannot be loaded is exit 2, nothing graded") {
    const Run r = run("check submissions/alice.txt submissions --csv -");
    CHECK(r.status == 2);
    CHECK(r.out.find("submission,line") == std::string::npos);
  }
}

TEST_CASE("grading: partial credit is the share of terms right", "[grading]") {
  check::Report r;
  r.formula = "dL/dw1 = a1*dL/dz1 + a13*dL/dz2 + a11*dL/dz3 + a13*dL/dz4";
  r.verdict = check::Verdict::Fail;
  r.form = check::Form::Cut;
  r.findings.push_back({check::FindingKind::WrongTerm, check::Mistake::WrongIndex, 2, "term 2: …"});
  CHECK(check::credit(r) == Approx(0.75));
  r.findings.push_back({check::FindingKind::MissingTerm, check::Mistake::MissingPath, 0, "missing path"});
  CHECK(check::credit(r) == Approx(3.0 / 5.0));  // 3 right of 4 written + 1 missing
  r.formula += " + a2*dL/dz1";
  r.findings = {{check::FindingKind::ExtraTerm, check::Mistake::ExtraTerm, 5, "term 5: extra term"}};
  CHECK(check::credit(r) == Approx(4.0 / 5.0));  // 4 right of 5 written
  r.findings = {{check::FindingKind::Mismatch, check::Mistake::None, 0, "the sides differ"}};
  CHECK(check::credit(r) == 0.0);
  r.verdict = check::Verdict::Partial;
  CHECK(check::credit(r) == 1.0);
  r.verdict = check::Verdict::Uncovered;
  CHECK(check::credit(r) == 0.0);
}

TEST_CASE("grading: CSV fields are quoted as RFC 4180 says", "[grading]") {
  CHECK(check::csv_field("plain text") == "plain text");
  CHECK(check::csv_field("a, b") == "\"a, b\"");
  CHECK(check::csv_field("say \"a3\"") == "\"say \"\"a3\"\"\"");
  CHECK(check::csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(check::csv_field("cr\r") == "\"cr\r\"");
  check::Submission s{"odd, \"name\".txt", {}, "cannot open, \"really\""};
  const std::string csv = check::grading_csv(std::span(&s, 1));
  CHECK(csv.find("\"odd, \"\"name\"\".txt\",,error,0,unreadable,,\"cannot open, \"\"really\"\"\"\r\n") !=
        std::string::npos);
}

TEST_CASE("grading: a directory is read recursively, in path order, hidden files skipped", "[grading]") {
  const std::vector<std::string> args{grading_dir + "/submissions"};
  const std::vector<std::string> files = check::submission_files(args);
  std::vector<std::string> names;
  for (const std::string& f : files) names.push_back(f.substr(grading_dir.size() + 1));
  CHECK(names == std::vector<std::string>{"submissions/alice.txt", "submissions/bob.txt", "submissions/carol.tex",
                                          "submissions/dave.txt", "submissions/empty.txt",
                                          "submissions/late/erin.txt"});
}
