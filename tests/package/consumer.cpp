// SPDX-License-Identifier: MIT
// Built against the installed package through the one umbrella header: d(x*y + sin x)/dx
// at (2, 3) must be 3 + cos 2; then an Adam step at a scheduled rate, and a checkpoint
// saved and loaded back.
#include <gradpath/gradpath.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

int main(int, char** argv) {
  using namespace gradpath;
  Tape tape;
  Var x = tape.input(2.0, "x"), y = tape.input(3.0, "y");
  Var f = x * y + sin(x);
  tape.backward(f);
  const bool grad_ok = std::abs(x.grad() - (3.0 + std::cos(2.0))) < 1e-12;

  TensorVar w = tape.param(std::vector<double>{1.0, -2.0}, Shape{2}, "w");
  ops::Adam adam({w}, {.lr = 0.1});
  adam.set_lr(ops::StepLr(0.1, 1, 0.5)(1));  // 0.05
  tape.reset();
  tape.backward(ops::sum(w * w));
  adam.step();  // Adam's first step moves each weight by lr against the sign of its grad
  const bool step_ok = std::abs(w.values()[0] - 0.95) < 1e-6 && std::abs(w.values()[1] + 1.95) < 1e-6;

  // Beside the program, in its own build directory: no other build's run can meet it.
  const auto file = std::filesystem::path(argv[0]).parent_path() / "consumer-checkpoint.json";
  save_checkpoint(file, {{"w", w}});
  TensorVar w2 = tape.param(std::vector<double>{0.0, 0.0}, Shape{2}, "w2");
  load_checkpoint(file, {{"w", w2}});
  std::filesystem::remove(file);
  const bool load_ok = w2.values()[0] == w.values()[0] && w2.values()[1] == w.values()[1];

  const bool ok = grad_ok && step_ok && load_ok;
  std::printf("consumer: df/dx = %.6f, w after one Adam step = (%.4f, %.4f), checkpoint %s: %s\n", x.grad(),
              w.values()[0], w.values()[1], load_ok ? "round-trips" : "DIFFERS", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
