// SPDX-License-Identifier: MIT
// The tape: node records, the value/grad arenas, handles (Var), and the reverse sweep.
// Tape's members are defined by seam, each file readable alone: registry.cpp (identity,
// epochs, Tape::of), records.cpp (leaves, scalar and tensor records), memory.cpp (growth
// and the memory limit), sweep.cpp (backward), names.cpp (names and scopes), anomaly.cpp
// (anomaly mode), tape.cpp (op names, reading the columns back, reset).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "autodiff/column.hpp"
#include "autodiff/error.hpp"
#include "autodiff/registry.hpp"
#include "autodiff/shape.hpp"

namespace gradpath {

// Index of a node record; also its position in tape order.
using NodeId = std::uint32_t;
// Index of one double in the value and grad arenas. A scalar node owns one slot,
// a tensor node owns `size` consecutive slots. A float32 tensor node owns one slot (its
// identity, value 0) and `size` consecutive elements of the float arenas.
using Slot = std::uint32_t;

// The element type of a tensor. Scalars, scalar leaves and everything the graph view and
// the checker read are f64; f32 tensors (the fused ops only) keep their values and grads
// in the tape's float arenas: half the bytes, and the float GEMM. Check gradients in f64.
enum class DType : std::uint8_t { f64, f32 };
std::string_view dtype_name(DType dtype);  // "float64", "float32"

// The vocabulary of node kinds, used to print and walk the graph. What an op computes
// lives in ops/; the tape only needs to tell scalar records from tensor records.
enum class Op : std::uint8_t {
  Input,
  Param,  // leaves
  Add,
  Sub,
  Mul,
  Div,
  Neg,  // scalar arithmetic
  Pow,
  Max,
  Min,
  Sum,     // n-ary sum
  Dot,     // Σ x_i·y_i as one statement: operands x0, y0, x1, y1, …, partials y0, x0, y1, x1, …
  Copy,    // identity (stacking scalars)
  Tensor,  // a tensor op: see TensorRecord
  // The elementary functions (exp, σ, relu, …): Function + the FnId of the function in
  // autodiff/functions.hpp, so the table alone lists them (function_op, function_of).
  Function,
};
std::string_view op_name(Op op);
inline bool is_leaf(Op op) { return op == Op::Input || op == Op::Param; }

class Tape;
class Var;
class TensorVar;
struct TensorRecord;

// A tensor op's vector-Jacobian rule: reads the output grads and adds (+=) into its
// operands' grads. A plain function pointer, not a closure: nothing to allocate.
using BackwardFn = void (*)(Tape& tape, const TensorRecord& record);

// A piecewise op chooses a branch by comparing values: relu whether its input is above
// zero, max-pool which cell of a window is largest. A Condition reads
// value(greater) > value(less) (>= when or_equal: a tie the op resolves this way), a
// missing slot standing for 0; a Branch holds when all its conditions do. The checker of derivations uses them to
// evaluate a formula on every branch (graph/branches.hpp).
struct Condition {
  std::optional<Slot> greater, less;
  bool or_equal = false;
};
struct Branch {
  std::vector<Condition> conditions;
};
struct Switch {
  NodeId node = 0;
  std::size_t element = 0;  // the output element whose branch it is
  std::vector<Branch> branches;
};
using SwitchesFn = void (*)(const Tape& tape, const TensorRecord& record, std::vector<Switch>& out);

// The local partial of one output element of a tensor op with respect to one operand
// element, in symbols: coeff · factor · factor … (a factor is a name, "σ′(z1)",
// "[z1 > 0]", "(y1 - t)"). The path view and the checker write derivatives with them.
struct SymbolicEdge {
  Slot operand = 0;
  double coeff = 1.0;
  std::vector<std::string> factors;
};
// Every operand element output `element` depends on, with its symbolic partial; false
// when the op cannot write one (an unnamed operand the partial would name).
using SymbolicFn = bool (*)(const Tape& tape, const TensorRecord& record, std::size_t element,
                            std::vector<SymbolicEdge>& out);

// Forward mode and second derivatives (autodiff/second_order.hpp). A tensor op's forward-mode
// rule (a JVP) writes its output's tangents from its operands', in `tangents`, indexed like the
// float64 value arena.
using TangentFn = void (*)(const Tape& tape, const TensorRecord& record, std::span<double> tangents);
// The arenas of the dual reverse sweep of a Hessian-vector product, indexed the same way.
struct SecondOrderArenas {
  std::span<const double> tangents;  // ẋ of every slot, from the tangent sweep
  std::span<const double> grads;     // ḡ: the grads of the first-order reverse sweep
  std::span<double> grad_tangents;   // ġ: d/dt of the grads along the tangents, accumulated
};
// A tensor op's curvature rule: adds J̇ᵀ ḡ_out into its operands' grad-tangents, J̇ the
// derivative of the op's Jacobian along the tangents (zero_curvature for a linear op).
using CurvatureFn = void (*)(const Tape& tape, const TensorRecord& record, const SecondOrderArenas& arenas);

struct TensorOpInfo {
  std::string_view name;
  BackwardFn backward;
  SwitchesFn switches = nullptr;  // piecewise ops only
  SymbolicFn symbolic = nullptr;  // ops whose partials can be written in symbols
  // Forward mode and Hessian-vector products; an op without them raises an Error naming it.
  TangentFn tangent = nullptr;
  CurvatureFn curvature = nullptr;
};

// An operand of a tensor op: a row-major range with a shape, in the arena of its dtype.
struct TensorArg {
  Slot offset = 0;
  Shape shape;
  DType dtype = DType::f64;
  // False for a constant (Tape::constant) and a tensor computed from constants alone: the
  // op's rule computes no grad for it (ops::detail::operand_grads).
  bool needs_grad = true;
};

// What a record's options are: one object per options struct (detail::options_type<T>),
// so its address tells the structs apart and its text names the op(s) in errors.
struct OptionsType {
  std::string_view op;  // "matmul", "sum or mean"
};
namespace detail {
template <typename T>
inline constexpr OptionsType options_type{T::op};
}  // namespace detail

// A tensor op's options (matmul's sizes, conv2d's stride and padding), kept by value in
// its record: a trivially copyable struct T of at most `capacity` bytes with
// `static constexpr std::string_view op`, the op it is for. Copied in and out with
// memcpy, so reading needs no cast and recording allocates nothing. Write it with
// ops::detail::record(..., T{...}), read it with options<T>(record): an Error naming both
// ops when the record holds another struct.
class OpOptions {
 public:
  static constexpr std::size_t capacity = 56;  // 64 bytes with the type pointer

  OpOptions() = default;
  template <typename T>
  static OpOptions of(const T& options) {
    static_assert(std::is_trivially_copyable_v<T>,
                  "op options are copied as bytes: make the struct trivially copyable");
    static_assert(sizeof(T) <= capacity, "op options must fit OpOptions::capacity bytes");
    static_assert(alignof(T) <= alignof(std::int64_t), "op options must not need more than 8-byte alignment");
    OpOptions o;
    o.type_ = &detail::options_type<T>;
    std::memcpy(o.bytes_.data(), &options, sizeof(T));
    return o;
  }
  const OptionsType* type() const { return type_; }  // null: the op has no options
  template <typename T>
  bool holds() const {
    return type_ == &detail::options_type<T>;
  }
  // The struct, unchecked: options<T>(record) checks holds<T>() first.
  template <typename T>
  T unchecked() const {
    T options;
    std::memcpy(&options, bytes_.data(), sizeof(T));
    return options;
  }

 private:
  const OptionsType* type_ = nullptr;
  alignas(std::int64_t) std::array<std::byte, capacity> bytes_{};
};

// The extra record a tensor node carries. Operands and saved data live in flat
// arrays on the tape, so recording a tensor op allocates nothing in a steady loop.
struct TensorRecord {
  NodeId node = 0;
  const TensorOpInfo* info = nullptr;
  Shape shape;                                   // shape of the output
  DType dtype = DType::f64;                      // of the output
  Slot output = 0;                               // its first element, in the arena of dtype
  std::uint32_t arg_begin = 0, arg_end = 0;      // into Tape::tensor_args()
  std::uint32_t saved_begin = 0, saved_end = 0;  // into Tape::saved()
  OpOptions options;                             // the op's options struct: read it with options<T>(record)
};

namespace detail {
[[noreturn]] void throw_wrong_options(const TensorRecord& record, const OptionsType& wanted);
}
// The options struct T that `record`'s op recorded; an Error naming both ops when the
// record holds another struct (or none), never a read of the wrong bytes.
template <typename T>
T options(const TensorRecord& record) {
  if (!record.options.holds<T>()) [[unlikely]]
    detail::throw_wrong_options(record, detail::options_type<T>);
  return record.options.unchecked<T>();
}

// A constant a scalar record's partials depend on but do not keep: c in c / x, x^c and
// c^x, a function's parameter (leaky_relu's slope, elu's alpha). The ops that have one note
// it beside their record (Tape::note_constant); the second-order sweeps read it back.
enum class ConstantRole : std::uint8_t { numerator, exponent, base, parameter };
struct ScalarConstant {
  NodeId node = 0;
  ConstantRole role = ConstantRole::parameter;
  double value = 0.0;
};

// Bytes a tape holds in one group of columns: `used` counts what is stored (size()),
// `reserved` what is allocated (capacity(), kept by reset() for the next step).
struct TapeBytes {
  std::size_t used = 0, reserved = 0;
};
struct TapeMemory {
  TapeBytes values, grads, partials, arg_slots;  // arenas and scalar operand columns
  TapeBytes nodes;                               // op, offset and arg_end per node
  TapeBytes names;                               // node names and scopes, with their strings
  TapeBytes tensors;                             // tensor records, operands and saved data
  TapeBytes constants;                           // the constants of scalar ops a second derivative needs
  TapeBytes total() const;
};

namespace detail {
// A dot product keeps each pair (x_k, y_k) in one operand entry: x_k's slot in the slot
// column, y_k's in the partial column as the bits of an integer; its partials are the
// other factor's values, read when needed (Note [Dot pairs] in records.cpp).
inline double pair_bits(Slot y) { return std::bit_cast<double>(std::uint64_t{y}); }
inline Slot pair_slot(double bits) { return static_cast<Slot>(std::bit_cast<std::uint64_t>(bits)); }

// A random-access iterator over anything indexed by position (the operand views).
template <typename List>
class IndexIterator {
 public:
  using iterator_concept = std::random_access_iterator_tag;
  using iterator_category = std::random_access_iterator_tag;
  using value_type = std::remove_cvref_t<decltype(std::declval<const List&>()[0])>;
  using difference_type = std::ptrdiff_t;
  using reference = value_type;
  IndexIterator() = default;
  IndexIterator(const List* list, std::size_t i) : list_(list), i_(static_cast<difference_type>(i)) {}
  value_type operator*() const { return (*list_)[static_cast<std::size_t>(i_)]; }
  value_type operator[](difference_type k) const { return (*list_)[static_cast<std::size_t>(i_ + k)]; }
  IndexIterator& operator++() { return ++i_, *this; }
  IndexIterator operator++(int) { return {list_, static_cast<std::size_t>(i_++)}; }
  IndexIterator& operator--() { return --i_, *this; }
  IndexIterator operator--(int) { return {list_, static_cast<std::size_t>(i_--)}; }
  IndexIterator& operator+=(difference_type k) { return i_ += k, *this; }
  IndexIterator& operator-=(difference_type k) { return i_ -= k, *this; }
  friend IndexIterator operator+(IndexIterator it, difference_type k) { return it += k; }
  friend IndexIterator operator+(difference_type k, IndexIterator it) { return it += k; }
  friend IndexIterator operator-(IndexIterator it, difference_type k) { return it -= k; }
  friend difference_type operator-(const IndexIterator& a, const IndexIterator& b) { return a.i_ - b.i_; }
  friend bool operator==(const IndexIterator& a, const IndexIterator& b) { return a.i_ == b.i_; }
  friend auto operator<=>(const IndexIterator& a, const IndexIterator& b) { return a.i_ <=> b.i_; }

 private:
  const List* list_ = nullptr;
  difference_type i_ = 0;
};
}  // namespace detail

// A scalar node's operands read back (Tape::arg_slots): operand i's slot, indexed like a
// span; valid until the tape records or resets. A dot product's come out of its pairs as
// x0, y0, x1, y1, ….
class OperandSlots {
 public:
  OperandSlots(const Slot* slots, const double* pairs, std::uint32_t entries, bool dot)
      : slots_(slots), pairs_(pairs), entries_(entries), dot_(dot) {}
  Slot operator[](std::size_t i) const {
    if (!dot_) return slots_[i];
    return (i & 1) != 0 ? detail::pair_slot(pairs_[i / 2]) : slots_[i / 2];
  }
  std::size_t size() const { return dot_ ? 2 * std::size_t{entries_} : entries_; }
  bool empty() const { return entries_ == 0; }
  detail::IndexIterator<OperandSlots> begin() const { return {this, 0}; }
  detail::IndexIterator<OperandSlots> end() const { return {this, size()}; }

 private:
  const Slot* slots_;
  const double* pairs_;  // a dot product's partial column: the y slots
  std::uint32_t entries_;
  bool dot_;
};

// Its local partials, d node / d operand i, in the same order: stored with the node, or
// for a dot product the value of the other factor of the operand's pair.
class OperandPartials {
 public:
  OperandPartials(OperandSlots slots, const double* partials, const double* values)
      : slots_(slots), partials_(partials), values_(values) {}
  double operator[](std::size_t i) const { return values_ == nullptr ? partials_[i] : values_[slots_[i ^ 1]]; }
  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  detail::IndexIterator<OperandPartials> begin() const { return {this, 0}; }
  detail::IndexIterator<OperandPartials> end() const { return {this, size()}; }

 private:
  OperandSlots slots_;
  const double* partials_;
  const double* values_;  // a dot product's: the value arena; otherwise null
};

// A handle to a scalar on a tape: which tape, which slot, and the tape epoch it was
// made in, so that use after reset() or after the tape is gone raises an Error.
// Trivially copyable, 16 bytes.
class Var {
 public:
  Var() = default;

  double value() const;
  double grad() const;
  Tape& tape() const;
  Slot slot() const { return slot_; }
  NodeId node() const;
  std::string name() const;
  // Names the node this Var is (only for a whole scalar node, not a tensor element).
  Var& named(std::string_view name);

 private:
  friend class Tape;
  Var(std::uint32_t tape_index, Slot slot, std::uint64_t epoch) : tape_index_(tape_index), slot_(slot), epoch_(epoch) {}

  std::uint32_t tape_index_ = detail::empty_var_index;
  Slot slot_ = 0;
  std::uint64_t epoch_ = ~std::uint64_t{0};  // matches no tape's epoch, nor a kept Var's (serials start at 1)
};

class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Leaves. Inputs and parameters are both differentiable; parameters survive reset().
  Var input(double value, std::string_view name = {});
  Var param(double value, std::string_view name = {});
  // Leaf tensors. In f64: one scalar leaf node per element, consecutive on the tape,
  // named name1 ... nameN in row-major order. In f32 (the values rounded to float): ONE
  // leaf tensor node; its elements are not scalar Vars.
  TensorVar input(std::span<const double> values, const Shape& shape, std::string_view name = {},
                  DType dtype = DType::f64);
  TensorVar param(std::span<const double> values, const Shape& shape, std::string_view name = {},
                  DType dtype = DType::f64);
  TensorVar input(std::span<const float> values, const Shape& shape, std::string_view name = {});  // f32
  TensorVar param(std::span<const float> values, const Shape& shape, std::string_view name = {});  // f32
  // A leaf tensor no grad is wanted for (a batch of images): an input whose grad tensor
  // ops do not compute, nor that of a tensor computed from constants alone, so conv2d skips
  // its dX. Their grads read as zeros. (Its f64 elements are scalar Vars as an input's,
  // and scalar ops on them do add into their grads.)
  TensorVar constant(std::span<const double> values, const Shape& shape, std::string_view name = {},
                     DType dtype = DType::f64);
  TensorVar constant(std::span<const float> values, const Shape& shape, std::string_view name = {});  // f32

  // From now on every new leaf value passes through `values(k, given)`, k counting the
  // leaf values recorded since (scalar leaves and tensor elements, in tape order).
  // Re-running a build function on such a tape evaluates the same graph at another
  // point: the derivation checker moves the point this way. An empty function stops it.
  using LeafValues = std::function<double(std::size_t leaf, double given)>;
  void set_leaf_values(LeafValues values) {
    leaf_values_ = std::move(values);
    leaf_count_ = 0;
  }

  // Anomaly mode, off by default (Note [Anomaly mode] in anomaly.cpp): while on, the first
  // NaN or infinity in a node's value or in a grad of the reverse sweep raises an Error
  // naming the op, the node and its operands. Only nodes recorded while on are checked.
  void set_anomaly_detection(bool on);
  bool anomaly_detection() const { return anomaly_; }

  // The reverse sweep. Starts fresh: every grad is zero (nodes recorded after the root
  // included), the root's grad is seeded with 1, then one backward loop over tape order
  // accumulates grad[arg] += partial * grad[node]. A second call gives the same grads,
  // it does not add to them.
  void backward(const Var& root);
  // The same from a one-element tensor of either dtype (a loss); an Error for a larger one.
  void backward(const TensorVar& root);

  // Drops every node recorded after the last parameter and keeps all capacity, so a
  // training loop that rebuilds its graph each step stops allocating after step one.
  // Vars to dropped nodes raise an Error when used; parameter Vars stay valid. A tape
  // takes 2^32 - 2 resets; the next raises an Error.
  void reset();
  void reserve(std::size_t nodes, std::size_t args);

  // A cap on the bytes the tape may reserve (TapeMemory::total().reserved), 0 for none
  // (the default). Checked only when a column or arena must grow, before it allocates:
  // a record that would pass the cap raises an Error naming the op, the bytes it needs
  // and the limit, and the tape stays usable (reset() it and record a smaller graph).
  void set_memory_limit(std::size_t bytes) { memory_limit_ = bytes; }
  std::size_t memory_limit() const { return memory_limit_; }

  // Sizes and raw columns (read-only), for graph/ and the tensor ops.
  std::size_t node_count() const { return nodes_.size(); }
  std::size_t slot_count() const { return values_.size(); }
  TapeMemory memory() const;
  Op op(NodeId n) const { return nodes_.at<node_op>(n); }
  Slot offset(NodeId n) const { return nodes_.at<node_span>(n).offset; }
  std::uint32_t size(NodeId n) const;  // slots owned by node n
  // Scalar node n's operands and their partials, in operand order (views, see
  // OperandSlots). Inline: the tangent and second-order sweeps read them for every node.
  OperandSlots arg_slots(NodeId n) const {
    const std::uint32_t begin = arg_begin(n);
    return {args_.data<arg_slot>() + begin, args_.data<arg_partial>() + begin, nodes_.at<node_span>(n).arg_end - begin,
            op(n) == Op::Dot};
  }
  OperandPartials partials(NodeId n) const {
    const std::uint32_t begin = arg_begin(n);
    return {arg_slots(n), args_.data<arg_partial>() + begin, op(n) == Op::Dot ? values_.data() : nullptr};
  }
  NodeId node_of(Slot s) const;  // the node owning slot s
  bool has_grads() const { return grads_.size() == values_.size(); }

  double value(Slot s) const { return values_[s]; }
  double grad(Slot s) const { return has_grads() ? grads_[s] : 0.0; }
  std::span<double> values() { return {values_.data(), values_.size()}; }
  std::span<const double> values() const { return values_.column<0>(); }
  std::span<double> grads() { return grads_; }
  std::span<const double> grads() const { return grads_; }
  // The float32 arenas, indexed by TensorArg::offset and TensorRecord::output of f32 tensors.
  std::span<float> values_f32() { return {values_f32_.data(), values_f32_.size()}; }
  std::span<const float> values_f32() const { return values_f32_.column<0>(); }
  std::span<float> grads_f32() { return grads_f32_; }
  std::span<const float> grads_f32() const { return grads_f32_; }
  // Overwrites a leaf's value (an optimiser step, a new input). Partials already
  // recorded downstream are not updated (a dot product, which reads its partials from
  // the values, sees the new value, but not its own recorded value): rebuild the graph
  // after changing leaves.
  void set_value(const Var& leaf, double value);

  // Names. A single node has its own name; a run of nodes (a leaf tensor, the outputs
  // of conv2d_mac) or the elements of a tensor node share a base name and are
  // numbered from 1 in row-major order: a -> a1 ... a25. A name whose elements would
  // spell another name's is an Error: with a tensor 'w' of 12 elements, a 'w1' of two
  // would also name a w11 (Note [Name clashes] in names.cpp). Renaming a node or range
  // to a new name is allowed.
  // `shape` is the tensor the range's nodes are the elements of (a leaf tensor in float64,
  // conv2d_mac's outputs), so a reader can index it by row and column; empty: none.
  void set_name(NodeId n, std::string_view name);
  void set_range_name(NodeId first, NodeId count, std::string_view base, const Shape& shape = {});
  std::string name(NodeId n) const;
  // The shape given with the named range node n belongs to; null when none was.
  const Shape* range_shape(NodeId n) const;
  std::string slot_name(Slot s) const;  // name of one scalar: a node or a tensor element

  // Scopes: a name for a stretch of recording ("conv", "dense", "loss"), nested with
  // '/'; graph/ draws each scope as a cluster. Prefer the RAII ScopeGuard below.
  void push_scope(std::string_view name);
  void pop_scope();
  std::string scope(NodeId n) const;  // "" outside every scope, else e.g. "net/conv"

  // Scalar records: operands and partials are pushed first, then the node closes them
  // (push_arg ... close builds an n-ary node without a temporary array).
  void push_arg(Slot a, double partial) {
    room_args(1, "an operand");
    args_.append(a, partial);
  }
  // Pushes every Var's slot with the same partial (the terms of a sum); the caller has
  // checked that each belongs to this tape.
  void push_args(std::span<const Var> args, double partial) {
    room_args(args.size(), "operands");
    for (const Var& a : args) args_.append(a.slot_, partial);
  }
  // Records Σ x_i·y_i as one Op::Dot node, a pair per operand entry (Note [Dot pairs] in
  // records.cpp); the caller (dot() in ops/scalar.hpp) has checked that the spans are as
  // long and not empty and that every Var belongs to this tape.
  Var record_dot(std::span<const Var> x, std::span<const Var> y) {
    room_args(x.size(), Op::Dot);
    const std::size_t first = args_.extend(x.size());
    Slot* slots = args_.data<arg_slot>() + first;
    double* pairs = args_.data<arg_partial>() + first;
    const double* values = values_.data();
    double total = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      slots[i] = x[i].slot_;
      pairs[i] = detail::pair_bits(y[i].slot_);
      total += values[x[i].slot_] * values[y[i].slot_];
    }
    return close_node(Op::Dot, total);
  }
  // (Not for Op::Dot, whose operands are pairs: record_dot.)
  Var close(Op op, double value) {
    if (op == Op::Dot) [[unlikely]]
      refuse_dot_by_operands();
    return close_node(op, value);
  }
  Var record(Op op, double value, Slot a, double da);
  Var record(Op op, double value, Slot a, double da, Slot b, double db);
  Var record(Op op, double value, std::span<const Slot> args, std::span<const double> partials);

  // The constant of the scalar node just recorded (see ScalarConstant), and node n's: null
  // when its op keeps none. Kept sorted by node, dropped with the node by reset().
  void note_constant(ConstantRole role, double value);
  const ScalarConstant* scalar_constant(NodeId n) const;

  // Tensor records: a node owning `shape.size()` elements of the arena of `dtype`, whose
  // values the caller fills, with its operands, a block of saved doubles and its options.
  NodeId record_tensor(const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                       const OpOptions& options = {}, std::size_t saved_size = 0, DType dtype = DType::f64);
  const TensorRecord& tensor_record(NodeId n) const;
  // d (element `element` of tensor node n) / d (each slot of its operands), in operand
  // order: one run of the node's backward rule with a unit seed (a vector-Jacobian
  // product), so the path view can put a partial on edges into tensor nodes. Leaves the
  // grads of the last backward as they were. An Error for a float32 node.
  std::vector<double> tensor_partials(NodeId n, std::size_t element);
  // The same on a tape read through a const reference (the graph view): the rule writes
  // only grads, which this restores, so the tape reads as it did.
  std::vector<double> tensor_partials(NodeId n, std::size_t element) const;
  std::span<const TensorRecord> tensor_records() const { return tensors_; }
  std::span<const TensorArg> tensor_args(const TensorRecord& r) const;
  std::span<double> saved(const TensorRecord& r);
  std::span<const double> saved(const TensorRecord& r) const;

  // A Var for a slot recorded on this tape now. A slot through the last parameter is
  // never dropped, so its Var is valid in every epoch (Note [Reset epochs] in registry.cpp).
  Var var_at(Slot s) const { return Var(index_, s, s < keep_slots_ ? epoch_ | every_reset : epoch_); }
  // The tape a Var belongs to, after checking it is still valid; `what` names the
  // operation for the error message.
  static Tape& of(const Var& v, std::string_view what);
  // The common tape of two operands; an Error if they come from different tapes.
  static Tape& of(const Var& a, const Var& b, std::string_view what);
  void check(const Var& v, std::string_view what) const;
  // True when every Var of both lists is a Var of this tape usable now (made in this
  // epoch, or of a slot no reset drops): what an n-ary op checks once it has its tape.
  // The bitwise AND and OR of their epochs must each pass usable(), two operations per
  // Var and one test (Note [Owning a list]); when false, of(v, first, what) raises the
  // Error that names the Var, or passes a Var an earlier reset kept.
  bool owns_all(std::span<const Var> a, std::span<const Var> b = {}) const {
    std::uint64_t all = ~std::uint64_t{0}, any = 0;
    for (const Var& v : a) all &= v.epoch_, any |= v.epoch_;
    for (const Var& v : b) all &= v.epoch_, any |= v.epoch_;
    return usable(all, epoch_) & usable(any, epoch_);
  }
  std::uint64_t epoch() const { return epoch_; }
  std::uint32_t index() const { return index_; }

 private:
  // Where node n's operand span starts: where node n - 1's ends.
  std::uint32_t arg_begin(NodeId n) const { return n ? nodes_.at<node_span>(n - 1).arg_end : 0; }

  // ---- registry (registry.cpp): which tape this is and which Vars are still valid ----
  // The low word of a Var's epoch that marks it valid after every reset: the Var of a
  // slot through the last parameter (Note [Reset epochs] in registry.cpp).
  static constexpr std::uint64_t every_reset = 0xFFFFFFFFu;
  // True when a Var made in `made_in` may be used on a tape (of the same serial) now in
  // `now`: made in this epoch, or of a slot no reset drops. Anything else takes the
  // slow path, which looks the Var up in the reset history.
  // Bitwise, not short-circuit: the hot path combines two operands' answers with no branch.
  static bool usable(std::uint64_t made_in, std::uint64_t now) {
    return (made_in == now) | (made_in == (now | every_reset));
  }
  // The slow paths of of(): validate in full, raising the Error that names the problem.
  static Tape& of_slow(const Var& v, std::string_view what);
  static Tape& of_slow(const Var& a, const Var& b, std::string_view what);
  void check_second(const Var& a, const Var& b, std::string_view what) const;
  [[noreturn]] void throw_stale(const Var& v, std::string_view what) const;
  // reset()'s part: notes what this reset keeps, then moves to and publishes the next epoch.
  void next_epoch();

  // ---- records (records.cpp): leaves, scalar and tensor records, the tensor-record lookup ----
  Var leaf(Op op, double value, std::string_view name);
  TensorVar leaf_tensor(Op op, std::span<const double> values, const Shape& shape, std::string_view name);
  double leaf_value(double given) { return leaf_values_ ? leaf_values_(leaf_count_++, given) : given; }
  template <typename V>  // float or double values: one leaf tensor node
  TensorVar leaf_f32(Op op, std::span<const V> values, const Shape& shape, std::string_view name);
  // After a parameter: reset() keeps every node and slot recorded so far.
  void keep_through_last_node();
  // Appends a scalar node closing the operands pushed since the last node; its slot.
  Slot push_scalar(Op op, double value) {
    room_node(op);
    return append_scalar(op, value);
  }
  // The same once room_node() holds (grow() keeps a value slot free for every node record).
  Slot append_scalar(Op op, double value) {
    const auto s = static_cast<Slot>(values_.size());
    values_.append(value);
    nodes_.append(op, {s, static_cast<std::uint32_t>(args_.size())});
    return s;
  }
  // close() without its test of the op.
  Var close_node(Op op, double value) {
    // One test for both rare cases, growing and anomaly mode, so the common path keeps
    // no call (and nothing spilled around it).
    if (nodes_.available() == 0 || anomaly_) [[unlikely]]
      return close_slow(op, value);
    return Var(index_, append_scalar(op, value), epoch_);  // after the last parameter: valid in this epoch
  }
  // close() when the node columns are full or anomaly mode is on.
  Var close_slow(Op op, double value);
  // Drops the operands pushed since the last node: they belong to no node.
  void drop_pending_operands() { args_.resize(nodes_.empty() ? 0 : nodes_.at<node_span>(nodes_.size() - 1).arg_end); }
  // Drops the operands pushed for the node being closed and raises the Error.
  [[noreturn]] void refuse_dot_by_operands();
  // The first tensor record of a node at or after n (tensors_ is in node order), and
  // node n's own record or nullptr when n is not a tensor node.
  std::vector<TensorRecord>::const_iterator tensors_from(NodeId n) const;
  const TensorRecord* find_tensor(NodeId n) const;

  // ---- growth and the memory limit (memory.cpp) ----
  // The slots of either arena and the 32-bit offsets into the operand columns and saved
  // data (NodeSpan::arg_end, TensorRecord::arg_end and saved_end) stop here: past it they
  // would wrap and misattribute.
  static constexpr std::size_t max_slots = 0xFFFFFFFFu;
  static constexpr std::size_t max_offset = 0xFFFFFFFFu;
  // The operand columns always grow together, as do the node columns and the values
  // arena: grow() keeps at least as many free value slots as free node records, so
  // one check covers a node's record and its value.
  void room_args(std::size_t n, std::string_view what) {
    if (args_.available() < n) [[unlikely]]
      grow(what, 0, n, 0);
  }
  void room_args(std::size_t n, Op op) {
    if (args_.available() < n) [[unlikely]]
      grow(op_name(op), 0, n, 0);
  }
  void room_node(Op op) {
    if (nodes_.available() == 0) [[unlikely]]
      grow_for_node(op);
  }
  void grow_for_node(Op op);
  // Makes room for `nodes` more node records owning `slots` value slots in all, and
  // `args` more operands; raises an Error when the tape would pass 2^32 slots or its
  // memory limit.
  void grow(std::string_view what, std::size_t nodes, std::size_t args, std::size_t slots);
  // Makes room on the tensor side for one more record, its operands and saved doubles.
  void reserve_tensor_side(std::string_view what, std::size_t args, std::size_t saved);
  // Grows the float arena to hold n more values, within the memory limit.
  void reserve_f32(std::string_view what, std::size_t n);
  // Sizes both grad arenas to their value arenas, every grad zero, within the memory limit.
  void assign_zero_grads(std::string_view what);
  // Raises the memory limit's Error when reserving `extra` more bytes would pass it.
  void check_memory_limit(std::string_view what, std::size_t extra) const;

  // ---- the sweep (sweep.cpp) ----
  // Zeroes every grad, then after the caller seeds the root, sweeps from node `last` down.
  void clear_grads();
  void sweep(NodeId last);
  template <bool checked>  // checked: raise on the first non-finite grad (anomaly mode)
  void sweep_scalars(NodeId first, NodeId end);

  // ---- names and scopes (names.cpp) ----
  void add_name(NodeId first, NodeId count, std::string_view base, bool numbered, const Shape& shape = {});
  // Raises when the names the range `first` would give its elements meet another
  // range's (Note [Name clashes]).
  void check_name_clash(NodeId first, NodeId count, std::string_view base, bool numbered) const;

  // ---- anomaly mode (anomaly.cpp) ----
  // Checks the values of nodes [anomaly_next_, end); names the scalar node n whose
  // operand i got a non-finite grad; checks a tensor rule's operand grads.
  void check_values(NodeId end);
  [[noreturn]] void throw_grad_anomaly(NodeId n, std::uint32_t i, double grad) const;
  void check_grads(const TensorRecord& r) const;

  // Node columns (struct of arrays under one count): node n's op, and its span: where
  // its values start and where its operand span ends (it starts where node n - 1's ends).
  struct NodeSpan {
    Slot offset;
    std::uint32_t arg_end;
  };
  static constexpr std::size_t node_op = 0, node_span = 1;
  detail::Columns<Op, NodeSpan> nodes_;
  // Operand columns, under one count: the slot read and the local partial d node / d operand.
  static constexpr std::size_t arg_slot = 0, arg_partial = 1;
  detail::Columns<Slot, double> args_;
  // Arenas.
  detail::Column<double> values_;
  mutable std::vector<double> grads_;  // mutable only for the const tensor_partials()
  detail::Column<float> values_f32_;
  std::vector<float> grads_f32_;
  // Tensor side records.
  std::vector<TensorRecord> tensors_;
  std::vector<TensorArg> tensor_args_;
  std::vector<double> saved_;
  std::vector<ScalarConstant> constants_;  // by node

  // Names and scopes, all kept by names.cpp; the rest of the tape asks it for their
  // bytes and to drop what a reset drops.
  struct Names {
    // Named ranges, sorted by node since nodes are appended in order.
    struct Range {
      NodeId first, count;
      std::string base;
      bool numbered;
      Shape shape;  // of the tensor its nodes are the elements of; rank 0 when none is known
    };
    std::vector<Range> ranges;
    // The first node of each named range, by the stem of its base (the base without its
    // trailing digits) and then by those digits: only names of one stem, one's digits a
    // prefix of the other's, can spell the same element.
    using ByDigits = std::map<std::string, std::vector<NodeId>, std::less<>>;
    std::map<std::string, ByDigits, std::less<>> by_stem;
    // Scopes: the path open from node `first` on; the open paths form a stack.
    struct ScopeRun {
      NodeId first;
      std::uint32_t path;  // into scope_paths
    };
    std::vector<std::string> scope_paths;
    std::map<std::string, std::uint32_t, std::less<>> scope_index;  // path -> its index in scope_paths
    std::vector<ScopeRun> scope_runs;
    std::vector<std::uint32_t> scope_stack;

    // Keep by_stem in step with ranges.
    void index(NodeId first, std::string_view base);
    void unindex(NodeId first, std::string_view base);
    // Scope `path` (~0u: none) is open from node `first` on.
    void open_scope_run(NodeId first, std::uint32_t path);
    // Drops the names and scope runs of nodes from `keep` on; the scope open stays open.
    void drop_from(NodeId keep);
    TapeBytes bytes() const;
  };
  Names names_;

  // Identity and reset bookkeeping (registry.cpp). epoch_ = serial << 32 | resets so far;
  // a Var made in an earlier epoch is valid while its slot is below what every reset since kept.
  std::uint32_t index_ = 0;
  std::uint32_t serial_ = 0;
  std::uint64_t epoch_ = 0;
  NodeId keep_nodes_ = 0;  // nodes through the last parameter
  Slot keep_slots_ = 0;    // and the slots they own
  struct KeepChange {
    std::uint32_t from_reset;
    Slot kept_slots;
  };
  std::vector<KeepChange> keep_history_;
  std::size_t memory_limit_ = 0;  // bytes; 0: none
  LeafValues leaf_values_;
  std::size_t leaf_count_ = 0;
  bool anomaly_ = false;
  NodeId anomaly_next_ = 0;  // first node whose values anomaly mode has not checked yet

  friend class Var;
};

// Opens a scope for its lifetime: { ScopeGuard conv(tape, "conv"); ... }
class ScopeGuard {
 public:
  ScopeGuard(Tape& tape, std::string_view name) : tape_(tape) { tape_.push_scope(name); }
  ~ScopeGuard() { tape_.pop_scope(); }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  Tape& tape_;
};

// ---- inline hot path -------------------------------------------------------------

// Every op validates its operands here: the common case (a Var of the current epoch, or
// a parameter) is one load of the tape's epoch word and one or two compares; everything
// else goes to the out-of-line slow paths, which name the problem.
// The loads are relaxed: a thread holding a valid Var got it through something that
// already ordered it after the tape's construction (and so after the pointer's store);
// an acquire here would only stop the compiler from keeping the columns in registers.
// Every index a Var holds is in the table (detail::empty_var_index), so there is no
// bounds check; an epoch names its tape's serial, unique in the process, so a second
// operand whose epoch passes against the first's tape is on that tape.
inline Tape& Tape::of(const Var& v, std::string_view what) {
  const detail::LiveTape& live = detail::live_tapes[v.tape_index_];
  if (usable(v.epoch_, live.epoch.load(std::memory_order_relaxed))) [[likely]]
    return *live.tape.load(std::memory_order_relaxed);
  return of_slow(v, what);
}

inline Tape& Tape::of(const Var& a, const Var& b, std::string_view what) {
  const detail::LiveTape& live = detail::live_tapes[a.tape_index_];
  const std::uint64_t now = live.epoch.load(std::memory_order_relaxed);
  if (usable(a.epoch_, now) & usable(b.epoch_, now)) [[likely]]
    return *live.tape.load(std::memory_order_relaxed);
  return of_slow(a, b, what);
}

inline Var Tape::record(Op op, double value, Slot a, double da) {
  room_args(1, op);
  args_.append(a, da);
  return close(op, value);
}

inline Var Tape::record(Op op, double value, Slot a, double da, Slot b, double db) {
  room_args(2, op);
  args_.append(a, da);
  args_.append(b, db);
  return close(op, value);
}

inline double Var::value() const { return Tape::of(*this, "value").values_[slot_]; }
inline double Var::grad() const { return Tape::of(*this, "grad").grad(slot_); }
inline Tape& Var::tape() const { return Tape::of(*this, "tape"); }

}  // namespace gradpath
