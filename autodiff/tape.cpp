// SPDX-License-Identifier: MIT
// The tape's bookkeeping: identity, names, reset, tensor records and the reverse sweep.
#include "autodiff/tape.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <new>
#include <utility>

#include "autodiff/functions.hpp"

namespace gradpath {

namespace detail {
LiveTape live_tapes[max_live_tapes];
}  // namespace detail

namespace {
// Guards only the allocation of live_tapes indices, never a tape's own data.
std::mutex registry_mutex;
std::vector<std::uint32_t> free_indices;
std::uint32_t next_index = 0;
std::uint32_t last_serial = 0;
constexpr std::size_t max_slots = 0xFFFFFFFFu;
// Operand columns and saved data are indexed by 32-bit offsets too (NodeSpan::arg_end,
// TensorRecord::arg_end and saved_end): past this they would wrap and misattribute.
constexpr std::size_t max_offset = 0xFFFFFFFFu;

// Runs `allocate`; running out of memory becomes an Error naming the op, as passing the
// memory limit does, so a caller catching gradpath::Error sees both.
template <typename F>
void or_error(std::string_view what, F allocate) {
  try {
    allocate();
  } catch (const std::bad_alloc&) {
    throw CapacityError(std::string(what) + ": out of memory growing the tape (Tape::set_memory_limit caps it)");
  }
}
}  // namespace

namespace detail {
std::uint32_t set_last_tape_serial(std::uint32_t serial) {
  std::lock_guard lock(registry_mutex);
  return std::exchange(last_serial, serial);
}

void throw_wrong_options(const TensorRecord& record, const OptionsType& wanted) {
  const std::string op(record.info != nullptr ? record.info->name : "tensor op");
  const OptionsType* held = record.options.type();
  throw Error("options: node " + std::to_string(record.node) + " is a " + op + ", which recorded " +
              (held != nullptr ? "the options of " + std::string(held->op) : std::string("no options")) +
              "; read as the options of " + std::string(wanted.op));
}
}  // namespace detail

std::string_view op_name(Op op) {
  if (const std::optional<FnId> f = function_of(op)) return function_info(*f).name;
  switch (op) {
    case Op::Input:
      return "input";
    case Op::Param:
      return "param";
    case Op::Add:
      return "add";
    case Op::Sub:
      return "sub";
    case Op::Mul:
      return "mul";
    case Op::Div:
      return "div";
    case Op::Neg:
      return "neg";
    case Op::Pow:
      return "pow";
    case Op::Max:
      return "max";
    case Op::Min:
      return "min";
    case Op::Sum:
      return "sum";
    case Op::Copy:
      return "copy";
    case Op::Tensor:
      return "tensor";
    default:
      return "?";
  }
}

std::string_view dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

Tape::Tape() {
  std::lock_guard lock(registry_mutex);
  // A Var tells its tape by index and serial: were serials to wrap, a Var of a destroyed
  // tape could read the new tape that reuses its index, so the last serial is the last tape.
  if (last_serial == 0xFFFFFFFFu) {
    throw Error("Tape: this process already made 2^32 - 1 tapes; a new one could be mistaken for a destroyed one");
  }
  if (!free_indices.empty()) {
    index_ = free_indices.back();
    free_indices.pop_back();
  } else if (next_index < detail::max_live_tapes) {
    index_ = next_index++;
  } else {
    throw Error("Tape: more than " + std::to_string(detail::max_live_tapes) + " tapes alive at once");
  }
  serial_ = ++last_serial;
  epoch_ = std::uint64_t{serial_} << 32;
  detail::live_tapes[index_].tape.store(this, std::memory_order_relaxed);
  detail::live_tapes[index_].epoch.store(epoch_, std::memory_order_release);  // publishes the pointer
}

Tape::~Tape() {
  std::lock_guard lock(registry_mutex);
  detail::live_tapes[index_].epoch.store(0, std::memory_order_release);
  detail::live_tapes[index_].tape.store(nullptr, std::memory_order_relaxed);
  free_indices.push_back(index_);
}

// Note [Reset epochs]: resets keep the nodes through the last parameter. That prefix
// only grows, so a Var made before reset r survives every later reset exactly when
// its slot is below what reset r kept. A Var made of a slot already in the prefix
// survives every reset: it carries every_reset instead of its epoch's reset count, so
// parameters pass the one compare of the hot path in every epoch.
void Tape::check(const Var& v, std::string_view what) const {
  if (usable(v.epoch_, epoch_)) return;
  const auto made_in = static_cast<std::uint32_t>(v.epoch_);
  if ((v.epoch_ >> 32) != serial_ || made_in > static_cast<std::uint32_t>(epoch_)) throw_stale(v, what);
  auto it = std::upper_bound(keep_history_.begin(), keep_history_.end(), made_in,
                             [](std::uint32_t r, const KeepChange& k) { return r < k.from_reset; });
  if (it == keep_history_.begin() || v.slot_ >= std::prev(it)->kept_slots) throw_stale(v, what);
}

Tape& Tape::of_slow(const Var& v, std::string_view what) {
  if (v.tape_index_ >= detail::max_live_tapes) {
    throw Error(std::string(what) + ": the Var is empty (default-constructed, never assigned from a tape)");
  }
  const detail::LiveTape& live = detail::live_tapes[v.tape_index_];
  if ((live.epoch.load(std::memory_order_acquire) >> 32) != (v.epoch_ >> 32)) {
    throw Error(std::string(what) + ": the Var's tape was destroyed");
  }
  Tape* t = live.tape.load(std::memory_order_relaxed);
  t->check(v, what);
  return *t;
}

Tape& Tape::of_slow(const Var& a, const Var& b, std::string_view what) {
  Tape& t = of(a, what);
  t.check_second(a, b, what);
  return t;
}

void Tape::check_second(const Var& a, const Var& b, std::string_view what) const {
  if (b.tape_index_ != a.tape_index_ || (b.epoch_ >> 32) != (a.epoch_ >> 32)) {
    of(b, what);  // a dead or empty operand gets its own message first
    throw Error(std::string(what) + ": operands are on different tapes");
  }
  check(b, what);
}

void Tape::throw_stale(const Var& v, std::string_view what) const {
  throw Error(std::string(what) + ": the Var (slot " + std::to_string(v.slot_) +
              ") was recorded before Tape::reset() dropped it; rebuild it on the current tape");
}

Var Tape::leaf(Op op, double value, std::string_view name) {
  value = leaf_value(value);
  const Slot s = push_scalar(op, value);
  if (op == Op::Param) keep_through_last_node();
  if (!name.empty()) set_name(static_cast<NodeId>(op_.size() - 1), name);
  return var_at(s);
}

Var Tape::input(double value, std::string_view name) { return leaf(Op::Input, value, name); }
Var Tape::param(double value, std::string_view name) { return leaf(Op::Param, value, name); }

Var Tape::record(Op op, double value, std::span<const Slot> args, std::span<const double> partials) {
  if (args.size() != partials.size()) {
    throw Error(std::string(op_name(op)) + ": " + std::to_string(args.size()) + " operands but " +
                std::to_string(partials.size()) + " partials");
  }
  room_args(args.size(), op);
  arg_slot_.append(args);
  partial_.append(partials);
  return close(op, value);
}

NodeId Tape::record_tensor(const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                           const OpOptions& options, std::size_t saved_size, DType dtype) {
  const std::size_t n = shape.size();
  const bool f32 = dtype == DType::f32;
  if (n == 0) throw Error(std::string(info.name) + ": empty tensor of shape " + shape.str());
  if (n >= max_slots - (f32 ? values_f32_.size() : values_.size())) {
    throw CapacityError(std::string(info.name) + ": the tape is full (2^32 " + (f32 ? "float32 elements)" : "slots)"));
  }
  if (anomaly_) check_values(static_cast<NodeId>(op_.size()));
  reserve_tensor_side(info.name, args.size(), saved_size);
  if (f32) reserve_f32(info.name, n);
  const std::size_t slots = f32 ? 1 : n;  // a float32 node keeps one placeholder slot (value 0)
  if (op_.size() == op_.capacity() || values_.capacity() - values_.size() < slots - 1 + (op_.capacity() - op_.size())) {
    grow(info.name, 1, 0, slots);
  }
  TensorRecord r;
  r.node = static_cast<NodeId>(op_.size());
  r.info = &info;
  r.shape = shape;
  r.arg_begin = static_cast<std::uint32_t>(tensor_args_.size());
  tensor_args_.insert(tensor_args_.end(), args.begin(), args.end());
  r.arg_end = static_cast<std::uint32_t>(tensor_args_.size());
  r.saved_begin = static_cast<std::uint32_t>(saved_.size());
  saved_.resize(saved_.size() + saved_size);
  r.saved_end = static_cast<std::uint32_t>(saved_.size());
  r.options = options;
  r.dtype = dtype;
  const auto offset = static_cast<Slot>(values_.size());
  nodes_.append({offset, static_cast<std::uint32_t>(arg_slot_.size())});
  std::fill_n(values_.extend(slots), slots, 0.0);
  op_.append(Op::Tensor);
  r.output = f32 ? static_cast<Slot>(values_f32_.size()) : offset;
  if (f32) values_f32_.resize(values_f32_.size() + n, 0.0f);
  tensors_.push_back(r);
  return r.node;
}

const TensorRecord& Tape::tensor_record(NodeId n) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), n,
                             [](const TensorRecord& r, NodeId id) { return r.node < id; });
  if (it == tensors_.end() || it->node != n) {
    throw Error("tensor_record: node " + std::to_string(n) + " is not a tensor node");
  }
  return *it;
}

std::vector<double> Tape::tensor_partials(NodeId n, std::size_t element) const {
  const TensorRecord& r = tensor_record(n);
  const auto args = tensor_args(r);
  if (r.dtype == DType::f32 ||
      std::any_of(args.begin(), args.end(), [](const TensorArg& a) { return a.dtype == DType::f32; })) {
    throw Error("tensor_partials: " + std::string(r.info->name) + " node " + std::to_string(n) +
                " involves float32; check gradients in double");
  }
  if (element >= r.shape.size()) {
    throw Error("tensor_partials: element " + std::to_string(element) + " is out of range for " +
                std::string(r.info->name) + " output " + r.shape.str());
  }
  // Only the output and operand ranges are touched: save them, run the rule on zeros
  // seeded with a unit vector, read the operand grads, put the saved grads back.
  std::vector<std::pair<Slot, std::size_t>> ranges{{offset(n), r.shape.size()}};
  for (const TensorArg& a : tensor_args(r)) ranges.emplace_back(a.offset, a.shape.size());
  const bool had_grads = has_grads();
  if (!had_grads) grads_.assign(values_.size(), 0.0);
  std::vector<double> kept;
  for (auto [first, count] : ranges) kept.insert(kept.end(), grads_.begin() + first, grads_.begin() + first + count);
  for (auto [first, count] : ranges) std::fill_n(grads_.begin() + first, count, 0.0);
  grads_[offset(n) + element] = 1.0;
  r.info->backward(const_cast<Tape&>(*this), r);  // writes only grads_, which is mutable
  std::vector<double> partials;
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    partials.insert(partials.end(), grads_.begin() + ranges[i].first,
                    grads_.begin() + ranges[i].first + ranges[i].second);
  }
  std::size_t at = 0;
  for (auto [first, count] : ranges) {
    std::copy_n(kept.begin() + at, count, grads_.begin() + first);
    at += count;
  }
  if (!had_grads) grads_.clear();
  return partials;
}

std::span<const TensorArg> Tape::tensor_args(const TensorRecord& r) const {
  return std::span(tensor_args_).subspan(r.arg_begin, r.arg_end - r.arg_begin);
}
std::span<double> Tape::saved(const TensorRecord& r) {
  return std::span(saved_).subspan(r.saved_begin, r.saved_end - r.saved_begin);
}
std::span<const double> Tape::saved(const TensorRecord& r) const {
  return std::span(saved_).subspan(r.saved_begin, r.saved_end - r.saved_begin);
}

std::uint32_t Tape::size(NodeId n) const {
  const std::size_t end = n + 1 < op_.size() ? nodes_[n + 1].offset : values_.size();
  return static_cast<std::uint32_t>(end - nodes_[n].offset);
}

std::span<const Slot> Tape::arg_slots(NodeId n) const {
  const std::uint32_t begin = n ? nodes_[n - 1].arg_end : 0;
  return std::span(arg_slot_).subspan(begin, nodes_[n].arg_end - begin);
}

std::span<const double> Tape::partials(NodeId n) const {
  const std::uint32_t begin = n ? nodes_[n - 1].arg_end : 0;
  return std::span(partial_).subspan(begin, nodes_[n].arg_end - begin);
}

NodeId Tape::node_of(Slot s) const {
  if (s >= values_.size()) throw Error("node_of: slot " + std::to_string(s) + " is not on the tape");
  auto it = std::upper_bound(nodes_.begin(), nodes_.end(), s, [](Slot slot, NodeSpan n) { return slot < n.offset; });
  return static_cast<NodeId>(it - nodes_.begin() - 1);
}

void Tape::set_value(const Var& leaf, double value) {
  check(leaf, "set_value");
  const NodeId n = node_of(leaf.slot_);
  if (!is_leaf(op_[n])) {
    throw Error("set_value: node " + std::to_string(n) + " ('" + name(n) + "') is a " + std::string(op_name(op_[n])) +
                " node, not an input or parameter");
  }
  auto record = std::lower_bound(tensors_.begin(), tensors_.end(), n,
                                 [](const TensorRecord& r, NodeId id) { return r.node < id; });
  if (record != tensors_.end() && record->node == n) {
    throw Error("set_value: node " + std::to_string(n) + " ('" + name(n) +
                "') is a float32 leaf tensor; write tape.values_f32() at its offset instead");
  }
  values_[leaf.slot_] = value;
}

// ---- names -------------------------------------------------------------------------

void Tape::set_name(NodeId n, std::string_view name) { add_name(n, 1, name, false); }
void Tape::set_range_name(NodeId first, NodeId count, std::string_view base) { add_name(first, count, base, true); }

void Tape::add_name(NodeId first, NodeId count, std::string_view base, bool numbered) {
  if (count == 0 || first + count > op_.size()) {
    throw Error("set_name: nodes " + std::to_string(first) + "+" + std::to_string(count) + " are not on the tape");
  }
  auto it = std::lower_bound(names_.begin(), names_.end(), first,
                             [](const NameRange& r, NodeId id) { return r.first + r.count <= id; });
  const bool rename = it != names_.end() && it->first == first && it->count == count;
  if (it != names_.end() && it->first < first + count && !rename) {
    throw Error("set_name: node " + std::to_string(first) + " already belongs to the named range '" + it->base + "'");
  }
  check_name_clash(first, count, base, numbered);
  if (rename) {
    unindex_name(first, it->base);
    it->base = base;
    it->numbered = numbered;
  } else {
    names_.insert(it, NameRange{first, count, std::string(base), numbered});
  }
  index_name(first, base);
}

std::string Tape::name(NodeId n) const {
  auto it =
      std::upper_bound(names_.begin(), names_.end(), n, [](NodeId id, const NameRange& r) { return id < r.first; });
  if (it == names_.begin()) return {};
  --it;
  if (n >= it->first + it->count) return {};
  return it->numbered ? it->base + std::to_string(n - it->first + 1) : it->base;
}

std::string Tape::slot_name(Slot s) const {
  const NodeId n = node_of(s);
  if (size(n) == 1) return name(n);
  const std::string base = name(n);
  return base.empty() ? base : base + std::to_string(s - offset(n) + 1);
}

// ---- scopes ------------------------------------------------------------------------

void Tape::push_scope(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) {
    throw Error("push_scope: a scope name must be non-empty and hold no '/', got '" + std::string(name) + "'");
  }
  std::string path =
      scope_stack_.empty() ? std::string(name) : scope_paths_[scope_stack_.back()] + "/" + std::string(name);
  // A lookup, not a scan: a model of n conv2d_mac entries opens n scopes.
  const auto [it, added] = scope_index_.try_emplace(path, static_cast<std::uint32_t>(scope_paths_.size()));
  const std::uint32_t index = it->second;
  if (added) scope_paths_.push_back(std::move(path));
  scope_stack_.push_back(index);
  open_scope_run(index);
}

void Tape::pop_scope() {
  if (scope_stack_.empty()) throw Error("pop_scope: no scope is open");
  scope_stack_.pop_back();
  open_scope_run(scope_stack_.empty() ? ~0u : scope_stack_.back());
}

void Tape::open_scope_run(std::uint32_t path) {
  const auto first = static_cast<NodeId>(op_.size());
  if (!scope_runs_.empty() && scope_runs_.back().first == first) {
    scope_runs_.back().path = path;  // nothing was recorded in the previous run
  } else {
    scope_runs_.push_back({first, path});
  }
}

std::string Tape::scope(NodeId n) const {
  auto it = std::upper_bound(scope_runs_.begin(), scope_runs_.end(), n,
                             [](NodeId id, const ScopeRun& r) { return id < r.first; });
  if (it == scope_runs_.begin() || std::prev(it)->path == ~0u) return {};
  return scope_paths_[std::prev(it)->path];
}

// ---- reset and the sweep ---------------------------------------------------------------

namespace {
template <typename Column>  // a std::vector or a detail::Column
TapeBytes bytes_of(const Column& c) {
  const std::size_t element = sizeof(*c.data());
  return {c.size() * element, c.capacity() * element};
}
// Only a string too long for its inline buffer owns heap bytes.
TapeBytes bytes_of(const std::string& s) {
  if (s.capacity() <= std::string().capacity()) return {};
  return {s.size() + 1, s.capacity() + 1};
}
TapeBytes& operator+=(TapeBytes& a, TapeBytes b) {
  a.used += b.used;
  a.reserved += b.reserved;
  return a;
}
}  // namespace

TapeBytes TapeMemory::total() const {
  TapeBytes sum;
  for (TapeBytes b : {values, grads, partials, arg_slots, nodes, names, tensors}) sum += b;
  return sum;
}

TapeMemory Tape::memory() const {
  TapeMemory m;
  m.values = bytes_of(values_);
  m.values += bytes_of(values_f32_);
  m.grads = bytes_of(grads_);
  m.grads += bytes_of(grads_f32_);
  m.partials = bytes_of(partial_);
  m.arg_slots = bytes_of(arg_slot_);
  m.nodes = bytes_of(op_);
  m.nodes += bytes_of(nodes_);
  m.names = bytes_of(names_);
  for (const NameRange& r : names_) m.names += bytes_of(r.base);
  for (const auto& [stem, firsts] : names_by_stem_) m.names += bytes_of(firsts);
  m.names += bytes_of(scope_paths_);
  for (const std::string& p : scope_paths_) m.names += bytes_of(p);
  m.names += bytes_of(scope_runs_);
  m.names += bytes_of(scope_stack_);
  m.tensors = bytes_of(tensors_);
  m.tensors += bytes_of(tensor_args_);
  m.tensors += bytes_of(saved_);
  return m;
}

void Tape::reserve(std::size_t nodes, std::size_t args) {
  const auto more = [](std::size_t want, std::size_t have) { return want > have ? want - have : 0; };
  grow("reserve", more(nodes, op_.capacity()), more(args, arg_slot_.capacity()), 0);
}

namespace {
// What detail::Column::reserve grows to when `needed` elements must fit.
std::size_t grown_capacity(std::size_t capacity, std::size_t needed) {
  return needed <= capacity ? capacity : std::max({needed, 2 * capacity, std::size_t{64}});
}
}  // namespace

void Tape::grow(std::string_view what, std::size_t nodes, std::size_t args, std::size_t slots) {
  if (slots + 1 > max_slots - values_.size())
    throw CapacityError(std::string(what) + ": the tape is full (2^32 slots)");
  if (args > max_offset - arg_slot_.size())
    throw CapacityError(std::string(what) + ": the tape is full (2^32 operands)");
  std::size_t node_capacity = grown_capacity(op_.capacity(), op_.size() + nodes);
  const std::size_t arg_capacity = std::min(grown_capacity(arg_slot_.capacity(), arg_slot_.size() + args), max_offset);
  // Every free node record needs a free value slot (see room_node); the tape never
  // holds more slots than a Slot can index, so near the end it grows fewer records.
  const std::size_t free_slots = max_slots - 1 - values_.size() - slots;
  node_capacity = std::min(node_capacity, op_.size() + nodes + free_slots);
  const std::size_t value_capacity = std::min(
      grown_capacity(values_.capacity(), values_.size() + slots + (node_capacity - op_.size() - nodes)), max_slots);
  check_memory_limit(what, (node_capacity - op_.capacity()) * (sizeof(Op) + sizeof(NodeSpan)) +
                               (arg_capacity - arg_slot_.capacity()) * (sizeof(Slot) + sizeof(double)) +
                               (value_capacity - values_.capacity()) * sizeof(double));
  // The columns room_node and room_args test (op_, arg_slot_) grow last: if an earlier
  // one runs out of memory, they still say there is no room, and nothing is written.
  or_error(what, [&] {
    nodes_.reserve(node_capacity);
    values_.reserve(value_capacity);
    op_.reserve(node_capacity);
    partial_.reserve(arg_capacity);
    arg_slot_.reserve(arg_capacity);
  });
}

void Tape::grow_for_node(Op op) {
  try {
    grow(op_name(op), 1, 0, 1);
  } catch (...) {
    // The operands pushed for this node belong to no node: drop them with it.
    const std::uint32_t args = op_.empty() ? 0 : nodes_.back().arg_end;
    arg_slot_.resize(args);
    partial_.resize(args);
    throw;
  }
}

void Tape::reserve_tensor_side(std::string_view what, std::size_t args, std::size_t saved) {
  const auto grown = [](const auto& v, std::size_t n) {
    return v.size() + n <= v.capacity() ? v.capacity() : std::max(v.size() + n, 2 * v.capacity());
  };
  if (args > max_offset - tensor_args_.size() || saved > max_offset - saved_.size()) {
    throw CapacityError(std::string(what) + ": the tape is full (2^32 tensor operands or saved values)");
  }
  const std::size_t record_capacity = grown(tensors_, 1), arg_capacity = grown(tensor_args_, args),
                    saved_capacity = grown(saved_, saved);
  check_memory_limit(what, (record_capacity - tensors_.capacity()) * sizeof(TensorRecord) +
                               (arg_capacity - tensor_args_.capacity()) * sizeof(TensorArg) +
                               (saved_capacity - saved_.capacity()) * sizeof(double));
  or_error(what, [&] {
    tensors_.reserve(record_capacity);
    tensor_args_.reserve(arg_capacity);
    saved_.reserve(saved_capacity);
  });
}

void Tape::reserve_f32(std::string_view what, std::size_t n) {
  if (values_f32_.capacity() - values_f32_.size() >= n) return;
  const std::size_t capacity = std::max(values_f32_.size() + n, 2 * values_f32_.capacity());
  check_memory_limit(what, (capacity - values_f32_.capacity()) * sizeof(float));
  or_error(what, [&] { values_f32_.reserve(capacity); });
}

void Tape::keep_through_last_node() {
  keep_nodes_ = static_cast<NodeId>(op_.size());
  keep_slots_ = static_cast<Slot>(values_.size());
}

void Tape::check_memory_limit(std::string_view what, std::size_t extra) const {
  if (memory_limit_ == 0 || extra == 0) return;
  const std::size_t needed = memory().total().reserved + extra;
  if (needed > memory_limit_) {
    throw CapacityError("tape memory limit: recording " + std::string(what) + " needs " + std::to_string(needed) +
                        " bytes, the limit is " + std::to_string(memory_limit_) + " bytes (Tape::set_memory_limit)");
  }
}

void Tape::reset() {
  const NodeId keep = keep_nodes_;
  const Slot kept_slots = keep_slots_;
  const auto resets = static_cast<std::uint32_t>(epoch_);
  if (resets + 1 == every_reset) throw Error("reset: the tape was reset 2^32 - 2 times; make a new Tape");
  if (keep_history_.empty() || keep_history_.back().kept_slots != kept_slots) {
    keep_history_.push_back({resets, kept_slots});
  }
  const std::uint32_t kept_args = keep ? nodes_[keep - 1].arg_end : 0;
  op_.resize(keep);
  nodes_.resize(keep);
  arg_slot_.resize(kept_args);
  partial_.resize(kept_args);
  values_.resize(kept_slots);
  grads_.clear();
  grads_f32_.clear();
  auto first_dropped = std::lower_bound(tensors_.begin(), tensors_.end(), keep,
                                        [](const TensorRecord& r, NodeId id) { return r.node < id; });
  // The float arena grows in node order too: it keeps what the kept f32 nodes own.
  auto first_dropped_f32 =
      std::find_if(first_dropped, tensors_.end(), [](const TensorRecord& r) { return r.dtype == DType::f32; });
  if (first_dropped_f32 != tensors_.end()) values_f32_.resize(first_dropped_f32->output);
  if (first_dropped != tensors_.end()) {
    tensor_args_.resize(first_dropped->arg_begin);
    saved_.resize(first_dropped->saved_begin);
    tensors_.erase(first_dropped, tensors_.end());
  }
  for (; !names_.empty() && names_.back().first >= keep; names_.pop_back())
    unindex_name(names_.back().first, names_.back().base);
  // Scopes recorded after `keep` are dropped; the scope open now stays open.
  while (!scope_runs_.empty() && scope_runs_.back().first >= keep) scope_runs_.pop_back();
  if (!scope_stack_.empty()) open_scope_run(scope_stack_.back());
  anomaly_next_ = std::min(anomaly_next_, keep);
  ++epoch_;
  detail::live_tapes[index_].epoch.store(epoch_, std::memory_order_release);
}

// Note [Tape order]: nodes are recorded after their operands, so walking ids downward
// visits every node after all of its consumers: one loop, no recursion, no counting.
void Tape::backward(const Var& root) {
  if (&of(root, "backward") != this) throw Error("backward: the root Var belongs to a different tape");
  const NodeId last = node_of(root.slot_);
  if (op_[last] == Op::Tensor && tensor_record(last).dtype == DType::f32) {
    throw Error("backward: the root is the slot of a float32 tensor node; pass the TensorVar itself");
  }
  clear_grads();
  grads_[root.slot_] = 1.0;
  sweep(last);
}

void Tape::clear_grads() {
  if (anomaly_) check_values(static_cast<NodeId>(op_.size()));
  const auto shortfall = [](const auto& grads, std::size_t n) {
    return grads.capacity() < n ? (n - grads.capacity()) * sizeof(grads[0]) : 0;
  };
  check_memory_limit("backward", shortfall(grads_, values_.size()) + shortfall(grads_f32_, values_f32_.size()));
  or_error("backward", [&] {
    grads_.assign(values_.size(), 0.0);
    grads_f32_.assign(values_f32_.size(), 0.0f);
  });
}

void Tape::sweep(NodeId last) {
  auto tensor = std::upper_bound(tensors_.begin(), tensors_.end(), last,
                                 [](NodeId id, const TensorRecord& r) { return id < r.node; });
  // Runs of scalar nodes sweep in a tight loop; each tensor node between them applies its rule.
  for (NodeId end = last + 1;;) {
    const NodeId first = tensor == tensors_.begin() ? 0 : std::prev(tensor)->node + 1;
    if (anomaly_) [[unlikely]] {
      sweep_scalars<true>(first, end);
    } else {
      sweep_scalars<false>(first, end);
    }
    if (first == 0) return;
    --tensor;
    tensor->info->backward(*this, *tensor);
    if (anomaly_) check_grads(*tensor);
    end = tensor->node;
  }
}

// Scalar nodes [first, end) from the last down: grad[arg] += partial * grad[node]. A
// tensor node has no scalar operands, so node n's span always starts where node n - 1's
// ends, and node 0's at 0.
template <bool checked>
void Tape::sweep_scalars(NodeId first, NodeId end) {
  if (first == end) return;
  double* grads = grads_.data();
  const NodeSpan* nodes = nodes_.data();
  const Slot* arg_slots = arg_slot_.data();
  const double* partials = partial_.data();
  std::uint32_t arg_end = nodes[end - 1].arg_end;
  const auto sweep_node = [&](NodeId n, std::uint32_t arg_begin) {
    const double g = grads[nodes[n].offset];
    if (g != 0.0) {  // when nothing flows back, skip the operands
      for (std::uint32_t p = arg_begin; p < arg_end; ++p) {
        grads[arg_slots[p]] += partials[p] * g;
        if constexpr (checked) {
          if (!std::isfinite(grads[arg_slots[p]])) throw_grad_anomaly(n, p - arg_begin, g);
        }
      }
    }
    arg_end = arg_begin;
  };
  for (NodeId n = end - 1; n > first; --n) sweep_node(n, nodes[n - 1].arg_end);
  sweep_node(first, first ? nodes[first - 1].arg_end : 0);
}

NodeId Var::node() const { return Tape::of(*this, "node").node_of(slot_); }
std::string Var::name() const { return Tape::of(*this, "name").slot_name(slot_); }

Var& Var::named(std::string_view name) {
  Tape& t = Tape::of(*this, "named");
  const NodeId n = t.node_of(slot_);
  if (t.size(n) != 1) throw Error("named: '" + std::string(name) + "' would name one element of a tensor node");
  t.set_name(n, name);
  return *this;
}

}  // namespace gradpath
