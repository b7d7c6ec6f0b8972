#include "common/utf8.hpp"

#include <cstdio>

namespace lockstep {
namespace {

struct Sequence {
  size_t length;  // bytes consumed: the sequence, or its maximal subpart when ill-formed
  bool ok;
};

// The sequence starting at s[i], by the Unicode Standard's table of
// well-formed UTF-8 byte sequences (Table 3-7): the second byte's range
// depends on the first, which excludes overlong forms, surrogates and code
// points above U+10FFFF.
Sequence next_sequence(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return {1, true};
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false};  // 80..C1, F5..FF never start a sequence
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) return {k, false};
    unsigned char b = byte(i + k);
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {k, false};
  }
  return {k, true};
}

}  // namespace

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // ASCII runs are the common case.
    while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
    if (i == text.size()) break;
    Sequence seq = next_sequence(text, i);
    if (!seq.ok) return i;
    i += seq.length;
  }
  return std::nullopt;
}

TextPosition text_position(std::string_view text, size_t offset) {
  TextPosition p;
  size_t end = offset < text.size() ? offset : text.size();
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

Status check_utf8(std::string_view text, std::string_view name, ErrorKind kind) {
  auto bad = find_invalid_utf8(text);
  if (!bad) return {};
  TextPosition at = text_position(text, *bad);
  unsigned b = static_cast<unsigned char>(text[*bad]);
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", b);
  std::string msg = std::string(name) + ":" + std::to_string(at.line) + ":" +
                    std::to_string(at.column) + ": invalid UTF-8 (byte " + hex;
  bool utf16_bom = *bad == 0 && text.size() >= 2 &&
                   ((b == 0xFF && static_cast<unsigned char>(text[1]) == 0xFE) ||
                    (b == 0xFE && static_cast<unsigned char>(text[1]) == 0xFF));
  if (utf16_bom) msg += "; the file looks like UTF-16";
  msg += ")";
  return fail(std::move(msg), kind);
}

Status check_yaml_text(std::string_view text, std::string_view name, ErrorKind kind) {
  LS_TRY(check_utf8(text, name, kind));
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    // The text is UTF-8 here: 0xC2 and 0xEF only ever start a sequence.
    unsigned char b1 = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    unsigned char b2 = i + 2 < text.size() ? static_cast<unsigned char>(text[i + 2]) : 0;
    unsigned code = 0;
    if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7F)
      code = b;
    else if (b == 0xC2 && b1 < 0xA0 && b1 != 0x85)  // C1 controls but NEL
      code = b1;
    else if (b == 0xEF && b1 == 0xBF && b2 >= 0xBE)  // U+FFFE, U+FFFF
      code = b2 == 0xBE ? 0xFFFE : 0xFFFF;
    else
      continue;
    TextPosition at = text_position(text, i);
    char u[16];
    std::snprintf(u, sizeof u, "U+%04X", code);
    return fail(std::string(name) + ":" + std::to_string(at.line) + ":" +
                    std::to_string(at.column) + ": " +
                    (code >= 0xFFFE ? "noncharacter " : "control character ") + u +
                    " is not allowed in YAML",
                kind);
  }
  return {};
}

std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string printable(std::string_view raw) {
  const std::string text = to_valid_utf8(raw);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    char esc[8];
    if (b == '\n') {
      out += "\\n";
    } else if (b == '\r') {
      out += "\\r";
    } else if (b == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b == 0x7F) {
      std::snprintf(esc, sizeof esc, "\\x%02X", b);
      out += esc;
    } else if (b == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) < 0xA0) {  // U+0080..U+009F
      std::snprintf(esc, sizeof esc, "\\u%04X", static_cast<unsigned char>(text[i + 1]));
      out += esc;
      ++i;
    } else {
      out += static_cast<char>(b);
    }
  }
  return out;
}

std::string to_valid_utf8(std::string_view text) {
  auto first = find_invalid_utf8(text);
  if (!first) return std::string(text);
  std::string out(text.substr(0, *first));
  out.reserve(text.size() + 8);
  size_t i = *first;
  while (i < text.size()) {
    Sequence seq = next_sequence(text, i);
    if (seq.ok)
      out.append(text.substr(i, seq.length));
    else
      out += "\xEF\xBF\xBD";  // U+FFFD
    i += seq.length;
  }
  return out;
}

}  // namespace lockstep
