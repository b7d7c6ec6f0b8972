#include "pipeline/yaml_documents.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <sstream>

#include "common/utf8.hpp"

namespace lockstep::pipeline {
namespace {

// Walks the stream once without building anything, to see that every
// document starts past the one before it.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (any_ && mark.pos == last_.pos)
      throw YAML::ParserException(mark, "unexpected ',' outside a flow sequence or mapping");
    any_ = true;
    last_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  bool any_ = false;
  YAML::Mark last_;
};

}  // namespace

std::optional<YAML::Mark> find_scalar_not_utf8(const YAML::Node& node) {
  // yaml-cpp bounds the nesting (500), and with it this recursion.
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      if (!is_valid_utf8(node.Scalar())) return node.Mark();
      return std::nullopt;
    case YAML::NodeType::Sequence:
      for (const auto& e : node)
        if (auto m = find_scalar_not_utf8(e)) return m;
      return std::nullopt;
    case YAML::NodeType::Map:
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (auto m = find_scalar_not_utf8(it->first)) return m;
        if (auto m = find_scalar_not_utf8(it->second)) return m;
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::vector<YAML::Node> load_yaml_documents(const std::string& text) {
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    while (parser.HandleNextDocument(starts)) {
    }
  }
  // The same parse again, now known to end.
  return YAML::LoadAll(text);
}

}  // namespace lockstep::pipeline
